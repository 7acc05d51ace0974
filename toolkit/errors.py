"""Exception types that map to the CLI's exit codes.

0 success, 1 a gate failed, 2 bad input or configuration, 3 an external service failed; anything
else that escapes a command exits 4 (toolkit.cli), so a crash never reads as a gate's "no".
"""

from __future__ import annotations

from typing import Sequence

MAX_LISTED = 20   # problems an error message lists before it only counts the rest


def listing(problems: Sequence[str], note: str = "", limit: int = MAX_LISTED) -> str:
    """Further problems, one per indented line, up to `limit`, then how many more; and a closing note.
    A user fixing a file needs every bad line at once, not one per run."""
    text = "".join(f"\n  {problem}" for problem in problems[:limit])
    if len(problems) > limit:
        text += f"\n  ... and {len(problems) - limit} more"
    return text + (f"\n  ({note})" if note else "")


class ToolkitError(Exception):
    """Base class; carries the process exit code the CLI should use."""

    exit_code = 2


class ConfigError(ToolkitError):
    """A parameter, policy or suite file is wrong. Names the file, line and key."""

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None, key: str | None = None,
                 more: Sequence[str] = (), note: str = ""):
        self.file, self.line, self.key = file, line, key
        where = file or ""
        if file and line:
            where = f"{file}:{line}"
        prefix = ": ".join(part for part in (where, key) if part)
        super().__init__((f"{prefix}: {message}" if prefix else message) + listing(more, note))


class DataError(ToolkitError):
    """Input data is malformed. Names the file, line and field."""

    def __init__(self, message: str, *, file: str, line: int | None = None, field: str | None = None,
                 more: Sequence[str] = (), note: str = ""):
        self.file, self.line, self.field = file, line, field
        where = f"{file}:{line}" if line else file
        prefix = f"{where}: field '{field}'" if field else where
        super().__init__(f"{prefix}: {message}" + listing(more, note))


class MissingInputError(ToolkitError):
    """A stage was started before the stage it depends on produced its output."""


class UnsupportedHardwareError(ToolkitError):
    """The requested configuration needs hardware this machine does not have (e.g. QLoRA without CUDA)."""


class LedgerError(ToolkitError):
    """The registry's ledger cannot be read or extended: a torn last line, a broken chain. Names the
    file and line; `toolkit release --repair` sets a torn line aside, `toolkit verify` says more."""

    def __init__(self, message: str, *, file: str, line: int | None = None):
        self.file, self.line = file, line
        super().__init__(f"{file}:{line}: {message}" if line else f"{file}: {message}")


class InternalError(ToolkitError):
    """A library returned what it never should (results out of order, no results at all): exit 4 as
    for any unexpected error, with a message saying which library and what."""

    exit_code = 4


class GateFailed(ToolkitError):
    """At least one blocking policy rule failed; the gate report was written."""

    exit_code = 1


class VerificationFailed(ToolkitError):
    """`toolkit verify` found at least one failed check."""

    exit_code = 1


class ServiceError(ToolkitError):
    """An external service (the judge's API) kept failing after retries; completed work is kept."""

    exit_code = 3


class TrainingDiverged(ToolkitError):
    """The training loss became NaN/inf or spiked; no adapter was written (reports/train_diverged.json says why)."""

    exit_code = 1
