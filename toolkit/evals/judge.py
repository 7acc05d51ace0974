"""LLM-as-judge tier: an Anthropic model compares base and adapter answers pairwise against a rubric.

Each item is asked in both orders (adapter as A, then as B) to cancel position bias; answers the
two orders disagree on count as ties, and the share that agree is reported as position
consistency. Requests run concurrently under a rate limit; 429/5xx/timeouts are retried with the
SDK's backoff; every valid verdict is cached on disk under a hash of (judge model, rubric, prompt,
answers), so a re-run asks nothing it has asked before and an interrupted run keeps what it got.
A reply that is not the JSON verdict asked for is retried once and then recorded as invalid, never
guessed. Without ANTHROPIC_API_KEY the tier is reported as skipped. The key is read by the SDK
from the environment and is never written anywhere.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from toolkit import headline
from toolkit.config import Params
from toolkit.errors import ConfigError, MissingInputError, ServiceError
from toolkit.files import atomic_write_json, atomic_write_jsonl, parse_yaml, read_jsonl, remove_outputs, sha256_text
from toolkit.layout import EVAL_DIR, report_path
from toolkit.reports import JudgeReport, Rate, digests, write_report

SIDES = {"A": 0, "B": 1}
_VERDICT = re.compile(r"\{.*\}", re.DOTALL)


@dataclass(frozen=True)
class Rubric:
    name: str
    instructions: str
    criteria: tuple[str, ...]

    def system_prompt(self) -> str:
        criteria = "\n".join(f"{i}. {c}" for i, c in enumerate(self.criteria, start=1))
        return (f"{self.instructions.strip()}\n\nCriteria:\n{criteria}\n\n"
                'Reply with one JSON object and nothing else: {"winner": "A" | "B" | "tie", "reason": "<one sentence>"}')


def load_rubric(path: str) -> Rubric:
    file = Path(path)
    if not file.is_file():
        raise ConfigError("judge rubric not found", file="params.yaml", key="evaluate.judge.rubric")
    raw = parse_yaml(file)
    criteria = raw.get("criteria") if isinstance(raw, dict) else None
    if not isinstance(criteria, list) or not criteria or not all(isinstance(c, str) and c.strip() for c in criteria):
        raise ConfigError("expected a non-empty list of criteria (specific, checkable sentences)", file=path, key="criteria")
    if not isinstance(raw.get("instructions"), str) or not raw["instructions"].strip():
        raise ConfigError("missing", file=path, key="instructions")
    return Rubric(str(raw.get("name") or file.stem), raw["instructions"], tuple(c.strip() for c in criteria))


def user_prompt(item: dict, first: str, second: str) -> str:
    prompt = item["input"]
    if isinstance(prompt, list):
        prompt = "\n".join(f"{m['role']}: {m['content']}" for m in prompt if m["role"] != "system")
    return (f"Request:\n{prompt}\n\nReference answer:\n{item.get('reference', '')}\n\n"
            f"Answer A:\n{first}\n\nAnswer B:\n{second}")


def parse_verdict(text: str) -> dict | None:
    match = _VERDICT.search(text or "")
    if not match:
        return None
    try:
        verdict = json.loads(match.group())
    except json.JSONDecodeError:
        return None
    if not isinstance(verdict, dict) or verdict.get("winner") not in ("A", "B", "tie"):
        return None
    return {"winner": verdict["winner"], "reason": str(verdict.get("reason", ""))[:500]}


class RateLimiter:
    """At most `per_minute` request starts per minute across threads (0: unlimited)."""

    def __init__(self, per_minute: float):
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self.lock, self.next_start = threading.Lock(), 0.0

    def wait(self) -> None:
        if not self.interval:
            return
        with self.lock:
            now = time.monotonic()
            start = max(now, self.next_start)
            self.next_start = start + self.interval
        time.sleep(max(0.0, start - now))


class Judge:
    def __init__(self, client, model: str, rubric: Rubric, cache_dir: Path, max_tokens: int, per_minute: float):
        self.client, self.model, self.rubric = client, model, rubric
        self.cache_dir, self.max_tokens, self.limiter = cache_dir, max_tokens, RateLimiter(per_minute)
        self.system = rubric.system_prompt()
        self.lock = threading.Lock()
        self.requests = self.cache_hits = self.input_tokens = self.output_tokens = 0

    def cache_key(self, prompt: str) -> str:
        return sha256_text(json.dumps([self.model, self.system, prompt]))

    def cached(self, prompt: str) -> dict | None:
        """The verdict cached for this prompt (counted as a hit), or None."""
        path = self.cache_dir / f"{self.cache_key(prompt)}.json"
        if not path.is_file():
            return None
        with self.lock:
            self.cache_hits += 1
        return json.loads(path.read_text(encoding="utf-8"))["verdict"]

    def cache(self, prompt: str, verdict: dict, usage: dict) -> None:
        atomic_write_json(self.cache_dir / f"{self.cache_key(prompt)}.json",
                          {"model": self.model, "verdict": verdict, "usage": usage})

    def verdict(self, prompt: str, breaker: CircuitBreaker | None = None) -> dict:
        """{"winner", "reason"} or {"winner": "invalid"}; API errors propagate after the SDK's retries."""
        cached = self.cached(prompt)
        if cached is not None:
            return cached
        for _ in range(2):  # a malformed reply is asked once more, then recorded as invalid
            self.limiter.wait()
            client = breaker.client_for(self.client) if breaker else self.client
            try:
                message = client.messages.create(model=self.model, max_tokens=self.max_tokens, system=self.system,
                                                 messages=[{"role": "user", "content": prompt}])
            except Exception as exc:
                if breaker:
                    breaker.failed(exc)
                raise
            if breaker:
                breaker.succeeded()
            text = "".join(getattr(block, "text", "") for block in message.content)
            with self.lock:
                self.requests += 1
                self.input_tokens += message.usage.input_tokens
                self.output_tokens += message.usage.output_tokens
            verdict = parse_verdict(text)
            if verdict:
                self.cache(prompt, verdict, {"input_tokens": message.usage.input_tokens,
                                             "output_tokens": message.usage.output_tokens})
                return verdict
        return {"winner": "invalid", "reason": "the judge's reply was not the JSON verdict asked for (twice)"}


