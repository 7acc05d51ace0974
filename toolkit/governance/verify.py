"""`toolkit verify BUNDLE`: what an auditor runs, needing only the bundle and the ledger.

Checks, each reported as PASS, WARN or FAIL with a reason:
- manifest: every file matches its SHA-256 in MANIFEST.json, and no file is unlisted;
- ledger chain: intact from the first entry (no line edited, removed or reordered);
- ledger entry: the ledger records this version, in this folder, with this manifest's hash;
- signature: the attestation (in-toto/SLSA in a DSSE envelope) verifies with a trusted key, attests
  every file byte for byte, and every ledger entry's signature verifies. With `--trusted-key` an
  unsigned bundle fails; without, it is a warning, unless the bundle's policy requires signing;
- gate: the gate passed, or the ledger records an override with its reason;
- card figures: the card's figures equal the evaluation report's, and it states the adapter's and
  the data's SHA-256 as found in the bundle;
- card statements: the training objective, adapter kind, loss, initial adapter and checkpoint the
  card and the technical documentation state are those of the bundled train report;
- documentation: the card has every section the bundle's policy requires;
- bill of materials: bom.cdx.json is a valid CycloneDX 1.6 document naming this adapter's hash;
- serving: the release recorded a standard PEFT adapter that reproduced its evaluated logits; with
  `--deep` the adapter is loaded onto its base (checked against the attested digests) and the
  logits are measured again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from toolkit.errors import ConfigError, LedgerError, VerificationFailed
from toolkit.files import file_digests, sha256_file, sha256_path
from toolkit.registry import ledger as ledger_mod
from toolkit.governance.attestation import (dependency_digests, envelope_problem, envelope_statement, read_envelope,
                                            subject_problems)
from toolkit.registry.bundle import (ATTESTATION, BOM_FILE, CARD_HTML, CARD_MARKDOWN, RELEASE_INFO, TECHDOC_MARKDOWN,
                                     Bundle, LedgerEntry, ReleaseInfo)
from toolkit.registry.signing import keyring_dir, load_keys


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    warning: bool = False      # passed, but with something an auditor should know (e.g. unsigned)

    @property
    def status(self) -> str:
        return "FAIL" if not self.ok else ("WARN" if self.warning else "PASS")


def default_ledger(bundle: Path) -> Path:
    return bundle.resolve().parent.parent / "ledger.jsonl"


def verify_bundle(bundle_path: Path, ledger: Path | None = None, trusted_keys: list[Path] | None = None,
                  deep: bool = False, base: Path | None = None, mlflow: dict | None = None) -> list[Check]:
    """Every check of a release bundle; `mlflow` ({"uri", "model", "version"}) adds the registered
    version's check."""
    bundle = Bundle(bundle_path)
    ledger = Path(ledger) if ledger else default_ledger(bundle.root)
    if not bundle.is_bundle():
        return [Check("bundle", False, f"{bundle.root} has no {RELEASE_INFO}: not a release bundle")]
    try:
        info = bundle.info()
    except (ValueError, VerificationFailed) as exc:
        return [Check("bundle", False, f"{RELEASE_INFO} is not a release record: {exc}")]
    try:
        entries = ledger_mod.read_entries(ledger) if ledger.is_file() else []
    except LedgerError:
        entries = []          # a damaged ledger: the chain check below says where, and verify fails
    entry = _entry_of(entries, info.version, ledger)
    keys = load_keys(trusted_keys) if trusted_keys else None
    return [
        _check_manifest(bundle),
        _check_chain(ledger),
        _check_entry(bundle, info, entry),
        _guard("signature", lambda: _check_signature(bundle, info, entry, entries, keys, ledger)),
        _check_gate(bundle, entry),
        _check_card_figures(bundle),
        _guard("card statements", lambda: _check_statements(bundle)),
        _check_documentation(bundle),
        _guard("bill of materials", lambda: _check_bom(bundle)),
        _guard("serving", lambda: _check_serving_deep(bundle, info, base)) if deep else _check_serving(info),
        *([_guard("mlflow registry", lambda: _check_registered(bundle, entry, mlflow))] if mlflow else []),
    ]


def _entry_of(entries: list[dict], version: str, ledger: Path) -> LedgerEntry | None:
    """The typed ledger entry of `version`; None when there is none or it is malformed (an edited entry:
    the chain check says which)."""
    for number, raw in enumerate(entries, start=1):
        if raw.get("version") == version and "event" not in raw:
            try:
                return LedgerEntry.parse(raw, ledger, number)
            except LedgerError:
                return None
    return None


