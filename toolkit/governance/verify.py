"""`toolkit verify BUNDLE`: what an auditor runs, needing only the bundle and the ledger.

Checks, each reported as pass/fail with a reason:
- manifest: every file matches its SHA-256 in MANIFEST.json, and no file is unlisted;
- ledger chain: intact from the first entry (no line edited, removed or reordered);
- ledger entry: the ledger records this version with this manifest's hash;
- gate: the gate passed, or the ledger records an override with its reason;
- card figures: the card's figures equal the evaluation report's, and it states the adapter's and
  the data's SHA-256 as found in the bundle;
- documentation: the card has every section the bundle's policy requires;
- serving: the release recorded a standard PEFT adapter that reproduced its evaluated logits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from toolkit.files import sha256_file, sha256_path
from toolkit.governance import ledger as ledger_mod
from toolkit.governance.release import MANIFEST, POLICY_FILE, RELEASE_INFO, manifest_for


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def default_ledger(bundle: Path) -> Path:
    return bundle.resolve().parent.parent / "ledger.jsonl"


def verify_bundle(bundle: Path, ledger: Path | None = None) -> list[Check]:
    bundle = Path(bundle)
    ledger = Path(ledger) if ledger else default_ledger(bundle)
    if not (bundle / RELEASE_INFO).is_file():
        return [Check("bundle", False, f"{bundle} has no {RELEASE_INFO}: not a release bundle")]
    info = json.loads((bundle / RELEASE_INFO).read_text(encoding="utf-8"))
    entry = next((e for e in ledger_mod.read_entries(ledger) if e.get("version") == info.get("version")), None) \
        if ledger.is_file() else None
    return [
        _check_manifest(bundle),
        _check_chain(ledger),
        _check_entry(bundle, info, entry),
        _check_gate(bundle, entry),
        _check_card_figures(bundle),
        _check_documentation(bundle),
        _check_serving(info),
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
        extra = sorted(set(actual) - set(listed))
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
