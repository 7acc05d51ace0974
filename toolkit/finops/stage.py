"""The cost stage: what the run cost, what a full-size run would cost, and whether serving it pays.

Reads the stage reports (never recomputes them) and the price catalog; writes reports/cost.json
(the gate reads it), and for people reports/cost/index.html with plots, cost.csv for spreadsheets.
Every number comes from a report or the catalog; each line of the CSV names its source.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

from toolkit import headline
from toolkit.config import Params
from toolkit.errors import ConfigError, MissingInputError
from toolkit.files import atomic_write_json, atomic_write_text, remove_outputs
from toolkit.finops import plots
from toolkit.finops.catalog import Catalog, load_catalog
from toolkit.finops.economics import DAYS_PER_MONTH, HOURS_PER_MONTH, economics, roi
from toolkit.finops.estimate import estimate_training, shape_from_config
from toolkit.layout import COST_DIR, REPORTS, report_path, seed_eval_path
from toolkit.reports import (BaseModelReport, CostBreakdown, CostReport, DeviceCost, EvalReport, EvaluationCost,
                             InferenceEconomics, SeedEvalReport, JudgeReport, TrainingCost, TrainReport, ValidateReport, digests, read_report, tier_reports,
                             write_report)
from toolkit.templating import render
from toolkit.usage import device_hours

STALE_DAYS = 365


ESTIMATE_REPORT = REPORTS / "cost_estimate.json"


def run_what_if_estimate(params: Params, *, gpu: str | None = None, technique: str | None = None,
                         model: str | None = None, pricing: str | None = None, epochs: float | None = None,
                         examples: int | None = None, tokens_per_example: int | None = None):
    """`toolkit cost estimate`: the estimate with what-if settings over finops.training and
    train.epochs, and a data size instead of the validated split; written to reports/cost_estimate.json."""
    if (examples is None) != (tokens_per_example is None):
        raise ConfigError("--examples and --tokens-per-example go together")
    training = params.finops.training.model_copy(update={k: v for k, v in (
        ("gpu", gpu), ("technique", technique), ("model", model), ("pricing", pricing)) if v})
    params = params.model_copy(update={
        "finops": params.finops.model_copy(update={"training": training}),
        "train": params.train.model_copy(update={"epochs": epochs or params.train.epochs})})
    estimate = run_estimate(params, tokens_per_epoch=examples * tokens_per_example if examples else None)
    atomic_write_json(ESTIMATE_REPORT, estimate.model_dump())
    return estimate


def run_estimate(params: Params, catalog: Catalog | None = None, tokens_per_epoch: int | None = None):
    """The pre-training estimate from the validated data (or a given token count) and the base model
    (or a catalog model shape)."""
    catalog = catalog or load_catalog(params.finops.catalog)
    if tokens_per_epoch is None:
        tokens_per_epoch = read_report(report_path("validate"), ValidateReport).tokens.split_tokens.get("train", 0)
    cfg = params.finops.training
    if cfg.model:
        if cfg.model not in catalog.models:
            raise ConfigError(f"unknown model shape {cfg.model!r}; the catalog has {', '.join(catalog.models)}",
                              file="params.yaml", key="finops.training.model")
        model, shape = cfg.model, catalog.models[cfg.model]
    else:
        base = read_report(report_path("base"), BaseModelReport)
        config = json.loads((Path(base.model_path) / "config.json").read_text(encoding="utf-8"))
        model, shape = base.model, shape_from_config(config, base.parameters)
    return estimate_training(
        catalog, model=model, shape=shape, technique=cfg.technique, gpu_name=cfg.gpu, pricing=cfg.pricing,
        tokens_per_epoch=tokens_per_epoch, epochs=params.train.epochs,
        batch_size=cfg.batch_size or params.train.batch_size, seq_len=cfg.seq_len or params.train.max_length,
        lora_r=params.train.lora.r)


def _device_cost(catalog: Catalog, device: str, hours: float, tier: str = "on_demand") -> dict:
    """Cost of `hours` of wall time on a device described like '2x NVIDIA H100 ...' or 'cpu': the
    fields of a DeviceCost. Every device of the description is billed (toolkit.usage)."""
    held = device_hours(hours * 3600, device)
    found = catalog.gpu_for_device(device)
    if found is None:
        return {"device": device, "catalog_entry": None, "hours": hours, "device_hours": held, "cost": None,
                "energy_kwh": None, "note": "device not in the price catalog"}
    name, gpu = found
    return {"device": device, "catalog_entry": name, "hours": hours, "device_hours": held,
            "price_per_hour": gpu.typical_hourly(tier), "cost": held * gpu.typical_hourly(tier),
            "energy_kwh": held * gpu.tdp_watts / 1000}


def run_cost(params: Params) -> CostReport:
    fin = params.finops
    remove_outputs(report_path("cost"), headline.path("cost"), COST_DIR)
    catalog = load_catalog(fin.catalog)
    for name in ("base", "validate", "train", "eval_heldout"):
        if not report_path(name).is_file():
            raise MissingInputError(f"{report_path(name)}: missing; the cost stage runs after {name}")
    heldout = read_report(report_path("eval_heldout"), EvalReport)
    estimate = run_estimate(params, catalog)
    eval_reports = tier_reports()
    training, evaluation, data = _actual_costs(catalog, heldout, eval_reports)
    inference = _inference(params, catalog, heldout)

    engineering = fin.engineering_hours * catalog.engineering.per_hour
    breakdown = CostBreakdown(data=data.cost or 0.0, training=training.cost or 0.0,
                              evaluation=(evaluation.cost or 0.0) + evaluation.judge_cost, engineering=engineering,
                              serving_per_month=inference.self_hosted_monthly)
    one_off = (training.cost or 0) + (evaluation.cost or 0) + evaluation.judge_cost + (data.cost or 0) + engineering
    primary = inference.apis[0] if inference.apis else None
    payback = roi(one_off, primary.monthly_saving if primary else 0.0, fin.horizon_months, primary.model if primary else "-")

    COST_DIR.mkdir(parents=True, exist_ok=True)
    files = {
        "volume_plot": plots.cost_vs_volume(inference, COST_DIR / "cost_vs_volume.png"),
        "breakdown_plot": plots.breakdown(breakdown.model_dump(), catalog.currency, COST_DIR / "breakdown.png"),
        "eval_plot": plots.eval_deltas(eval_reports, COST_DIR / "eval_deltas.png"),
    }
    warnings = _stale_prices(catalog, [estimate.gpu, inference.device, training.catalog_entry], fin.inference.compare_with)
    if estimate.memory.verdict != "fits":
        warnings.append(f"the estimate's memory ({estimate.memory.total_gb} GB) {estimate.memory.verdict} on {estimate.gpu}")
    report = CostReport(
        params={"finops": params.section("finops"), "train.epochs": params.train.epochs},
        inputs=digests([report_path(n) for n in ("base", "validate", "train")]
                       + [report_path(n) for n in eval_reports]
                       + [Path(p) for p in _catalog_files(fin.catalog)]),
        currency=catalog.currency, catalog_date=str(catalog.catalog_date), catalog_files=_catalog_files(fin.catalog),
        estimate=estimate, training=training, evaluation=evaluation, data=data, inference=inference, roi=payback,
        breakdown=breakdown,
        files={**files, "html": (COST_DIR / "index.html").as_posix(), "csv": (COST_DIR / "cost.csv").as_posix()},
        warnings=warnings,
    )
    atomic_write_text(COST_DIR / "cost.csv", _csv(report, catalog))
    atomic_write_text(COST_DIR / "index.html", render("cost_report.html.j2", report=report, catalog=catalog,
                                                      eval_reports=eval_reports,
                                                      images={k: Path(v).name for k, v in files.items()}))
    report.outputs = digests([COST_DIR])
    write_report(report)
    return report


def _actual_costs(catalog: Catalog, heldout: EvalReport, eval_reports: dict) -> tuple[TrainingCost, EvaluationCost, DeviceCost]:
    """What this run's training, evaluation and data validation cost, from the time their reports recorded."""
    train = read_report(report_path("train"), TrainReport)
    validate = read_report(report_path("validate"), ValidateReport)
    training = _training_cost(catalog, train)
    eval_wall_s = sum(report.generation.get("stage_wall_s", 0) for report in eval_reports.values()) + _seed_eval_wall_s(train)
    evaluation = EvaluationCost(**_device_cost(catalog, heldout.generation.get("device", train.device), eval_wall_s / 3600),
                                **_judge_cost(catalog))
    data = DeviceCost(**_device_cost(catalog, "cpu", sum(validate.timings_s.values()) / 3600))
    return training, evaluation, data


