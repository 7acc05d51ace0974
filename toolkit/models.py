"""Loading models, in one place for every stage: the base the base stage resolved, an adapter over it
(safetensors only, remote code off unless asked for), and the serving-parity probe (the adapter's
logits on a few prompts, recorded by the held-out tier and checked again by release and verify).
"""

from __future__ import annotations

from pathlib import Path

from toolkit.config import Params
from toolkit.errors import ConfigError, MissingInputError
from toolkit.layout import ADAPTER_DIR, EVAL_DIR, report_path
from toolkit.reports import BaseModelReport, read_report


def base_model_path() -> Path:
    report = read_report(report_path("base"), BaseModelReport)
    path = Path(report.model_path)
    if not path.exists():
        raise MissingInputError(f"{path}: base model files are gone; run `toolkit base` (or dvc repro) again")
    return path


def load_pretrained(model_path: Path, *, dtype: str = "float32", trust_remote_code: bool = False,
                    tokenizer_path: Path | None = None, quantization_config=None):
    """(model, tokenizer) from a local folder: safetensors only, remote code off unless asked for;
    `quantization_config` (a BitsAndBytesConfig) loads the weights quantized."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not Path(model_path).exists():
        raise MissingInputError(f"{model_path}: base model files not found")
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or model_path, trust_remote_code=trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(model_path, dtype=getattr(torch, dtype), use_safetensors=True,
                                                 trust_remote_code=trust_remote_code,
                                                 **({"quantization_config": quantization_config}
                                                    if quantization_config is not None else {}))
    return model, tokenizer


def load_base(params: Params, for_training: bool = False, quantization_config=None):
    """(model, tokenizer) of the base resolved by the base stage (4-bit QLoRA: bf16 compute dtype)."""
    dtype = "bfloat16" if quantization_config is not None else params.base.dtype
    model, tokenizer = load_pretrained(base_model_path(), dtype=dtype, trust_remote_code=params.base.trust_remote_code,
                                       quantization_config=quantization_config)
    model.train(for_training)
    return model, tokenizer


def adapter_folder(path: str | Path, key: str) -> Path:
    """The PEFT adapter a configured path names: the folder itself, or a release bundle's adapter/.
    `key` is the params.yaml key the path came from, for the error."""
    folder = Path(path)
    if (folder / "adapter").is_dir():
        folder = folder / "adapter"
    if not (folder / "adapter_config.json").is_file():
        raise ConfigError(f"{folder} is not a PEFT adapter folder (no adapter_config.json)", file="params.yaml",
                          key=key)
    problem = unsafe_adapter_weights(folder)
    if problem:
        raise ConfigError(problem, file="params.yaml", key=key)
    return folder


def unsafe_adapter_weights(folder: Path) -> str | None:
    """Why an adapter folder cannot be loaded safely, or None. PEFT falls back to a pickled
    adapter_model.bin, and unpickling can run code: only safetensors weights are accepted."""
    if (folder / "adapter_model.safetensors").is_file():
        return None
    pickled = sorted(p.name for p in folder.glob("*") if p.suffix in (".bin", ".pt", ".pth", ".pkl"))
    found = f"only pickled weights ({', '.join(pickled)}), which can run code when loaded" if pickled else "no weights"
    return (f"{folder} has {found}; only adapter_model.safetensors is accepted (convert a trusted adapter with "
            "PeftModel.from_pretrained(...).save_pretrained(out, safe_serialization=True))")


def load_with_adapter(base_path: Path, adapter_dir: Path, *, dtype: str = "float32", trust_remote_code: bool = False):
    """A PeftModel over the base, with the tokenizer (and chat template) the adapter was trained with."""
    from peft import PeftModel

    if not (adapter_dir / "adapter_config.json").is_file():
        raise MissingInputError(f"{adapter_dir}: no adapter; run the train stage first")
    problem = unsafe_adapter_weights(adapter_dir)
    if problem:
        raise ConfigError(problem)
    trained_tokenizer = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else None
    model, tokenizer = load_pretrained(base_path, dtype=dtype, trust_remote_code=trust_remote_code,
                                       tokenizer_path=trained_tokenizer)
    model = PeftModel.from_pretrained(model, adapter_dir, is_trainable=False)
    model.eval()
    return model, tokenizer


PROBE_PROMPTS = 4
PROBE_FILE = EVAL_DIR / "serving_probe.safetensors"


def load_adapter_model(params: Params, adapter_dir: Path = ADAPTER_DIR):
    """One PeftModel over the base: adapter on for adapter outputs, disabled for base outputs."""
    import torch

    model, tokenizer = load_with_adapter(base_model_path(), adapter_dir, dtype=params.base.dtype,
                                         trust_remote_code=params.base.trust_remote_code)
    if torch.cuda.is_available():
        model = model.to("cuda")
    return model, tokenizer


def probe_logits(model, input_ids):
    """Last-position logits of the model for each probe prompt (the serving-parity fingerprint)."""
    import torch

    device = next(model.parameters()).device
    with torch.inference_mode():
        return torch.stack([model(input_ids=row[None].to(device)).logits[0, -1].float().cpu() for row in input_ids])


def write_serving_probe(model, tokenizer, prompts: list[str]):
    """Saves probe prompts and the adapter's logits on them, so a release can check the adapter it
    ships reloads to the very model that was evaluated."""
    import torch
    from safetensors.torch import save_file

    ids = [torch.tensor(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    width = max(len(row) for row in ids)
    padded = torch.full((len(ids), width), -1, dtype=torch.long)
    for index, row in enumerate(ids):
        padded[index, : len(row)] = row
    logits = probe_logits(model, ids)
    EVAL_DIR.mkdir(parents=True, exist_ok=True)
    save_file({"input_ids": padded, "logits": logits.contiguous()}, str(PROBE_FILE))
    return PROBE_FILE
