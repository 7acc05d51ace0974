"""MLflow tracking and registry (issue #19) against a real `mlflow server` (SQLite backend store, local
artifact root) started on 127.0.0.1: the completed pipeline as a parent run with a child per stage,
logged once per pipeline state; a release registered as a model version whose files and tags
`toolkit verify --mlflow-model` checks against the bundle; credentials never printed; an unreachable
server leaves the release recorded and says how to register it later."""

import hashlib
import json
import tempfile
from pathlib import Path

import pytest
import yaml

from conftest import mlflow_server, run_in

pytestmark = pytest.mark.e2e

MODEL = "support-triage"


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


def _client(url):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=url, registry_uri=url)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_pipeline_is_logged_as_a_parent_run_with_a_child_per_stage_once(pipeline_copy, mlflow_url):
    project = pipeline_copy
    # Credentials in the URI reach the server but never the console.
    secret_url = mlflow_url.replace("http://", "http://alice:s3cret-token@")
    env = {"MLFLOW_TRACKING_URI": secret_url}
    first = run_in(project, "toolkit", "track", "mlflow", env=env, check=True)
    assert "logged run" in first.stdout and "s3cret" not in first.stdout + first.stderr

    client = _client(mlflow_url)
    experiment = client.get_experiment_by_name("toolkit-adapters")
    lock_sha256 = _sha256(project / "dvc.lock")
    [parent] = client.search_runs([experiment.experiment_id], f"tags.`toolkit.dvc_lock_sha256` = '{lock_sha256}'")
    assert parent.data.tags["toolkit.gate_passed"] == "True" and parent.data.params["train.method"] == "sft"
    children = client.search_runs([experiment.experiment_id], f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    stages = {run.data.tags["toolkit.stage"]: run for run in children}
    expected = {"base", "validate", "train", "train@1234", "evaluate-seed@1234", "eval_heldout", "eval_ood",
                "eval_canary", "eval_general", "eval_judge", "cost", "card", "gate"}
    assert set(stages) == expected
    # Each child: the stage's params as its report recorded them, its headline figures, the report itself.
    train = stages["train"]
    headline = json.loads((project / "metrics/train.json").read_text())
    assert train.data.metrics["final_loss"] == pytest.approx(headline["final_loss"])
    assert train.data.params["train.lora.r"] == "16" and train.data.params["seed"] == "1234"
    heldout = stages["eval_heldout"].data.metrics
    assert heldout["field_accuracy.delta"] == pytest.approx(json.loads((project / "metrics/heldout.json").read_text())
                                                            ["field_accuracy"]["delta"])
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(client.download_artifacts(train.info.run_id, "report/train.json", tmp))
        assert _sha256(report) == _sha256(project / "reports/train.json") == train.data.tags["toolkit.report_sha256"]
        card = Path(client.download_artifacts(stages["card"].info.run_id, "model_card/README.md", tmp))
        assert _sha256(card) == _sha256(project / "artifacts/model_card/README.md")

    again = run_in(project, "toolkit", "track", "mlflow", env=env, check=True)
    assert "already logged" in again.stdout
    assert len(client.search_runs([experiment.experiment_id], f"tags.`toolkit.dvc_lock_sha256` = '{lock_sha256}'")) == 1


def test_a_release_is_registered_and_verified_against_its_bundle(pipeline_copy, mlflow_url):
    project = pipeline_copy
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["tracking"]["registered_model"] = MODEL
    (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))

    # The server is down: the release is recorded all the same, and the message says how to register it.
    down = run_in(project, "toolkit", "release", env={"MLFLOW_TRACKING_URI": "http://127.0.0.1:9",
                                                      "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
    assert down.returncode == 3 and "toolkit track register" in down.stderr
    assert json.loads((project / "registry/ledger.jsonl").read_text().splitlines()[0])["version"] == "1"
    env = {"MLFLOW_TRACKING_URI": mlflow_url}
    registered = run_in(project, "toolkit", "track", "register", "registry/releases/v1", env=env, check=True)
    assert f"as {MODEL} version 1" in registered.stdout
    released = run_in(project, "toolkit", "release", env=env, check=True)      # v2, registered by the release itself
    assert f"registered in MLflow: {MODEL} version 2" in released.stdout

    client = _client(mlflow_url)
    version = client.get_model_version(MODEL, "2")
    entry = json.loads((project / "registry/ledger.jsonl").read_text().splitlines()[1])
    assert version.tags["toolkit.version"] == "2" and version.tags["toolkit.ledger_entry_sha256"] == entry["entry_sha256"]
    assert version.tags["toolkit.gate_passed"] == "True"

    verified = run_in(project, "toolkit", "verify", "registry/releases/v2", "--mlflow-model", MODEL, env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert f"[PASS] mlflow registry: {MODEL} version 2" in verified.stdout
    # v1's registered version is v1's, not v2's: asked by version number, v2's bundle does not match it.
    mismatch = run_in(project, "toolkit", "verify", "registry/releases/v2", "--mlflow-model", MODEL,
                      "--mlflow-version", "1", env=env)
    assert mismatch.returncode == 1 and "tag toolkit.version: registered '1', bundle '2'" in mismatch.stdout
    # A registered version whose ledger tag was changed afterwards fails.
    client.set_model_version_tag(MODEL, "2", "toolkit.ledger_entry_sha256", "0" * 64)
    tampered = run_in(project, "toolkit", "verify", "registry/releases/v2", "--mlflow-model", MODEL, env=env)
    assert tampered.returncode == 1 and "[FAIL] mlflow registry" in tampered.stdout
    assert "tag toolkit.ledger_entry_sha256" in tampered.stdout
