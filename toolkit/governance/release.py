"""`toolkit release`: copy everything an auditor needs into a versioned bundle and record it.

A bundle holds the adapter, the model card (Markdown + HTML), every stage report, the gate report,
the policy it was judged by, the datasheet, the per-item evaluation outputs and a serving-readiness
record, an AI bill of materials (bom.cdx.json, CycloneDX 1.6), plus MANIFEST.json with the SHA-256
of every file. The ledger entry pins the manifest's hash, so a bundle cannot change after release
without `toolkit verify` noticing.

With a release key (`toolkit keys generate`; TOOLKIT_SIGNING_KEY or release.signing.key) the bundle
also carries attestation.intoto.json, a signed in-toto/SLSA provenance statement over every file,
and the ledger entry is signed: rewriting the bundle, its manifest and the whole hash chain then
still fails `toolkit verify --trusted-key`. A policy with `release.require_signature` (production,
high-risk) refuses an unsigned release.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from toolkit.config import Params
from toolkit.errors import ConfigError, GateFailed, LedgerError, MissingInputError
from toolkit.files import atomic_write_json, atomic_write_text, file_digests, sha256_file
from toolkit.registry import ledger as ledger_mod
from toolkit.governance.attestation import descriptors, sign_statement, statement
from toolkit.governance.bom import build_bom
from toolkit.governance.card import CARD_HTML, CARD_MARKDOWN, TECHDOC_HTML, TECHDOC_MARKDOWN
from toolkit.governance.gate import GATE_MARKDOWN
from toolkit.governance.policy import Policy, load_policy
from toolkit.registry.events import registry_signer, who
from toolkit.registry.bundle import Bundle, Headline, LedgerEntry, Override, ReleaseInfo, ServingRecord
from toolkit.registry.store import Registry
from toolkit.governance.serving import adapter_problems, logit_parity, vllm_compatibility
from toolkit.layout import ADAPTER_DIR, COST_DIR, EVAL_DIR, VALIDATE_HTML, report_path
from toolkit.reports import BaseModelReport, CardReport, EvalReport, GateReport, ValidateReport, read_report
from toolkit.templating import render

BUNDLE_REPORTS = ("base", "validate", "train", "eval_heldout", "eval_ood", "eval_canary", "eval_general", "eval_judge",
                  "cost", "card", "gate")
_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def git_commit() -> str | None:
    result = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() or None if result.returncode == 0 else None


def next_version(entries: list[dict], requested: str | None, orphaned: set[str] = frozenset()) -> str:
    """The requested version, or the next integer; never a released one, nor an orphan's (in place or
    moved aside: a bundle that existed under a number may have been copied somewhere)."""
    taken = {entry["version"] for entry in entries}
    if requested is None:
        numbers = [int(v) for v in taken | set(orphaned) if v.isdigit()]
        return str(max(numbers, default=0) + 1)
    if not (requested.isdigit() or _SEMVER.match(requested)):
        raise ConfigError(f"version {requested!r} is neither an integer nor MAJOR.MINOR.PATCH", key="--version")
    if requested in taken:
        raise ConfigError(f"version {requested} is already released", key="--version")
    if requested in orphaned:
        raise ConfigError(f"version {requested} was used by an orphaned bundle (a release killed before its ledger "
                          "entry); choose another", key="--version")
    return requested


@dataclass(frozen=True)
class ReleaseResult:
    bundle: Path
    entry: LedgerEntry     # the ledger entry appended
    serving: ServingRecord # the serving check: rank, vLLM's --max-lora-rank, reloaded logits
    cleaned: list[Path]    # half-written bundles of killed releases, removed
    orphans: list[Path]    # bundles without a ledger entry (moved aside with --repair)


def run_release(params: Params, override: str | None = None, version: str | None = None,
                registry_root: str | None = None, repair: bool = False) -> ReleaseResult:
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    gate = read_report(report_path("gate"), GateReport)
    override_record = _override_record(override)
    _require_releasable(gate, override_record)
    base = read_report(report_path("base"), BaseModelReport)
    registry = Registry(Path(registry_root or params.release.registry))
    signer = _signer(params, load_policy(gate.policy_file), registry)
    registry.releases.mkdir(parents=True, exist_ok=True)
    # Everything from choosing the version to appending the entry happens under the ledger's lock.
    with ledger_mod.locked(registry.ledger):
        if repair:
            ledger_mod.set_tail_aside(registry.ledger, registry.orphaned / f"ledger-tail-{_stamp()}.txt")
        entries = ledger_mod.read_entries(registry.ledger)
        chain = ledger_mod.check_chain_entries(entries)
        if chain:
            raise LedgerError(f"the ledger is damaged, refusing to release: {chain[0].message}",
                              file=str(registry.ledger))
        cleaned, orphans = _tidy(registry, entries, repair)
        version = next_version(entries, version, registry.retired_versions(entries))
        staging = Bundle(Path(tempfile.mkdtemp(prefix=".staging-", dir=registry.releases)))
        try:
            _fill_bundle(staging, params, gate, override_record, version)
            serving = _serving_record(Path(base.model_path), staging, params)
            info = _release_info(version, base, gate, override_record, serving, signer)
            atomic_write_json(staging.release_info, info.model_dump(mode="json"))
            # Hashed once, for the BOM and the attestation (a real base is many GB).
            base_files = file_digests(base.model_path) if Path(base.model_path).is_dir() else {}
            suites = {name: file_digests(folder) for name, folder in _suite_folders(params).items()}
            model_name = read_report(report_path("card"), CardReport).model_name
            atomic_write_json(staging.bom, build_bom(staging, version, model_name, base_files, suites))
            atomic_write_json(staging.manifest, {"files": staging.manifest_files()})
            if signer is not None:
                atomic_write_json(staging.attestation, _attestation(staging, params, info, base_files, gate, suites,
                                                                    started, signer))
            bundle = Bundle(registry.bundle(version))
            staging.root.rename(bundle.root)
        except BaseException:
            shutil.rmtree(staging.root, ignore_errors=True)
            raise
        entry = ledger_mod.append(registry.ledger, {
            **info.ledger_fields(),
            "manifest_sha256": sha256_file(bundle.manifest),
            **({"attestation_sha256": sha256_file(bundle.attestation)} if signer is not None else {}),
            "bundle": bundle.root.relative_to(registry.root).as_posix(),
        }, signer=signer)
    return ReleaseResult(bundle.root, LedgerEntry.model_validate(entry), serving, cleaned, orphans)


def _tidy(registry: Registry, entries: list[dict], repair: bool) -> tuple[list[Path], list[Path]]:
    """Under the ledger's lock: remove the staging folders of killed releases; report orphaned bundles
    and, with `repair`, move them to <registry>/orphaned/ (kept, never deleted: they are evidence)."""
    cleaned = registry.stale_staging()
    for folder in cleaned:
        shutil.rmtree(folder, ignore_errors=True)
    orphans = registry.orphans(entries)
    if repair:
        for orphan in orphans:
            target = registry.orphaned / f"{orphan.name}-{_stamp()}"
            target.parent.mkdir(parents=True, exist_ok=True)
            orphan.rename(target)
    return cleaned, orphans


def _stamp() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _signer(params: Params, policy: Policy, registry: Registry):
    """The release key's signer, or None; refuses an unsigned release under a policy that requires one."""
    signer = registry_signer(registry.root, params.release.signing.key)
    if signer is None and policy.require_signature:
        raise GateFailed(f"release refused: policy {policy.name!r} requires signed releases and no signing key is "
                         "configured; make one with `toolkit keys generate` and set TOOLKIT_SIGNING_KEY (or "
                         "release.signing.key) to the private key file")
    return signer


