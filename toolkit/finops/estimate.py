"""Training cost before training: GPU-hours from FLOPs, memory fit, price range.

GPU-hours = 6 x parameters x tokens / (peak FLOP/s x MFU), with the catalog's low/high MFU for the
technique giving the range and their geometric middle the point estimate. Cost multiplies the
hours by the GPU's hourly prices (cheapest provider for the low end, median for the point, dearest
for the high end). Memory is weights + adapter + gradients + optimizer states + activations (with
gradient checkpointing) + logits + runtime overhead, compared with the GPU's memory.
"""

from __future__ import annotations

from toolkit.finops.catalog import Catalog, ModelShape
from toolkit.reports import MemoryFit, TrainingEstimate

GB = 1e9
NF4_BYTES_PER_PARAM = 0.5 + 0.127 / 8 * 4  # 4-bit weights + double-quantised block constants (QLoRA paper)
CUDA_OVERHEAD_GB = 1.0


def estimate_training(catalog: Catalog, *, model: str, shape: ModelShape, technique: str, gpu_name: str,
                      pricing: str, tokens_per_epoch: int, epochs: float, batch_size: int, seq_len: int,
                      lora_r: int = 16) -> TrainingEstimate:
    gpu = catalog.gpu(gpu_name, "finops.training.gpu")
    if gpu.peak_tflops is None:
        raise ValueError(f"{gpu_name} has no tensor peak; pick a GPU for a training estimate")
    mfu = catalog.mfu[technique]
    tokens = tokens_per_epoch * epochs
    flops = 6 * shape.parameters * tokens
    hours = {name: flops / (gpu.peak_tflops * 1e12 * value) / 3600
             for name, value in (("low", mfu.high), ("point", mfu.point), ("high", mfu.low))}
    prices = [p.per_hour for p in gpu.hourly(pricing)]
    return TrainingEstimate(
        model=model, parameters=shape.parameters, technique=technique, gpu=gpu_name, pricing=pricing,
        tokens_per_epoch=tokens_per_epoch, epochs=epochs, tokens=tokens, flops=flops,
        mfu_low=mfu.low, mfu_point=round(mfu.point, 4), mfu_high=mfu.high,
        gpu_hours_low=hours["low"], gpu_hours=hours["point"], gpu_hours_high=hours["high"],
        cost_low=hours["low"] * min(prices), cost=hours["point"] * gpu.typical_hourly(pricing),
        cost_high=hours["high"] * max(prices),
        energy_kwh=hours["point"] * gpu.tdp_watts / 1000,
        memory=memory_fit(shape, technique, gpu.memory_gb, batch_size, seq_len, lora_r),
        currency=catalog.currency,
    )


def lora_parameters(shape: ModelShape, r: int) -> int:
    """LoRA parameters on all linear layers of a Llama-style block (q, k, v, o, gate, up, down)."""
    h = shape.hidden
    kv = h * (shape.kv_heads or shape.heads or 1) // (shape.heads or 1)
    inter = shape.intermediate or int(8 * h / 3)
    per_layer = (h + h) * 2 + (h + kv) * 2 + (h + inter) * 3
    return r * per_layer * shape.layers


def memory_fit(shape: ModelShape, technique: str, gpu_memory_gb: float, batch_size: int, seq_len: int,
               lora_r: int) -> MemoryFit:
    embeddings = 2 * shape.vocab * shape.hidden  # input embedding and LM head stay in 16-bit under QLoRA
    if technique == "qlora":
        weights = (shape.parameters - embeddings) * NF4_BYTES_PER_PARAM + embeddings * 2
    else:
        weights = shape.parameters * 2
    if technique == "full":
        trainable = int(shape.parameters)
        state = trainable * (2 + 4 + 4 + 4)  # bf16 gradient, fp32 master copy, AdamW m and v
    else:
        trainable = lora_parameters(shape, lora_r)
        state = trainable * (4 + 4 + 8)  # fp32 adapter weights, gradients, AdamW m and v
    b, s, h = batch_size, seq_len, shape.hidden
    heads = shape.heads or max(1, h // 128)
    # Gradient checkpointing keeps each layer's input, plus one layer's full activations during
    # recomputation (Korthikanti et al. 2022: s*b*h*(34 + 5*a*s/h) bytes per layer in 16-bit).
    activations = shape.layers * b * s * h * 2 + b * s * h * (34 + 5 * heads * s / h)
    logits = b * s * shape.vocab * 4 * 2  # fp32 logits and their gradient
    subtotal = weights + state + activations + logits
    overhead = CUDA_OVERHEAD_GB * GB + 0.05 * subtotal
    total = subtotal + overhead
    verdict = "fits" if total <= 0.9 * gpu_memory_gb * GB else "tight" if total <= gpu_memory_gb * GB else "does not fit"
    return MemoryFit(
        weights_gb=round(weights / GB, 2), trainable_parameters=trainable,
        adapter_and_optimizer_gb=round(state / GB, 2), activations_gb=round(activations / GB, 2),
        logits_gb=round(logits / GB, 2), overhead_gb=round(overhead / GB, 2), total_gb=round(total / GB, 2),
        gpu_memory_gb=gpu_memory_gb, verdict=verdict,
        assumptions=f"batch {batch_size} x {seq_len} tokens, gradient checkpointing, AdamW, "
                    f"{'LoRA r=' + str(lora_r) if technique != 'full' else 'all parameters trained'}",
    )


def shape_from_config(config: dict, parameters: float) -> ModelShape:
    """A ModelShape from a Hugging Face config.json (Llama, Mistral, Qwen and most decoder-only models)."""
    hidden = config.get("hidden_size") or config.get("n_embd") or config.get("d_model")
    layers = config.get("num_hidden_layers") or config.get("n_layer") or config.get("num_layers")
    if not hidden or not layers:
        raise ValueError("config.json has no hidden_size / num_hidden_layers")
    return ModelShape(parameters=parameters, hidden=hidden, layers=layers,
                      intermediate=config.get("intermediate_size"), heads=config.get("num_attention_heads"),
                      kv_heads=config.get("num_key_value_heads"), vocab=config.get("vocab_size") or 32000)

