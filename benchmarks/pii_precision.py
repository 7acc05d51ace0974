"""Precision and recall of each personal-data detector on the labelled set of tests/pii_eval_set.py
(Faker data in four locales for recall, hand-written hard negatives for precision).

    .venv/bin/python benchmarks/pii_precision.py [--per-kind 200] [--before REV] [--out benchmarks/results/pii.json]

--before REV also scores toolkit/data/pii.py as it was at git revision REV (e.g. the detectors
before context scoring), on the same texts. --presidio scores Presidio's pattern recognizers (email,
phone, IBAN, card, IP; every result kept, as without the spaCy context enhancer, whose model is not
on the package registries): `pip install --target DIR presidio-analyzer` and put DIR on PYTHONPATH.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))
from pii_eval_set import HARD_NEGATIVES, LOCALES, labelled_texts, score  # noqa: E402

REGIONS = ("DE", "FR", "GB", "US")


def scanner_at(revision: str | None):
    if revision is None:
        from toolkit.data.pii import PiiScanner
    else:
        source = subprocess.run(["git", "show", f"{revision}:toolkit/data/pii.py"], cwd=REPO, check=True,
                                capture_output=True, text=True).stdout
        path = Path(tempfile.mkdtemp()) / "pii_before.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("pii_before", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["pii_before"] = module      # dataclasses look their module up while it loads
        spec.loader.exec_module(module)
        PiiScanner = module.PiiScanner
    return PiiScanner(phone_regions=REGIONS, first_names_file=REPO / "policies/pii/first_names.txt")


def presidio_scanner():
    """Presidio's pattern recognizers behind the same `find` interface."""
    import logging
    from dataclasses import dataclass

    from presidio_analyzer.predefined_recognizers import (CreditCardRecognizer, EmailRecognizer, IbanRecognizer,
                                                          IpRecognizer, PhoneRecognizer)

    logging.disable(logging.CRITICAL)    # the email recognizer tries to fetch the public suffix list
    kinds = {"EMAIL_ADDRESS": "email", "PHONE_NUMBER": "phone", "IBAN_CODE": "iban", "CREDIT_CARD": "credit_card",
             "IP_ADDRESS": "ip_address"}
    recognizers = [EmailRecognizer(), PhoneRecognizer(supported_regions=REGIONS), IbanRecognizer(),
                   CreditCardRecognizer(), IpRecognizer()]

    @dataclass
    class Found:
        kind: str
        start: int
        end: int
        value: str

    class Scanner:
        @staticmethod
        def find(text):
            return [Found(kinds[r.entity_type], r.start, r.end, text[r.start:r.end]) for recognizer in recognizers
                    for r in recognizer.analyze(text, recognizer.supported_entities, None) or []
                    if r.entity_type in kinds]
    return Scanner()


def measure(scanner, cases) -> dict:
    started = time.perf_counter()
    result = score(scanner.find, cases)
    negatives = [(text, [(f.kind, f.value) for f in scanner.find(text)]) for text in HARD_NEGATIVES]
    return {"detectors": result, "hard_negative_texts_flagged": sum(1 for _, found in negatives if found),
            "hard_negative_findings": [{"text": text, "findings": [kind for kind, _ in found]}
                                       for text, found in negatives if found],
            "wall_s": round(time.perf_counter() - started, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--per-kind", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--before", help="a git revision whose toolkit/data/pii.py to score as well")
    parser.add_argument("--presidio", action="store_true", help="also score Presidio's pattern recognizers")
    parser.add_argument("--out", default="benchmarks/results/pii.json")
    args = parser.parse_args()
    cases = labelled_texts(seed=args.seed, per_kind=args.per_kind)
    result = {"set": {"texts": len(cases), "positives_per_detector": args.per_kind, "locales": list(LOCALES),
                      "hard_negatives": len(HARD_NEGATIVES), "seed": args.seed},
              "now": measure(scanner_at(None), cases),
              "now_bare_values": measure(scanner_at(None), labelled_texts(seed=args.seed, per_kind=args.per_kind,
                                                                           bare=True))}
    if args.before:
        result["before"] = {"revision": args.before, **measure(scanner_at(args.before), cases)}
    if args.presidio:
        from importlib.metadata import version

        result["presidio"] = {"version": version("presidio-analyzer"), **measure(presidio_scanner(), cases)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print("| Detector | Precision | Recall | Recall, value alone |" + (" Before: precision | Before: recall |" if args.before else ""))
    print("|---|---:|---:|---:|" + ("---:|---:|" if args.before else ""))
    for kind, now in result["now"]["detectors"].items():
        before = result.get("before", {}).get("detectors", {}).get(kind)
        bare = result["now_bare_values"]["detectors"][kind]
        print(f"| {kind} | {now['precision']:.3f} | {now['recall']:.3f} | {bare['recall']:.3f} |"
              + (f" {before['precision']:.3f} | {before['recall']:.3f} |" if before else ""))
    print(f"hard-negative texts with a finding: {result['now']['hard_negative_texts_flagged']} of {len(HARD_NEGATIVES)}"
          + (f" (before: {result['before']['hard_negative_texts_flagged']})" if args.before else ""))
    if args.presidio:
        presidio = result["presidio"]
        print(f"Presidio {presidio['version']}: " + ", ".join(f"{k} {v['precision']:.3f}/{v['recall']:.3f}"
                                                          for k, v in presidio["detectors"].items() if k != "name")
              + f"; hard-negative texts with a finding: {presidio['hard_negative_texts_flagged']}")


if __name__ == "__main__":
    main()