def _guard(name: str, func) -> Check:
    try:
        return func()
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        return Check(name, False, f"could not check: {type(exc).__name__}: {exc}")


def _check_manifest(bundle: Bundle) -> Check:
    def run() -> Check:
        listed = json.loads(bundle.manifest.read_text(encoding="utf-8"))["files"]
        actual = bundle.manifest_files()
        changed = sorted(p for p in listed if p in actual and actual[p] != listed[p])
        missing = sorted(set(listed) - set(actual))
        extra = sorted(set(actual) - set(listed))   # manifest_files leaves out the manifest and the attestation
        problems = [f"{label}: {', '.join(items[:5])}" for label, items in
                    (("changed", changed), ("missing", missing), ("not in manifest", extra)) if items]
        return Check("manifest", not problems, "; ".join(problems) or f"{len(listed)} files match their SHA-256")
    return _guard("manifest", run)


def _check_chain(ledger: Path) -> Check:
    problems = ledger_mod.check_chain(ledger)
    if problems:
        return Check("ledger chain", False, "; ".join(p.message for p in problems[:3]))
    return Check("ledger chain", True, f"{len(ledger_mod.read_entries(ledger))} entries, chain intact from the first")


def _check_entry(bundle: Bundle, info: ReleaseInfo, entry: LedgerEntry | None) -> Check:
    if entry is None:
        return Check("ledger entry", False, f"the ledger has no (well-formed) entry for version {info.version}")
    manifest_hash = sha256_file(bundle.manifest) if bundle.manifest.is_file() else None
    if entry.manifest_sha256 != manifest_hash:
        return Check("ledger entry", False, "the manifest's SHA-256 differs from the one the ledger recorded")
    here = bundle.root.resolve().name
    if entry.bundle and Path(entry.bundle).name != here:
        return Check("ledger entry", False, f"the ledger records version {entry.version} in {entry.bundle}, "
                                            f"not in {here} (bundles swapped or renamed)")
    return Check("ledger entry", True, f"version {entry.version} recorded at {entry.time} with this manifest")


def _check_gate(bundle: Bundle, entry: LedgerEntry | None) -> Check:
    def run() -> Check:
        gate = bundle.read_report("gate")
        override = entry.override if entry else None
        if gate.get("passed") is True and entry is not None and entry.gate_passed:
            return Check("gate", True, f"passed under policy {gate.get('policy')!r}")
        if override and override.reason.strip():
            return Check("gate", True, f"gate failed; override by {override.by} at {override.at}: {override.reason}")
        return Check("gate", False, "the gate did not pass and no override is recorded in the ledger")
    return _guard("gate", run)


def _card_front_matter(text: str) -> dict:
    if not text.startswith("---"):
        raise ValueError("the card has no YAML front matter")
    return yaml.safe_load(text.split("---", 2)[1]) or {}


def _check_card_figures(bundle: Bundle) -> Check:
    def run() -> Check:
        card = bundle.card(CARD_MARKDOWN).read_text(encoding="utf-8")
        html = bundle.card(CARD_HTML).read_text(encoding="utf-8")
        heldout, validate = bundle.read_report("eval_heldout"), bundle.read_report("validate")
        declared = {m["type"]: m["value"] for result in _card_front_matter(card)["model-index"][0]["results"]
                    if result.get("dataset", {}).get("split") == "heldout" for m in result["metrics"]}
        problems = []
        for name, m in heldout["metrics"].items():
            for key, value in ((name, m["adapter"]), (f"{name}_delta_vs_base", m["delta"])):
                if declared.get(key) != round(value, 4):
                    problems.append(f"model-index {key} = {declared.get(key)} but the report says {round(value, 4)}")
            for text, where in ((card, "README.md"), (html, "model_card.html")):
                if f"{m['adapter']:.4f}" not in text or f"{m['delta']:+.4f}" not in text:
                    problems.append(f"{where} does not show {name} adapter {m['adapter']:.4f} / delta {m['delta']:+.4f}")
        adapter_hash = sha256_path(bundle.adapter)
        for label, digest in (("adapter", adapter_hash), ("training data", validate["data_sha256"])):
            if digest not in card:
                problems.append(f"the card does not state the {label} SHA-256 {digest[:12]}…")
        return Check("card figures", not problems, "; ".join(problems[:4]) or
                     f"{len(heldout['metrics'])} metrics, adapter and data hashes match the reports")
    return _guard("card figures", run)


