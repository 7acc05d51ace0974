"""The general-capability tier (`general`; `mmlu` before): MMLU by default, or any lm-evaluation-harness
task list, base vs adapter.

Both run through lm-eval's `simple_evaluate` with the same tasks, few-shot count and batch size, on
the one base model loaded once (the adapter is a PeftModel over it; for the base the adapter is
disabled). Offline, the task is `mmlu_local` from `eval_suites/mmlu_local/` (MMLU's layout and
prompt, written by the project); with hub access, name `mmlu` or any task list in params.yaml; a
local copy of the real MMLU files in the same layout works by pointing `include_path` at it.

The base's results do not change while the base, the task files and the harness stay the same, so
they are cached under a hash of those three (and the few-shot count, limit and batch size); a
re-run evaluates only the adapter. The delta is paired per question (bootstrap CI, McNemar's exact
test); lm-eval's own per-sample logs are kept for audit.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from toolkit import headline
from toolkit.config import Params
from toolkit.errors import ConfigError, InternalError, MissingInputError
from toolkit.evals.generation import adapter_disabled
from toolkit.models import load_adapter_model
from toolkit.evals.stats import metric_delta
from toolkit.files import atomic_write_json, atomic_write_jsonl, remove_outputs, sha256_path, sha256_text
from toolkit.layout import ADAPTER_DIR, EVAL_DIR, report_path
from toolkit.reports import EvalReport, MetricDelta, digests, write_report

TIER = "general"   # general capability: MMLU by default, any lm-eval task list
CACHE_FORMAT = 2   # per_doc: task -> metric -> doc -> score (1 held accuracy only)
SAMPLES_DIR = EVAL_DIR / "general_samples"
GENERATED_TASKS = EVAL_DIR / "general_tasks"
MMLU_PROMPT = "{{question.strip()}}\nA. {{choices[0]}}\nB. {{choices[1]}}\nC. {{choices[2]}}\nD. {{choices[3]}}\nAnswer:"


def write_task_configs(data_dir: Path, out_dir: Path) -> list[str]:
    """lm-eval task YAMLs (MMLU's prompt) for every `<subject>.jsonl` in MMLU's layout in data_dir,
    and a group `mmlu_files` over them weighted by size. Returns the group's name."""
    files = sorted(data_dir.glob("*.jsonl"))
    if not files:
        raise ConfigError(f"no <subject>.jsonl files in {data_dir}", file="params.yaml", key="evaluate.general.data_dir")
    out_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for file in files:
        name = f"mmlu_files_{file.stem}"
        names.append(name)
        config = {"task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": str(file.resolve())}},
                  "test_split": "test", "output_type": "multiple_choice", "doc_to_text": MMLU_PROMPT,
                  "doc_to_choice": ["A", "B", "C", "D"], "doc_to_target": "answer",
                  "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
                  "metadata": {"version": 1.0}}
        (out_dir / f"{name}.yaml").write_text(json.dumps(config, indent=1), encoding="utf-8")  # JSON is YAML
    group = {"group": "mmlu_files", "task": names, "aggregate_metric_list": [{"metric": "acc", "weight_by_size": True}],
             "metadata": {"version": 1.0}}
    (out_dir / "mmlu_files.yaml").write_text(json.dumps(group, indent=1), encoding="utf-8")
    return ["mmlu_files"]


def task_files_digest(include_path: str | None, data_dir: str | None) -> str:
    """A hash of the task definitions and of the data files they read, so that editing a question
    invalidates the cached base results, not only editing a task YAML."""
    if data_dir:
        return sha256_path(Path(data_dir))
    if not include_path:
        return "hub"
    import yaml

    class _Loader(yaml.SafeLoader):  # lm-eval YAMLs may carry !function tags: they name code, not data
        pass

    _Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    parts = [sha256_path(Path(include_path))]
    for config in sorted(Path(include_path).rglob("*.yaml")):
        loader = _Loader(config.read_text(encoding="utf-8"))
        try:
            raw = loader.get_single_data() or {}
        finally:
            loader.dispose()
        files = ((raw.get("dataset_kwargs") or {}).get("data_files") or {}) if isinstance(raw, dict) else {}
        for value in (files.values() if isinstance(files, dict) else [files]):
            for name in (value if isinstance(value, list) else [value]):
                if isinstance(name, str) and Path(name).is_file():
                    parts.append(f"{name}:{sha256_path(Path(name))}")
    return sha256_text("\n".join(parts))