class CircuitOpen(Exception):
    """The judge's endpoint kept refusing connections: the remaining requests are not sent."""


class CircuitBreaker:
    """Stops the tier after `limit` consecutive connection failures. After the first one, requests go
    without the SDK's retries, so a dead endpoint costs one retry schedule, not one per request."""

    def __init__(self, limit: int):
        self.limit, self.consecutive, self.lock = limit, 0, threading.Lock()

    @property
    def open(self) -> bool:
        return self.limit > 0 and self.consecutive >= self.limit

    def client_for(self, client):
        if self.open:
            raise CircuitOpen(f"{self.consecutive} consecutive connection failures")
        return client.with_options(max_retries=0) if self.consecutive else client

    def failed(self, exc: Exception) -> None:
        from anthropic import APIConnectionError   # APITimeoutError is one too

        if isinstance(exc, APIConnectionError):
            with self.lock:
                self.consecutive += 1

    def succeeded(self) -> None:
        with self.lock:
            self.consecutive = 0


class BatchJudge(Judge):
    """The same verdicts through the Message Batches API (about half the price, results within 24 h):
    every prompt not in the cache goes into one batch; malformed replies go into a second one."""

    def __init__(self, *args, poll_s: float = 30.0, **kwargs):
        super().__init__(*args, **kwargs)
        self.poll_s = poll_s

    def verdicts(self, prompts: dict) -> tuple[dict, list[str]]:
        results, pending = {}, {}
        for key, prompt in prompts.items():
            cached = self.cached(prompt)
            if cached is not None:
                results[key] = cached
            else:
                pending[key] = prompt
        failures: list[str] = []
        for _ in range(2):  # the second round re-asks malformed replies once
            if not pending:
                break
            replies, errors = self._run_batch(list(pending.values()))
            failures = errors
            retry = {}
            for (key, prompt), reply in zip(pending.items(), replies):
                if reply is None:
                    continue
                verdict = parse_verdict(reply["text"])
                if verdict:
                    self.cache(prompt, verdict, reply["usage"])
                    results[key] = verdict
                else:
                    retry[key] = prompt
            pending = retry
        for key in pending:
            results[key] = {"winner": "invalid", "reason": "the judge's reply was not the JSON verdict asked for (twice)"}
        return results, failures

    def _run_batch(self, prompts: list[str]) -> tuple[list[dict | None], list[str]]:
        requests = [{"custom_id": f"r{i}", "params": {"model": self.model, "max_tokens": self.max_tokens, "system": self.system,
                                                      "messages": [{"role": "user", "content": prompt}]}}
                    for i, prompt in enumerate(prompts)]
        batch = self.client.messages.batches.create(requests=requests)
        while batch.processing_status != "ended":
            time.sleep(self.poll_s)
            batch = self.client.messages.batches.retrieve(batch.id)
        replies: list[dict | None] = [None] * len(prompts)
        errors = []
        for entry in self.client.messages.batches.results(batch.id):
            index = int(entry.custom_id[1:])
            if entry.result.type != "succeeded":
                errors.append(f"{entry.custom_id}: {entry.result.type}")
                continue
            message = entry.result.message
            self.requests += 1
            self.input_tokens += message.usage.input_tokens
            self.output_tokens += message.usage.output_tokens
            replies[index] = {"text": "".join(getattr(b, "text", "") for b in message.content),
                              "usage": {"input_tokens": message.usage.input_tokens, "output_tokens": message.usage.output_tokens}}
        return replies, errors


