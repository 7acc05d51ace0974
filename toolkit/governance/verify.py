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

from toolkit.errors import ConfigError, LedgerError
from toolkit.files import file_digests, sha256_file, sha256_path
from toolkit.registry import ledger as ledger_mod
from toolkit.governance.attestation import (ATTESTATION, dependency_digests, envelope_problem, envelope_statement,
                                            read_envelope, subject_problems)
from toolkit.governance.bom import BOM_FILE
from toolkit.governance.release import MANIFEST, POLICY_FILE, RELEASE_INFO, manifest_for
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


def verify_bundle(bundle: Path, ledger: Path | None = None, trusted_keys: list[Path] | None = None,
                  deep: bool = False, base: Path | None = None) -> list[Check]:
    bundle = Path(bundle)
    ledger = Path(ledger) if ledger else default_ledger(bundle)
    if not (bundle / RELEASE_INFO).is_file():
        return [Check("bundle", False, f"{bundle} has no {RELEASE_INFO}: not a release bundle")]
    info = json.loads((bundle / RELEASE_INFO).read_text(encoding="utf-8"))
    try:
        entries = ledger_mod.read_entries(ledger) if ledger.is_file() else []
    except LedgerError:
        entries = []          # a damaged ledger: the chain check below says where, and verify fails
    entry = next((e for e in entries if e.get("version") == info.get("version")), None)
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
    ]


def _guard(name: str, func) -> Check:
    try:
        return func()
    except (OSError, ValueError, KeyError, TypeError, yaml.YAMLError) as exc:
        return Check(name, False, f"could not check: {type(exc).__name__}: {exc}")


def _check_manifest(bundle: Path) -> Check:
    def run() -> Check:
        listed = json.loads((bundle / MANIFEST).read_text(encoding="utf-8"))["files"]
        actual = manifest_for(bundle)["files"]
        changed = sorted(p for p in listed if p in actual and actual[p] != listed[p])
        missing = sorted(set(listed) - set(actual))
        extra = sorted(set(actual) - set(listed))   # manifest_for leaves out the manifest and the attestation
        problems = [f"{label}: {', '.join(items[:5])}" for label, items in
                    (("changed", changed), ("missing", missing), ("not in manifest", extra)) if items]
        return Check("manifest", not problems, "; ".join(problems) or f"{len(listed)} files match their SHA-256")
    return _guard("manifest", run)


def _check_chain(ledger: Path) -> Check:
    problems = ledger_mod.check_chain(ledger)
    if problems:
        return Check("ledger chain", False, "; ".join(p.message for p in problems[:3]))
    return Check("ledger chain", True, f"{len(ledger_mod.read_entries(ledger))} entries, chain intact from the first")


def _check_entry(bundle: Path, info: dict, entry: dict | None) -> Check:
    if entry is None:
        return Check("ledger entry", False, f"the ledger has no entry for version {info.get('version')}")
    manifest_hash = sha256_file(bundle / MANIFEST) if (bundle / MANIFEST).is_file() else None
    if entry.get("manifest_sha256") != manifest_hash:
        return Check("ledger entry", False, "the manifest's SHA-256 differs from the one the ledger recorded")
    named = entry.get("bundle", "")
    if named and Path(named).name != bundle.resolve().name:
        return Check("ledger entry", False, f"the ledger records version {entry['version']} in {named}, "
                                            f"not in {bundle.resolve().name} (bundles swapped or renamed)")
    return Check("ledger entry", True, f"version {entry['version']} recorded at {entry['time']} with this manifest")


def _check_gate(bundle: Path, entry: dict | None) -> Check:
    def run() -> Check:
        gate = json.loads((bundle / "reports/gate.json").read_text(encoding="utf-8"))
        override = (entry or {}).get("override")
        if gate.get("passed") is True and (entry or {}).get("gate_passed") is True:
            return Check("gate", True, f"passed under policy {gate.get('policy')!r}")
        if override and str(override.get("reason", "")).strip():
            return Check("gate", True, f"gate failed; override by {override.get('by')} at {override.get('at')}: "
                                       f"{override['reason']}")
        return Check("gate", False, "the gate did not pass and no override is recorded in the ledger")
    return _guard("gate", run)


def _card_front_matter(text: str) -> dict:
    if not text.startswith("---"):
        raise ValueError("the card has no YAML front matter")
    return yaml.safe_load(text.split("---", 2)[1]) or {}


def _check_card_figures(bundle: Path) -> Check:
    def run() -> Check:
        card = (bundle / "model_card/README.md").read_text(encoding="utf-8")
        html = (bundle / "model_card/model_card.html").read_text(encoding="utf-8")
        heldout = json.loads((bundle / "reports/eval_heldout.json").read_text(encoding="utf-8"))
        validate = json.loads((bundle / "reports/validate.json").read_text(encoding="utf-8"))
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
        adapter_hash = sha256_path(bundle / "adapter")
        for label, digest in (("adapter", adapter_hash), ("training data", validate["data_sha256"])):
            if digest not in card:
                problems.append(f"the card does not state the {label} SHA-256 {digest[:12]}…")
        return Check("card figures", not problems, "; ".join(problems[:4]) or
                     f"{len(heldout['metrics'])} metrics, adapter and data hashes match the reports")
    return _guard("card figures", run)


def _check_documentation(bundle: Path) -> Check:
    def run() -> Check:
        from toolkit.governance.card import missing_sections

        policy = json.loads((bundle / POLICY_FILE).read_text(encoding="utf-8"))
        required = tuple(policy.get("documentation", {}).get("required_sections", []))
        documents = (bundle / "model_card/README.md", bundle / "model_card/technical_documentation.md")
        missing = missing_sections(required, (), None, documents)
        if missing:
            return Check("documentation", False, f"policy {policy['name']!r}: {'; '.join(missing)}")
        return Check("documentation", True, f"{len(required)} section(s) required by policy {policy['name']!r} present")
    return _guard("documentation", run)


