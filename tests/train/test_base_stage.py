"""The base stage with a real local model folder (what users point base.model at)."""

import pytest

from toolkit.config import Params
from toolkit.errors import ConfigError
from toolkit.files import sha256_file
from toolkit.reports import BaseModelReport, read_report
from toolkit.models import load_base
from toolkit.train.base_stage import run_base
from toolkit.train.builtin_base import build_tokenizer


@pytest.fixture
def local_model(tmp_path):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(["hello world", "support ticket about a router"] * 20, vocab_size=300)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                         num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=2,
                                         max_position_embeddings=64))
    folder = tmp_path / "my-base"
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder, sum(p.numel() for p in model.parameters())


def test_local_folder_is_resolved_hashed_and_loadable(in_tmp, local_model):
    folder, n_params = local_model
    params = Params.model_validate({"base": {"model": str(folder)}})
    report = run_base(params, progress=False)
    assert report.source == "local" and report.parameters == n_params
    assert report.architecture == "LlamaForCausalLM" and report.chat_template_sha256
    weights = folder / "model.safetensors"
    assert report.inputs[weights.as_posix()] == sha256_file(weights)
    assert (in_tmp / "artifacts/base/resolved.json").is_file()
    assert read_report(in_tmp / "reports/base.json", BaseModelReport) == report
    model, tokenizer = load_base(params)
    assert sum(p.numel() for p in model.parameters()) == n_params and tokenizer.chat_template


def test_folder_without_config_is_a_configuration_error(in_tmp, tmp_path):
    (tmp_path / "empty").mkdir()
    params = Params.model_validate({"base": {"model": str(tmp_path / "empty")}})
    with pytest.raises(ConfigError, match="no config.json"):
        run_base(params, progress=False)


def test_unknown_hub_id_offline_is_a_configuration_error(in_tmp):
    params = Params.model_validate({"base": {"model": "no-such-org/no-such-model-xyz"}})
    with pytest.raises(ConfigError, match="cannot resolve 'no-such-org/no-such-model-xyz'"):
        run_base(params, progress=False)
