"""Judge throughput: concurrent vs sequential requests through the real anthropic SDK against a
loopback server that answers every request after 100 ms (an API round trip).

    .venv/bin/python benchmarks/judge_throughput.py [--items 50] [--latency 0.1]

Each item is asked in both orders, so 50 items are 100 requests. Caching is off (a fresh cache
folder per run), so every run makes every request.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from anthropic_stub import AnthropicStub  # noqa: E402
from toolkit.config import Params  # noqa: E402
from toolkit.evals.judge import run_judge  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--out", default="benchmarks/results/judge_throughput.json")
    args = parser.parse_args()
    os.environ["ANTHROPIC_API_KEY"] = "sk-benchmark-not-a-real-key"
    rows = {}
    with tempfile.TemporaryDirectory() as tmp, AnthropicStub() as stub:
        stub.state.latency_s = args.latency
        root = Path(tmp)
        (root / "artifacts/eval").mkdir(parents=True)
        with open(root / "artifacts/eval/heldout_items.jsonl", "w") as out:
            for i in range(args.items):
                out.write(json.dumps({"index": i, "input": f"ticket {i}", "reference": "r",
                                      "base_output": f"weak {i}", "adapter_output": f"GOOD {i}"}) + "\n")
        cwd = os.getcwd()
        os.chdir(root)
        try:
            for concurrency in (1, 8):
                params = Params.model_validate({"evaluate": {"judge": {
                    "base_url": stub.url, "concurrency": concurrency, "max_items": args.items,
                    "rubric": str(REPO / "eval_suites/judge/rubric.yaml"), "cache_dir": f"cache-{concurrency}",
                    "human_spotcheck": None}}})
                started = time.perf_counter()
                report = run_judge(params)
                wall = time.perf_counter() - started
                assert report.usage["requests"] == 2 * args.items and report.wins == args.items
                rows[concurrency] = {"requests": report.usage["requests"], "wall_s": round(wall, 2),
                                     "requests_per_s": round(report.usage["requests"] / wall, 1)}
        finally:
            os.chdir(cwd)
    speedup = rows[1]["wall_s"] / rows[8]["wall_s"]
    result = {"benchmark": "judge_throughput", "latency_s": args.latency, "items": args.items,
              "sequential": rows[1], "concurrency_8": rows[8], "speedup": round(speedup, 2)}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"sequential: {rows[1]['wall_s']} s ({rows[1]['requests_per_s']} req/s); concurrency 8: {rows[8]['wall_s']} s "
          f"({rows[8]['requests_per_s']} req/s); speedup {speedup:.1f}x")


if __name__ == "__main__":
    main()
