"""Synthetic production logs with known effects, and a registry with one release to compare them
with: what the monitoring tests (and benchmarks/monitor_false_alarms.py) run on."""

import datetime as dt
import gzip
import json
import random
import shutil
from pathlib import Path
from typing import Iterable, Iterator

from toolkit.files import sha256_file
from toolkit.registry import ledger as ledger_mod
from toolkit.registry.bundle import Bundle, Headline, ReleaseInfo

REPO = Path(__file__).resolve().parents[1]
PRODUCTS = ["Nova Watch", "Aero Kettle", "Lumen Lamp", "Pulse Router", "Echo Speaker", "Vista Camera"]
PROBLEMS = ["will not charge", "arrived broken", "charged me twice", "is late", "cannot log in", "keeps rebooting",
            "makes a noise", "lost my order"]
FILLER = ["please help", "this is urgent", "I tried restarting it", "order placed last week", "thanks in advance",
          "it worked yesterday", "my partner has the same issue", "the app shows an error"]
GERMAN = ["Mein Gerät funktioniert seit dem letzten Update nicht mehr und ich habe schon alles versucht",
          "Die Lieferung ist beschädigt angekommen und der Kundendienst antwortet seit Tagen nicht",
          "Ich wurde zweimal belastet und brauche dringend eine Rückerstattung für die doppelte Zahlung"]
SYSTEM = "You triage customer support tickets. Reply with JSON only."
RELEASE_JSON_VALID = 0.97     # the release's held-out value the logs are drawn around
RELEASE_ITEMS = 174


def user_text(rng: random.Random, german: bool = False) -> str:
    if german:
        return " ".join(rng.sample(GERMAN, 2))
    words = [f"My {rng.choice(PRODUCTS)} {rng.choice(PROBLEMS)}."] + rng.sample(FILLER, rng.randint(0, 3))
    return " ".join(words)


def answer(rng: random.Random, valid: bool) -> str:
    if not valid:
        return rng.choice(["Sorry, I cannot help with that ticket.", "category: billing", '{"category": "billing"'])
    return json.dumps({"category": rng.choice(["billing", "shipping", "technical", "account"]),
                       "priority": rng.choice(["low", "normal", "high"]), "product": rng.choice(PRODUCTS)})


def production_logs(seed: int, **effects) -> list[dict]:
    return list(iter_production_logs(seed, **effects))


def iter_production_logs(seed: int, days: int = 7, per_day: int = 400, start: str = "2026-11-02", release: str = "1",
                         effect_day: int | None = None, invalid_up: float = 0.0, rerouted: float = 0.05,
                         rerouted_after: float | None = None, german_after: bool = False) -> Iterator[dict]:
    """Records of `release`; from `effect_day` on: invalid JSON up by `invalid_up`, the re-route rate
    `rerouted_after`, and/or longer German inputs."""
    rng = random.Random(seed)
    first = dt.datetime.fromisoformat(start).replace(tzinfo=dt.timezone.utc)
    for day in range(days):
        effect = effect_day is not None and day >= effect_day
        valid_rate = RELEASE_JSON_VALID - (invalid_up if effect else 0.0)
        reroute_rate = rerouted_after if effect and rerouted_after is not None else rerouted
        for i in range(per_day):
            when = first + dt.timedelta(days=day, seconds=rng.randrange(86400))
            text = user_text(rng, german=german_after and effect)
            yield {"time": when.isoformat().replace("+00:00", "Z"), "release": release,
                   "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
                   "response": answer(rng, rng.random() < valid_rate),
                   "latency_ms": round(rng.uniform(80, 400), 1), "prompt_tokens": rng.randint(40, 90),
                   "completion_tokens": rng.randint(15, 30),
                   "feedback": {"rerouted": rng.random() < reroute_rate, "rating": rng.choice([3, 4, 5, 5])}}


