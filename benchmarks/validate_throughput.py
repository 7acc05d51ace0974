"""Throughput and peak memory of the validate stage with every check on, on synthetic chat records.

    .venv/bin/python benchmarks/validate_throughput.py [--data tickets|varied] [--sizes 10000 100000]
                                                       [--out benchmarks/results/validate_throughput.json]

Each size runs in its own process (its peak RSS is the figure) and a fresh temporary project:
--data tickets: support tickets from `toolkit data synth`'s generator (templated text; names in
every sign-off, so PII redaction works on most records); --data varied: untemplated multi-turn
chat with a long-tailed length distribution (toolkit.data.synth_varied), about as many words per
record as a ticket (median 8 words a turn, 1-4 exchanges); --data long-chat: the same with a median
of 40 words a turn (about seven times the text); the builtin tokenizer and chat
template, an evaluation suite for decontamination, and the default data parameters
(GX suite, token lengths, exact + MinHash near dedup, PII redaction, 13-gram decontamination
against a 500-item suite into which 20 training tickets were leaked,
held-out overlap, injection patterns, class balance, HTML report). Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

from toolkit.config import Params  # noqa: E402
from toolkit.data.synth import pretraining_corpus, support_ticket_records  # noqa: E402
from toolkit.data.synth_varied import varied_chat_records  # noqa: E402
from toolkit.data.validate import run_validate  # noqa: E402
from toolkit.train.builtin_base import build_tokenizer  # noqa: E402


def generate(data: str, size: int):
    """The records, generated 100,000 at a time (seeds 11, 12, ...) so a million never sit in memory."""
    if data == "tickets":   # a finite template space: a million distinct tickets do not exist
        yield from support_ticket_records(size, seed=11)
        return
    # varied: about as many words per record as a ticket (median 8 words a turn, 1-4 exchanges);
    # long-chat: median 40 words a turn, about seven times the text per record.
    for chunk, start in enumerate(range(0, size, 100_000)):
        yield from varied_chat_records(min(100_000, size - start), seed=11 + chunk,
                                       median_words=8 if data == "varied" else 40)


def run_size(size: int, tokenizer_dir: Path, root: Path, data: str) -> dict:
    project = root / f"n{size}"
    (project / "data").mkdir(parents=True)
    shutil.copytree(REPO / "policies", project / "policies")
    shutil.copy(REPO / "data/support_tickets.datasheet.yaml", project / "data/tickets.datasheet.yaml")
    leaked = []   # 20 training records spread over the file, leaked into the evaluation suite below
    with open(project / "data/tickets.jsonl", "w", encoding="utf-8") as out:
        for index, record in enumerate(generate(data, size)):
            out.write(json.dumps(record) + "\n")
            if index % max(1, size // 20) == 0 and len(leaked) < 20:
                leaked.append(record["messages"][-2]["content"])
    # An evaluation suite unlike the training data (help-centre pages), with 20 training tickets leaked into it.
    (project / "eval_suites/probe").mkdir(parents=True)
    pages = [item for item in pretraining_corpus(600, seed=99) if isinstance(item, str)][:480]
    with open(project / "eval_suites/probe/items.jsonl", "w", encoding="utf-8") as out:
        for text in pages + leaked:
            out.write(json.dumps({"input": text, "reference": "-"}) + "\n")
    # Varied chat has turns past data.max_turn_tokens in its long tail: set aside, as a user would.
    params = Params.model_validate({"data": {"path": "data/tickets.jsonl", "datasheet": "data/tickets.datasheet.yaml",
                                             "tokenizer": str(tokenizer_dir), "quarantine": data != "tickets"}})
    cwd = os.getcwd()
    os.chdir(project)
    try:
        started = time.perf_counter()
        report = run_validate(params, progress=lambda _: None)
        wall = time.perf_counter() - started
    finally:
        os.chdir(cwd)
    return {"records": size, "records_quarantined": report.records_quarantined,
            "wall_s": round(wall, 2), "records_per_s": round(size / wall),
            "us_per_record": round(wall / size * 1e6, 1),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
            "phases_s": report.timings_s, "records_out": report.records_out,
            "exact_duplicates": report.dedup.exact_duplicates, "near_duplicate_pairs": report.dedup.near_duplicate_pairs,
            "pii_redacted_records": report.pii.redacted_records,
            "contaminated_training_records": report.contamination.contaminated_training_records}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", choices=["tickets", "varied", "long-chat"], default="tickets")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--out", default=None, help="default: benchmarks/results/validate_throughput[_varied].json")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)   # a single size, in this process
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:   # after a warm-up of 1,000 records in this process (imports, Great Expectations' first use)
        root = Path(args.root)
        run_size(1000, root / "tokenizer", root / f"warm-up-{args.one}", args.data)
        print(json.dumps(run_size(args.one, root / "tokenizer", root, args.data)))
        return
    out = Path(args.out or f"benchmarks/results/validate_throughput{'' if args.data == 'tickets' else '_' + args.data.replace('-', '_')}.json")
    rows = []
    with tempfile.TemporaryDirectory(prefix="toolkit-validate-bench-") as tmp:
        root = Path(tmp)
        texts = [i if isinstance(i, str) else " ".join(m["content"] for m in i) for i in pretraining_corpus(4000, 1234)]
        build_tokenizer(texts, 1024).save_pretrained(root / "tokenizer")
        for size in args.sizes:
            done = subprocess.run([sys.executable, __file__, "--data", args.data, "--one", str(size), "--root", tmp],
                                  capture_output=True, text=True)
            if done.returncode:
                sys.exit(f"{size:,} records failed:\n{done.stderr[-3000:]}")
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"{size:,} records: {rows[-1]['wall_s']} s, peak RSS {rows[-1]['peak_rss_gb']} GB", flush=True)
    result = {"benchmark": "validate_throughput", "data": args.data,
              "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
              "date": time.strftime("%Y-%m-%d"), "command": "python benchmarks/validate_throughput.py " + " ".join(sys.argv[1:]),
              "results": rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    phases = list(rows[0]["phases_s"])
    print("| records | wall s | µs/record | peak RSS GB | " + " | ".join(phases) + " |")
    print("|---:|---:|---:|---:|" + "---:|" * len(phases))
    for row in rows:
        print(f"| {row['records']:,} | {row['wall_s']} | {row['us_per_record']} | {row['peak_rss_gb']} | "
              + " | ".join(f"{row['phases_s'].get(p, 0):.2f}" for p in phases) + " |")


if __name__ == "__main__":
    main()
