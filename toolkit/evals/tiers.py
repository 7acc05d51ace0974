"""A metrics tier: one suite, base vs adapter on the same items, with paired statistics.

Every tier generates, from one loaded model: the base's outputs (adapter disabled), the prompted
baseline's (the base with the suite's few-shot examples), the adapter's and, for the canary tier,
the last released adapter's (loaded beside the current one). Each comparison is reported per
metric with a paired bootstrap CI, McNemar's p-value for 0/1 metrics and the number of items.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from toolkit import headline
from toolkit.config import CanaryParams, Params, TierParams
from toolkit.errors import DataError
from toolkit.evals.generation import adapter_disabled, generate, render_prompts
from toolkit.models import PROBE_PROMPTS, load_adapter_model, write_serving_probe
from toolkit.evals.preference import BINARY as PREFERENCE_BINARY
from toolkit.evals.preference import LOWER_IS_BETTER, preference_scores
from toolkit.evals.reward_check import START_SIDE, reward_hacking, starting_adapter
from toolkit.evals.seeds import compare_across_seeds
from toolkit.evals.stats import metric_delta
from toolkit.evals.suites import Suite, SuiteItem, load_suite, with_few_shot
from toolkit.files import atomic_write_json, atomic_write_jsonl, read_json, remove_outputs, sha256_path, sha256_text
from toolkit.layout import ADAPTER_DIR, EVAL_DIR, PLOTS, report_path, seed_eval_path
from toolkit.reports import BaseModelReport, EvalReport, MetricDelta, TrainReport, digests, read_report, write_report
from toolkit.train.metering import device_description

BUILTIN_TIERS = ("heldout", "ood", "canary")


def tier_settings(params: Params, name: str) -> TierParams:
    return getattr(params.evaluate, name) if name in BUILTIN_TIERS else TierParams()


def run_tier(params: Params, name: str) -> EvalReport:
    """Runs the tier `name` (heldout, ood, canary) or any suite of that name in eval_suites/."""
    started = time.perf_counter()
    remove_outputs(report_path(f"eval_{name}"), EVAL_DIR / f"{name}_items.jsonl", headline.path(f"eval_{name}"),
                   PLOTS / f"{name}_deltas.json")
    settings = tier_settings(params, name)
    suite = load_suite(settings.suite or name)
    items = suite.load_items(settings.max_items)
    previous = previous_adapter(params) if isinstance(settings, CanaryParams) else None
    train = read_report(report_path("train"), TrainReport) if report_path("train").is_file() else None
    start = starting_adapter(train) if suite.tier == "heldout" else None   # GRPO's starting policy

    model, tokenizer = load_adapter_model(params)
    prompts = render_prompts(tokenizer, (item.messages for item in items), (item.tools for item in items))
    outputs, meters = _generate_sides(model, tokenizer, suite, items, prompts, settings, previous, start)

    scores = score_items(suite, items, outputs)
    scores.update(preference_scores(model, tokenizer, items, settings.batch_size))   # none for SFT items
    if suite.primary_metric not in scores:
        raise DataError(f"the primary metric {suite.primary_metric} applies to no item (preference metrics need "
                        "preference or KTO records)", file=str(suite.items_file))
    comparisons = {side: compare(suite, scores, side, settings, params.seed)
                   for side in ("base", "prompted", "previous", START_SIDE) if side in outputs}
    primary = scores[suite.primary_metric]
    seeds = compare_across_seeds(name, suite, len(items), scores, settings, train, params.seed)
    regressed_metrics = [name for name, m in comparisons["base"].items()
                         if (m.ci_low > 0 if name in LOWER_IS_BETTER else m.ci_high < 0)]

    outs = [EVAL_DIR / f"{suite.name}_items.jsonl", PLOTS / f"{suite.name}_deltas.json"]
    atomic_write_jsonl(outs[0], _item_rows(items, outputs, scores))
    atomic_write_json(outs[1], _delta_plot_rows(suite.name, comparisons))
    if suite.tier == "heldout":
        outs.append(write_serving_probe(model, tokenizer, prompts[:PROBE_PROMPTS]))

    template_sha256 = sha256_text(tokenizer.chat_template) if tokenizer.chat_template else None
    trained_with = train.chat_template_sha256 if train else None
    report = EvalReport(
        stage=f"eval_{suite.name}",
        params={f"evaluate.{name}": settings.model_dump(mode="json"), "seed": params.seed},
        inputs=digests([suite.folder, suite.items_file, ADAPTER_DIR, report_path("base")]
                       + ([seed_eval_path(s) for s in seeds.seeds] if seeds else [])),
        outputs=digests(outs),
        tier=suite.tier,
        suite=suite.name,
        n_items=len(items),
        primary_metric=suite.primary_metric,
        metrics=comparisons["base"],
        against_prompted=comparisons.get("prompted"),
        against_previous=comparisons.get("previous"),
        against_start=comparisons.get(START_SIDE),
        previous=previous,
        regressed_items={side: sum(1 for pair in primary if side in pair and pair["adapter"] < pair[side])
                         for side in ("base", "previous") if side in outputs},
        regressed_metrics=regressed_metrics,
        regressed_metric_count=len(regressed_metrics),
        by_category=_by_category(items, primary, "prompted" in outputs),
        items_file=outs[0].as_posix(),
        chat_template_sha256=template_sha256,
        chat_template_matches_training=template_sha256 == trained_with if trained_with else None,
        reward_hacking=reward_hacking(train, suite, comparisons) if suite.tier == "heldout" else None,
        across_seeds=seeds,
        generation=_generation_record(suite, settings, meters, getattr(model.config, "max_position_embeddings", None),
                                      "prompted" in outputs, started),
    )
    write_report(report)
    return report


def _generate_sides(model, tokenizer, suite, items, prompts: list[str], settings, previous: dict | None,
                    start: Path | None = None):
    """Greedy outputs of every side on the same prompts: base (adapter disabled), the base prompted
    with few-shot turns, the adapter, the previous release's adapter, and the adapter a GRPO run
    started from. Returns (outputs, meters)."""
    meters: dict[str, dict] = {}

    def run(side: str, side_prompts: list[str]) -> list[str]:
        meters[side] = {}
        return generate(model, tokenizer, side_prompts, suite.max_new_tokens, settings.batch_size,
                        f"{suite.name}: {side}", meters[side])

    outputs: dict[str, list[str]] = {}
    with adapter_disabled(model):
        outputs["base"] = run("base", prompts)
        if settings.prompted_baseline and suite.few_shot:
            prompted = render_prompts(tokenizer, (with_few_shot(item.messages, suite.few_shot) if item.few_shot
                                                  else item.messages for item in items), (item.tools for item in items))
            outputs["prompted"] = run("prompted", prompted)
    outputs["adapter"] = run("adapter", prompts)
    others = {"previous": ("previous release", previous["path"])} if previous and not previous.get("skipped_reason") else {}
    if start is not None:
        others[START_SIDE] = ("starting adapter", str(start))
    for side, (label, path) in others.items():
        model.load_adapter(path, adapter_name=side)
        model.set_adapter(side)
        outputs[side] = run(label, prompts)
        model.set_adapter("default")
        model.delete_adapter(side)
    return outputs, meters


def _generation_record(suite, settings, meters: dict[str, dict], context_limit: int | None, prompted: bool,
                       started: float) -> dict:
    """How the outputs were generated, and the adapter's measured throughput (what FinOps prices)."""
    meter = meters["adapter"]
    prompt_lengths = [n for side in ("base", "prompted") if side in meters for n in meters[side]["prompt_lengths"]]
    return {
        "max_new_tokens": suite.max_new_tokens, "batch_size": settings.batch_size, "decoding": "greedy",
        "device": device_description(), "few_shot_turns": len(suite.few_shot) if prompted else 0,
        "max_prompt_tokens": max(prompt_lengths), "context_length": context_limit,
        "prompts_over_context": sum(1 for n in prompt_lengths if context_limit
                                    and n + suite.max_new_tokens > context_limit),
        "adapter_prompt_tokens": meter["prompt_tokens"], "adapter_new_tokens": meter["new_tokens"],
        "adapter_wall_s": meter["wall_s"],
        "adapter_tokens_per_s": round((meter["prompt_tokens"] + meter["new_tokens"]) / max(meter["wall_s"], 1e-9), 1),
        "stage_wall_s": round(time.perf_counter() - started, 2),
    }