def _check_documentation(bundle: Bundle) -> Check:
    def run() -> Check:
        from toolkit.governance.card import missing_sections

        policy = bundle.read_policy()
        required = tuple(policy.get("documentation", {}).get("required_sections", []))
        documents = (bundle.card(CARD_MARKDOWN), bundle.card(TECHDOC_MARKDOWN))
        missing = missing_sections(required, (), None, documents)
        if missing:
            return Check("documentation", False, f"policy {policy['name']!r}: {'; '.join(missing)}")
        return Check("documentation", True, f"{len(required)} section(s) required by policy {policy['name']!r} present")
    return _guard("documentation", run)


def _check_serving(info: ReleaseInfo) -> Check:
    serving = info.serving
    if serving is None or not serving.logits_match:
        return Check("serving", False, "the release did not record matching logits for the reloaded adapter")
    note = "" if serving.vllm_compatible else f" (vLLM: {'; '.join(serving.notes)})"
    return Check("serving", True, f"standard PEFT adapter, rank {serving.rank}, reloaded logits within "
                                  f"{serving.logit_tolerance} (max |diff| {serving.logit_max_abs_diff:.1e}), "
                                  f"vLLM --max-lora-rank {serving.vllm_max_lora_rank}{note}")


def _check_signature(bundle: Bundle, info: ReleaseInfo, entry: LedgerEntry | None, entries: list[dict],
                     keys: dict | None, ledger: Path) -> Check:
    """Trusted keys anchor trust; without them the registry's own keyring is used, which an attacker who
    can rewrite the registry can replace too, so a valid signature then is only a warning."""
    policy = bundle.read_policy()
    required = bool(policy.get("release", {}).get("require_signature"))
    anchored = keys is not None
    if keys is None:
        ring = keyring_dir(ledger.parent)
        try:
            keys = load_keys([ring]) if ring.is_dir() and any(ring.glob("*.pub")) else {}
        except ConfigError as exc:
            return Check("signature", False, f"the registry's keyring is damaged: {exc}")
    if not bundle.attestation.is_file():
        if entry is not None and (entry.signed or entry.attestation_sha256):
            return Check("signature", False, f"the ledger entry is signed but the bundle has no {ATTESTATION} (removed)")
        if anchored:
            return Check("signature", False, f"unsigned bundle (no {ATTESTATION}), but trusted keys were given")
        if required:
            return Check("signature", False, f"unsigned bundle; policy {policy.get('name')!r} requires signed releases")
        return Check("signature", True, "unsigned bundle: its integrity rests on files an attacker with write "
                                        "access could regenerate; sign releases (toolkit keys generate)", warning=True)
    if not keys:
        return Check("signature", not required, "signed, but there is no public key to check it with; pass "
                                                "--trusted-key", warning=True)
    envelope = read_envelope(bundle.attestation)
    keyid, problem = envelope_problem(envelope, keys)
    if problem:
        return Check("signature", False, problem)
    problems = subject_problems(envelope_statement(envelope), file_digests(bundle.root, (ATTESTATION,)))
    if entry is None:
        problems.append("no ledger entry to check")
    elif entry.attestation_sha256 != sha256_file(bundle.attestation):
        problems.append("the attestation's SHA-256 differs from the one the ledger entry records")
    failures, warnings = ledger_mod.signature_problems(entries, keys, info.version)
    problems += [f"ledger {failure}" for failure in failures]
    if problems:
        return Check("signature", False, "; ".join(problems[:4]))
    where = "a trusted key" if anchored else f"{keyring_dir(ledger.parent)}/{keyid}.pub, which sits beside the " \
                                             "bundle (pass --trusted-key to anchor trust)"
    notes = f"; {'; '.join(warnings[:2])}" if warnings else ""
    return Check("signature", True, f"attestation and ledger signed by key {keyid[:12]}… ({where}); "
                                    f"{len(envelope_statement(envelope)['subject'])} files attested{notes}",
                 warning=not anchored or bool(warnings))


def _check_statements(bundle: Bundle) -> Check:
    from toolkit.governance.statements import missing_statements, training_statements

    train = bundle.read_report("train")
    documents = {name: bundle.card(name).read_text(encoding="utf-8") for name in (CARD_MARKDOWN, TECHDOC_MARKDOWN)}
    problems = missing_statements(train, documents) + _seed_choice_problems(train)
    if problems:
        return Check("card statements", False, "; ".join(problems[:3]))
    stated = training_statements(train)
    return Check("card statements", True, f"{stated['Objective']}, {stated['Adapter']}, loss on "
                                          f"{stated['Loss computed on']}: as in reports/train.json")


