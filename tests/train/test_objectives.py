"""toolkit.train.objectives: each method's TRL trainer and config, built for real, and what the loss is
computed on as read back from the config TRL accepted."""

import pytest

from toolkit.config import TrainParams
from toolkit.train.objectives import DATA_KIND, data_kind, loss_on, objective
from toolkit.train.packing import choose_packing


def _config(cfg: TrainParams, tmp_path):
    chosen = objective(cfg, choose_packing(cfg.packing, cfg.method, "sdpa", cfg.max_length))
    return chosen, chosen.config_cls(output_dir=str(tmp_path), use_cpu=True, report_to="none", **chosen.extra_config)


@pytest.mark.parametrize("method, trainer, words", [
    ("sft", "SFTTrainer", "assistant tokens only"),
    ("dpo", "DPOTrainer", "sigmoid loss"),
    ("kto", "KTOTrainer", "KTO loss"),
    ("orpo", "ORPOTrainer", "ORPO loss"),
])
def test_each_method_builds_a_config_trl_accepts_and_says_what_the_loss_is_on(tmp_path, method, trainer, words):
    chosen, config = _config(TrainParams(method=method), tmp_path)
    assert chosen.method == method and chosen.trainer_cls.__name__ == trainer
    assert words in loss_on(method, config)


def test_preference_settings_reach_the_trl_config(tmp_path):
    cfg = TrainParams(method="dpo", preference={"beta": 0.25, "loss_type": "ipo"})
    _, config = _config(cfg, tmp_path)
    assert config.beta == 0.25 and list(config.loss_type) == ["ipo"]
    assert "ipo loss" in loss_on("dpo", config)
    kto = TrainParams(method="kto", preference={"desirable_weight": 1.5, "undesirable_weight": 0.5})
    _, config = _config(kto, tmp_path)
    assert (config.desirable_weight, config.undesirable_weight) == (1.5, 0.5)


def test_sft_loss_statement_follows_the_config_it_ran_with(tmp_path):
    _, all_tokens = _config(TrainParams(assistant_only_loss=False), tmp_path)
    assert loss_on("sft", all_tokens) in ("every token of each conversation", "completion tokens only (prompt masked)")
    assert not all_tokens.assistant_only_loss
    _, packed = _config(TrainParams(packing="bfd"), tmp_path)
    assert packed.packing and packed.packing_strategy == "bfd"


@pytest.mark.parametrize("row, kind", [
    ({"messages": [{"role": "user", "content": "hi"}]}, "sft"),
    ({"prompt": "p", "chosen": "a", "rejected": "b"}, "preference"),
    ({"prompt": "p", "completion": "a", "label": True}, "kto"),
])
def test_data_kind_of_a_row_and_the_kind_each_method_needs(row, kind):
    assert data_kind(row) == kind
    assert {DATA_KIND[m] for m in ("dpo", "orpo")} == {"preference"} and DATA_KIND["sft"] == "sft"