def _preferred(adapter_first: dict, base_first: dict) -> tuple[str, str]:
    """Who each order preferred: adapter | base | tie (A is the adapter in the first, the base in the second)."""
    return ({"A": "adapter", "B": "base", "tie": "tie"}[adapter_first["winner"]],
            {"A": "base", "B": "adapter", "tie": "tie"}[base_first["winner"]])


def combine(adapter_first: dict, base_first: dict) -> str:
    """adapter | base | tie | invalid, from the two orders; orders that disagree make a tie."""
    if "invalid" in (adapter_first["winner"], base_first["winner"]):
        return "invalid"
    one, two = _preferred(adapter_first, base_first)
    return one if one == two else "tie"


def win_rate(outcomes: list[str], samples: int, confidence: float, seed: int) -> Rate:
    """(wins + ties / 2) / n with a bootstrap interval over items."""
    scores = np.array([{"adapter": 1.0, "tie": 0.5, "base": 0.0}[o] for o in outcomes])
    rng = np.random.default_rng(seed)
    means = scores[rng.integers(0, len(scores), size=(samples, len(scores)))].mean(axis=1)
    tail = (1 - confidence) / 2
    return Rate(point=float(scores.mean()), ci_low=float(np.quantile(means, tail)), ci_high=float(np.quantile(means, 1 - tail)))


def cohen_kappa(a: list[str], b: list[str]) -> float:
    labels = sorted(set(a) | set(b))
    n = len(a)
    observed = sum(x == y for x, y in zip(a, b)) / n
    expected = sum((a.count(label) / n) * (b.count(label) / n) for label in labels)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def run_judge(params: Params, client=None) -> JudgeReport:
    cfg = params.evaluate.judge
    items_file = EVAL_DIR / f"{cfg.tier}_items.jsonl"
    out_file = EVAL_DIR / "judge_items.jsonl"
    remove_outputs(report_path("eval_judge"), headline.path("eval_judge"), out_file)   # the verdicts themselves stay cached
    if not items_file.is_file():
        raise MissingInputError(f"{items_file}: no per-item outputs; run `toolkit evaluate {cfg.tier}` first")
    rubric = load_rubric(cfg.rubric)
    common = dict(params={"evaluate.judge": cfg.model_dump(mode="json")}, judge_model=cfg.model)
    if client is None and not os.environ.get("ANTHROPIC_API_KEY"):
        atomic_write_jsonl(out_file, [])
        report = JudgeReport(**common, inputs=digests([items_file, Path(cfg.rubric)]), outputs=digests([out_file]),
                             skipped=True, skip_reason="ANTHROPIC_API_KEY is not set; the judge tier did not run")
        write_report(report, report_path("eval_judge"))
        return report
    if client is None:
        from anthropic import Anthropic

        client = Anthropic(base_url=cfg.base_url, max_retries=cfg.max_retries, timeout=cfg.timeout_s)
    items = list(read_jsonl(items_file))[: cfg.max_items]
    prompts = {(i, order): user_prompt(item, *((item["adapter_output"], item["base_output"]) if order == "adapter_first"
                                              else (item["base_output"], item["adapter_output"])))
               for i, item in enumerate(items) for order in ("adapter_first", "base_first")}
    if cfg.use_batches:
        judge = BatchJudge(client, cfg.model, rubric, Path(cfg.cache_dir), cfg.max_tokens, cfg.requests_per_minute,
                           poll_s=cfg.batch_poll_s)
        verdicts, failures = judge.verdicts(prompts)
    else:
        judge = Judge(client, cfg.model, rubric, Path(cfg.cache_dir), cfg.max_tokens, cfg.requests_per_minute)
        breaker = CircuitBreaker(cfg.max_connection_failures)
        verdicts, failures = _concurrently(judge, prompts, cfg.concurrency, breaker)
        if breaker.open:
            raise ServiceError(f"judge: stopped after {breaker.consecutive} consecutive connection failures to "
                               f"{cfg.base_url or 'the Anthropic API'} (evaluate.judge.max_connection_failures); "
                               f"{len(verdicts)} of {len(prompts)} verdict(s) done and cached in {cfg.cache_dir}; "
                               "run again to continue from there")
    if failures or len(verdicts) < len(prompts):
        failures = failures or ["no result returned"]
        raise ServiceError(f"judge: {len(prompts) - len(verdicts)} of {len(prompts)} request(s) failed after {cfg.max_retries} retries "
                           f"({failures[0]}); the {len(verdicts)} verdict(s) received are cached in {cfg.cache_dir}; "
                           "run again to continue from there")

    rows, outcomes = [], []
    for i, item in enumerate(items):
        first, second = verdicts[(i, "adapter_first")], verdicts[(i, "base_first")]
        outcome = combine(first, second)
        rows.append({"index": item.get("index", i), "adapter_first": first, "base_first": second, "outcome": outcome})
        outcomes.append(outcome)
    atomic_write_jsonl(out_file, rows)
    valid = [o for o in outcomes if o != "invalid"]
    consistent = sum(1 for r in rows if r["outcome"] != "invalid"
                     and len(set(_preferred(r["adapter_first"], r["base_first"]))) == 1)
    kappa = _human_agreement(cfg.human_spotcheck, rows)
    report = JudgeReport(
        **common, inputs=digests([items_file, Path(cfg.rubric)]), outputs=digests([out_file]),
        n_pairs=len(items), wins=valid.count("adapter"), ties=valid.count("tie"), losses=valid.count("base"),
        invalid=len(outcomes) - len(valid),
        win_rate=win_rate(valid, cfg.bootstrap_samples, cfg.confidence, params.seed) if valid else None,
        position_consistency=consistent / len(valid) if valid else None, human_agreement_kappa=kappa,
        usage={"requests": judge.requests, "cache_hits": judge.cache_hits, "input_tokens": judge.input_tokens,
               "output_tokens": judge.output_tokens, **_priced(params, judge)},
    )
    write_report(report, report_path("eval_judge"))
    return report


