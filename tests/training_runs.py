"""Small training projects for tests: rows in each data kind, a project around the tiny base, and a
training run inside it (used by the train, evaluation and card tests)."""

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import yaml

from toolkit.config import Params

TICKETS = [("my router is broken", "technical"), ("I was charged twice", "billing"), ("parcel is late", "shipping"),
           ("cannot log in", "account"), ("kettle will not start", "technical"), ("refund missing", "billing"),
           ("box arrived crushed", "shipping"), ("password reset fails", "account")]


def sft_rows(n: int, offset: int = 0) -> list[dict]:
    rows = []
    for i in range(n):
        text, label = TICKETS[(i + offset) % len(TICKETS)]
        rows.append({"messages": [{"role": "system", "content": "Triage."},
                                  {"role": "user", "content": f"{text} (#{i + offset})"},
                                  {"role": "assistant", "content": f'{{"category": "{label}"}}'}]})
    return rows


def preference_rows(n: int) -> list[dict]:
    return [{"prompt": r["messages"][:2], "chosen": [r["messages"][2]],
             "rejected": [{"role": "assistant", "content": "I do not know."}]} for r in sft_rows(n)]


def kto_rows(n: int) -> list[dict]:
    rows = []
    for i, r in enumerate(sft_rows(n)):
        good = i % 2 == 0
        rows.append({"prompt": r["messages"][:2], "completion": [r["messages"][2] if good else
                     {"role": "assistant", "content": "I do not know."}], "label": good})
    return rows


def make_project(root: Path, tiny_base: Path, rows: list[dict], validation: list[dict] | None = None,
                 **train) -> Params:
    """A project with the tiny base resolved by the base stage and the given validated splits."""
    from toolkit.train.base_stage import run_base

    data = root / "artifacts/data"
    data.mkdir(parents=True, exist_ok=True)
    (data / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (data / "validation.jsonl").write_text("".join(json.dumps(r) + "\n" for r in (validation or [])))
    settings = {"epochs": 3, "batch_size": 4, "learning_rate": 0.01, "warmup_steps": 0, "max_length": 64,
                "logging_steps": 1, "checkpoint_steps": 5, "lora": {"r": 4, "alpha": 8, "dropout": 0.0}, **train}
    raw = {"base": {"model": str(tiny_base)}, "train": settings}
    (root / "params.yaml").write_text(yaml.safe_dump(raw))
    params = Params.model_validate(raw)
    cwd = Path.cwd()
    os.chdir(root)
    try:
        run_base(params, progress=False)
    finally:
        os.chdir(cwd)
    return params


def train_in(root: Path, params: Params):
    from toolkit.train.run import train_adapter

    cwd = Path.cwd()
    os.chdir(root)
    try:
        return train_adapter(params)
    finally:
        os.chdir(cwd)


def kill_after_first_checkpoint(root: Path) -> None:
    """Starts `toolkit train` in the project and SIGKILLs it once its first checkpoint is complete."""
    from conftest import BIN

    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    process = subprocess.Popen([str(BIN / "toolkit"), "train"], cwd=root, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while (not list(root.glob(".cache/train/*/checkpoint-*/trainer_state.json")) and time.time() < deadline
           and process.poll() is None):
        time.sleep(0.05)
    assert process.poll() is None, "the run finished before it could be killed; make it longer"
    process.send_signal(signal.SIGKILL)
    process.wait()
