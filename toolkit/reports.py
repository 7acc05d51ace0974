"""Typed schemas of the JSON report every stage writes.

The gate and the model card read these and nothing else; they never recompute a metric. Every
report records the SHA-256 of the files it was computed from (inputs) and of the files it produced
(outputs), so an auditor can follow each number back to the files behind it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from toolkit import __version__
from toolkit.errors import ConfigError, MissingInputError
from toolkit.files import atomic_write_json, sha256_path
from toolkit.layout import report_path

SCHEMA_VERSION = 1


class Report(BaseModel):
    model_config = ConfigDict(extra="forbid")

    schema_version: int = SCHEMA_VERSION
    stage: str
    toolkit_version: str = __version__
    created_at: str = Field(default_factory=lambda: dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"))
    params: dict[str, Any] = {}
    inputs: dict[str, str] = {}
    outputs: dict[str, str] = {}


class BaseModelReport(Report):
    stage: str = "base"
    model: str
    source: str  # builtin | local | hub
    model_path: str
    revision: str | None = None
    architecture: str
    parameters: int
    vocab_size: int
    context_length: int
    chat_template_sha256: str | None
    pretraining: dict[str, Any] | None = None


class ExpectationResult(BaseModel):
    id: str
    type: str
    description: str
    field: str
    success: bool
    unexpected_count: int
    example_lines: list[int]


class TokenSection(BaseModel):
    tokenizer: str
    chat_template_sha256: str | None
    max_length: int
    rendered_tokens_p50: int
    rendered_tokens_p95: int
    rendered_tokens_max: int
    truncated_records: int
    truncated_examples: list[int]
    split_tokens: dict[str, int] = {}  # rendered tokens per split (one epoch), what FinOps prices


class DedupSection(BaseModel):
    exact_action: str
    exact_duplicates: int
    exact_examples: list[dict[str, int]]
    near_action: str
    near_threshold: float
    shingle_words: int
    near_duplicate_pairs: int
    near_duplicate_records: int
    near_examples: list[dict[str, Any]]
    leakage_groups: int
    largest_group: int
    records_kept_with_group: int
    cross_split_pairs: int


class PiiSection(BaseModel):
    action: str
    detectors: list[str]
    findings: dict[str, int]
    records_with_pii: int
    redacted_records: int
    unredacted_findings: int
    examples: list[dict[str, Any]]


class SuiteContamination(BaseModel):
    suite: str
    items: int
    contaminated_items: int
    training_records: int
    pairs: list[dict[str, Any]]


class ContaminationSection(BaseModel):
    ngram: int
    boilerplate_documents: int
    action: str
    suites: list[SuiteContamination]
    contaminated_training_records: int
    dropped: int
    remaining: int
    heldout: SuiteContamination
    heldout_overlap_fraction: float


class InjectionSection(BaseModel):
    patterns_file: str
    flagged_records: int
    by_pattern: dict[str, int]
    examples: list[dict[str, Any]]


class ToolCallSection(BaseModel):
    """Tool-calling records: how many, the calls they make, and the calls a runtime would refuse."""
    records_with_tools: int = 0
    tool_calls: int = 0
    declared_tools: list[str] = []
    invalid_calls: int = 0
    by_reason: dict[str, int] = {}
    examples: list[dict[str, Any]] = []


class LabelBalance(BaseModel):
    counts: dict[str, int]
    ratio: float
    imbalanced: bool


class BalanceSection(BaseModel):
    applicable: bool
    max_ratio: float
    labels: dict[str, LabelBalance]
    imbalanced: bool


class ValidateReport(Report):
    stage: str = "validate"
    passed: bool
    data_file: str
    data_sha256: str
    format: str | None
    kind: str | None
    records_in: int
    records_valid: int
    records_quarantined: int
    dropped: dict[str, int]
    records_out: int
    problems: list[dict[str, Any]]
    expectation_suite: str
    expectations: list[ExpectationResult]
    splits: dict[str, int]
    tokens: TokenSection
    dedup: DedupSection
    pii: PiiSection
    contamination: ContaminationSection
    injection: InjectionSection
    tool_calls: ToolCallSection = ToolCallSection()
    class_balance: BalanceSection
    warnings: list[str]
    datasheet: dict[str, Any] | None
    datasheet_present: bool   # data.datasheet set; the policy decides whether it may be absent
    html_report: str
    timings_s: dict[str, float] = {}


class SeedRun(BaseModel):
    """One training seed of a multi-seed run, as its own train report states it."""
    seed: int
    report: str                          # reports/runs/seed-<seed>/train.json
    adapter_sha256: str
    validation_loss: float | None
    validation_reward: float | None = None   # GRPO
    optimizer_steps: int
    wall_time_s: float
    gpu_hours: float


class SeedSelection(BaseModel):
    """Which seed's adapter is released and why: the rule is applied before any evaluation."""
    count: int
    seeds: list[int]
    rule: str                            # best_validation | first
    rule_field: str | None               # validation_loss (lower is better) | validation_reward (higher)
    chosen: int
    runs: list[SeedRun]
    total_wall_time_s: float             # every seed's training (what the runs cost)
    total_gpu_hours: float


