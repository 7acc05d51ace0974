"""toolkit.governance.verify's checks one by one, on bundles built by hand (the e2e tests verify real
releases): each check fails on what it is for, and says what it found."""

import json

from toolkit.files import sha256_file
from toolkit.governance import verify
from toolkit.registry import ledger as ledger_mod
from toolkit.registry.bundle import Bundle, Headline, LedgerEntry, Override, ReleaseInfo, ServingRecord

INFO = ReleaseInfo(version="3", created_at="2026-12-01T10:00:00+00:00", base_model="builtin-tiny",
                   base_model_path="artifacts/base", data_sha256="d" * 64, policy="default", gate_passed=True,
                   headline=Headline(metric="field_accuracy", base=0.2, adapter=0.9, delta=0.7, ci_low=0.6, ci_high=0.8),
                   serving=ServingRecord(rank=8, vllm_max_lora_rank=8, vllm_compatible=True, logit_max_abs_diff=1e-7,
                                         logit_tolerance=1e-4, logits_match=True))


def _bundle(tmp_path, info: ReleaseInfo = INFO) -> Bundle:
    bundle = Bundle(tmp_path / "releases" / f"v{info.version}")
    bundle.adapter.mkdir(parents=True)
    bundle.adapter_weights.write_bytes(b"weights")
    bundle.reports.mkdir()
    bundle.report("gate").write_text(json.dumps({"passed": info.gate_passed, "policy": info.policy}))
    bundle.release_info.write_text(info.model_dump_json())
    bundle.manifest.write_text(json.dumps({"files": bundle.manifest_files()}))
    return bundle


def _entry(bundle: Bundle, info: ReleaseInfo = INFO, **changes) -> LedgerEntry:
    ledger = bundle.root.parent.parent / "ledger.jsonl"
    raw = ledger_mod.append(ledger, {**info.ledger_fields(), "manifest_sha256": sha256_file(bundle.manifest),
                                     "bundle": f"releases/{bundle.root.name}", **changes})
    return LedgerEntry.model_validate(raw)


def test_a_folder_without_a_release_record_is_not_a_bundle(tmp_path):
    checks = verify.verify_bundle(tmp_path)
    assert [(c.name, c.ok) for c in checks] == [("bundle", False)] and "release.json" in checks[0].detail


def test_a_release_record_of_the_wrong_shape_is_named_by_field(tmp_path):
    bundle = _bundle(tmp_path)
    record = json.loads(bundle.release_info.read_text())
    record["gate_passed"] = "yes, mostly"
    bundle.release_info.write_text(json.dumps(record))
    checks = verify.verify_bundle(bundle.root)
    assert len(checks) == 1 and not checks[0].ok and "'gate_passed'" in checks[0].detail


def test_manifest_names_changed_missing_and_unlisted_files(tmp_path):
    bundle = _bundle(tmp_path)
    assert verify._check_manifest(bundle).ok
    bundle.adapter_weights.write_bytes(b"other weights")
    bundle.report("gate").unlink()
    (bundle.reports / "extra.json").write_text("{}")
    check = verify._check_manifest(bundle)
    assert not check.ok
    assert "changed: adapter/adapter_model.safetensors" in check.detail
    assert "missing: reports/gate.json" in check.detail and "not in manifest: reports/extra.json" in check.detail


def test_the_ledger_entry_must_exist_pin_the_manifest_and_name_this_bundle(tmp_path):
    bundle = _bundle(tmp_path)
    assert "no (well-formed) entry for version 3" in verify._check_entry(bundle, INFO, None).detail
    entry = _entry(bundle)
    assert verify._check_entry(bundle, INFO, entry).ok
    bundle.manifest.write_text(bundle.manifest.read_text() + " ")
    assert "manifest's SHA-256 differs" in verify._check_entry(bundle, INFO, entry).detail
    swapped = entry.model_copy(update={"bundle": "releases/v2", "manifest_sha256": sha256_file(bundle.manifest)})
    assert "bundles swapped or renamed" in verify._check_entry(bundle, INFO, swapped).detail


def test_the_gate_passes_on_a_passed_gate_or_a_recorded_override_only(tmp_path):
    failed = INFO.model_copy(update={"gate_passed": False})
    bundle = _bundle(tmp_path, failed)
    assert not verify._check_gate(bundle, _entry(bundle, failed)).ok
    assert not verify._check_gate(bundle, None).ok
    override = Override(reason="hotfix for INC-42", by="Ada <ada@example.org>", at="2026-12-01T10:00:00+00:00")
    overridden = _entry(bundle, failed.model_copy(update={"override": override}))
    check = verify._check_gate(bundle, overridden)
    assert check.ok and "override by Ada" in check.detail and "INC-42" in check.detail


def test_serving_needs_the_recorded_logit_match(tmp_path):
    assert verify._check_serving(INFO).ok
    mismatch = INFO.model_copy(update={"serving": INFO.serving.model_copy(update={"logits_match": False})})
    assert not verify._check_serving(mismatch).ok
    assert not verify._check_serving(INFO.model_copy(update={"serving": None})).ok


def test_an_edited_ledger_entry_is_no_entry_and_breaks_the_chain(tmp_path):
    bundle = _bundle(tmp_path)
    _entry(bundle)
    ledger = tmp_path / "ledger.jsonl"
    raw = json.loads(ledger.read_text())
    raw["gate_passed"] = "maybe"                     # edited by hand: the wrong type as well as the wrong hash
    ledger.write_text(json.dumps(raw) + "\n")
    assert verify._entry_of([raw], "3", ledger) is None
    checks = {c.name: c for c in verify.verify_bundle(bundle.root)}
    assert not checks["ledger chain"].ok and "edited" in checks["ledger chain"].detail
    assert not checks["ledger entry"].ok


def test_the_released_seed_must_be_the_one_the_recorded_rule_picks():
    from toolkit.governance.verify import _seed_choice_problems

    run = {"report": "r", "adapter_sha256": "a", "optimizer_steps": 1, "wall_time_s": 1.0, "gpu_hours": 0.0}
    seeds = {"count": 2, "seeds": [1, 2], "rule": "best_validation", "rule_field": "validation_loss", "chosen": 2,
             "runs": [{**run, "seed": 1, "validation_loss": 0.7}, {**run, "seed": 2, "validation_loss": 0.6}],
             "total_wall_time_s": 2.0, "total_gpu_hours": 0.0}
    assert _seed_choice_problems({"method": "sft", "seeds": seeds}) == []
    assert _seed_choice_problems({"method": "sft"}) == []
    swapped = {**seeds, "chosen": 1}
    assert _seed_choice_problems({"method": "sft", "seeds": swapped}) == [
        "reports/train.json: rule best_validation picks seed 2 from the recorded runs, but seed 1 was released"]
    unrecorded = {**seeds, "runs": [{**run, "seed": 1, "validation_loss": None}, seeds["runs"][1]]}
    assert "cannot be checked" in _seed_choice_problems({"method": "sft", "seeds": unrecorded})[0]
