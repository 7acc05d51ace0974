"""Where each stage reads and writes, relative to the project root (dvc.yaml names the same paths)."""

from dataclasses import dataclass
from pathlib import Path

ARTIFACTS = Path("artifacts")
REPORTS = Path("reports")
METRICS = Path("metrics")
PLOTS = Path("plots")

BASE_DIR = ARTIFACTS / "base"
DATA_DIR = ARTIFACTS / "data"
ADAPTER_DIR = ARTIFACTS / "adapter"
EVAL_DIR = ARTIFACTS / "eval"
CARD_DIR = ARTIFACTS / "model_card"

SPLIT_FILES = {split: DATA_DIR / f"{split}.jsonl" for split in ("train", "validation", "heldout")}
QUARANTINE_FILE = DATA_DIR / "quarantine.jsonl"
DROPPED_FILE = DATA_DIR / "dropped.jsonl"
VALIDATE_HTML = REPORTS / "validate.html"
COST_DIR = REPORTS / "cost"           # the cost stage's HTML report, plots and CSV


def report_path(stage: str) -> Path:
    return REPORTS / f"{stage}.json"


@dataclass(frozen=True)
class TrainRun:
    """Where one training run writes: the pipeline's single run, or one seed of train.seeds."""
    adapter: Path
    report: Path
    curves: Path            # dvclive's folder
    diverged: Path          # the report of a run stopped by the divergence guard


SINGLE_RUN = TrainRun(ADAPTER_DIR, report_path("train"), Path("dvclive/train"), REPORTS / "train_diverged.json")
SEED_EVAL_DIR = REPORTS / "seed_evals"   # outside reports/runs: the seed is chosen before evaluation


def seed_run(seed: int) -> TrainRun:
    """Seed `seed` of a multi-seed run: artifacts/runs/seed-<seed>/adapter, reports/runs/seed-<seed>/train.json."""
    name = f"seed-{seed}"
    return TrainRun(ARTIFACTS / "runs" / name / "adapter", REPORTS / "runs" / name / "train.json",
                    Path("dvclive/runs") / name, REPORTS / "runs" / name / "train_diverged.json")


def seed_eval_path(seed: int) -> Path:
    return SEED_EVAL_DIR / f"seed-{seed}.json"
