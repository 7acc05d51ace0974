"""Trainer callbacks: divergence guard, loss curves for dvclive, peak-memory metering."""

from __future__ import annotations

import json
import math
from pathlib import Path

from transformers import TrainerCallback


class LogLastStep(TrainerCallback):
    """Logs the loss on the last step too (and, with logging_first_step, the first), so a run shorter
    than logging_steps still reports a first and a final loss instead of none."""

    def on_step_end(self, args, state, control, **kwargs):
        if state.max_steps and state.global_step >= state.max_steps:
            control.should_log = True
        return control


class DivergenceGuard(TrainerCallback):
    """Stops training when the logged loss is NaN/inf, or rises above `spike_factor` times the
    lowest loss seen so far (after `warmup` logs), and remembers why."""

    def __init__(self, spike_factor: float, warmup_logs: int = 2):
        self.spike_factor = spike_factor
        self.warmup_logs = warmup_logs
        self.lowest = math.inf
        self.seen = 0
        self.reason: str | None = None
        self.step: int | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        self.seen += 1
        grad_norm = (logs or {}).get("grad_norm")
        if not math.isfinite(loss):
            self._stop(control, state.global_step, f"the training loss became {loss} at step {state.global_step}")
        elif grad_norm is not None and not math.isfinite(grad_norm):
            self._stop(control, state.global_step, f"the training loss' gradient norm became {grad_norm} at step "
                                                   f"{state.global_step} (the weights are no longer finite)")
        elif self.seen > self.warmup_logs and self.spike_factor and loss > self.spike_factor * self.lowest:
            self._stop(control, state.global_step, f"the training loss spiked to {loss:.4g} at step {state.global_step}, "
                                                   f"over {self.spike_factor:g} x the lowest so far ({self.lowest:.4g})")
        self.lowest = min(self.lowest, loss) if math.isfinite(loss) else self.lowest

    def _stop(self, control, step: int, reason: str) -> None:
        if self.reason is None:
            self.reason, self.step = reason, step
        control.should_training_stop = True
        control.should_save = False   # never checkpoint (or release) diverged weights


# (trainer log key, dvclive curve); the reward, KL and completion-length curves come from GRPO runs
CURVES = (("loss", "train/loss"), ("eval_loss", "validation/loss"), ("learning_rate", "train/learning_rate"),
          ("reward", "train/reward"), ("kl", "train/kl"), ("completions/mean_length", "train/completion_length"),
          ("eval_reward", "validation/reward"))


class LossCurves(TrainerCallback):
    """Training and validation loss per step through dvclive, for `dvc plots show` (the project
    owns dvc.yaml: dvclive must not rewrite it). Only the main process of a data-parallel run
    writes (dvclive clears its folder when it starts)."""

    def __init__(self, directory: Path, resume_step: int | None):
        self.directory, self.resume_step = directory, resume_step
        self.live = None

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            from dvclive import Live

            if self.resume_step is not None:
                trim_for_resume(self.directory, self.resume_step)
            self.live = Live(dir=str(self.directory), dvcyaml=False, save_dvc_exp=False,
                             resume=self.resume_step is not None, report=None)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.live is None or not logs:
            return
        values = {name: logs[key] for key, name in CURVES if isinstance(logs.get(key), (int, float))
                  and math.isfinite(logs[key])}
        values.update({f"train/rewards/{key.split('/')[1]}": value for key, value in logs.items()   # GRPO, per reward
                       if key.startswith("rewards/") and key.endswith("/mean") and isinstance(value, (int, float))
                       and math.isfinite(value)})
        if values:
            self.live.step = state.global_step      # each row under the step it was logged at (a resumed
            for name, value in values.items():      # run's first row too, whatever dvclive's summary says)
                self.live.log_metric(name, value)
            self.live.next_step()

    def on_train_end(self, args, state, control, **kwargs):
        if self.live is not None:
            self.live.end()


def trim_for_resume(directory: Path, step: int) -> None:
    """Curves a resumed run can append to. dvclive writes its files in place, so a run killed while
    writing leaves a summary cut short (dvclive then fails to resume) or a torn last row; and rows
    logged after the checkpoint the run resumes from are logged again. Drop all three."""
    summary = directory / "metrics.json"
    try:
        json.loads(summary.read_text(encoding="utf-8"))
    except FileNotFoundError:
        pass
    except (ValueError, UnicodeDecodeError):
        summary.unlink()
    for curve in (directory / "plots").rglob("*.tsv"):
        header, *rows = curve.read_text(encoding="utf-8").split("\n")
        complete = rows[:-1]        # the text after the last newline is a torn row (or nothing)
        kept = [row for row in complete if (logged := _step_of(row, header)) is not None and logged <= step]
        curve.write_text("".join(line + "\n" for line in [header, *kept]), encoding="utf-8")


def _step_of(row: str, header: str) -> int | None:
    cells = row.split("\t")
    if len(cells) != len(header.split("\t")) or not cells[0].isdigit():
        return None
    return int(cells[0])


def peak_memory_gb() -> float:
    """Peak memory of this process: CUDA allocations on a GPU, the resident set on a CPU."""
    import torch

    if torch.cuda.is_available():
        return round(torch.cuda.max_memory_allocated() / 2**30, 3)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3)  # Linux reports KiB