def _check_serving(info: dict) -> Check:
    serving = info.get("serving") or {}
    if not serving.get("logits_match"):
        return Check("serving", False, "the release did not record matching logits for the reloaded adapter")
    note = "" if serving.get("vllm_compatible") else f" (vLLM: {'; '.join(serving.get('notes', []))})"
    return Check("serving", True, f"standard PEFT adapter, rank {serving.get('rank')}, reloaded logits within "
                                  f"{serving.get('logit_tolerance')} (max |diff| {serving.get('logit_max_abs_diff'):.1e}), "
                                  f"vLLM --max-lora-rank {serving.get('vllm_max_lora_rank')}{note}")


def _check_signature(bundle: Path, info: dict, entry: dict | None, entries: list[dict], keys: dict | None,
                     ledger: Path) -> Check:
    """Trusted keys anchor trust; without them the registry's own keyring is used, which an attacker who
    can rewrite the registry can replace too, so a valid signature then is only a warning."""
    policy = json.loads((bundle / POLICY_FILE).read_text(encoding="utf-8"))
    required = bool(policy.get("release", {}).get("require_signature"))
    anchored = keys is not None
    if keys is None:
        ring = keyring_dir(ledger.parent)
        try:
            keys = load_keys([ring]) if ring.is_dir() and any(ring.glob("*.pub")) else {}
        except ConfigError as exc:
            return Check("signature", False, f"the registry's keyring is damaged: {exc}")
    if not (bundle / ATTESTATION).is_file():
        if entry is not None and ("signature" in entry or "attestation_sha256" in entry):
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
    envelope = read_envelope(bundle / ATTESTATION)
    keyid, problem = envelope_problem(envelope, keys)
    if problem:
        return Check("signature", False, problem)
    problems = subject_problems(envelope_statement(envelope), file_digests(bundle, (ATTESTATION,)))
    if entry is None:
        problems.append("no ledger entry to check")
    elif entry.get("attestation_sha256") != sha256_file(bundle / ATTESTATION):
        problems.append("the attestation's SHA-256 differs from the one the ledger entry records")
    failures, warnings = ledger_mod.signature_problems(entries, keys, info.get("version"))
    problems += [f"ledger {failure}" for failure in failures]
    if problems:
        return Check("signature", False, "; ".join(problems[:4]))
    where = "a trusted key" if anchored else f"{keyring_dir(ledger.parent)}/{keyid}.pub, which sits beside the " \
                                             "bundle (pass --trusted-key to anchor trust)"
    notes = f"; {'; '.join(warnings[:2])}" if warnings else ""
    return Check("signature", True, f"attestation and ledger signed by key {keyid[:12]}… ({where}); "
                                    f"{len(envelope_statement(envelope)['subject'])} files attested{notes}",
                 warning=not anchored or bool(warnings))


def _check_statements(bundle: Path) -> Check:
    from toolkit.governance.statements import missing_statements, training_statements

    train = json.loads((bundle / "reports/train.json").read_text(encoding="utf-8"))
    documents = {name: (bundle / "model_card" / name).read_text(encoding="utf-8")
                 for name in ("README.md", "technical_documentation.md")}
    problems = missing_statements(train, documents)
    if problems:
        return Check("card statements", False, "; ".join(problems[:3]))
    stated = training_statements(train)
    return Check("card statements", True, f"{stated['Objective']}, {stated['Adapter']}, loss on "
                                          f"{stated['Loss computed on']}: as in reports/train.json")


def _check_bom(bundle: Path) -> Check:
    from toolkit.governance.bom import ADAPTER_REF, validate_bom

    path = bundle / BOM_FILE
    if not path.is_file():
        return Check("bill of materials", True, f"no {BOM_FILE} (released before bills of materials)", warning=True)
    document = json.loads(path.read_text(encoding="utf-8"))
    validate_bom(document)
    adapter = next(c for c in document["components"] if c.get("bom-ref") == ADAPTER_REF)
    digest = sha256_file(bundle / "adapter/adapter_model.safetensors")
    if {"alg": "SHA-256", "content": digest} not in adapter.get("hashes", []):
        return Check("bill of materials", False, "the BOM's adapter hash differs from adapter_model.safetensors")
    return Check("bill of materials", True, f"CycloneDX {document['specVersion']} ML-BOM valid, "
                                            f"{len(document['components'])} components, adapter hash matches")


def _check_serving_deep(bundle: Path, info: dict, base: Path | None) -> Check:
    """Load the bundled adapter onto its base and measure the probe logits again."""
    from toolkit.governance.serving import logit_parity

    base_report = json.loads((bundle / "reports/base.json").read_text(encoding="utf-8"))
    base = Path(base) if base else Path(base_report["model_path"])
    if not base.is_dir():
        return Check("serving", False, f"base model folder {base} not found; pass --base PATH")
    if (bundle / ATTESTATION).is_file():
        expected = dependency_digests(envelope_statement(read_envelope(bundle / ATTESTATION)), "base")
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
    tolerance = float((info.get("serving") or {}).get("logit_tolerance", 1e-4))
    diff = logit_parity(base, bundle / "adapter", bundle / "eval/serving_probe.safetensors", dtype)
    if diff > tolerance:
        return Check("serving", False, f"measured again: the adapter's logits differ from those recorded at evaluation "
                                       f"by {diff:.2e} (> {tolerance})")
    return Check("serving", True, f"measured again ({matched}): logits within {tolerance} (max |diff| {diff:.1e})")