def base_cache_key(params: Params, harness_version: str) -> str:
    cfg = params.evaluate.general
    base_files = json.loads(report_path("base").read_text(encoding="utf-8"))["outputs"]
    tasks = task_files_digest(cfg.include_path, cfg.data_dir)
    return sha256_text(json.dumps([CACHE_FORMAT, base_files, tasks, harness_version, cfg.tasks, cfg.num_fewshot,
                                   cfg.limit, cfg.batch_size, params.base.dtype, cfg.apply_chat_template,
                                   cfg.fewshot_as_multiturn], sort_keys=True))


def _evaluate(model, tokenizer, params: Params, task_manager, tasks: list[str]) -> dict:
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM

    cfg = params.evaluate.general
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=cfg.batch_size, device=str(next(model.parameters()).device))
    try:
        result = simple_evaluate(model=lm, tasks=tasks, num_fewshot=cfg.num_fewshot, limit=cfg.limit,
                                 task_manager=task_manager, log_samples=True,
                                 fewshot_as_multiturn=cfg.fewshot_as_multiturn,
                                 apply_chat_template=cfg.apply_chat_template, verbosity="ERROR",
                                 random_seed=params.seed, numpy_random_seed=params.seed,
                                 torch_random_seed=params.seed, fewshot_random_seed=params.seed)
    except (ConnectionError, OSError) as exc:
        if "offline" in str(exc).lower() or "connect" in str(exc).lower() or "resolve" in str(exc).lower():
            raise ConfigError(f"a task's dataset must come from the Hugging Face Hub, which cannot be reached "
                              f"({type(exc).__name__}: {str(exc)[:200]}). Fetch it where there is a network, or point "
                              "include_path (or data_dir) at local task files", file="params.yaml",
                              key="evaluate.general.tasks") from None
        raise
    if result is None:
        raise InternalError(f"lm-evaluation-harness returned no results for the tasks {', '.join(tasks)}")
    per_doc = {task: _per_doc_scores(samples) for task, samples in result["samples"].items()}
    # lm-eval's records hold numpy values and tuples; the cache and the audit copy keep them as JSON.
    return json.loads(json.dumps({"results": result["results"], "per_doc": per_doc, "samples": result["samples"]},
                                 default=lambda value: value.item() if hasattr(value, "item") else str(value)))


def _per_doc_scores(samples: list[dict]) -> dict[str, dict[str, float]]:
    """metric -> doc id -> score, for every metric a sample scores with one number (acc, acc_norm,
    exact_match, f1, ...). A filter other than "none" is part of the name: exact_match[strict-match].
    Metrics a sample holds as a pair (perplexities: loglikelihood and length) aggregate over the
    corpus, not per item, and cannot be paired; the harness's own figure stays in the report."""
    scores: dict[str, dict[str, float]] = {}
    for sample in samples:
        for metric in sample.get("metrics") or []:
            value = sample.get(metric)
            if isinstance(value, bool) or isinstance(value, (int, float)):
                name = metric if sample.get("filter", "none") == "none" else f"{metric}[{sample['filter']}]"
                scores.setdefault(name, {})[str(sample["doc_id"])] = float(value)
    return scores


def paired_metrics(base: dict, adapter: dict, params: Params) -> tuple[dict[str, MetricDelta], list[dict], str]:
    """(metrics, per-item rows, primary metric): each task's metrics base vs adapter paired by
    document, and each metric over all tasks. `acc` is reported as "accuracy" (the policies' name)."""
    metrics, overall, items = {}, {}, []
    for task in sorted(adapter["per_doc"]):
        for metric, by_doc in sorted(adapter["per_doc"][task].items()):
            docs = sorted(set(by_doc) & set(base["per_doc"].get(task, {}).get(metric, {})), key=int)
            if not docs:
                continue
            base_scores = [base["per_doc"][task][metric][d] for d in docs]
            adapter_scores = [by_doc[d] for d in docs]
            name = "accuracy" if metric == "acc" else metric
            metrics[f"{name}:{task}"] = _delta(base_scores, adapter_scores, params)
            overall.setdefault(name, ([], []))
            overall[name][0].extend(base_scores)
            overall[name][1].extend(adapter_scores)
            items += [{"task": task, "doc_id": int(d), "metric": name, "base": b, "adapter": a}
                      for d, b, a in zip(docs, base_scores, adapter_scores)]
    if not overall:
        raise ConfigError("the tasks produced no per-item score to compare (only corpus-level metrics such as "
                          "perplexity); add a task with a per-item metric", file="params.yaml", key="evaluate.general.tasks")
    totals = {name: _delta(b, a, params) for name, (b, a) in overall.items()}
    primary = "accuracy" if "accuracy" in totals else next(iter(totals))
    return {**totals, **metrics}, items, primary


