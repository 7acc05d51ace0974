"""MLflow: a pipeline run as MLflow runs, a release as a version of a registered model.

`toolkit track` logs a completed `dvc repro` from its reports: one parent run (params.yaml, the
hash of dvc.lock, the gate's outcome) and one child run per stage with the stage's params as
its report recorded them, its headline figures (metrics/<stage>.json) and the report itself (plus
the card, the cost report, the gate's summary). It is not a DVC stage: the stages stay free of a
network service, and what is logged is the evidence the gate read, not a second computation. A
pipeline state (the hash of dvc.lock) is logged once.

`toolkit release` (with tracking.registered_model) registers the bundle as a model version: the
bundle's files as the version's artifacts and tags that tie it to the ledger (version, manifest and
ledger-entry hashes, gate outcome, card hash). `toolkit verify --mlflow-model` checks a registered
version against its bundle: the same files, byte for byte, and the same tags.

The tracking server comes from tracking.mlflow_uri or MLFLOW_TRACKING_URI; credentials only from
MLflow's own variables (MLFLOW_TRACKING_TOKEN, ..._USERNAME/_PASSWORD), never from params, and a URI
is printed without any user:password part.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from toolkit import __version__, headline
from toolkit.config import Params
from toolkit.errors import ConfigError, ServiceError
from toolkit.files import file_digests, sha256_file, sha256_path
from toolkit.layout import COST_DIR, CARD_DIR, REPORTS, VALIDATE_HTML, report_path
from toolkit.registry.bundle import Bundle

PIPELINE_TAG = "toolkit.dvc_lock_sha256"
# Files logged beside a stage's report: what a reader of that stage looks at.
STAGE_EXTRAS = {"validate": [VALIDATE_HTML], "card": [CARD_DIR], "cost": [COST_DIR], "gate": [REPORTS / "gate.md"]}
MAX_PARAM_LENGTH = 6000     # MLflow's limit on a param value


@dataclass(frozen=True)
class Tracked:
    experiment: str
    parent_run_id: str
    child_runs: dict[str, str]     # stage -> run id
    already_logged: bool


def server_uri(params: Params) -> str:
    uri = params.tracking.mlflow_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise ConfigError("no MLflow tracking server: set tracking.mlflow_uri or MLFLOW_TRACKING_URI",
                          file="params.yaml", key="tracking.mlflow_uri")
    return uri


def shown(uri: str) -> str:
    """The URI without a user:password part (it may carry credentials)."""
    parts = urllib.parse.urlsplit(uri)
    return parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")).geturl() \
        if parts.username or parts.password else uri


def _client(uri: str):
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")   # our own summary says where
    logging.getLogger("mlflow").setLevel(logging.WARNING)
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError("MLflow is not installed: pip install -e '.[mlflow]'", key="tracking") from None
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def _experiment_id(client, name: str) -> str:
    found = client.get_experiment_by_name(name)
    return found.experiment_id if found else client.create_experiment(name)


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as dotted keys (lists as JSON text)."""
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, item in value.items():
            flat.update(_flat(item, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): value}


def _log(client, run_id: str, params: dict[str, Any], metrics: dict[str, Any]) -> None:
    from mlflow.entities import Metric, Param

    now = int(time.time() * 1000)
    as_text = lambda v: (json.dumps(v) if isinstance(v, (list, dict)) else str(v))[:MAX_PARAM_LENGTH]  # noqa: E731
    param_rows = [Param(key[:250], as_text(v)) for key, v in params.items() if v is not None]
    metric_rows = [Metric(key[:250], float(v), now, 0) for key, v in metrics.items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)]
    for start in range(0, max(len(param_rows), len(metric_rows), 1), 100):   # MLflow's batch limit
        client.log_batch(run_id, params=param_rows[start:start + 100], metrics=metric_rows[start:start + 100])


def _stage_reports() -> dict[str, Path]:
    """stage -> its report: the pipeline's reports, each seed's run and evaluation included."""
    names = ["base", "validate", "train", "eval_heldout", "eval_ood", "eval_canary", "eval_general", "eval_judge",
             "cost", "card", "gate"]
    reports = {name: report_path(name) for name in names if report_path(name).is_file()}
    for path in sorted(REPORTS.glob("runs/seed-*/train.json")):
        reports[f"train@{path.parent.name.removeprefix('seed-')}"] = path
    for path in sorted(REPORTS.glob("seed_evals/seed-*.json")):
        reports[f"evaluate-seed@{path.stem.removeprefix('seed-')}"] = path
    return reports


def log_pipeline(params: Params, force: bool = False) -> Tracked:
    """The completed pipeline in the working tree as a parent run with a child per stage."""
    lock = Path("dvc.lock")
    if not lock.is_file() or not report_path("gate").is_file():
        raise ConfigError("no completed pipeline to track: run `dvc repro` first", file="dvc.lock")
    client = _client(server_uri(params))
    try:
        return _log_pipeline(client, params, sha256_file(lock), force)
    except ConfigError:
        raise
    except Exception as exc:      # the server refused or could not be reached
        raise ServiceError(f"MLflow at {shown(server_uri(params))}: {exc}") from None