def _training_cost(catalog: Catalog, train: TrainReport) -> TrainingCost:
    """The whole run's wall time, an interrupted run's time up to its last checkpoint included, on every
    device it held, for every seed of train.seeds (each was trained; one is released); MFU as the train
    stage measured it (one formula: train/metering.py)."""
    seeds = train.seeds
    wall_s = seeds.total_wall_time_s if seeds else train.wall_time_s + train.previous_wall_time_s
    note = f"{seeds.count} training runs (train.seeds); seed {seeds.chosen} released" if seeds and seeds.count > 1 else None
    cost = _device_cost(catalog, train.device, wall_s / 3600)
    cost["note"] = "; ".join(part for part in (cost.get("note"), note) if part) or None
    return TrainingCost(**cost, mfu=train.mfu, tokens=train.tokens_seen, tokens_per_s=train.tokens_per_s)


def _seed_eval_wall_s(train: TrainReport) -> float:
    """The seeds' own evaluation runs (reports/seed_evals/), beside the tiers'."""
    if train.seeds is None:
        return 0.0
    paths = [seed_eval_path(run.seed) for run in train.seeds.runs]
    return sum(read_report(path, SeedEvalReport).wall_time_s for path in paths if path.is_file())


def _inference(params: Params, catalog: Catalog, heldout: EvalReport) -> InferenceEconomics:
    """Serving the adapter self-hosted against the API models, at the throughput the held-out tier
    measured (or the one params.yaml assumes)."""
    cfg, generation = params.finops.inference, heldout.generation
    device_name = cfg.device or (catalog.gpu_for_device(generation.get("device", "cpu")) or ("CPU-2vCPU",))[0]
    serving = catalog.gpu(device_name, "finops.inference.device")
    if cfg.tokens_per_second:
        tps, source = cfg.tokens_per_second, "assumed (params.yaml finops.inference.tokens_per_second)"
    elif generation.get("adapter_tokens_per_s"):
        tps = generation["adapter_tokens_per_s"]
        source = (f"measured: held-out tier, adapter, batch {generation['batch_size']}, on {generation.get('device')}")
    else:
        raise ConfigError("no measured throughput in reports/eval_heldout.json; set finops.inference.tokens_per_second",
                          file="params.yaml", key="finops.inference.tokens_per_second")
    apis = {name: catalog.api(name, "finops.inference.compare_with") for name in cfg.compare_with}
    return economics(
        device=device_name, pricing=cfg.pricing, price_per_hour=serving.typical_hourly(cfg.pricing),
        tokens_per_second=tps, throughput_source=source, utilisation=cfg.utilisation,
        requests_per_day=cfg.requests_per_day, input_tokens=cfg.input_tokens_per_request,
        output_tokens=cfg.output_tokens_per_request, apis=apis)