def write_logs(path: Path, rows: Iterable[dict]) -> Path:
    """Rows written as they come (a generator of a million records never sits in memory)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return path


def training_rows(seed: int = 0, n: int = 900) -> list[dict]:
    rng = random.Random(seed)
    return [{"messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user_text(rng)},
                          {"role": "assistant", "content": answer(rng, True)}]} for _ in range(n)]


def released_project(root: Path, version: str = "1") -> Bundle:
    """A project folder (suites, policies, the training split) and a registry holding one release whose
    reports say what the release measured. Made by hand: the e2e tests monitor a real release."""
    for folder in ("policies", "eval_suites/heldout", "eval_suites/canary"):
        shutil.copytree(REPO / folder, root / folder, dirs_exist_ok=True)
    train = root / "artifacts/data/train.jsonl"
    train.parent.mkdir(parents=True, exist_ok=True)
    train.write_text("".join(json.dumps(row) + "\n" for row in training_rows()))
    bundle = Bundle(root / "registry/releases" / f"v{version}")
    bundle.reports.mkdir(parents=True)
    reports = {
        "eval_heldout": {"suite": "heldout", "n_items": RELEASE_ITEMS, "metrics": {
            "json_valid": {"adapter": RELEASE_JSON_VALID}, "ticket_schema": {"adapter": RELEASE_JSON_VALID},
            "field_accuracy": {"adapter": 0.9}}},
        "validate": {"records_out": 900, "pii": {"records_with_pii": 9}, "injection": {"flagged_records": 0},
                     "outputs": {"artifacts/data/train.jsonl": sha256_file(train)}},
        "cost": {"currency": "EUR", "inference": {"device": "CPU-2vCPU", "tokens_per_second": 300.0, "utilisation": 0.5,
                                                   "price_per_hour": 0.1, "self_hosted_monthly": 73.0}},
    }
    for name, body in reports.items():
        bundle.report(name).write_text(json.dumps(body))
    info = ReleaseInfo(version=version, created_at="2026-11-01T09:00:00+00:00", base_model="builtin-tiny",
                       base_model_path="artifacts/base", data_sha256="d" * 64, policy="default", gate_passed=True,
                       headline=Headline(metric="field_accuracy", base=0.0, adapter=0.9, delta=0.9))
    bundle.release_info.write_text(info.model_dump_json())
    bundle.manifest.write_text(json.dumps({"files": bundle.manifest_files()}))
    ledger_mod.append(root / "registry/ledger.jsonl", {**info.ledger_fields(), "manifest_sha256": sha256_file(bundle.manifest),
                                                       "bundle": f"releases/v{version}"})
    return bundle


def rollout_logs(seed: int, start: dt.datetime, days: int = 2, per_day: int = 300, new: str = "2", old: str = "1",
                 traffic: float = 0.0, invalid_up: float = 0.0, rerouted_new: float = 0.05,
                 categories: list[str] | None = None) -> list[dict]:
    """Requests during a rollout from `start` on. Shadow (`traffic` 0): every request is answered by both
    releases under one request_id (the old answer is served, the new one only logged). A split stage:
    each request goes to the new release with probability `traffic`. The new release answers invalid
    JSON `invalid_up` more often than the old one; `categories` draws its answers' categories from that
    list instead of all four."""
    rng = random.Random(seed)
    rows = []
    for day in range(days):
        for i in range(per_day):
            when = start + dt.timedelta(days=day, seconds=rng.randrange(1, 86400))
            text = user_text(rng)
            request_id = f"req-{seed}-{day}-{i}"
            sides = [old, new] if traffic == 0 else [new if rng.random() < traffic else old]
            for release in sides:
                valid = rng.random() < RELEASE_JSON_VALID - (invalid_up if release == new else 0.0)
                response = answer(rng, valid)
                if release == new and categories and valid:
                    response = json.dumps({**json.loads(response), "category": rng.choice(categories)})
                served = traffic > 0 or release == old        # a shadow answer reaches no user: no feedback
                rows.append({"time": when.isoformat(), "release": release, "request_id": request_id,
                             "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}],
                             "response": response, "latency_ms": round(rng.uniform(80, 400), 1),
                             "prompt_tokens": rng.randint(40, 90), "completion_tokens": rng.randint(15, 30),
                             **({"feedback": {"rerouted": rng.random() < (rerouted_new if release == new else 0.05)}}
                                if served else {})})
    return rows