def _log_pipeline(client, params: Params, lock_sha256: str, force: bool) -> Tracked:
    experiment = _experiment_id(client, params.tracking.experiment)
    if not force:
        earlier = client.search_runs([experiment], filter_string=f"tags.`{PIPELINE_TAG}` = '{lock_sha256}'",
                                     max_results=1)
        if earlier:
            return Tracked(params.tracking.experiment, earlier[0].info.run_id, {}, True)
    gate = json.loads(report_path("gate").read_text(encoding="utf-8"))
    parent = client.create_run(experiment, run_name=f"pipeline {lock_sha256[:12]}", tags={
        PIPELINE_TAG: lock_sha256, "toolkit.version": __version__, "toolkit.gate_passed": str(gate.get("passed")),
        "toolkit.policy": str(gate.get("policy"))})
    _log(client, parent.info.run_id, _flat(params.model_dump(mode="json", exclude={"tracking"})), {})
    children = {}
    for stage, path in _stage_reports().items():
        report = json.loads(path.read_text(encoding="utf-8"))
        child = client.create_run(experiment, run_name=stage, tags={
            "mlflow.parentRunId": parent.info.run_id, "toolkit.stage": stage, "toolkit.report_sha256": sha256_file(path)})
        figures = headline.path(stage)    # the seeds' own runs have none
        _log(client, child.info.run_id, _flat(report.get("params", {})),
             _flat(json.loads(figures.read_text(encoding="utf-8"))) if "@" not in stage and figures.is_file() else {})
        client.log_artifact(child.info.run_id, str(path), "report")
        for extra in STAGE_EXTRAS.get(stage, []):
            if extra.is_dir():
                client.log_artifacts(child.info.run_id, str(extra), extra.name)
            elif extra.is_file():
                client.log_artifact(child.info.run_id, str(extra))
        client.set_terminated(child.info.run_id)
        children[stage] = child.info.run_id
    client.set_terminated(parent.info.run_id)
    return Tracked(params.tracking.experiment, parent.info.run_id, children, False)


def version_tags(bundle: Bundle, entry_sha256: str) -> dict[str, str]:
    """The tags that tie a registered version to its bundle and ledger entry."""
    info = bundle.info()
    return {"toolkit.version": info.version, "toolkit.manifest_sha256": sha256_file(bundle.manifest),
            "toolkit.ledger_entry_sha256": entry_sha256, "toolkit.gate_passed": str(info.gate_passed),
            "toolkit.override": "yes" if info.override else "no", "toolkit.card_sha256": sha256_file(bundle.card()),
            "toolkit.adapter_sha256": sha256_path(bundle.adapter)}


def register_release(params: Params, bundle_root: Path, entry_sha256: str) -> str:
    """Registers the release as a version of tracking.registered_model; returns the version number."""
    name = params.tracking.registered_model
    client = _client(server_uri(params))
    bundle = Bundle(bundle_root)
    try:
        experiment = _experiment_id(client, params.tracking.experiment)
        run = client.create_run(experiment, run_name=f"release {bundle.version}", tags={"toolkit.release": bundle.version})
        client.log_artifacts(run.info.run_id, str(bundle.root), "bundle")
        client.set_terminated(run.info.run_id)
        if client.search_registered_models(filter_string=f"name = '{name}'") == []:
            client.create_registered_model(name, description="Adapters released by toolkit (governed releases).")
        version = client.create_model_version(name, f"runs:/{run.info.run_id}/bundle", run_id=run.info.run_id,
                                              tags=version_tags(bundle, entry_sha256))
        return str(version.version)
    except Exception as exc:
        raise ServiceError(f"{bundle.version} is released, but registering it in MLflow at "
                                   f"{shown(server_uri(params))} failed: {exc}; run `toolkit track register "
                                   f"{bundle.root}` to retry") from None


def registered_version_problems(uri: str, bundle: Bundle, entry_sha256: str, name: str,
                                version: str | None = None) -> tuple[str | None, list[str]]:
    """(the version checked, what differs between it and the bundle): files and tags."""
    client = _client(uri)
    from mlflow.artifacts import download_artifacts

    if version is None:
        matches = [v for v in client.search_model_versions(f"name = '{name}'")
                   if v.tags.get("toolkit.version") == bundle.version]
        if not matches:
            return None, [f"no version of registered model {name!r} is tagged toolkit.version={bundle.version}"]
        version = str(max(int(v.version) for v in matches))
    registered = client.get_model_version(name, version)
    problems = [f"tag {key}: registered {registered.tags.get(key)!r}, bundle {value!r}"
                for key, value in version_tags(bundle, entry_sha256).items() if registered.tags.get(key) != value]
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=tmp, tracking_uri=uri))
        theirs, ours = file_digests(local), file_digests(bundle.root)
    problems += [f"{path}: {'missing from the registered version' if path not in theirs else 'differs'}"
                 for path in sorted(ours) if theirs.get(path) != ours[path]]
    problems += [f"{path}: registered but not in the bundle" for path in sorted(set(theirs) - set(ours))]
    return version, problems