def _judge_cost(catalog: Catalog) -> dict:
    """The judge's tokens this run, priced at the catalog's API price for its model."""
    path = report_path("eval_judge")
    if not path.is_file():
        return {"judge": "not run", "judge_cost": 0.0}
    judge = read_report(path, JudgeReport)
    if judge.skipped:
        return {"judge": f"skipped ({judge.skip_reason})", "judge_cost": 0.0}
    tokens_in, tokens_out = judge.usage.get("input_tokens", 0), judge.usage.get("output_tokens", 0)
    if judge.usage.get("cost") is None:
        return {"judge": f"{judge.judge_model}: {tokens_in:,} input + {tokens_out:,} output tokens, not in the price catalog",
                "judge_cost": 0.0}
    return {"judge": f"{judge.judge_model}: {tokens_in:,} input + {tokens_out:,} output tokens "
                     f"({judge.usage.get('cache_hits', 0)} verdicts from cache)",
            "judge_cost": judge.usage["cost"]}


def _catalog_files(project_catalog: str | None) -> list[str]:
    from toolkit.finops.catalog import SHIPPED_CATALOG

    shipped = SHIPPED_CATALOG.resolve()
    try:
        shipped_name = shipped.relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        shipped_name = str(shipped)
    return [shipped_name] + ([project_catalog] if project_catalog else [])