def score_items(suite: Suite, items: list[SuiteItem], outputs: dict[str, list[str]]) -> dict[str, list[dict]]:
    """metric -> one {"index", side: score, ...} per item the metric applies to."""
    scores: dict[str, list[dict]] = {name: [] for name in suite.metrics}
    for index, item in enumerate(items):
        for name in item.metrics:
            spec = suite.metrics[name]
            args = {**spec.args, **item.args.get(name, {})}
            row: dict[str, Any] = {"index": index}
            for side, side_outputs in outputs.items():
                try:
                    row[side] = spec.metric(side_outputs[index], item.reference, **args)
                except ValueError as exc:
                    raise DataError(f"metric {name}: {exc}", file=str(suite.items_file), line=item.line,
                                    field="reference") from None
            scores[name].append(row)
    return scores


def compare(suite: Suite, scores: dict[str, list[dict]], side: str, settings: TierParams,
            seed: int) -> dict[str, MetricDelta]:
    """The adapter against `side` (base, prompted or previous) on every metric that applied to any item."""
    results = {}
    for name, rows in scores.items():
        rows = [row for row in rows if side in row]    # preference metrics have base and adapter only
        if not rows:
            continue
        reference = [row[side] for row in rows]
        adapter = [row["adapter"] for row in rows]
        binary = suite.metrics[name].metric.binary if name in suite.metrics else name in PREFERENCE_BINARY
        results[name] = metric_delta(reference, adapter, settings.bootstrap_samples, settings.confidence, seed, binary)
    return results


