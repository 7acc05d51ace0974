"""Loading the model every tier evaluates, and the serving-parity probe the held-out tier records.

The tiers themselves (held-out, OOD, canary, custom suites) run in toolkit.evals.tiers."""

from __future__ import annotations

from toolkit.config import Params
from toolkit.layout import ADAPTER_DIR, EVAL_DIR
from toolkit.train.base_stage import base_model_path, load_with_adapter

PROBE_PROMPTS = 4
PROBE_FILE = EVAL_DIR / "serving_probe.safetensors"


def load_adapter_model(params: Params):
    """One PeftModel over the base: adapter on for adapter outputs, disabled for base outputs."""
    import torch

    model, tokenizer = load_with_adapter(base_model_path(), ADAPTER_DIR, dtype=params.base.dtype,
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
