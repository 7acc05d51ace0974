"""Where each stage reads and writes, relative to the project root (dvc.yaml names the same paths)."""

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