def _stale_prices(catalog: Catalog, gpus: list[str | None], apis: list[str]) -> list[str]:
    """A warning naming the prices this report used that are older than STALE_DAYS."""
    today = dt.date.today()
    dated = [(f"{name} ({p.provider})", p.date) for name in dict.fromkeys(g for g in gpus if g)
             for p in catalog.gpus[name].prices]
    dated += [(name, catalog.apis[name].date) for name in apis]
    old = [(item, date) for item, date in dated if (today - date).days > STALE_DAYS]
    if not old:
        return []
    oldest = min(date for _, date in old)
    return [f"{len(old)} of the {len(dated)} prices used are older than {STALE_DAYS} days (oldest {oldest}: "
            f"{', '.join(item for item, date in old if date == oldest)}); refresh them in a project catalog (finops.catalog)"]


def _csv(report: CostReport, catalog: Catalog) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["category", "item", "quantity", "unit", "unit_price", "cost", "currency", "source"])
    cur = report.currency
    for name, part in (("data", report.data), ("training", report.training), ("evaluation", report.evaluation)):
        writer.writerow([name, f"compute on {part.device}", round(part.device_hours, 6), "device-hours",
                         part.price_per_hour, _round(part.cost), cur,
                         f"reports/{'validate' if name == 'data' else 'train' if name == 'training' else 'eval_*'}.json; catalog {report.catalog_date}"])
    writer.writerow(["engineering", "engineering time", report.params["finops"]["engineering_hours"], "hours",
                     catalog.engineering.per_hour, _round(report.breakdown.engineering), cur, catalog.engineering.source])
    est = report.estimate
    writer.writerow(["estimate", f"{est.technique} on {est.gpu} ({est.model})", round(est.gpu_hours, 4),
                     "GPU-hours", None, _round(est.cost), cur,
                     f"6 x {est.parameters:.3g} params x {est.tokens:.3g} tokens / (peak x MFU {est.mfu_point})"])
    inf = report.inference
    writer.writerow(["serving", f"{inf.instances} x {inf.device} always on", inf.instances * HOURS_PER_MONTH, "device-hours/month",
                     inf.price_per_hour, _round(inf.self_hosted_monthly), cur, inf.throughput_source])
    for api in inf.apis:
        writer.writerow(["api", f"{api.model} at {inf.requests_per_day:g} requests/day", inf.requests_per_day * DAYS_PER_MONTH,
                         "requests/month", _round(api.cost_per_request, 6), _round(api.monthly_cost), cur,
                         f"{catalog.apis[api.model].source} ({catalog.apis[api.model].date})"])
    return out.getvalue()


def _round(value, digits: int = 4):
    return None if value is None else round(value, digits)