def run_general(params: Params) -> EvalReport:
    import lm_eval

    cfg = params.evaluate.general
    started = time.perf_counter()
    remove_outputs(report_path(f"eval_{TIER}"), headline.path(f"eval_{TIER}"), EVAL_DIR / f"{TIER}_items.jsonl", SAMPLES_DIR)
    if not (ADAPTER_DIR / "adapter_config.json").is_file():
        raise MissingInputError(f"{ADAPTER_DIR}: no adapter; run the train stage first")
    tasks, include_path = list(cfg.tasks), cfg.include_path
    if cfg.data_dir:  # a local copy of MMLU (or any set of files in its layout): one task per file
        if not Path(cfg.data_dir).is_dir():
            raise ConfigError("folder not found", file="params.yaml", key="evaluate.general.data_dir")
        tasks, include_path = write_task_configs(Path(cfg.data_dir), GENERATED_TASKS), str(GENERATED_TASKS)
    elif include_path and not Path(include_path).is_dir():
        raise ConfigError("task folder not found", file="params.yaml", key="evaluate.general.include_path")
    task_manager = _task_manager(include_path, tasks)
    version = getattr(lm_eval, "__version__", "unknown")
    cache_file = Path(cfg.cache_dir) / f"base-{base_cache_key(params, version)}.json"

    model, tokenizer = load_adapter_model(params)
    setup_done = time.perf_counter()
    base_cached = cache_file.is_file()
    if base_cached:
        base = json.loads(cache_file.read_text(encoding="utf-8"))
    else:
        with adapter_disabled(model):
            base = _evaluate(model, tokenizer, params, task_manager, tasks)
        atomic_write_json(cache_file, base)
    base_done = time.perf_counter()
    adapter = _evaluate(model, tokenizer, params, task_manager, tasks)

    metrics, items, primary = paired_metrics(base, adapter, params)

    items_file = EVAL_DIR / f"{TIER}_items.jsonl"
    atomic_write_jsonl(items_file, items)
    for side, result in (("base", base), ("adapter", adapter)):
        for task, samples in result["samples"].items():
            atomic_write_jsonl(SAMPLES_DIR / side / f"{task}.jsonl", samples)
    report = EvalReport(
        stage=f"eval_{TIER}",
        params={"evaluate.general": cfg.model_dump(mode="json"), "seed": params.seed},
        inputs=digests([ADAPTER_DIR, report_path("base")] + ([Path(include_path)] if include_path else [])),
        outputs=digests([items_file, SAMPLES_DIR]),
        tier=TIER,
        n_items=len(items),
        primary_metric=primary,
        metrics=metrics,
        items_file=items_file.as_posix(),
        generation={"harness": f"lm-evaluation-harness {version}", "tasks": tasks, "num_fewshot": cfg.num_fewshot,
                    "apply_chat_template": cfg.apply_chat_template, "fewshot_as_multiturn": cfg.fewshot_as_multiturn,
                    "batch_size": cfg.batch_size, "base_cached": base_cached, "base_cache": cache_file.as_posix(),
                    "setup_wall_s": round(setup_done - started, 2), "base_wall_s": round(base_done - setup_done, 2),
                    "adapter_wall_s": round(time.perf_counter() - base_done, 2),
                    "stage_wall_s": round(time.perf_counter() - started, 2),
                    "harness_results": {"base": base["results"], "adapter": adapter["results"]}},
    )
    write_report(report)
    return report


def _task_manager(include_path: str | None, tasks: list[str]):
    """Only the project's own task folder when it has every task asked for: indexing lm-eval's
    thousands of built-in task files takes most of this tier's time on a small model."""
    from lm_eval.tasks import TaskManager

    if include_path:
        local = TaskManager(include_path=include_path, include_defaults=False)
        if all(task in local.all_tasks for task in tasks):
            return local
    manager = TaskManager(include_path=include_path) if include_path else TaskManager()
    unknown = [task for task in tasks if task not in manager.all_tasks]
    if unknown:
        import difflib

        close = list(dict.fromkeys(m for task in unknown for m in difflib.get_close_matches(task, manager.all_tasks, n=3)))
        raise ConfigError(f"unknown lm-eval task(s): {', '.join(unknown)}"
                          + (f"; did you mean {', '.join(close)}?" if close else "")
                          + " (a task of your own: a YAML in the folder evaluate.general.include_path names)",
                          file="params.yaml", key="evaluate.general.tasks")
    return manager


def _delta(base: list[float], adapter: list[float], params: Params) -> MetricDelta:
    cfg = params.evaluate.general
    return metric_delta(base, adapter, cfg.bootstrap_samples, cfg.confidence, params.seed, binary=True)
