"""The tampering table: each attack of the test suite against a signed and an unsigned registry, and
the time `toolkit verify` takes on a signed bundle.

    .venv/bin/python benchmarks/tampering_table.py --project PATH [--out benchmarks/results/tampering.json]

PATH is a project after a completed `dvc repro` (a copy is used; nothing in it changes). Without
--project a fresh copy of this repository is made and `dvc repro` runs first (about 7 minutes).
The attacks are those of tests/governance/test_signed_release.py and tests/governance/test_release.py; the attacker can
write the whole registry (bundles, ledger, keyring) but does not hold the private key.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "governance"))
from conftest import copy_project, run_in  # noqa: E402
from test_signed_release import TAMPERING, _flip, _key, card_figure_with_regenerated_manifest  # noqa: E402


def report_byte_flipped(registry, keys):
    _flip(registry / "releases/v1/reports/train.json", 5)


def file_deleted(registry, keys):
    (registry / "releases/v1/datasheet.yaml").unlink()


def ledger_reordered(registry, keys):
    lines = (registry / "ledger.jsonl").read_text().splitlines()
    (registry / "ledger.jsonl").write_text("\n".join(lines[::-1]) + "\n")


ATTACKS = [
    ("adapter byte flipped", TAMPERING[0][1], True),
    ("report byte flipped", report_byte_flipped, True),
    ("bundle file deleted", file_deleted, True),
    ("ledger entry edited", TAMPERING[1][1], True),
    ("ledger entry deleted", TAMPERING[2][1], True),
    ("ledger entries reordered", ledger_reordered, True),
    ("card figure changed, manifest regenerated", card_figure_with_regenerated_manifest, True),
    ("bundles v1 and v2 swapped", TAMPERING[3][1], True),
    *[(name, attack, "signed" not in name and "signature" not in name) for name, attack, _ in TAMPERING[4:]],
]


def verify(project: Path, registry: Path, *extra: str) -> dict:
    started = time.perf_counter()
    result = run_in(project, "toolkit", "verify", str(registry / "releases/v1"), "--ledger",
                    str(registry / "ledger.jsonl"), *extra)
    failed = sorted({line.split("]")[1].split(":")[0].strip() for line in result.stdout.splitlines()
                     if line.startswith("[FAIL]")})
    return {"exit": result.returncode, "caught": result.returncode == 1, "failed_checks": failed,
            "seconds": round(time.perf_counter() - started, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--project", type=Path)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/tampering.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tampering-"))
    source = args.project
    if source is None:
        source = copy_project(work / "source")
        run_in(source, "dvc", "repro", check=True)
    projects = {}
    for kind in ("signed", "unsigned"):
        project = work / kind
        shutil.copytree(source, project, symlinks=True)
        shutil.rmtree(project / "registry/releases", ignore_errors=True)
        shutil.rmtree(project / "registry/keys", ignore_errors=True)
        (project / "registry/ledger.jsonl").write_text("")
        projects[kind] = project
    keys_dir = work / "keys"
    keys_dir.mkdir()
    private, public = _key(projects["signed"], keys_dir, "release")
    other, other_public = _key(projects["signed"], keys_dir, "other")
    other_public.unlink()
    release_s = []
    for kind, env in (("signed", {"TOOLKIT_SIGNING_KEY": str(private)}), ("unsigned", {})):
        for _ in range(2):
            started = time.perf_counter()
            run_in(projects[kind], "toolkit", "release", check=True, env=env)
            release_s.append((kind, round(time.perf_counter() - started, 2)))

    rows = []
    for name, attack, applies_unsigned in ATTACKS:
        row = {"attack": name}
        registry = work / "attacked-signed" / "registry"
        shutil.rmtree(registry.parent, ignore_errors=True)
        shutil.copytree(projects["signed"] / "registry", registry)
        attack(registry, {"other": other})
        row["signed, --trusted-key"] = verify(projects["signed"], registry, "--trusted-key", str(public))
        if applies_unsigned:
            registry = work / "attacked-unsigned" / "registry"
            shutil.rmtree(registry.parent, ignore_errors=True)
            shutil.copytree(projects["unsigned"] / "registry", registry)
            attack(registry, {"other": other})
            row["unsigned, no key"] = verify(projects["unsigned"], registry)
            row["unsigned, --deep"] = verify(projects["unsigned"], registry, "--deep")
        rows.append(row)
        print(name, {k: (v["caught"], v["failed_checks"]) for k, v in row.items() if k != "attack"}, flush=True)

    # A bundle signed by a key the auditor does not trust.
    untrusted = work / "untrusted"
    shutil.copytree(projects["unsigned"], untrusted, symlinks=True)
    shutil.rmtree(untrusted / "registry/releases")
    (untrusted / "registry/ledger.jsonl").write_text("")
    run_in(untrusted, "toolkit", "release", check=True, env={"TOOLKIT_SIGNING_KEY": str(other)})
    rows.append({"attack": "bundle signed by an untrusted key",
                 "signed, --trusted-key": verify(untrusted, untrusted / "registry", "--trusted-key", str(public))})

    timings = {}
    for label, extra in (("verify --trusted-key", ()), ("verify --trusted-key --deep", ("--deep",))):
        runs = [verify(projects["signed"], projects["signed"] / "registry", "--trusted-key", str(public), *extra)
                for _ in range(3)]
        assert not any(r["caught"] for r in runs), runs
        timings[label] = {"median_s": statistics.median(r["seconds"] for r in runs), "runs_s": [r["seconds"] for r in runs]}
    signed_rows = [r["signed, --trusted-key"] for r in rows]
    result = {
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine()},
        "release_s": release_s,
        "rows": rows,
        "caught_signed": f"{sum(r['caught'] for r in signed_rows)}/{len(signed_rows)}",
        "verify_time": timings,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in ("caught_signed", "verify_time", "release_s")}, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
