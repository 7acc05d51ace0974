"""`dvc push` and `dvc pull` of the demo's outputs, to a local-path remote and to an S3-compatible
server (moto's server mode on 127.0.0.1).

    .venv/bin/python benchmarks/remote_push_pull.py [--out benchmarks/results/remote_push_pull.json]

Needs a completed `dvc repro` of the committed dvc.lock in the working tree (its DVC cache holds
the outputs). For each remote: a `git clone` of the repository that uses the working tree's cache
pushes the outputs `dvc.lock` names; a second, empty clone pulls them and is checked (the same
adapter hash, `dvc status` clean).
"""

from __future__ import annotations

import subprocess
import tempfile
from contextlib import nullcontext
from pathlib import Path

from common import machine, out_path, timed, write_result
from conftest import S3_ENV, run_in, s3_server
from toolkit.files import sha256_path

REPO = Path(__file__).resolve().parents[1]


def _clone(target: Path) -> Path:
    subprocess.run(["git", "clone", "-q", str(REPO), str(target)], check=True)
    return target


def _remote(project: Path, url: str, endpoint: str | None) -> None:
    run_in(project, "dvc", "remote", "add", "--local", "-d", "bench", url, check=True)
    if endpoint:
        run_in(project, "dvc", "remote", "modify", "--local", "bench", "endpointurl", endpoint, check=True)


def measure(tmp: Path, kind: str, url: str, endpoint: str | None) -> dict:
    pusher = _clone(tmp / f"{kind}-push")
    run_in(pusher, "dvc", "cache", "dir", "--local", str(REPO / ".dvc/cache"), check=True)
    _remote(pusher, url, endpoint)
    push_s, _ = timed(pusher, "dvc", "push")
    puller = _clone(tmp / f"{kind}-pull")
    _remote(puller, url, endpoint)
    pull_s, _ = timed(puller, "dvc", "pull")
    status = run_in(puller, "dvc", "status", check=True).stdout
    files = [p for p in (puller / ".dvc/cache").rglob("*") if p.is_file()]
    return {"push_s": round(push_s, 2), "pull_s": round(pull_s, 2), "files": len(files),
            "mbytes": round(sum(p.stat().st_size for p in files) / 1e6, 1),
            "same_adapter": sha256_path(puller / "artifacts/adapter") == sha256_path(REPO / "artifacts/adapter"),
            "status_clean": "up to date" in status}


def main() -> None:
    import os

    out = out_path(__doc__, "benchmarks/results/remote_push_pull.json")
    os.environ.update(S3_ENV)           # the S3 remote's credentials (moto accepts any)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for kind in ("local", "s3"):
            with (s3_server("toolkit-runs") if kind == "s3" else nullcontext()) as endpoint:
                url = "s3://toolkit-runs/demo" if kind == "s3" else str(tmp / "store")
                results[kind] = measure(tmp, kind, url, endpoint)
    write_result(out, {"machine": machine(), "remotes": results})


if __name__ == "__main__":
    main()
