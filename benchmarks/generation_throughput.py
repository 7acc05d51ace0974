"""The tiers' batched runner against the classic per-example loop, on the same items and model.

    .venv/bin/python benchmarks/generation_throughput.py [--items 174] [--batch-size 32] [--max-new-tokens 48]

Needs a completed pipeline in the working tree (artifacts/base, artifacts/adapter, the held-out split)
or --synthetic-llama8b on a GPU machine (a Llama-3.1-8B-shaped model with random weights and a random
LoRA adapter; no download). Both sides produce base and adapter outputs for every item:

- batched (toolkit.evals.generation.generate): one loaded PeftModel, the adapter disabled for the
  base, left padding, length-sorted batches, greedy with the KV cache;
- classic: a transformers `pipeline("text-generation")` call per item, once with the base and once
  with the adapter (the usual minimal harness), greedy.

It reports the wall time of each, the speed-up, and how many outputs agree exactly.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from toolkit.evals.generation import adapter_disabled, generate, render_prompts  # noqa: E402


def pipeline_outputs(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[str]:
    from transformers import pipeline

    generator = pipeline("text-generation", model=model, tokenizer=tokenizer)
    outputs = []
    for prompt in prompts:
        result = generator(prompt, max_new_tokens=max_new_tokens, do_sample=False, return_full_text=False,
                           add_special_tokens=False, pad_token_id=tokenizer.pad_token_id)
        outputs.append(result[0]["generated_text"].strip())
    return outputs


def load_pipeline_model():
    from toolkit.config import load_params
    from toolkit.models import load_adapter_model
    from toolkit.files import read_jsonl
    from toolkit.layout import SPLIT_FILES

    model, tokenizer = load_adapter_model(load_params(REPO / "params.yaml"))
    conversations = [row["messages"][:-1] for row in read_jsonl(SPLIT_FILES["heldout"])]
    return model, tokenizer, conversations, "builtin tiny Llama (0.98M) + the pipeline's LoRA adapter"


def load_synthetic_llama8b():
    """Llama-3.1-8B shape, random bf16 weights on the GPU, a random r=16 LoRA on all linear layers."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from toolkit.layout import BASE_DIR

    tokenizer = AutoTokenizer.from_pretrained(BASE_DIR)  # any chat tokenizer works for a throughput figure
    config = LlamaConfig(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                         num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=8192,
                         rope_theta=500000.0, pad_token_id=tokenizer.pad_token_id,
                         eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.bos_token_id)
    torch.set_default_device("cuda")
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    torch.set_default_device("cpu")
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=16, target_modules="all-linear"))
    from toolkit.files import read_jsonl
    from toolkit.layout import SPLIT_FILES

    conversations = [row["messages"][:-1] for row in read_jsonl(SPLIT_FILES["heldout"])]
    return model.eval(), tokenizer, conversations, "Llama-3.1-8B shape, random bf16 weights, LoRA r=16"


def main() -> None:
    import torch

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--synthetic-llama8b", action="store_true")
    parser.add_argument("--out", default="benchmarks/results/generation_throughput.json")
    args = parser.parse_args()

    model, tokenizer, conversations, label = load_synthetic_llama8b() if args.synthetic_llama8b else load_pipeline_model()
    prompts = render_prompts(tokenizer, conversations[: args.items])

    started = time.perf_counter()
    with adapter_disabled(model):
        batched_base = generate(model, tokenizer, prompts, args.max_new_tokens, args.batch_size, "batched: base")
    batched_adapter = generate(model, tokenizer, prompts, args.max_new_tokens, args.batch_size, "batched: adapter")
    batched_s = time.perf_counter() - started

    started = time.perf_counter()
    with adapter_disabled(model):
        classic_base = pipeline_outputs(model, tokenizer, prompts, args.max_new_tokens)
    classic_adapter = pipeline_outputs(model, tokenizer, prompts, args.max_new_tokens)
    classic_s = time.perf_counter() - started

    agree = sum(a == b for a, b in zip(batched_base + batched_adapter, classic_base + classic_adapter))
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"
    result = {
        "model": label, "device": device, "items": len(prompts), "outputs_per_method": 2 * len(prompts),
        "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
        "batched_s": round(batched_s, 2), "classic_pipeline_s": round(classic_s, 2),
        "speedup": round(classic_s / batched_s, 2), "identical_outputs": agree, "torch": torch.__version__,
        "command": "python benchmarks/generation_throughput.py" + (" --synthetic-llama8b" if args.synthetic_llama8b else ""),
    }
    print(json.dumps(result, indent=2))
    out = REPO / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