def _check_registered(bundle: Bundle, entry: LedgerEntry | None, mlflow: dict) -> Check:
    """The registered model version holds this bundle's files, byte for byte, and the tags of its ledger entry."""
    from toolkit.governance.tracking import registered_version_problems, shown

    if entry is None:
        return Check("mlflow registry", False, "no ledger entry for this bundle to compare the registered version with")
    version, problems = registered_version_problems(mlflow["uri"], bundle, entry.entry_sha256, mlflow["model"],
                                                    mlflow.get("version"))
    where = f"{mlflow['model']} version {version} at {shown(mlflow['uri'])}" if version else mlflow["model"]
    if problems:
        return Check("mlflow registry", False, f"{where}: " + "; ".join(problems[:3]))
    return Check("mlflow registry", True, f"{where}: the bundle's files and its ledger entry's tags")


def _seed_choice_problems(train: dict) -> list[str]:
    """The released seed must be the one the recorded rule picks from the recorded runs' validation figures."""
    from toolkit.errors import ConfigError
    from toolkit.reports import SeedSelection
    from toolkit.train.seeds import choose

    if not train.get("seeds"):
        return []
    selection = SeedSelection.model_validate(train["seeds"])
    try:
        expected, _ = choose(selection.rule, train.get("method", "sft"), {run.seed: run for run in selection.runs})
    except ConfigError as exc:
        return [f"reports/train.json: the seed selection cannot be checked: {exc}"]
    if expected != selection.chosen:
        return [f"reports/train.json: rule {selection.rule} picks seed {expected} from the recorded runs, "
                f"but seed {selection.chosen} was released"]
    return []


def _check_bom(bundle: Bundle) -> Check:
    from toolkit.governance.bom import ADAPTER_REF, validate_bom

    path = bundle.bom
    if not path.is_file():
        return Check("bill of materials", True, f"no {BOM_FILE} (released before bills of materials)", warning=True)
    document = json.loads(path.read_text(encoding="utf-8"))
    validate_bom(document)
    adapter = next(c for c in document["components"] if c.get("bom-ref") == ADAPTER_REF)
    digest = sha256_file(bundle.adapter_weights)
    if {"alg": "SHA-256", "content": digest} not in adapter.get("hashes", []):
        return Check("bill of materials", False, "the BOM's adapter hash differs from adapter_model.safetensors")
    return Check("bill of materials", True, f"CycloneDX {document['specVersion']} ML-BOM valid, "
                                            f"{len(document['components'])} components, adapter hash matches")


def _check_serving_deep(bundle: Bundle, info: ReleaseInfo, base: Path | None) -> Check:
    """Load the bundled adapter onto its base and measure the probe logits again."""
    from toolkit.governance.serving import logit_parity

    base_report = bundle.read_report("base")
    base = Path(base) if base else Path(base_report["model_path"])
    if not base.is_dir():
        return Check("serving", False, f"base model folder {base} not found; pass --base PATH")
    if bundle.attestation.is_file():
        expected = dependency_digests(envelope_statement(read_envelope(bundle.attestation)), "base")
        actual = file_digests(base)
        wrong = sorted(name for name in expected if actual.get(name) != expected[name])
        if wrong or not expected:
            return Check("serving", False, f"the base at {base} does not match the attested digests "
                                           f"({', '.join(wrong[:3]) or 'none attested'})")
        matched = f"{len(expected)} base files match the attestation"
    else:
        recorded = base_report.get("outputs", {}).get(base_report["model_path"])
        if recorded is None:
            return Check("serving", False, "reports/base.json records no digest for the base folder, and the bundle "
                                           "has no attestation: the base cannot be checked")
        if recorded != sha256_path(base):
            return Check("serving", False, f"the base at {base} does not match the digest in reports/base.json")
        matched = "base matches reports/base.json"
    dtype = base_report.get("params", {}).get("base", {}).get("dtype", "float32")
    tolerance = info.serving.logit_tolerance if info.serving and info.serving.logit_tolerance is not None else 1e-4
    diff = logit_parity(base, bundle.adapter, bundle.serving_probe, dtype)
    if diff > tolerance:
        return Check("serving", False, f"measured again: the adapter's logits differ from those recorded at evaluation "
                                       f"by {diff:.2e} (> {tolerance})")
    return Check("serving", True, f"measured again ({matched}): logits within {tolerance} (max |diff| {diff:.1e})")
