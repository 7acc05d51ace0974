"""The validate stage: the data gate that runs before any compute is spent.

In order: read the file in any supported layout into canonical records; render each with the chat
template and count tokens; run the Great Expectations suite; scan for personal data; then set
bad records aside (quarantine) or stop (exit 2, naming file, line and field). On the good records:
drop exact duplicates, find near duplicates, drop records that overlap an evaluation suite, split
by content hash keeping related records together, check the held-out split for overlap, flag
prompt-injection patterns and measure class balance. Writes canonical (and, with PII redaction,
redacted) train / validation / held-out files, a JSON report the gate reads and an HTML report for
people. Every record in is accounted for out: kept, quarantined or dropped with its reason.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolkit import headline
from toolkit.config import Params
from toolkit.data import dedup, injection, pii, tool_calls
from toolkit.data.balance import class_balance
from toolkit.data.datasheet import load_datasheet
from toolkit.data.decontamination import OverlapChecker, evaluation_files_words
from toolkit.data.expectations import (SUITE_FOR_KIND, ExpectationOutcome, expectation_suite_path, load_expectations,
                                       run_expectations)
from toolkit.data.formats import Record, source_field
from toolkit.data.records import ParsedFile, Problem, load_records
from toolkit.data.splits import SPLITS, group_splits, groups
from toolkit.data.tokens import TokenCounts, count_tokens, load_tokenizer
from toolkit.errors import DataError
from toolkit.files import atomic_write_jsonl, atomic_write_text, remove_outputs, sha256_file
from toolkit.layout import DROPPED_FILE, QUARANTINE_FILE, SPLIT_FILES, VALIDATE_HTML, report_path
from toolkit.reports import (ContaminationSection, DedupSection, InjectionSection, PiiSection,
                             SuiteContamination, TokenSection, ToolCallSection, ValidateReport, digests, write_report)
from toolkit.templating import render

MAX_EXAMPLES = 20


def run_validate(params: Params, progress=print) -> ValidateReport:
    try:
        return _validate(params, progress)
    finally:
        gc.unfreeze()   # see gc.freeze() below


def _validate(params: Params, progress) -> ValidateReport:
    data = params.data
    remove_outputs(report_path("validate"), headline.path("validate"), VALIDATE_HTML, QUARANTINE_FILE, DROPPED_FILE, *SPLIT_FILES.values())
    data_path = Path(data.path)
    if not data_path.is_file():
        raise DataError("training data file not found (params.yaml data.path)", file=data.path)
    datasheet = load_datasheet(data.datasheet) if data.datasheet else None
    suites = evaluation_files_words(Path(data.decontamination.suites_dir))
    patterns = injection.load_patterns()
    tokenizer, tokenizer_source = load_tokenizer(params)

    phases = Phases(progress)
    phases.start("read")
    parsed = _read(data.path, data.format, progress)
    # The records live until the end: exempt them from the cyclic GC's full passes, which otherwise
    # walk every one of them again and again as later phases allocate (superlinear on 100k records).
    gc.freeze()
    phases.start("tokens")
    counts = count_tokens(parsed.records, tokenizer, tokenizer_source, params.train.max_length)
    screening = _screen(parsed, counts, params, phases)
    good = _set_aside(parsed, screening, data.quarantine)
    redacted = 0
    if data.pii.action == "redact":
        good, redacted = _redact(good, screening.pii_findings)

    phases.start("dedup")
    texts = {r.line: dedup.content_texts(r) for r in good}  # the words dedup and decontamination compare
    good, dedup_info = _drop_duplicates(good, params, texts)
    progress(f"validate: {dedup_info.exact} exact duplicate(s), {len(dedup_info.near_pairs)} near-duplicate pair(s)")
    phases.start("decontamination")
    decontamination = _decontaminate(good, texts, suites, params, dedup_info)
    good = decontamination.kept
    phases.start("splits")
    splitting = _split(good, dedup_info, params)
    phases.start("heldout_overlap")
    heldout_result = _heldout_overlap(good, decontamination.documents, splitting.split_of, params)
    phases.start("write")
    outputs = _write_outputs(splitting, dedup_info.dropped_rows + decontamination.dropped_rows, data.quarantine)
    phases.start("injection_balance")
    flagged, by_pattern, injection_examples = injection.scan(good, patterns, MAX_EXAMPLES)
    balance = class_balance(good, data.class_balance.max_ratio, data.class_balance.max_classes)
    token_section = _token_section(good, counts, splitting.splits, params.train.max_length)

    warnings = _warnings(token_section.truncated_records, params.train.max_length, flagged, balance,
                         max(splitting.group_sizes.values()), len(good))
    if heldout_result.contaminated_items:
        warnings.append(f"{heldout_result.contaminated_items} of {heldout_result.items} held-out items share a "
                        f"{data.decontamination.ngram}-word passage with the training data; the held-out tier partly "
                        "measures recall (templated data?)")
    bad_lines = screening.bad_lines
    report = ValidateReport(
        params={"data": params.section("data"), "seed": params.seed, "train": {"max_length": params.train.max_length}},
        inputs=digests([data_path, screening.suite_file, injection.PATTERNS_FILE] + [Path(s.name) for s in suites]
                       + ([Path(data.datasheet)] if data.datasheet else [])),
        outputs=digests(outputs),
        passed=True,
        data_file=data.path,
        data_sha256=sha256_file(data_path),
        format=parsed.layout,
        kind=parsed.kind or "sft",
        records_in=parsed.lines_read,
        records_valid=parsed.lines_read - len(bad_lines),
        records_quarantined=len(bad_lines),
        dropped={"exact_duplicates": dedup_info.exact, "near_duplicates": dedup_info.near_dropped,
                 "contaminated": decontamination.dropped},
        records_out=len(good),
        problems=[{k: v for k, v in p.as_dict().items() if k != "raw"} for p in screening.problems[:50]],
        expectation_suite=screening.suite_file.as_posix(),
        expectations=screening.outcomes,
        splits={name: len(rows) for name, rows in splitting.splits.items()},
        tokens=token_section,
        dedup=_dedup_section(good, dedup_info, splitting, params),
        pii=_pii_section(screening.pii_findings, {r.line for r in good}, redacted, parsed, params),
        contamination=_contamination_section(decontamination, heldout_result, params),
        injection=InjectionSection(patterns_file=injection.PATTERNS_FILE.as_posix(), flagged_records=len(flagged),
                                   by_pattern=by_pattern, examples=injection_examples),
        tool_calls=screening.tool_calls,
        class_balance=balance,
        warnings=warnings,
        datasheet=datasheet,
        datasheet_present=datasheet is not None,
        html_report=VALIDATE_HTML.as_posix(),
        timings_s=phases.finish(),
    )
    atomic_write_text(VALIDATE_HTML, render("data_report.html.j2", report=report))
    write_report(report)
    return report


# --- Phase 1: read, and check every record on its own --------------------------------------------

def _read(path: str, data_format: str, progress) -> ParsedFile:
    parsed = load_records(Path(path), data_format)
    progress(f"validate: read {parsed.lines_read} record(s) from {path}"
             + (f" as {parsed.layout} ({parsed.kind or 'sft'})" if parsed.layout else ""))
    for problem in parsed.problems:
        if problem.field == "(file)":  # the whole file is unreadable: nothing to quarantine
            raise DataError(problem.message, file=problem.file, line=problem.line, field=problem.field)
    return parsed


@dataclass
class Screening:
    """What the checks of single records found: each problem names its line and field."""
    problems: list[Problem]
    outcomes: list[ExpectationOutcome]        # the Great Expectations suite, per expectation
    suite_file: Path
    tool_calls: ToolCallSection
    pii_findings: dict[int, list[tuple[str, pii.Finding]]]

    @property
    def bad_lines(self) -> set[int]:
        return {p.line for p in self.problems}


def _screen(parsed: ParsedFile, counts: TokenCounts, params: Params, phases: Phases) -> Screening:
    """Rendering, tool calls, the expectation suite and personal data, on every record."""
    path, kind = params.data.path, parsed.kind or "sft"
    problems = list(parsed.problems)
    by_line = {record.line: record for record in parsed.records}
    for line, message in counts.render_errors.items():
        problems.append(Problem(path, line, source_field(by_line[line].layout, "messages"), message))
    tool_section = _check_tool_calls(parsed.records, path, problems)

    phases.start("expectations")
    suite_file = expectation_suite_path(SUITE_FOR_KIND[kind])
    outcomes = run_expectations(parsed.records, load_expectations(suite_file, params), SUITE_FOR_KIND[kind],
                                counts.longest_turn)
    for outcome in outcomes:
        for line in outcome.failing_lines:
            problems.append(Problem(path, line, _failing_field(by_line[line], outcome, counts),
                                    f"{outcome.description} [{outcome.id}]"))

    phases.start("pii")
    pii_findings = _scan_pii(parsed.records, params)
    if params.data.pii.action == "block":
        for line, found in pii_findings.items():
            kinds = ", ".join(sorted({finding.kind for _, finding in found}))
            problems.append(Problem(path, line, source_field(by_line[line].layout, found[0][0]),
                                    f"contains personal data ({kinds}); data.pii.action is block"))
    problems.sort(key=lambda p: p.line)
    return Screening(problems, outcomes, suite_file, tool_section, pii_findings)


def _set_aside(parsed: ParsedFile, screening: Screening, quarantine: bool) -> list[Record]:
    """The good records; or exit 2 naming every problem, unless bad records may be quarantined. A
    failed whole-file expectation (no line to set aside) always stops."""
    path, problems = parsed.path, screening.problems
    whole_file = [o for o in screening.outcomes if not o.success and not o.failing_lines]
    if whole_file:
        first, *others = [f"{o.description} [{o.id}]" for o in whole_file]
        raise DataError(first, file=path, field=whole_file[0].field,
                        more=[f"{path}: {message}" for message in others] + [str(p) for p in problems])
    if problems and not quarantine:
        first = problems[0]
        note = (f"{len(problems)} problem(s) on {len(screening.bad_lines)} line(s); " if len(problems) > 1 else "") + \
            "set data.quarantine: true to set bad records aside and train on the rest"
        raise DataError(first.message, file=first.file, line=first.line, field=first.field,
                        more=[str(p) for p in problems[1:]], note=note)
    good = [r for r in parsed.records if r.line not in screening.bad_lines]
    if not good:
        raise DataError("no valid records left to train on", file=path)
    if quarantine:   # each bad record as read, with every problem found on it
        by_line = {record.line: record for record in parsed.records}
        atomic_write_jsonl(QUARANTINE_FILE, [{**p.as_dict(), "record": by_line[p.line].as_row() if p.line in by_line else None}
                                             for p in problems])
    return good


# --- Phase 2: duplicates, evaluation overlap and splits over the good records ----------------------

@dataclass
class DedupResult:
    exact: int                                  # exact duplicates found (dropped under exact: drop)
    exact_examples: list[dict[str, int]]
    exact_pairs: list[dedup.NearPair]           # kept exact duplicates: they must share a split
    near_pairs: list[dedup.NearPair]            # kept near duplicates, indexes into the kept records
    near_dropped: int = 0
    near_dropped_examples: list[dict] = field(default_factory=list)
    dropped_rows: list[dict] = field(default_factory=list)   # what went to dropped.jsonl, with the reason

    def reindex(self, keep: list[int]) -> None:
        self.near_pairs = _reindex_pairs(self.near_pairs, keep)
        self.exact_pairs = _reindex_pairs(self.exact_pairs, keep)


@dataclass
class Decontamination:
    kept: list[Record]
    documents: list[list[list[str]]]             # the kept records' words, for the held-out check
    checker: OverlapChecker
    suites: list[SuiteContamination]
    contaminated: set[int]
    dropped: int
    dropped_rows: list[dict]


def _decontaminate(good: list[Record], texts: dict, suites, params: Params, dedup_info: DedupResult) -> Decontamination:
    """Training records sharing an n-gram with an evaluation suite: reported, dropped or exit 2."""
    cfg = params.data.decontamination
    documents = [texts[r.line] for r in good]
    checker = OverlapChecker(documents, [r.line for r in good], cfg.ngram, cfg.boilerplate_fraction,
                             cfg.boilerplate_min_documents)
    results, contaminated = [], set()
    for suite in suites:
        result, involved = checker.check(suite.name, suite.lines, suite.texts)
        results.append(result)
        contaminated |= involved
    if contaminated and cfg.action == "block":
        path = params.data.path
        pairs = sorted((pair["train_line"], result.suite, pair["suite_line"]) for result in results
                       for pair in result.pairs)
        messages = [f"overlaps evaluation suite {suite} (line {suite_line}) by a {cfg.ngram}-gram"
                    for _, suite, suite_line in pairs]
        raise DataError(messages[0], file=path, line=pairs[0][0],
                        more=[f"{path}:{line}: {message}" for (line, _, _), message in zip(pairs[1:], messages[1:])],
                        note=f"{len(contaminated)} training record(s) overlap in all; data.decontamination.action "
                             "is block (drop removes them)")
    if not (contaminated and cfg.action == "drop"):
        return Decontamination(good, documents, checker, results, contaminated, 0, [])
    rows = [{"line": good[i].line, "reason": "overlaps an evaluation suite", "record": good[i].as_row()}
            for i in sorted(contaminated)]
    keep = [i for i in range(len(good)) if i not in contaminated]
    dedup_info.reindex(keep)
    return Decontamination([good[i] for i in keep], [documents[i] for i in keep], checker, results, contaminated,
                           len(contaminated), rows)


@dataclass
class Splitting:
    split_of: list[str]                          # per kept record
    splits: dict[str, list[Record]]
    group_sizes: Counter
    moved: int                                   # records placed in another split to stay with their group


def _split(good: list[Record], dedup_info: DedupResult, params: Params) -> Splitting:
    """Split by content hash; near (and kept exact) duplicates form groups, and a group never spans two splits."""
    data = params.data
    related = dedup_info.near_pairs + dedup_info.exact_pairs
    labels = groups(len(good), np.array([p.first for p in related], dtype=np.int64),
                    np.array([p.second for p in related], dtype=np.int64))
    keys = [r.content_key() for r in good]
    split_of = group_splits(keys, labels, data.validation_fraction, data.heldout_fraction, params.seed)
    moved = sum(1 for i in range(len(good)) if split_of[i] != _own_split(keys[i], params))
    splits: dict[str, list[Record]] = {name: [] for name in SPLITS}
    for record, split in zip(good, split_of):
        splits[split].append(record)
    return Splitting(split_of, splits, Counter(labels.tolist()), moved)


def _heldout_overlap(good: list[Record], documents, split_of: list[str], params: Params) -> SuiteContamination:
    """The held-out split checked against the training side as if it were an evaluation suite."""
    cfg = params.data.decontamination
    train_side = [i for i, s in enumerate(split_of) if s != "heldout"]
    heldout_side = [i for i, s in enumerate(split_of) if s == "heldout"]
    checker = OverlapChecker([documents[i] for i in train_side], [good[i].line for i in train_side], cfg.ngram,
                             cfg.boilerplate_fraction, cfg.boilerplate_min_documents)
    result, _ = checker.check(f"{SPLIT_FILES['heldout'].as_posix()} (held-out split)",
                              [good[i].line for i in heldout_side], [documents[i] for i in heldout_side])
    return result


def _write_outputs(splitting: Splitting, dropped_rows: list[dict], quarantine: bool) -> list[Path]:
    """The splits, and what was dropped and why; the files written, with the quarantine first."""
    outputs = [QUARANTINE_FILE] if quarantine else []
    for name, rows in splitting.splits.items():
        atomic_write_jsonl(SPLIT_FILES[name], [r.as_row() for r in rows])
        outputs.append(SPLIT_FILES[name])
    atomic_write_jsonl(DROPPED_FILE, dropped_rows)
    outputs.append(DROPPED_FILE)
    return outputs


# --- Phase 3: the report's sections ---------------------------------------------------------------

def _token_section(good: list[Record], counts: TokenCounts, splits: dict[str, list[Record]],
                   max_length: int) -> TokenSection:
    rendered = np.array([counts.rendered[r.line] for r in good])
    truncated = [r.line for r in good if counts.rendered[r.line] > max_length]
    return TokenSection(tokenizer=counts.tokenizer, chat_template_sha256=counts.chat_template_sha256,
                        max_length=max_length, rendered_tokens_p50=int(np.percentile(rendered, 50)),
                        rendered_tokens_p95=int(np.percentile(rendered, 95)), rendered_tokens_max=int(rendered.max()),
                        truncated_records=len(truncated), truncated_examples=truncated[:MAX_EXAMPLES],
                        split_tokens={name: sum(min(counts.rendered[r.line], max_length) for r in rows)
                                      for name, rows in splits.items()})


def _dedup_section(good: list[Record], info: DedupResult, splitting: Splitting, params: Params) -> DedupSection:
    settings, near = params.data.dedup, info.near_pairs
    near_lines = {good[i].line for p in near for i in (p.first, p.second)}
    return DedupSection(
        exact_action=settings.exact, exact_duplicates=info.exact, exact_examples=info.exact_examples,
        near_action=settings.near, near_threshold=settings.near_threshold, shingle_words=settings.shingle_words,
        near_duplicate_pairs=len(near) + info.near_dropped, near_duplicate_records=len(near_lines),
        near_examples=[{"line_a": good[p.first].line, "line_b": good[p.second].line, "jaccard": p.jaccard}
                       for p in near[:MAX_EXAMPLES]] or info.near_dropped_examples,
        leakage_groups=sum(1 for size in splitting.group_sizes.values() if size > 1),
        largest_group=max(splitting.group_sizes.values()), records_kept_with_group=splitting.moved,
        cross_split_pairs=sum(1 for p in near if splitting.split_of[p.first] != splitting.split_of[p.second]))


def _pii_section(findings: dict, kept_lines: set[int], redacted: int, parsed: ParsedFile, params: Params) -> PiiSection:
    action = params.data.pii.action
    by_line = {record.line: record for record in parsed.records}
    kept = {line: found for line, found in findings.items() if line in kept_lines or action == "redact"}
    return PiiSection(
        action=action, detectors=list(params.data.pii.detectors),
        findings=dict(Counter(f.kind for found in kept.values() for _, f in found)),
        records_with_pii=len(kept), redacted_records=redacted,
        unredacted_findings=0 if action == "redact" else sum(len(f) for f in kept.values()),
        examples=[{"line": line, "field": source_field(by_line[line].layout, where), "type": f.kind,
                   "masked": f.masked(), "score": f.score,
                   "context": pii.masked_context(dict(by_line[line].texts())[where], [g for w, g in found if w == where], f)}
                  for line, found in list(kept.items())[:MAX_EXAMPLES] for where, f in found[:1]])


def _contamination_section(result: Decontamination, heldout: SuiteContamination, params: Params) -> ContaminationSection:
    cfg = params.data.decontamination
    return ContaminationSection(
        ngram=cfg.ngram, boilerplate_documents=result.checker.max_documents, action=cfg.action, suites=result.suites,
        contaminated_training_records=len(result.contaminated), dropped=result.dropped,
        remaining=len(result.contaminated) - result.dropped, heldout=heldout,
        heldout_overlap_fraction=round(heldout.contaminated_items / max(1, heldout.items), 4))


class Phases:
    """Wall time per phase, with a progress line as each starts (100k records take tens of seconds)."""

    def __init__(self, progress):
        self.progress, self.times, self.name, self.started = progress, {}, None, 0.0

    def start(self, name: str) -> None:
        self._close()
        self.name, self.started = name, time.perf_counter()
        self.progress(f"validate: {name} ...")

    def finish(self) -> dict[str, float]:
        self._close()
        return self.times

    def _close(self) -> None:
        if self.name:
            self.times[self.name] = round(time.perf_counter() - self.started, 3)
            self.name = None


def _failing_field(record: Record, outcome, counts) -> str:
    """The field a failed expectation is about, as the file spells it: for a length or an empty-text
    check the very turn or answer that failed (a long `chosen`, not the prompt)."""
    canonical = outcome.field
    if outcome.column == "max_turn_tokens":
        canonical = counts.longest_field.get(record.line, canonical)
    elif outcome.column == "empty_turns":
        canonical = next((name for name, text in record.texts() if not text.strip()), canonical)
    return source_field(record.layout, canonical)


def _check_tool_calls(records: list[Record], path: str, problems: list[Problem]) -> ToolCallSection:
    """Every call of every tool-calling record checked; a call that would fail is a problem of its line."""
    section = ToolCallSection()
    declared, reasons = set(), Counter()
    for record in records:
        calls = sum(len(m.get("tool_calls") or []) for m in record.messages)
        if not calls and not record.tools and not any(m["role"] == "tool" for m in record.messages):
            continue
        section.records_with_tools += 1
        section.tool_calls += calls
        declared |= {t["function"]["name"] for t in record.tools or []}
        for finding in tool_calls.check(record.messages, record.tools):
            field = source_field(record.layout, finding.field)
            problems.append(Problem(path, record.line, field, finding.message))
            section.invalid_calls += 1
            reasons[finding.reason] += 1
            if len(section.examples) < MAX_EXAMPLES:
                section.examples.append({"line": record.line, "field": field, "reason": finding.message})
    section.declared_tools, section.by_reason = sorted(declared), dict(reasons)
    return section


def _scan_pii(records: list[Record], params: Params) -> dict[int, list[tuple[str, pii.Finding]]]:
    """line -> [(canonical field, finding)] for every record with personal data."""
    cfg = params.data.pii
    scanner = pii.PiiScanner(tuple(cfg.detectors), tuple(cfg.phone_regions), min_score=dict(cfg.min_score))
    found = {}
    for record in records:
        hits = [(where, f) for where, text in record.texts() for f in scanner.find(text)]
        if hits:
            found[record.line] = hits
    return found


def _redact(records: list[Record], findings: dict) -> tuple[list[Record], int]:
    """Redacted copies of the records with findings; the source file is never touched."""
    out, changed = [], 0
    for record in records:
        if record.line not in findings:
            out.append(record)
            continue
        by_field: dict[str, list] = {}
        for where, finding in findings[record.line]:
            by_field.setdefault(where, []).append(finding)
        texts = dict(record.texts())
        out.append(record.replace_texts({where: pii.redact(texts[where], found) for where, found in by_field.items()}))
        changed += 1
    return out, changed


def _drop_duplicates(records: list[Record], params: Params, texts: dict[int, list[list[str]]]) -> tuple[list[Record], DedupResult]:
    settings = params.data.dedup
    repeats = dedup.exact_duplicates(records)
    info = DedupResult(exact=len(repeats),
                       exact_examples=[{"line": records[i].line, "duplicate_of": records[j].line}
                                       for i, j in list(repeats.items())[:MAX_EXAMPLES]],
                       exact_pairs=[] if settings.exact == "drop" else [dedup.NearPair(j, i, 1.0) for i, j in repeats.items()],
                       near_pairs=[])
    if settings.exact == "drop" and repeats:
        info.dropped_rows += [{"line": records[i].line, "reason": f"exact duplicate of line {records[j].line}",
                               "record": records[i].as_row()} for i, j in repeats.items()]
        records = [r for i, r in enumerate(records) if i not in repeats]
    pairs = dedup.near_duplicates([[w for text in texts[r.line] for w in text] for r in records], settings.near_threshold,
                                  settings.shingle_words, settings.num_perm, params.seed)
    if settings.near == "drop" and pairs:
        later = {}
        for pair in pairs:
            later.setdefault(pair.second, pair)
        info.near_dropped = len(later)
        info.near_dropped_examples = [{"line_a": records[p.first].line, "line_b": records[p.second].line,
                                       "jaccard": p.jaccard} for p in list(later.values())[:MAX_EXAMPLES]]
        info.dropped_rows += [{"line": records[i].line, "reason": f"near duplicate of line {records[p.first].line} "
                               f"(Jaccard {p.jaccard})", "record": records[i].as_row()} for i, p in later.items()]
        keep = [i for i in range(len(records)) if i not in later]
        records = [records[i] for i in keep]
        pairs = _reindex_pairs([p for p in pairs if p.first not in later and p.second not in later], keep)
        info.exact_pairs = _reindex_pairs(info.exact_pairs, keep)
    info.near_pairs = pairs
    return records, info


def _reindex_pairs(pairs: list[dedup.NearPair], keep: list[int]) -> list[dedup.NearPair]:
    new_index = {old: new for new, old in enumerate(keep)}
    return [dedup.NearPair(new_index[p.first], new_index[p.second], p.jaccard)
            for p in pairs if p.first in new_index and p.second in new_index]


def _own_split(key: str, params: Params) -> str:
    from toolkit.data.splits import assign_split

    return assign_split(key, params.data.validation_fraction, params.data.heldout_fraction, params.seed)


def _warnings(truncated: int, max_length: int, flagged: set, balance, largest_group: int, total: int) -> list[str]:
    warnings = []
    if truncated:
        warnings.append(f"{truncated} record(s) are longer than train.max_length ({max_length} tokens) and would be truncated")
    if flagged:
        warnings.append(f"{len(flagged)} record(s) contain prompt-injection patterns")
    for name, label in balance.labels.items():
        if label.imbalanced:
            warnings.append(f"class imbalance in {name}: largest/smallest = {label.ratio} (limit {balance.max_ratio})")
    if largest_group > 0.05 * total and total >= 100:
        warnings.append(f"{largest_group} related records form one group and must share a split; "
                        "the split fractions may be skewed")
    return warnings