def _priced(params: Params, judge: Judge) -> dict:
    """The judge's token cost this run at the price catalog's API price (cached verdicts cost nothing)."""
    from toolkit.finops.catalog import load_catalog

    catalog = load_catalog(params.finops.catalog)
    price = catalog.apis.get(judge.model)
    if price is None:
        return {"cost": None, "currency": catalog.currency, "price": f"{judge.model} is not in the price catalog"}
    cost = price.per_request(judge.input_tokens, judge.output_tokens)
    if params.evaluate.judge.use_batches:
        cost /= 2  # the Message Batches API is billed at half the standard price
    return {"cost": cost, "currency": catalog.currency, "price": f"{price.source} ({price.date})"}


def _concurrently(judge: Judge, prompts: dict, concurrency: int,
                  breaker: CircuitBreaker | None = None) -> tuple[dict, list[str]]:
    verdicts, failures = {}, []
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = {pool.submit(judge.verdict, prompt, breaker): key for key, prompt in prompts.items()}
        for future in as_completed(futures):
            try:
                verdicts[futures[future]] = future.result()
            except CircuitOpen:
                continue
            except Exception as exc:  # the SDK gave up after its retries (5xx, 429, timeouts, connection)
                failures.append(f"{type(exc).__name__}: {exc}"[:300])
            if breaker is not None and breaker.open:
                for pending in futures:
                    pending.cancel()   # not yet started: never sent
    return verdicts, failures


def _human_agreement(path: str | None, rows: list[dict]) -> float | None:
    """Cohen's kappa between the judge and a human_spotcheck file ({"index", "verdict"} per line)."""
    if not path or not Path(path).is_file():
        return None
    judged = {row["index"]: row["outcome"] for row in rows if row["outcome"] != "invalid"}
    pairs = []
    for line_no, entry in enumerate(read_jsonl(path), start=1):
        if entry.get("verdict") not in ("adapter", "base", "tie"):
            raise ConfigError(f"verdict must be adapter, base or tie, got {entry.get('verdict')!r}", file=path, line=line_no)
        if entry.get("index") in judged:
            pairs.append((judged[entry["index"]], entry["verdict"]))
    return cohen_kappa([a for a, _ in pairs], [b for _, b in pairs]) if pairs else None
