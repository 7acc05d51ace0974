"""toolkit.train.adapters: the PEFT settings applied to a real (tiny) model, the hardware check for
QLoRA, the optimizer choice and the base reference an adapter carries."""

import math

import pytest
import torch

from conftest import tiny_random_llama
from toolkit.config import TrainParams
from toolkit.errors import UnsupportedHardwareError
from toolkit.train.adapters import (base_reference, lora_config, optimizer_name, quantization_config, require_hardware)


@pytest.fixture(scope="module")
def tiny_model(tiny_tokenizer):
    from transformers import AutoTokenizer

    return lambda: tiny_random_llama(AutoTokenizer.from_pretrained(tiny_tokenizer), 32, 64)


def _lora_layer(model):
    return next(m for name, m in model.named_modules() if name.endswith("q_proj") and hasattr(m, "lora_A"))


@pytest.mark.parametrize("adapter, rslora", [("lora", False), ("lora", True), ("dora", False)])
def test_the_adapter_settings_are_what_peft_builds(tiny_model, adapter, rslora):
    from peft import get_peft_model

    cfg = TrainParams(adapter=adapter, lora={"r": 4, "alpha": 8, "rslora": rslora, "target_modules": ["q_proj", "v_proj"]})
    model = get_peft_model(tiny_model(), lora_config(cfg))
    layer = _lora_layer(model)
    assert layer.r["default"] == 4
    assert layer.scaling["default"] == pytest.approx(8 / math.sqrt(4) if rslora else 8 / 4)
    assert bool(layer.lora_magnitude_vector) == (adapter == "dora")
    trained = {n.split(".lora_A")[0].rsplit(".", 1)[-1] for n, p in model.named_parameters()
               if p.requires_grad and ".lora_A." in n}
    assert trained == {"q_proj", "v_proj"}


def test_qlora_needs_cuda_and_says_so_before_anything_loads():
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(UnsupportedHardwareError, match="needs a CUDA GPU"):
        require_hardware(TrainParams(adapter="qlora"))
    require_hardware(TrainParams(adapter="dora"))       # no error


def test_qlora_quantization_is_nf4_double_quant_with_bf16_compute():
    assert quantization_config(TrainParams(adapter="lora")) is None
    q = quantization_config(TrainParams(adapter="qlora"))
    assert q.load_in_4bit and q.bnb_4bit_quant_type == "nf4" and q.bnb_4bit_use_double_quant
    assert q.bnb_4bit_compute_dtype == torch.bfloat16


def test_optimizer_auto_follows_the_device_and_an_explicit_choice_is_kept():
    expected = "paged_adamw_8bit" if torch.cuda.is_available() else "adamw_torch_fused"
    assert optimizer_name(TrainParams()) == expected
    assert optimizer_name(TrainParams(optimizer="adamw_torch")) == "adamw_torch"


def test_the_base_reference_names_a_base_that_exists_elsewhere(tmp_path):
    from types import SimpleNamespace

    (tmp_path / "config.json").write_text("{}")
    hub = SimpleNamespace(source="hub", model="org/model", model_path=str(tmp_path / "snapshots" / "abc123"))
    assert base_reference(hub, "org/model") == ("org/model", "abc123")
    local = SimpleNamespace(source="local", model="mine", model_path="/abs/models/mine")
    assert base_reference(local, "models/mine") == ("models/mine", None)
    builtin = SimpleNamespace(source="builtin", model="builtin-tiny", model_path=str(tmp_path))
    name, revision = base_reference(builtin, "builtin")
    assert name.startswith("builtin-tiny@sha256:") and len(name.split(":")[-1]) == 64 and revision is None


def test_the_adapter_config_is_written_the_same_whatever_the_hash_seed(tmp_path):
    """PEFT saves target_modules from a set: two identical runs wrote them in different orders, so the
    adapter folder's SHA-256 (on the card, in the ledger) differed. record_base sorts them."""
    import json
    from types import SimpleNamespace

    from toolkit.train.adapters import record_base

    written = []
    for order in (["v_proj", "q_proj", "down_proj"], ["down_proj", "v_proj", "q_proj"]):
        folder = tmp_path / "-".join(order)
        folder.mkdir()
        (folder / "adapter_config.json").write_text(json.dumps({"target_modules": order, "r": 4}))
        record_base(folder, SimpleNamespace(source="local", model="m", model_path="/m"), "models/m")
        written.append((folder / "adapter_config.json").read_bytes())
    assert written[0] == written[1]
    assert json.loads(written[0])["target_modules"] == ["down_proj", "q_proj", "v_proj"]
