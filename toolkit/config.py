"""Typed run parameters, loaded from params.yaml (the only configuration a run reads).

Unknown keys and wrong types stop the run before any work, with a message that names the file,
the line and the dotted key, and says what was expected.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from toolkit.errors import ConfigError
from toolkit.files import parse_yaml

DEFAULT_PARAMS_FILE = "params.yaml"


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BuiltinBaseParams(StrictModel):
    """The embedded tiny Llama-architecture model, built and briefly pre-trained on CPU."""

    vocab_size: int = Field(1024, ge=300, le=32000)
    hidden_size: int = Field(128, ge=16)
    num_layers: int = Field(4, ge=1)
    num_heads: int = Field(4, ge=1)
    intermediate_size: int = Field(384, ge=16)
    context_length: int = Field(256, ge=64)
    corpus_documents: int = Field(4000, ge=100)
    pretrain_steps: int = Field(700, ge=1)
    pretrain_batch_size: int = Field(8, ge=1)
    pretrain_learning_rate: float = Field(3e-3, gt=0)


class BaseParams(StrictModel):
    model: str = Field("builtin", min_length=1, description='"builtin", a Hugging Face Hub id, or a local folder')
    revision: str | None = None
    trust_remote_code: bool = False
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    builtin: BuiltinBaseParams = BuiltinBaseParams()


class DedupParams(StrictModel):
    exact: Literal["drop", "keep"] = "drop"       # drop: keep the first copy of a repeated record
    near: Literal["keep", "drop"] = "keep"        # near-duplicates always share a split either way
    near_threshold: float = Field(0.8, gt=0, le=1, description="estimated Jaccard similarity of word shingles")
    shingle_words: int = Field(5, ge=1)
    num_perm: int = Field(128, ge=16)


class PiiParams(StrictModel):
    action: Literal["redact", "block", "report"] = "redact"
    detectors: list[Literal["email", "phone", "iban", "credit_card", "ip_address", "name"]] = [
        "email", "phone", "iban", "credit_card", "ip_address", "name"]
    phone_regions: list[str] = Field(["DE", "FR", "GB", "US"], description="regions whose national phone formats count")
    min_score: dict[Literal["email", "phone", "iban", "credit_card", "ip_address", "name"],
                    float] = Field({}, description="per detector, the score a finding needs (default 0.5; "
                                   "phone and card numbers and names are scored by form and context)")


class DecontaminationParams(StrictModel):
    ngram: int = Field(13, ge=3, description="word n-gram length (13 as in GPT-3 and lm-eval)")
    suites_dir: str = "eval_suites"
    action: Literal["drop", "block", "report"] = "drop"
    boilerplate_fraction: float = Field(0.01, ge=0, le=1, description="n-grams in more records than this are boilerplate")
    boilerplate_min_documents: int = Field(10, ge=1)


class ClassBalanceParams(StrictModel):
    max_ratio: float = Field(10.0, ge=1, description="largest class / smallest class above this is flagged")
    max_classes: int = Field(50, ge=2, description="a field with more distinct values is not a class label")


class DataParams(StrictModel):
    path: str = "data/support_tickets.jsonl"
    datasheet: str | None = "data/support_tickets.datasheet.yaml"
    format: Literal["auto", "chat", "sharegpt", "alpaca", "prompt_completion", "preference", "kto"] = "auto"
    tokenizer: str | None = Field(None, description="a tokenizer folder; null: the base model's")
    quarantine: bool = False
    validation_fraction: float = Field(0.1, ge=0, lt=0.5)
    heldout_fraction: float = Field(0.15, gt=0, lt=0.5)
    max_turn_tokens: int = Field(2048, ge=1)
    dedup: DedupParams = DedupParams()
    pii: PiiParams = PiiParams()
    decontamination: DecontaminationParams = DecontaminationParams()
    class_balance: ClassBalanceParams = ClassBalanceParams()
    chunk_records: int = Field(10_000, ge=1, description="records read, checked and written at a time (memory, not results)")


class LoraParams(StrictModel):
    r: int = Field(16, ge=1)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: str | list[str] = "all-linear"
    rslora: bool = Field(False, description="scale by alpha / sqrt(r) instead of alpha / r (rank-stabilised LoRA)")


class PreferenceParams(StrictModel):
    """Settings of the preference objectives (dpo, kto, orpo)."""

    beta: float = Field(0.1, gt=0, description="DPO/KTO: strength of the pull to the reference; IPO: tau; ORPO: lambda")
    loss_type: Literal["sigmoid", "ipo", "hinge", "robust"] = Field("sigmoid", description="DPO loss; ipo for IPO")
    desirable_weight: float = Field(1.0, gt=0, description="KTO: weight of desirable examples")
    undesirable_weight: float = Field(1.0, gt=0, description="KTO: weight of undesirable examples")


class RewardParams(StrictModel):
    """One reward of a GRPO run: a metric of the evaluation registry, scored on each sampled completion
    against the record's reference (its last assistant turn)."""

    metric: str = Field(description="a built-in metric (json_valid, field_accuracy, numeric_match, ...) or a dotted "
                        "path to a custom one, as in eval_suites/*/suite.yaml")
    weight: float = Field(1.0, description="weight of this reward in the sum GRPO optimises")
    args: dict[str, Any] = Field({}, description="the metric's arguments (schema_file: a JSON schema file, relative "
                                 "to the project root)")
    name: str | None = Field(None, description="the name in reports and curves; default: the metric's")


