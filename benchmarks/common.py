"""Shared by the benchmarks: timing a command in a project, the machine, the JSON result file."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import copy_project, run_in  # noqa: E402  (the tests' own helpers)


def timed(project: Path, *args: str) -> tuple[float, str]:
    """(wall seconds, stdout) of a command run in the project; a failure stops the benchmark."""
    started = time.perf_counter()
    result = run_in(project, *args, check=True)
    return time.perf_counter() - started, result.stdout


def machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}


def write_result(out: str | Path, result: dict) -> None:
    """The result as indented JSON at `out` (folders made), and on stdout."""
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def out_path(description: str, default: str) -> str:
    """The --out argument of a benchmark script (its docstring is the help)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", default=default)
    return parser.parse_args().out


@contextlib.contextmanager
def fresh_project():
    """A fresh copy of the repository (as git sees it) in a temporary folder, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="toolkit-bench-") as tmp:
        yield copy_project(Path(tmp))
