"""Held-out tier: base vs adapter on the validated held-out split, with paired bootstrap CIs."""

from __future__ import annotations

import time

from toolkit.config import Params
from toolkit.errors import DataError, MissingInputError
from toolkit.evals.generation import adapter_disabled, generate, render_prompts
from toolkit.evals.metrics import get_metric
from toolkit.evals.stats import paired_bootstrap
from toolkit.files import atomic_write_json, atomic_write_jsonl, read_jsonl, sha256_text
from toolkit.layout import ADAPTER_DIR, EVAL_DIR, METRICS, SPLIT_FILES, report_path
from toolkit.reports import EvalReport, MetricDelta, TrainReport, digests, read_report, write_report
from toolkit.train.base_stage import base_model_path, load_with_adapter
from toolkit.train.sft import device_description

TIER = "heldout"
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


def run_heldout(params: Params) -> EvalReport:
    started = time.perf_counter()
    cfg = params.evaluate.heldout
    heldout_file = SPLIT_FILES["heldout"]
    if not heldout_file.is_file():
        raise MissingInputError(f"{heldout_file}: no held-out split; run the validate stage first")
    rows = list(read_jsonl(heldout_file))[: cfg.max_items]
    if not rows:
        raise DataError("the held-out split is empty; raise data.heldout_fraction or add data", file=str(heldout_file))
    metrics = {name: get_metric(name) for name in cfg.metrics}

    model, tokenizer = load_adapter_model(params)
    prompts = render_prompts(tokenizer, (row["messages"][:-1] for row in rows))
    references = [row["messages"][-1]["content"] for row in rows]
    with adapter_disabled(model):
        base_outputs = generate(model, tokenizer, prompts, cfg.max_new_tokens, cfg.batch_size, "held-out: base")
    meter: dict = {}
    adapter_outputs = generate(model, tokenizer, prompts, cfg.max_new_tokens, cfg.batch_size, "held-out: adapter", meter)

    items, scores = [], {name: {"base": [], "adapter": []} for name in metrics}
    for index, (row, reference, base_out, adapter_out) in enumerate(zip(rows, references, base_outputs, adapter_outputs)):
        item = {"index": index, "input": row["messages"][:-1], "reference": reference,
                "base_output": base_out, "adapter_output": adapter_out, "scores": {}}
        for name, metric in metrics.items():
            try:
                pair = {"base": metric(base_out, reference), "adapter": metric(adapter_out, reference)}
            except ValueError as exc:
                raise DataError(f"metric {name}: {exc}", file=str(heldout_file), line=index + 1,
                                field="messages[-1].content") from None
            item["scores"][name] = pair
            for side in ("base", "adapter"):
                scores[name][side].append(pair[side])
        items.append(item)

    probe_file = write_serving_probe(model, tokenizer, prompts[:PROBE_PROMPTS])
    # The template the outputs were generated with must be the one the adapter was trained with.
    template_sha256 = sha256_text(tokenizer.chat_template) if tokenizer.chat_template else None
    trained_with = read_report(report_path("train"), TrainReport).chat_template_sha256 if report_path("train").is_file() else None
    results = {
        name: MetricDelta(**paired_bootstrap(s["base"], s["adapter"], cfg.bootstrap_samples, cfg.confidence,
                                             params.seed).__dict__)
        for name, s in scores.items()
    }
    items_file = EVAL_DIR / f"{TIER}_items.jsonl"
    metrics_file = METRICS / f"{TIER}.json"
    atomic_write_jsonl(items_file, items)
    atomic_write_json(metrics_file, {name: {"base": round(r.base, 4), "adapter": round(r.adapter, 4),
                                            "delta": round(r.delta, 4)} for name, r in results.items()})
    report = EvalReport(
        stage=f"eval_{TIER}",
        params={"evaluate.heldout": cfg.model_dump(mode="json"), "seed": params.seed},
        inputs=digests([heldout_file, ADAPTER_DIR, report_path("base")]),
        outputs=digests([items_file, metrics_file, probe_file]),
        tier=TIER,
        n_items=len(rows),
        primary_metric=cfg.primary_metric,
        metrics=results,
        items_file=items_file.as_posix(),
        chat_template_sha256=template_sha256,
        chat_template_matches_training=template_sha256 == trained_with if trained_with else None,
        generation={"max_new_tokens": cfg.max_new_tokens, "batch_size": cfg.batch_size, "decoding": "greedy",
                    "device": device_description(), "adapter_prompt_tokens": meter["prompt_tokens"],
                    "adapter_new_tokens": meter["new_tokens"], "adapter_wall_s": meter["wall_s"],
                    "adapter_tokens_per_s": round((meter["prompt_tokens"] + meter["new_tokens"]) / max(meter["wall_s"], 1e-9), 1),
                    "stage_wall_s": round(time.perf_counter() - started, 2)},
    )
    write_report(report)
    return report
