"""The EU AI Act documentation helpers: provider status and required-section checks."""

from pathlib import Path

import pytest

from toolkit.config import GovernanceParams
from toolkit.governance.card import missing_sections, provider_status, sections
from toolkit.reports import BaseModelReport, TrainReport

BASE = dict(model="m", source="builtin", model_path="x", architecture="LlamaForCausalLM", parameters=1_000_000,
            vocab_size=1000, context_length=256, chat_template_sha256=None, pretraining={"tokens_seen": 2_000_000})
TRAIN = dict(method="sft", adapter_type="lora", base_model="m", trainable_parameters=1000, total_parameters=1_001_000,
             train_records=10, validation_records=1, epochs=1, optimizer_steps=1, tokens_seen=500_000, wall_time_s=1,
             tokens_per_s=1, device="cpu", first_loss=1, final_loss=1, validation_loss=None, loss_history=[],
             chat_template_sha256=None)


def test_provider_status_for_the_builtin_base_is_below_the_gpai_threshold():
    status = provider_status(BaseModelReport(**BASE), TrainReport(**TRAIN), None)
    assert status.base_flops == 6 * 1_000_000 * 2_000_000 and status.finetune_flops == 6 * 1_001_000 * 500_000
    assert status.ratio == pytest.approx(0.25025) and "below the indicative 10^23" in status.assessment


@pytest.mark.parametrize("declared, ratio_above, phrase", [
    (1e24, False, "stays below one third"),
    (1e23 * 1.01, False, "stays below one third"),
])
def test_provider_status_against_a_declared_gpai_base(declared, ratio_above, phrase):
    hub = {**BASE, "source": "hub", "pretraining": None}
    status = provider_status(BaseModelReport(**hub), TrainReport(**TRAIN), declared)
    assert status.base_flops == declared and phrase in status.assessment


def test_provider_status_when_the_modification_exceeds_a_third_and_when_unknown():
    hub = {**BASE, "source": "hub", "pretraining": None}
    big_train = TrainReport(**{**TRAIN, "total_parameters": 8e9, "tokens_seen": 3e12})
    status = provider_status(BaseModelReport(**hub), big_train, 1.5e23)
    assert status.ratio == pytest.approx(6 * 8e9 * 3e12 / 1.5e23) and "treated as the provider" in status.assessment
    unknown = provider_status(BaseModelReport(**hub), TrainReport(**TRAIN), None)
    assert unknown.ratio is None and "Cannot be assessed" in unknown.assessment


def test_missing_sections_finds_absent_empty_and_marked_sections(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("# Title\n\n## Intended use\n\nRoute tickets.\n\n## Risk management\n\n_Missing: set governance.risk_management._\n"
                   "\n## Transparency\n\n## Evaluation: held-out tier (174 items)\n\n| a | b |\n")
    assert sections(doc.read_text())["Intended use"].strip() == "Route tickets."
    governance = GovernanceParams(intended_use="x")
    problems = missing_sections(("Intended use", "Risk management", "Transparency", "Cybersecurity",
                                 "Evaluation: held-out tier"), ("intended_use", "contact"), governance, (doc,))
    assert problems == ["Risk management: empty or marked missing", "Transparency: empty or marked missing",
                        "Cybersecurity: section absent", "governance.contact: empty"]
    assert missing_sections((), (), governance, (Path("nowhere.md"),)) == []
