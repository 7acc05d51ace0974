"""Batched greedy generation: left padding, length-sorted batches, KV cache.

Base and adapter outputs come from one loaded PeftModel: the base outputs with the adapter
disabled, so the base weights are loaded once and both sides see the very same items.
"""

from __future__ import annotations

import contextlib
from typing import Iterable

from tqdm import tqdm


def render_prompts(tokenizer, conversations: Iterable[list[dict]], tools: Iterable[list[dict] | None] = ()) -> list[str]:
    """Each conversation as the model's prompt; a tool-calling one with the functions it may call."""
    conversations, tools = list(conversations), list(tools)
    tools += [None] * (len(conversations) - len(tools))
    return [tokenizer.apply_chat_template(messages, tools=functions, tokenize=False, add_generation_prompt=True)
            for messages, functions in zip(conversations, tools)]


def generate(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int,
             desc: str = "generating", meter: dict | None = None) -> list[str]:
    """Greedy outputs, batched. `meter`, when given, receives prompt_tokens, new_tokens and wall_s
    (the measured serving throughput FinOps prices) and each prompt's length in tokens."""
    import time

    import torch

    started = time.perf_counter()
    new_token_count = 0

    tokenizer.padding_side = "left"
    encoded = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: len(encoded[i]), reverse=True)
    outputs: list[str] = [""] * len(prompts)
    model.eval()
    device = next(model.parameters()).device
    for start in tqdm(range(0, len(order), batch_size), desc=desc, disable=None):
        batch_ids = [encoded[i] for i in order[start:start + batch_size]]
        batch = tokenizer.pad({"input_ids": batch_ids}, padding=True, return_tensors="pt").to(device)
        with torch.inference_mode():
            generated = model.generate(
                **batch, max_new_tokens=max_new_tokens, do_sample=False, use_cache=True,
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
            )
        new_tokens = generated[:, batch["input_ids"].shape[1]:]
        for row, index in enumerate(order[start:start + batch_size]):
            outputs[index] = tokenizer.decode(new_tokens[row], skip_special_tokens=True).strip()
            ids = new_tokens[row].tolist()
            new_token_count += ids.index(tokenizer.eos_token_id) + 1 if tokenizer.eos_token_id in ids else len(ids)
    if meter is not None:
        meter.update(prompt_tokens=sum(len(ids) for ids in encoded), new_tokens=new_token_count,
                     wall_s=round(time.perf_counter() - started, 3), prompt_lengths=[len(ids) for ids in encoded])
    return outputs


def adapter_disabled(model):
    """Context in which a PeftModel behaves as its base model."""
    return model.disable_adapter() if hasattr(model, "disable_adapter") else contextlib.nullcontext()