class TrainReport(Report):
    stage: str = "train"
    method: str
    adapter_type: str
    base_model: str
    trainable_parameters: int
    total_parameters: int
    train_records: int
    validation_records: int
    epochs: float
    optimizer_steps: int
    tokens_seen: int
    wall_time_s: float
    tokens_per_s: float
    device: str
    first_loss: float | None
    final_loss: float | None
    validation_loss: float | None
    loss_history: list[dict[str, float]]
    chat_template_sha256: str | None
    reward_history: list[dict[str, float]] = []   # GRPO: per logged step, mean reward, each reward, KL, length
    # Metering (FinOps and the model card read these)
    device_kind: str = "cpu"              # cpu | cuda
    device_count: int = 1
    device_memory_gib: float | None = None
    world_size: int = 1                   # processes (data-parallel ranks)
    gpu_hours: float = 0.0                # wall time x GPUs, this run and any interrupted run it resumed
    peak_memory_gb: float | None = None   # CUDA allocations, or the process's resident set on a CPU
    mfu: float | None = None              # 6 x parameters x tokens/s over the devices' peak (GPU only)
    # Robustness
    adapter: dict[str, Any] = {}          # r, alpha, rslora, dora, quantization, init_adapter
    objective: dict[str, Any] = {}        # method-specific settings and final metrics (DPO reward accuracy, ...)
    loss_on: str | None = None            # what the loss was computed on, from the trainer's own settings
    packing: dict | None = None           # mode (padding_free | bfd | none), rows, and why
    kernels: dict | None = None           # fused kernels in use, and why
    resumed_from_step: int | None = None
    previous_wall_time_s: float = 0.0     # wall time of the interrupted run(s) up to their last checkpoint
    checkpoint_steps: int | None = None
    best_step: int | None = None          # the checkpoint released (lowest validation loss)
    best_validation_loss: float | None = None
    stopped_early: bool = False
    seeds: SeedSelection | None = None    # the pipeline's select stage: every seed trained, and the one released


class MetricDelta(BaseModel):
    base: float
    adapter: float
    delta: float
    ci_low: float
    ci_high: float
    confidence: float
    relative_delta: float | None = None  # delta / base, where a tier reports it (MMLU: "no more than 5 % relative")
    p_value: float | None = None         # McNemar's test, for accuracy-type (0/1) metrics
    n: int | None = None                 # items the metric applied to (a suite can limit a metric to some items)


class SeedDelta(BaseModel):
    """One metric's delta (adapter minus base) across training seeds, on the same items."""
    per_seed: dict[str, float]           # seed -> that seed's delta
    mean: float
    worst: float                         # the lowest delta (the highest for a lower-is-better metric)
    best: float
    spread: float                        # max - min
    ci_low: float                        # two-level bootstrap (seeds, then items); see toolkit.evals.stats
    ci_high: float
    confidence: float
    n: int                               # items


class AcrossSeeds(BaseModel):
    seeds: list[int]
    count: int
    chosen: int                          # the seed whose adapter the rest of this report measures
    method: str                          # how the interval was computed
    metrics: dict[str, SeedDelta]


class SeedTierScores(BaseModel):
    suite: str
    items_sha256: str                    # the suite's items file, so the tier can check it scores the same items
    n_items: int
    scores: dict[str, list[float | None]]   # metric -> the adapter's score per item (None: not applicable)
    means: dict[str, float]
    # The adapter's greedy outputs and their metering: the tier stage reuses the released seed's
    # instead of generating them a second time.
    outputs: list[str] = []
    meter: dict[str, Any] = {}


class SeedEvalReport(Report):
    """One seed's adapter on the generation tiers (reports/seed_evals/seed-<seed>.json); the tier
    stages pair these scores with the base's for the across-seed statistics."""
    stage: str = "seed_eval"
    seed: int
    adapter_sha256: str
    tiers: dict[str, SeedTierScores]
    wall_time_s: float