def _item_rows(items: list[SuiteItem], outputs: dict[str, list[str]], scores: dict[str, list[dict]]) -> list[dict]:
    rows = [{"index": index, "id": item.id, "category": item.category, "input": item.messages,
             "reference": item.reference, **{f"{side}_output": outputs[side][index] for side in outputs},
             "scores": {}} for index, item in enumerate(items)]
    for name, metric_rows in scores.items():
        for row in metric_rows:
            rows[row["index"]]["scores"][name] = {side: row[side] for side in outputs if side in row}
    return rows


def _delta_plot_rows(suite: str, comparisons: dict[str, dict[str, MetricDelta]]) -> list[dict]:
    """One row per (metric, comparison) for `dvc plots show` (a horizontal bar chart of the deltas)."""
    return [{"delta": round(m.delta, 4), "ci_low": round(m.ci_low, 4), "ci_high": round(m.ci_high, 4),
             "comparison": f"{suite}: {name} vs {side}"}
            for side, metrics in comparisons.items() for name, m in metrics.items()]


def _by_category(items: list[SuiteItem], primary: list[dict], with_prompted: bool) -> dict[str, dict]:
    groups: dict[str, list[dict]] = {}
    for row in primary:
        category = items[row["index"]].category
        if category:
            groups.setdefault(category, []).append(row)
    result = {}
    for category, rows in sorted(groups.items()):
        mean = {side: sum(r[side] for r in rows) / len(rows) for side in ("base", "adapter", "prompted")
                if side in rows[0]}
        result[category] = {"n": len(rows), **{k: round(v, 4) for k, v in mean.items()},
                            "delta": round(mean["adapter"] - mean["base"], 4)}
    return result


def previous_adapter(params: Params) -> dict | None:
    """The adapter the canary tier compares against: evaluate.canary.previous_adapter, else the
    registry's last release; None when there is neither (the first release)."""
    from toolkit.models import adapter_folder
    from toolkit.registry.bundle import Bundle
    from toolkit.registry.store import Registry

    configured = params.evaluate.canary.previous_adapter
    if configured:
        path, version, source = Path(configured), None, "evaluate.canary.previous_adapter"
    else:
        latest = Registry(Path(params.release.registry)).latest()
        if latest is None:
            return None
        path, version, source = latest, latest.name.removeprefix("v"), f"registry {params.release.registry}"
    adapter = adapter_folder(path, "evaluate.canary.previous_adapter")
    bundle = Bundle(adapter.parent) if adapter != path else None
    info: dict[str, Any] = {"source": source, "path": adapter.as_posix(), "version": version,
                            "adapter_sha256": sha256_path(adapter)}
    previous_base = bundle.report("base") if bundle else None
    if previous_base and previous_base.is_file():
        current = read_report(report_path("base"), BaseModelReport).outputs
        if read_json(previous_base).get("outputs") != current:
            info["skipped_reason"] = "the previous release was trained on another base model; not comparable"
    return info