def _suite_folders(params: Params) -> dict[str, Path]:
    root = Path(params.data.decontamination.suites_dir)
    return {p.name: p for p in sorted(root.iterdir()) if p.is_dir()} if root.is_dir() else {}


def _attestation(bundle: Bundle, params: Params, info: ReleaseInfo, base_files: dict[str, str], gate: GateReport,
                 suites: dict[str, dict[str, str]], started: str, signer) -> dict:
    """The signed in-toto statement: the bundle's files as subjects, SLSA provenance as predicate."""
    validate = read_report(report_path("validate"), ValidateReport)
    dependencies = descriptors(base_files, "base")
    dependencies.append({"name": f"data/{validate.data_file}", "digest": {"sha256": validate.data_sha256}})
    if params.data.datasheet and Path(params.data.datasheet).is_file():
        dependencies.append({"name": f"datasheet/{params.data.datasheet}",
                             "digest": {"sha256": sha256_file(params.data.datasheet)}})
    dependencies += descriptors(file_digests("policies"), "policies")
    if not Path(gate.policy_file).resolve().is_relative_to(Path("policies").resolve()):
        dependencies.append({"name": f"policy/{Path(gate.policy_file).name}",
                             "digest": {"sha256": sha256_file(gate.policy_file)}})
    for name, digests_ in suites.items():
        dependencies += descriptors(digests_, f"eval_suites/{name}")
    return sign_statement(statement(file_digests(bundle.root, (bundle.attestation.name,)),
                                    params=params.model_dump(mode="json"), git_commit=info.git_commit,
                                    dvc_lock_sha256=info.dvc_lock_sha256, dependencies=dependencies, started=started,
                                    version=info.version), signer)


def _override_record(override: str | None) -> Override | None:
    if not (override and override.strip()):
        return None
    return Override(reason=override.strip(), by=who(), at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))