class EvalReport(Report):
    stage: str
    tier: str
    n_items: int
    primary_metric: str
    metrics: dict[str, MetricDelta]
    items_file: str
    generation: dict[str, Any]
    skipped: bool = False       # a tier that could not run is reported as skipped, never as passed
    skip_reason: str | None = None
    suite: str | None = None               # eval_suites/<suite>/suite.yaml
    # The same metrics with the base model prompted with the suite's few-shot examples in place of the
    # base ("base" = prompted base): did fine-tuning beat prompting?
    against_prompted: dict[str, MetricDelta] | None = None
    # Canary: against the last released adapter ("base" = the previous adapter), and which one that was.
    against_previous: dict[str, MetricDelta] | None = None
    previous: dict[str, Any] | None = None
    # Items whose primary-metric score fell, against the base and (canary) against the previous adapter.
    regressed_items: dict[str, int] = {}
    # Metrics the adapter is worse on than the base with the whole CI below zero (a gate can count them).
    regressed_metrics: list[str] = []
    regressed_metric_count: int = 0
    by_category: dict[str, dict[str, Any]] = {}  # primary metric per item category (OOD probes)
    chat_template_sha256: str | None = None
    chat_template_matches_training: bool | None = None
    # Held-out tier after GRPO: the adapter against the policy the run started from (the initial
    # adapter), and did the reward rise while a metric outside the reward fell?
    against_start: dict[str, MetricDelta] | None = None
    reward_hacking: dict[str, Any] | None = None
    # Every training seed's adapter against the base on these items (the pipeline's train.seeds).
    across_seeds: AcrossSeeds | None = None


class Rate(BaseModel):
    point: float
    ci_low: float
    ci_high: float


class JudgeReport(Report):
    """The LLM-as-judge tier (pairwise base vs adapter); written by `toolkit evaluate judge`."""

    stage: str = "eval_judge"
    tier: str = "judge"
    skipped: bool = False
    skip_reason: str | None = None
    judge_model: str | None = None
    n_pairs: int = 0
    wins: int = 0
    ties: int = 0
    losses: int = 0
    invalid: int = 0
    win_rate: Rate | None = None
    position_consistency: float | None = None
    human_agreement_kappa: float | None = None
    usage: dict[str, Any] = {}


# The cost report's sections (toolkit.finops computes them; here so that policy rules can check their fields).
class MemoryFit(BaseModel):
    weights_gb: float
    trainable_parameters: int
    adapter_and_optimizer_gb: float
    activations_gb: float
    logits_gb: float
    overhead_gb: float
    total_gb: float
    gpu_memory_gb: float
    verdict: str  # fits | tight | does not fit
    assumptions: str


class TrainingEstimate(BaseModel):
    model: str
    parameters: float
    technique: str
    gpu: str
    pricing: str
    tokens_per_epoch: int
    epochs: float
    tokens: float
    flops: float
    mfu_low: float
    mfu_point: float
    mfu_high: float
    gpu_hours_low: float
    gpu_hours: float
    gpu_hours_high: float
    cost_low: float
    cost: float
    cost_high: float
    energy_kwh: float
    memory: MemoryFit
    currency: str


class ApiComparison(BaseModel):
    model: str
    cost_per_request: float
    cost_per_mtok: float
    monthly_cost: float
    monthly_saving: float           # API cost minus self-hosted cost at the stated volume
    break_even_requests_per_day: float | None  # None: self-hosting never gets cheaper


class InferenceEconomics(BaseModel):
    device: str
    pricing: str
    price_per_hour: float
    tokens_per_second: float
    throughput_source: str
    utilisation: float
    requests_per_day: float
    input_tokens_per_request: float
    output_tokens_per_request: float
    monthly_tokens: float
    instances: int
    self_hosted_monthly: float
    self_hosted_cost_per_mtok: float  # at full use of the utilisation target
    self_hosted_cost_per_request: float | None  # at the stated volume (fixed instances spread over it)
    apis: list[ApiComparison]


class Roi(BaseModel):
    one_off_cost: float
    compared_with: str
    monthly_saving: float
    payback_months: float | None  # None: never (no saving)
    horizon_months: int
    net_benefit: float
    roi: float | None             # net benefit over the horizon / one-off cost (None: nothing was spent)
    positive: bool


class DeviceCost(BaseModel):
    """What some wall time on a device cost, priced with the catalog (cost None: not in the catalog)."""
    device: str
    catalog_entry: str | None
    hours: float
    device_hours: float
    price_per_hour: float | None = None
    cost: float | None
    energy_kwh: float | None
    note: str | None = None


class TrainingCost(DeviceCost):
    tokens: int
    tokens_per_s: float
    mfu: float | None = None       # measured by the train stage where a GPU ran (train/metering.py)


class EvaluationCost(DeviceCost):
    judge: str                     # what the judge's tokens were, or why it did not run
    judge_cost: float