class GrpoParams(StrictModel):
    """Settings of `method: grpo` (TRL's GRPOTrainer): rewards from the metric registry."""

    rewards: list[RewardParams] = Field(
        [RewardParams(metric="json_valid", weight=0.5), RewardParams(metric="field_accuracy", weight=1.0)],
        min_length=1)
    num_generations: int = Field(4, ge=2, description="completions sampled per prompt (the group)")
    max_completion_length: int = Field(48, ge=1, description="new tokens per sampled completion")
    temperature: float = Field(0.3, gt=0, description="sampling temperature of the completions (the demo's tiny "
                               "model needs 0.3; 0.7-1.0 suits real models)")
    beta: float = Field(0.04, ge=0, description="KL penalty against the starting policy; 0: no reference pass")
    learning_rate: float = Field(1e-4, gt=0, description="GRPO's own (train.learning_rate is the SFT recipe's)")
    max_steps: int = Field(40, ge=1, description="optimizer steps (GRPO runs by steps, not epochs)")
    prompts_per_step: int = Field(8, ge=1, description="prompts per optimizer step (each sampled num_generations times)")
    eval_records: int | None = Field(32, ge=1, description="validation prompts scored at each checkpoint "
                                     "(each sampled num_generations times); null: all")


class TrainParams(StrictModel):
    method: Literal["sft", "dpo", "kto", "orpo", "grpo"] = Field(
        "sft", description="sft on conversations; dpo or orpo on preference pairs; kto on labelled completions; "
        "grpo on prompts with reference answers, rewarded by evaluation metrics")
    adapter: Literal["lora", "dora", "qlora"] = Field("lora", description="qlora needs a CUDA GPU (4-bit NF4 base)")
    lora: LoraParams = LoraParams()
    preference: PreferenceParams = PreferenceParams()
    grpo: GrpoParams = GrpoParams()
    init_adapter: str | None = Field(None, description="continue training this adapter (e.g. an SFT adapter before DPO)")
    epochs: float = Field(5, gt=0)
    batch_size: int = Field(16, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    learning_rate: float = Field(5e-3, gt=0)
    warmup_steps: int = Field(10, ge=0)
    max_length: int = Field(256, ge=16)
    assistant_only_loss: bool = True
    packing: Literal["auto", "padding_free", "bfd", "none"] = Field(
        "auto", description="auto: SFT batches without padding where the attention keeps examples apart (same "
        "batches and loss as padding); bfd: TRL's dataset packing into max_length rows; none: padding")
    kernels: Literal["auto", "liger", "none"] = Field(
        "auto", description="auto: Liger's fused RMSNorm/RoPE/SwiGLU for SFT on CUDA when liger-kernel is installed")
    gradient_checkpointing: Literal["auto", "on", "off"] = Field("auto", description="auto: on for a GPU")
    optimizer: str = Field("auto", description="auto: paged 8-bit AdamW on a GPU, fused AdamW on a CPU; or a transformers name")
    logging_steps: int = Field(10, ge=1)
    checkpoint_steps: int = Field(50, ge=1, description="save and evaluate every N optimizer steps")
    early_stopping_patience: int | None = Field(3, ge=1, description="evaluations without a better validation loss "
                                                "before stopping; null: never stop early")
    divergence_spike_factor: float = Field(4.0, ge=0, description="stop when the loss exceeds this many times its "
                                           "lowest value so far; 0: only NaN/inf stop a run")
    resume: bool = Field(True, description="continue from the last checkpoint of an interrupted run with the same settings")
    seeds: list[int] = Field([1234], min_length=1, description="training seeds: dvc repro trains and evaluates one "
                             "adapter per seed and reports the spread; `seed` still seeds the splits and statistics")
    seed_selection: Literal["best_validation", "first"] = Field(
        "best_validation", description="which seed's adapter is released, decided before any evaluation: "
        "best_validation (lowest validation loss; GRPO: highest validation reward) or first (train.seeds[0])")

    @field_validator("seeds")
    @classmethod
    def _distinct_seeds(cls, seeds: list[int]) -> list[int]:
        if any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
            raise ValueError("seeds must be distinct, non-negative integers")
        return seeds


class TierParams(StrictModel):
    """How a suite is run; what it measures (items, metrics, primary metric) is in eval_suites/<suite>/suite.yaml."""

    suite: str | None = Field(None, description="the suite folder under eval_suites/ (default: the tier's name)")
    max_items: int | None = Field(None, ge=1)
    batch_size: int = Field(32, ge=1)
    prompted_baseline: bool = Field(True, description="also run the base with the suite's few-shot prompt")
    bootstrap_samples: int = Field(2000, ge=100)
    confidence: float = Field(0.95, gt=0.5, lt=1)


class CanaryParams(TierParams):
    previous_adapter: str | None = Field(
        None, description="an adapter folder (or release bundle) to compare against; null: the registry's last release")


class JudgeParams(StrictModel):
    model: str = Field("claude-sonnet-4-5", description="the Anthropic model id of the judge")
    tier: str = Field("heldout", description="whose per-item outputs are judged: artifacts/eval/<tier>_items.jsonl")
    rubric: str = "eval_suites/judge/rubric.yaml"
    max_items: int | None = Field(100, ge=1)
    concurrency: int = Field(8, ge=1, le=64)
    requests_per_minute: float = Field(0, ge=0, description="0: no limit beyond the API's own")
    max_retries: int = Field(4, ge=0, description="the SDK's retries with backoff on 429, 5xx, timeouts")
    max_connection_failures: int = Field(10, ge=0, description="stop the tier after this many consecutive "
                                         "connection failures (a dead endpoint); 0: never")
    timeout_s: float = Field(60, gt=0)
    max_tokens: int = Field(200, ge=16)
    base_url: str | None = Field(None, description="an API gateway or proxy; null: the Anthropic API")
    cache_dir: str = ".cache/judge"
    human_spotcheck: str | None = "eval_suites/judge/human_spotcheck.jsonl"
    use_batches: bool = Field(False, description="the Message Batches API: about half the price, results within 24 h")
    batch_poll_s: float = Field(30, gt=0)
    bootstrap_samples: int = Field(2000, ge=100)
    confidence: float = Field(0.95, gt=0.5, lt=1)


class GeneralParams(StrictModel):
    """The general-capability tier: lm-evaluation-harness tasks, MMLU's layout offline by default."""

    tasks: list[str] = Field(["mmlu_local"], min_length=1, description="lm-eval tasks or groups (mmlu with hub access)")
    include_path: str | None = Field("eval_suites/mmlu_local/tasks", description="a folder of task YAMLs; null: lm-eval's own")
    data_dir: str | None = Field(None, description="a local copy of MMLU: <subject>.jsonl files in its layout; "
                                 "overrides tasks and include_path")
    num_fewshot: int = Field(0, ge=0)
    batch_size: int = Field(16, ge=1)
    limit: int | None = Field(None, ge=1, description="questions per task (null: all)")
    apply_chat_template: bool = Field(False, description="render prompts through the model's chat template "
                                      "(lm-eval's --apply_chat_template); off: MMLU's plain completion prompt")
    fewshot_as_multiturn: bool = Field(False, description="few-shot examples as chat turns; needs apply_chat_template")
    cache_dir: str = ".cache/lm_eval"
    bootstrap_samples: int = Field(2000, ge=100)
    confidence: float = Field(0.95, gt=0.5, lt=1)

    @model_validator(mode="after")
    def _multiturn_needs_template(self):
        if self.fewshot_as_multiturn and not self.apply_chat_template:
            raise ValueError("fewshot_as_multiturn needs apply_chat_template: true")
        return self


class EvaluateParams(StrictModel):
    heldout: TierParams = TierParams()
    ood: TierParams = TierParams()
    canary: CanaryParams = CanaryParams()
    judge: JudgeParams = JudgeParams()
    general: GeneralParams = GeneralParams()

    @model_validator(mode="before")
    @classmethod
    def _mmlu_is_the_old_name_of_general(cls, data):
        """`evaluate.mmlu` was this tier's name while MMLU was its only task; it still reads."""
        if isinstance(data, dict) and "mmlu" in data:
            if "general" in data:
                raise ValueError("evaluate.mmlu is the old name of evaluate.general: keep one of them")
            data = {("general" if key == "mmlu" else key): value for key, value in data.items()}
        return data


class FinOpsTrainingParams(StrictModel):
    gpu: str = Field("A100-80GB", description="the catalog GPU a full-size run would use (the estimate)")
    pricing: Literal["on_demand", "spot"] = "on_demand"
    technique: Literal["lora", "qlora", "full"] = "lora"
    model: str | None = Field(None, description="a catalog model shape for what-if estimates; null: the run's base")
    batch_size: int | None = Field(None, ge=1, description="null: train.batch_size")
    seq_len: int | None = Field(None, ge=16, description="null: train.max_length")


class FinOpsInferenceParams(StrictModel):
    device: str | None = Field(None, description="catalog GPU (or CPU-2vCPU) serving the model; null: the eval device")
    pricing: Literal["on_demand", "spot"] = "on_demand"
    tokens_per_second: float | None = Field(None, gt=0, description="null: measured in the held-out evaluation")
    utilisation: float = Field(0.5, gt=0, le=1)
    requests_per_day: float = Field(20000, ge=0)
    input_tokens_per_request: float = Field(120, gt=0)
    output_tokens_per_request: float = Field(25, ge=0)
    compare_with: list[str] = ["gpt-4o-mini", "claude-haiku-4-5", "gpt-4o"]


class FinOpsParams(StrictModel):
    catalog: str | None = Field(None, description="a project price catalog merged over the shipped one")
    training: FinOpsTrainingParams = FinOpsTrainingParams()
    inference: FinOpsInferenceParams = FinOpsInferenceParams()
    engineering_hours: float = Field(8, ge=0)
    horizon_months: int = Field(12, ge=1)


class GateParams(StrictModel):
    policy: str = Field("default", min_length=1, description="a name in policies/ or a path to a YAML policy")


class HubParams(StrictModel):
    """Optional publishing of a verified release to a Hugging Face Hub model repository."""

    repo: str | None = Field(None, pattern=r"^[\w.-]+/[\w.-]+$", description="owner/name; null: not configured")
    private: bool = True
    endpoint: str | None = Field(None, description="a Hub mirror or enterprise endpoint; null: huggingface.co")


class SigningParams(StrictModel):
    """Ed25519 release signing (`toolkit keys generate`); the TOOLKIT_SIGNING_KEY variable overrides `key`."""

    key: str | None = Field(None, description="path of the private key file, outside the repository; "
                            "null: unsigned releases (policies production and high-risk refuse them)")


class ReleaseParams(StrictModel):
    registry: str = Field("registry", min_length=1, description="folder holding releases/, ledger.jsonl and keys/")
    logit_tolerance: float = Field(1e-4, ge=0, description="max |logit difference| of a reloaded adapter")
    signing: SigningParams = SigningParams()
    hub: HubParams = HubParams()


class RolloutStage(StrictModel):
    """One stage of a staged rollout: the share of traffic the new release answers, and what a monitoring
    report of the stage must show before `toolkit rollout advance` moves on."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    traffic: float = Field(ge=0, le=1, description="share of requests answered by the new release (0: shadow, "
                                                   "answers logged but not shown)")
    min_records: int = Field(0, ge=0, description="records of the new release the stage's report must hold")
    min_days: float = Field(0, ge=0, description="days the stage must have run")


class RolloutParams(StrictModel):
    """`toolkit rollout`: the stages and the rollback rule (docs/monitoring.md)."""

    stages: list[RolloutStage] = Field(
        default_factory=lambda: [RolloutStage(name="shadow", traffic=0.0, min_records=200, min_days=1),
                                 RolloutStage(name="10pct", traffic=0.1, min_records=200, min_days=2),
                                 RolloutStage(name="50pct", traffic=0.5, min_records=500, min_days=2),
                                 RolloutStage(name="100pct", traffic=1.0)],
        min_length=1)
    rollback_drop: float = Field(0.05, gt=0, le=1, description="a metric significantly worse than the previous "
                                                               "release's on the same window by at least this much "
                                                               "(or a feedback rate that much higher) fails")

    @model_validator(mode="after")
    def _stages_make_sense(self) -> "RolloutParams":
        names = [stage.name for stage in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"stage names must differ: {names}")
        if self.stages[-1].traffic != 1.0:
            raise ValueError("the last stage must take all traffic (traffic: 1.0)")
        traffic = [stage.traffic for stage in self.stages]
        if traffic != sorted(traffic):
            raise ValueError(f"traffic must not fall from one stage to the next: {traffic}")
        return self


class MonitorParams(StrictModel):
    """The monitoring policy of `toolkit monitor` (docs/monitoring.md): what production logs must show."""

    window: Literal["day", "week"] = Field("day", description="the period each figure is computed over")
    confidence: float = Field(0.95, gt=0.5, lt=1)
    min_records: int = Field(30, ge=1, description="a window with fewer records is reported but never judged")
    max_bad_fraction: float = Field(0.05, ge=0, le=1, description="more unreadable log records than this: exit 2")
    metric_drop: float = Field(0.05, ge=0, le=1, description="a metric significantly below its release value by "
                                                               "at least this much fails")
    feedback_thresholds: dict[str, float] = Field(
        {"rerouted": 0.10, "negative": 0.20},
        description="a feedback rate significantly above its threshold fails (negative: rating 1-2 of 5, or "
                    "thumbs down)")
    drift_p_value: float = Field(0.01, gt=0, lt=1, description="input drift: a test below this p fails (with an "
                                                                 "effect of at least the size below)")
    length_distance: float = Field(0.10, gt=0, le=1, description="input length: a KS statistic (the largest gap "
                                                                 "between the two distributions) of at least this")
    rate_increase: float = Field(0.05, ge=0, le=1, description="PII or prompt-injection share significantly above "
                                                                 "the training data's by at least this much fails")
    max_cost_overrun: float = Field(0.25, ge=0, description="serving cost per day above the cost report's estimate "
                                                              "by more than this share: a warning")
    mix_distance: float = Field(0.10, gt=0, le=1, description="input language / answer label mix: a chi-square p "
                                                             "below drift_p_value and a total variation distance "
                                                             "from the training mix of at least this fails")
    label_field: str | None = Field(None, description="a key of the JSON answers (e.g. a category): its values' "
                                                       "distribution against the training answers' (chi-square)")
    rollout: RolloutParams = RolloutParams()


class GovernanceParams(StrictModel):
    """What the toolkit cannot measure: it comes from the people responsible for the release."""

    model_name: str = ""
    provider: str = ""
    contact: str = ""
    license: str = ""
    languages: list[str] = []
    intended_use: str = ""
    out_of_scope_use: str = ""
    risk_category: Literal["", "minimal", "limited", "high", "prohibited"] = ""
    risk_reasoning: str = ""
    human_oversight: str = ""
    acceptable_use_policy: str = ""
    release_date: str = Field("", description="planned release date; the release ledger records the actual one")
    distribution: str = Field("", description="how the adapter reaches its users (API, download, internal service)")
    base_training_compute_flops: float | None = Field(None, gt=0, description="the base model's training compute, "
                                                      "from its documentation (provider-status assessment)")
    risk_management: str = Field("", description="Art. 9: the risk management measures")
    cybersecurity: str = Field("", description="Art. 15(5): measures against attacks on the model and its data")
    post_market_monitoring: str = Field("", description="Art. 72: how performance is watched after release")
    change_summary: str = Field("", description="what changed against the previous version")
    transparency_notice: str = Field("", description="Art. 50: how users learn they deal with AI output")


class TrackingParams(StrictModel):
    """MLflow (optional extra `mlflow`); no pipeline stage reads these (docs/tracking.md)."""

    mlflow_uri: str | None = Field(None, description="the tracking server; null: $MLFLOW_TRACKING_URI. Credentials "
                                   "only from MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/_PASSWORD")
    experiment: str = Field("toolkit-adapters", min_length=1)
    registered_model: str | None = Field(None, description="`toolkit release` registers each release as a version "
                                         "of this registered model; null: no registration")


class Params(StrictModel):
    seed: int = 1234
    base: BaseParams = BaseParams()
    data: DataParams = DataParams()
    train: TrainParams = TrainParams()
    evaluate: EvaluateParams = EvaluateParams()
    finops: FinOpsParams = FinOpsParams()
    gate: GateParams = GateParams()
    release: ReleaseParams = ReleaseParams()
    governance: GovernanceParams = GovernanceParams()
    monitor: MonitorParams = MonitorParams()
    tracking: TrackingParams = TrackingParams()

    def section(self, name: str) -> dict[str, Any]:
        return getattr(self, name).model_dump(mode="json")

    def with_training_seed(self, seed: int) -> "Params":
        """These params for one training run of train.seeds: `seed` seeds its initialisation and data order."""
        return self.model_copy(update={"seed": seed})


def load_params(path: str | Path = DEFAULT_PARAMS_FILE) -> Params:
    path = Path(path)
    if not path.is_file():
        raise ConfigError("parameters file not found", file=str(path))
    raw = parse_yaml(path)
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError("expected a mapping of parameter sections at the top level", file=str(path), line=1)
    try:
        return Params.model_validate(raw)
    except ValidationError as exc:
        raise _config_error(exc, path, path.read_text(encoding="utf-8")) from None


def _config_error(exc: ValidationError, path: Path, text: str) -> ConfigError:
    return validation_error(exc, str(path), text, suggest_from=Params)


def validation_problems(exc: ValidationError, text: str, suggest_from: type[BaseModel] | None = None
                        ) -> list[tuple[str, str, int | None]]:
    """(dotted key, message, line) for every problem pydantic found in a YAML document, in file order."""
    problems = []
    for error in exc.errors():
        loc = [str(part) for part in error["loc"]]
        if error["type"] == "extra_forbidden":
            message = "unknown key" + (_suggestion(loc, suggest_from) if suggest_from else "")
        elif error["type"] == "missing":
            message = "required but missing"
        else:
            message = f"{error['msg'].removeprefix('Value error, ')} (got {error.get('input')!r})"
        problems.append((".".join(loc), message, yaml_line(text, loc)))
    return sorted(problems, key=lambda problem: (problem[2] is None, problem[2] or 0))


def validation_error(exc: ValidationError, file: str, text: str, suggest_from: type[BaseModel] | None = None,
                     error_type: type = ConfigError) -> Exception:
    """One error naming the first problem's key and line and listing every other one."""
    problems = validation_problems(exc, text, suggest_from)
    key, message, line = problems[0]
    where = {"key": key} if error_type is ConfigError else {"field": key}
    more = [f"{file}:{l}: {k}: {m}" if l else f"{file}: {k}: {m}" for k, m, l in problems[1:]]
    note = f"{len(problems)} problems in all" if len(problems) > 1 else ""
    return error_type(message, file=file, line=line, more=more, note=note, **where)


def _suggestion(loc: list[str], root: type[BaseModel]) -> str:
    """'; did you mean ...?' for a misspelt key, from the fields of the section it sits in."""
    model: Any = root
    for part in loc[:-1]:
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return ""
        model = field.annotation
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return ""
    close = difflib.get_close_matches(loc[-1], list(model.model_fields), n=1)
    return f"; did you mean '{close[0]}'?" if close else f"; expected one of: {', '.join(model.model_fields)}"


def yaml_line(text: str, keys: list[str]) -> int | None:
    """1-based line of the deepest existing key along `keys` in a YAML document."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return None
    line = None
    for key in keys:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == key), None)
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and key.isdigit() and int(key) < len(node.value):
            node = node.value[int(key)]
            line = node.start_mark.line + 1
        else:
            break
    return line