def _require_releasable(gate: GateReport, override: Override | None) -> None:
    """The gate passed (or an override is given), and nothing it judged has changed since."""
    if not gate.passed and not override:
        failed = ", ".join(r.id for r in gate.rules if r.severity == "block" and r.status in ("failed", "missing"))
        raise GateFailed(f"release refused: the gate failed under policy {gate.policy!r} ({failed}); "
                         "fix the cause, or release with --override \"reason\" (recorded in the ledger and on the card)")
    changed = [path for path, digest in gate.inputs.items() if not Path(path).is_file() or sha256_file(path) != digest]
    if changed:
        raise GateFailed(f"release refused: {', '.join(changed)} changed after the gate ran; run `dvc repro` again")
    for path in (ADAPTER_DIR, CARD_MARKDOWN, CARD_HTML, TECHDOC_MARKDOWN, GATE_MARKDOWN):
        if not path.exists():
            raise MissingInputError(f"{path}: missing; run `dvc repro` before releasing")
    problems = adapter_problems(ADAPTER_DIR)
    if problems:
        raise MissingInputError(f"{ADAPTER_DIR}: not a standard PEFT adapter: {'; '.join(problems)}")


def _serving_record(base_path: Path, bundle: Bundle, params: Params) -> ServingRecord:
    """The adapter as shipped must reproduce the logits recorded when it was evaluated."""
    tolerance = params.release.logit_tolerance
    diff = logit_parity(base_path, bundle.adapter, bundle.serving_probe, params.base.dtype,
                        params.base.trust_remote_code)
    if diff > tolerance:
        raise GateFailed(f"release refused: the adapter does not reproduce its evaluated logits "
                         f"(max |diff| {diff:.2e} > {tolerance})")
    return ServingRecord(**vllm_compatibility(bundle.adapter), logit_max_abs_diff=diff, logit_tolerance=tolerance,
                         logits_match=True)


def _release_info(version: str, base: BaseModelReport, gate: GateReport, override: Override | None,
                  serving: ServingRecord, signer=None) -> ReleaseInfo:
    validate = read_report(report_path("validate"), ValidateReport)
    heldout = read_report(report_path("eval_heldout"), EvalReport)
    primary = heldout.metrics[heldout.primary_metric]
    return ReleaseInfo(
        version=version,
        created_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        base_model=base.model,
        base_model_path=base.model_path,
        data_sha256=validate.data_sha256,
        policy=gate.policy,
        gate_passed=gate.passed,
        override=override,
        git_commit=git_commit(),
        dvc_lock_sha256=sha256_file("dvc.lock") if Path("dvc.lock").is_file() else None,
        headline=Headline(metric=heldout.primary_metric, base=primary.base, adapter=primary.adapter,
                          delta=primary.delta, ci_low=primary.ci_low, ci_high=primary.ci_high),
        serving=serving,
        signed_by=signer.public_key.keyid if signer is not None else None,
    )


def _fill_bundle(bundle: Bundle, params: Params, gate: GateReport, override: Override | None, version: str) -> None:
    shutil.copytree(ADAPTER_DIR, bundle.adapter)
    for name in BUNDLE_REPORTS:
        _copy(report_path(name), bundle.report(name))
    _copy(GATE_MARKDOWN, bundle.reports / GATE_MARKDOWN.name)
    _copy(VALIDATE_HTML, bundle.reports / VALIDATE_HTML.name)
    shutil.copytree(COST_DIR, bundle.reports / COST_DIR.name)
    atomic_write_json(bundle.policy, load_policy(gate.policy_file).resolved())
    for item in sorted(EVAL_DIR.glob("*")):
        if item.is_dir():  # e.g. lm-eval's per-sample logs
            shutil.copytree(item, bundle.eval / item.name)
        else:
            _copy(item, bundle.eval / item.name)
    if params.data.datasheet:
        _copy(Path(params.data.datasheet), bundle.datasheet)
    card_md = CARD_MARKDOWN.read_text(encoding="utf-8")
    card_html = CARD_HTML.read_text(encoding="utf-8")
    section = dict(version=version, gate=gate, override=override, rollout=params.monitor.rollout,
                   record=f"{params.release.registry}/rollout/v{version}.md")
    release_md = render("release_section.md.j2", **section)
    release_html = render("release_section.html.j2", **section)
    atomic_write_text(bundle.card(CARD_MARKDOWN.name), card_md.rstrip("\n") + "\n\n" + release_md)
    atomic_write_text(bundle.card(CARD_HTML.name), card_html.replace("</body>", release_html + "</body>"))
    for document in (TECHDOC_MARKDOWN, TECHDOC_HTML):
        _copy(document, bundle.card(document.name))


def _copy(source: Path, target: Path) -> None:
    if not Path(source).is_file():
        raise MissingInputError(f"{source}: missing; run `dvc repro` before releasing")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(source, target)
