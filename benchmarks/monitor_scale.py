"""Time and memory of `toolkit monitor` as the log grows: 100k, 300k and 1M records (synthetic,
tests/production_logs.py), each monitored in a fresh process so its peak memory is its own.
Peak memory is the largest resident set of the monitoring process and of any one of its workers.
Run: python benchmarks/monitor_scale.py [--out benchmarks/results/monitor_scale.json] [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from common import machine, write_result  # noqa: E402
from production_logs import iter_production_logs, released_project, write_logs  # noqa: E402

RUN = """
import resource, sys, time, json
from toolkit.config import Params
from toolkit.errors import GateFailed
from toolkit.monitoring.stage import run_monitor
started = time.perf_counter()
try:
    report = run_monitor(Params(), [sys.argv[1]], progress=lambda _: None)
    passed = report.passed
except GateFailed:
    passed = False
seconds = time.perf_counter() - started
own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": seconds, "parent_rss_kb": own, "largest_worker_rss_kb": workers, "passed": passed}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/monitor_scale.json")
    parser.add_argument("--sizes", default="100000,300000,1000000")
    args = parser.parse_args()
    out = Path(args.out).resolve()
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    runs = []
    with tempfile.TemporaryDirectory(prefix="toolkit-monitor-scale-") as tmp:
        os.chdir(tmp)
        released_project(Path(tmp))
        for n in (int(size) for size in args.sizes.split(",")):
            log = write_logs(Path(f"logs/{n}.jsonl"), iter_production_logs(seed=7, days=10, per_day=n // 10))
            result = subprocess.run([sys.executable, "-c", RUN, str(log)], capture_output=True, text=True, check=True)
            measured = json.loads(result.stdout.strip().splitlines()[-1])
            runs.append({"records": n, "log_mb": round(log.stat().st_size / 2**20, 1),
                         "seconds": round(measured["seconds"], 1),
                         "records_per_s": round(n / measured["seconds"]),
                         "peak_rss_gb_parent": round(measured["parent_rss_kb"] / 2**20, 2),
                         "peak_rss_gb_largest_worker": round(measured["largest_worker_rss_kb"] / 2**20, 2),
                         "passed": measured["passed"]})
            print(runs[-1], flush=True)
            log.unlink()
    write_result(out, {"machine": machine(), "started": started, "runs": runs})


if __name__ == "__main__":
    main()