class CostBreakdown(BaseModel):
    data: float
    training: float
    evaluation: float
    engineering: float
    serving_per_month: float


class CostReport(Report):
    stage: str = "cost"
    currency: str
    catalog_date: str
    catalog_files: list[str]
    estimate: TrainingEstimate    # before training, from the validated data and the base's shape
    training: TrainingCost        # actual: device, hours, cost, energy, tokens, MFU where a GPU ran
    evaluation: EvaluationCost    # actual: device hours, judge tokens and cost
    data: DeviceCost              # actual: the validate stage's compute
    inference: InferenceEconomics
    roi: Roi
    breakdown: CostBreakdown      # one-off parts, and serving per month
    files: dict[str, str]         # html, csv and the plots
    warnings: list[str]


class CardReport(Report):
    stage: str = "card"
    model_name: str
    markdown: str
    html: str
    technical_documentation: str
    governance_missing: list[str]
    documentation_policy: str
    documentation_missing: list[str]
    provider_status: str
    cited_reports: dict[str, str]


class RuleOutcome(BaseModel):
    id: str
    status: str  # passed | failed | warned | missing | skipped | not_applicable
    severity: str
    allow_skipped: bool = False
    report: str
    field: str
    op: str
    threshold: Any = None
    value: Any = None
    rationale: str
    report_file: str | None = None
    report_sha256: str | None = None
    message: str = ""


class GateReport(Report):
    stage: str = "gate"
    policy: str
    policy_file: str
    passed: bool
    blocking_failures: int
    warnings: int
    rules: list[RuleOutcome]


R = TypeVar("R", bound=Report)


def digests(paths: list[str | Path]) -> dict[str, str]:
    return {Path(p).as_posix(): sha256_path(p) for p in paths}


def write_report(report: Report, path: str | Path | None = None) -> Path:
    """The report, then its headline figures in metrics/ (toolkit.headline) for the stages that have one."""
    from toolkit import headline

    path = Path(path) if path else report_path(report.stage)
    atomic_write_json(path, report.model_dump(mode="json"))
    if path == report_path(report.stage):      # a report written elsewhere (a bundle, a test) is not this run's
        headline.write_for(report)
    return path


def read_report(path: str | Path, schema: type[R]) -> R:
    path = Path(path)
    if not path.is_file():
        raise MissingInputError(f"{path}: report not found; run the stage that writes it first (dvc repro does)")
    try:
        return schema.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise ConfigError(f"not a valid {schema.__name__}: {exc}", file=str(path)) from None


def tier_reports(reports_dir: Path | None = None) -> dict[str, EvalReport]:
    """Every base-vs-adapter metrics tier report (reports/eval_*.json; the judge has its own schema)."""
    from toolkit.layout import REPORTS

    folder = reports_dir or REPORTS
    return {path.stem: read_report(path, EvalReport) for path in sorted(folder.glob("eval_*.json"))
            if path.stem != "eval_judge"}


class MonitorFigure(BaseModel):
    """One figure of one window: a suite metric, a feedback rate, an input drift test or a serving figure."""
    kind: str                      # metric | feedback | drift | comparison
    name: str
    window: str                    # a day (YYYY-MM-DD), an ISO week (YYYY-Www), or "all"
    n: int
    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    reference: float | None = None # the release-time value, the policy's threshold, or the training data's value
    p_value: float | None = None
    status: str                    # ok | failed | too_few | warning
    message: str
    # comparison with the previous release on the same window (kind "comparison"): new minus previous
    delta: float | None = None
    delta_low: float | None = None
    delta_high: float | None = None
    paired: bool | None = None     # the same requests answered by both (shadow), or two samples


class MonitorReport(Report):
    """`toolkit monitor`: production logs against the release (docs/monitoring.md). Not a pipeline
    stage: it runs on a schedule after the release; `inputs` holds the hash of every log file read."""
    stage: str = "monitor"
    release: str
    bundle: str
    window: str                    # day | week
    since: str | None
    until: str | None
    records_read: int
    records_used: int              # of this release, inside --since/--until
    records_other_releases: dict[str, int]
    bad_records: int
    bad_examples: list[dict[str, Any]]
    layouts: dict[str, int]        # toolkit / openai -> records
    windows: list[str]
    first_record: str | None = None
    last_record: str | None = None
    rollout_stage: str | None = None     # the stage of the release's rollout the records were served in
    previous_release: str | None = None  # compared with on the same window (kind "comparison"), when in the logs
    records_previous: int = 0
    figures: list[MonitorFigure]
    serving: dict[str, Any]        # latency, tokens per request, requests and cost per day against the estimate
    failed: list[str]
    warnings: list[str]
    passed: bool
    html_report: str
