"""The validate stage: the data gate that runs before any compute is spent.

The file is streamed in chunks (data.chunk_records), so memory grows with what must be known of the
whole file (content hashes, MinHash signatures, the evaluation suites' n-grams, counts), not with
the records' text. Three passes:

1. Read every record into canonical form; render it with the chat template and count tokens; check
   tool calls; scan for personal data; keep per record only numbers and hashes (toolkit.data.first_pass).
   Then on the whole file: the Great Expectations suite on the derived columns; bad records set
   aside (quarantine) or exit 2 naming file, line and field; exact and near duplicates dropped or
   grouped; records overlapping an evaluation suite dropped; splits by content hash, keeping related
   records together.
2. Read again and write (with personal data redacted) the train / validation / held-out files, the
   dropped and quarantined records with their reasons; flag prompt-injection patterns, measure
   class balance, and index the held-out split's n-grams.
3. Read the training side again and check the held-out split against it as if it were an
   evaluation suite.

Then a JSON report the gate reads and an HTML report for people. Every record in is accounted for
out: kept, quarantined or dropped with its reason. The same file gives the same report whatever
the chunk size.
"""

from __future__ import annotations

from collections import Counter
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from toolkit import headline
from toolkit.config import Params
from toolkit.data import dedup, injection, pii
from toolkit.data.balance import BalanceTally
from toolkit.data.datasheet import load_datasheet
from toolkit.data.decontamination import (OverlapIndex, evaluation_files_words, shared_ngram, suite_contamination,
                                          text_pairs)
from toolkit.data.expectations import (SUITE_FOR_KIND, ExpectationOutcome, expectation_suite_path, load_expectations,
                                       run_expectations)
from toolkit.data.first_pass import MAX_EXAMPLES, FirstPass, Phases, RecordFacts, as_written
from toolkit.data.formats import Record, source_field
from toolkit.data.ngrams import NgramPairs
from toolkit.data.records import ParsedFile, Problem, RecordReader
from toolkit.data.splits import SPLITS, group_splits, groups
from toolkit.data.tokens import load_tokenizer
from toolkit.errors import DataError
from toolkit.files import JsonlWriter, atomic_write_jsonl, atomic_write_text, remove_outputs, sha256_file
from toolkit.layout import DROPPED_FILE, QUARANTINE_FILE, SPLIT_FILES, VALIDATE_HTML, report_path
from toolkit.reports import (ContaminationSection, DedupSection, InjectionSection, PiiSection, SuiteContamination,
                             TokenSection, ValidateReport, digests, write_report)
from toolkit.templating import render

HELDOUT_NAME = f"{SPLIT_FILES['heldout'].as_posix()} (held-out split)"


def run_validate(params: Params, progress=print) -> ValidateReport:
    outputs = (report_path("validate"), headline.path("validate"), VALIDATE_HTML, QUARANTINE_FILE, DROPPED_FILE,
               *SPLIT_FILES.values())
    remove_outputs(*outputs)
    try:
        return _validate(params, progress)
    except BaseException:
        remove_outputs(*outputs)   # a failed run leaves nothing that could pass for its output
        raise


def _validate(params: Params, progress) -> ValidateReport:
    data = params.data
    data_path = Path(data.path)
    if not data_path.is_file():
        raise DataError("training data file not found (params.yaml data.path)", file=data.path)
    datasheet = load_datasheet(data.datasheet) if data.datasheet else None
    suites = evaluation_files_words(Path(data.decontamination.suites_dir))
    patterns = injection.load_patterns()
    tokenizer, tokenizer_source = load_tokenizer(params)
    phases = Phases(progress)
    n = data.decontamination.ngram
    suite_indexes = [OverlapIndex(text_pairs(s.texts, 0, n), len(s.texts)) for s in suites]

    parsed, facts = _first_pass(params, tokenizer, tokenizer_source, suite_indexes, phases, progress)
    lines = facts.line_array()
    with phases.timed("expectations"):
        screening = _screen(parsed, facts, lines, params)
    bad = np.zeros(len(facts), dtype=bool)
    bad[np.searchsorted(lines, [line for line in screening.bad_lines if _holds(lines, line)])] = True
    _stop_or_set_aside(parsed, screening, data.quarantine, bool((~bad).any()))

    with phases.timed("dedup"):
        fates = _drop_duplicates(np.flatnonzero(~bad), facts, lines, params)
    progress(f"validate: {fates.exact} exact duplicate(s), {len(fates.near_pairs)} near-duplicate pair(s)")
    with phases.timed("decontamination"):
        decontamination = _decontaminate(fates, suites, suite_indexes, lines, params)
    with phases.timed("splits"):
        splitting = _split(fates, facts, params)

    written = _second_pass(params, parsed, facts, fates, splitting, screening, decontamination, suites, patterns,
                           phases, progress)
    with phases.timed("heldout_overlap"):
        heldout = _heldout_overlap(params, parsed.layout, facts, written)

    kept = fates.kept
    token_section = _token_section(facts, lines, fates, splitting, params.train.max_length, tokenizer_source)
    warnings = _warnings(token_section.truncated_records, params.train.max_length, written.flagged, written.balance,
                         max(splitting.group_sizes.values()), len(kept))
    if heldout.contaminated_items:
        warnings.append(f"{heldout.contaminated_items} of {heldout.items} held-out items share a "
                        f"{n}-word passage with the training data; the held-out tier partly "
                        "measures recall (templated data?)")
    outputs = ([QUARANTINE_FILE] if data.quarantine else []) + list(SPLIT_FILES.values()) + [DROPPED_FILE]
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
        records_valid=parsed.lines_read - len(screening.bad_lines),
        records_quarantined=len(screening.bad_lines),
        dropped={"exact_duplicates": fates.exact, "near_duplicates": fates.near_dropped,
                 "contaminated": decontamination.dropped},
        records_out=len(kept),
        problems=[{k: v for k, v in p.as_dict().items() if k != "raw"} for p in screening.problems[:50]],
        expectation_suite=screening.suite_file.as_posix(),
        expectations=screening.outcomes,
        splits={name: int((splitting.split_of == code).sum()) for code, name in enumerate(SPLITS)},
        tokens=token_section,
        dedup=_dedup_section(lines, fates, splitting, params),
        pii=_pii_section(facts, set(lines[kept].tolist()), screening.bad_lines, written.pii_examples, params),
        contamination=_contamination_section(decontamination, suites, written.suite_ngrams, heldout, lines, params),
        injection=InjectionSection(patterns_file=injection.PATTERNS_FILE.as_posix(), flagged_records=len(written.flagged),
                                   by_pattern=dict(written.by_pattern), examples=written.injection_examples),
        tool_calls=facts.tool_calls,
        class_balance=written.balance,
        warnings=warnings,
        datasheet=datasheet,
        datasheet_present=datasheet is not None,
        html_report=VALIDATE_HTML.as_posix(),
        timings_s=phases.finish(),
    )
    atomic_write_text(VALIDATE_HTML, render("data_report.html.j2", report=report))
    write_report(report)
    return report


def _holds(lines: np.ndarray, line: int) -> bool:
    at = int(np.searchsorted(lines, line))
    return at < len(lines) and lines[at] == line


# --- Pass 1: every record on its own ---------------------------------------------------------------

def _first_pass(params: Params, tokenizer, tokenizer_source: str, suite_indexes, phases: Phases,
                progress) -> tuple[ParsedFile, RecordFacts]:
    data = params.data
    reader = RecordReader(data.path, data.format)
    first = FirstPass(params, tokenizer, tokenizer_source, suite_indexes, phases)
    for chunk in phases.each("read", reader.chunks(data.chunk_records)):
        _stop_on_file_problem(reader.parsed)
        first.add(chunk, reader.parsed.layout)
        progress(f"validate: {reader.parsed.lines_read} record(s) checked")
    parsed = reader.parsed
    _stop_on_file_problem(parsed)
    progress(f"validate: read {parsed.lines_read} record(s) from {data.path}"
             + (f" as {parsed.layout} ({parsed.kind or 'sft'})" if parsed.layout else ""))
    return parsed, first.facts


def _stop_on_file_problem(parsed: ParsedFile) -> None:
    for problem in parsed.problems:
        if problem.field == "(file)":  # the whole file is unreadable: nothing to quarantine
            raise DataError(problem.message, file=problem.file, line=problem.line, field=problem.field)


@dataclass
class Screening:
    """What the checks of single records found: each problem names its line and field."""
    problems: list[Problem]
    outcomes: list[ExpectationOutcome]        # the Great Expectations suite, per expectation
    suite_file: Path

    @property
    def bad_lines(self) -> set[int]:
        return {p.line for p in self.problems}


def _screen(parsed: ParsedFile, facts: RecordFacts, lines: np.ndarray, params: Params) -> Screening:
    """The expectation suite on the derived columns, and every problem found on single records."""
    path, kind, layout = params.data.path, parsed.kind or "sft", parsed.layout
    problems = list(parsed.problems) + facts.problems
    suite_file = expectation_suite_path(SUITE_FOR_KIND[kind])
    outcomes = run_expectations(facts.columns, load_expectations(suite_file, params), SUITE_FOR_KIND[kind])
    for outcome in outcomes:
        for line in outcome.failing_lines:
            problems.append(Problem(path, line, _failing_field(facts, int(np.searchsorted(lines, line)), layout, outcome),
                                    f"{outcome.description} [{outcome.id}]"))
    if params.data.pii.action == "block":
        for line, spans in facts.pii.items():
            kinds = ", ".join(sorted({kind for _, kind, _, _ in spans}))
            problems.append(Problem(path, line, source_field(layout, spans[0][0]),
                                    f"contains personal data ({kinds}); data.pii.action is block"))
    problems.sort(key=lambda p: p.line)
    return Screening(problems, outcomes, suite_file)


def _failing_field(facts: RecordFacts, number: int, layout: str, outcome: ExpectationOutcome) -> str:
    """The field a failed expectation is about, as the file spells it: for a length or an empty-text
    check the very turn or answer that failed (a long `chosen`, not the prompt)."""
    canonical = outcome.field
    if outcome.column == "max_turn_tokens":
        canonical = facts.longest_field[number] or canonical
    elif outcome.column == "empty_turns":
        canonical = facts.empty_field.get(facts.lines[number], canonical)
    return source_field(layout, canonical)


def _stop_or_set_aside(parsed: ParsedFile, screening: Screening, quarantine: bool, any_good: bool) -> None:
    """Exit 2 naming every problem, unless bad records may be quarantined. A failed whole-file
    expectation (no line to set aside) always stops."""
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
    if not any_good:
        raise DataError("no valid records left to train on", file=path)


# --- Duplicates, evaluation overlap and splits over the good records ------------------------------

@dataclass
class Fates:
    """Which records are kept, and why the others were dropped. Pairs index into `kept`."""
    kept: np.ndarray                              # record numbers, ascending
    exact: int
    exact_examples: list[dict[str, int]]
    exact_pairs: list[dedup.NearPair]             # kept exact duplicates: they must share a split
    near_pairs: list[dedup.NearPair]              # kept near duplicates
    near_dropped: int = 0
    near_dropped_examples: list[dict] = field(default_factory=list)
    dropped: dict[int, str] = field(default_factory=dict)   # record number -> why it went to dropped.jsonl

    def keep_only(self, keep: np.ndarray) -> None:
        """Keep the records at these positions of `kept`; pairs are renumbered."""
        self.near_pairs = _reindex_pairs(self.near_pairs, keep)
        self.exact_pairs = _reindex_pairs(self.exact_pairs, keep)
        self.kept = self.kept[keep]


def _drop_duplicates(good: np.ndarray, facts: RecordFacts, lines: np.ndarray, params: Params) -> Fates:
    settings = params.data.dedup
    digests = facts.column("digests")[good]
    first = dedup.first_occurrences(digests)
    repeats = np.flatnonzero(first != np.arange(len(good)))
    fates = Fates(kept=good, exact=len(repeats),
                  exact_examples=[{"line": int(lines[good[i]]), "duplicate_of": int(lines[good[first[i]]])}
                                  for i in repeats[:MAX_EXAMPLES]],
                  exact_pairs=[] if settings.exact == "drop" else [dedup.NearPair(int(first[i]), int(i), 1.0)
                                                                   for i in repeats],
                  near_pairs=[])
    if settings.exact == "drop" and len(repeats):
        for i in repeats:
            fates.dropped[int(good[i])] = f"exact duplicate of line {lines[good[first[i]]]}"
        fates.kept = good[first == np.arange(len(good))]
    pairs = dedup.near_pairs(*facts.take_signatures(fates.kept), settings.near_threshold)
    fates.near_pairs = pairs
    if settings.near == "drop" and pairs:
        kept = fates.kept
        later: dict[int, dedup.NearPair] = {}
        for pair in pairs:
            later.setdefault(pair.second, pair)
        fates.near_dropped = len(later)
        fates.near_dropped_examples = [{"line_a": int(lines[kept[p.first]]), "line_b": int(lines[kept[p.second]]),
                                        "jaccard": p.jaccard} for p in list(later.values())[:MAX_EXAMPLES]]
        for i, p in later.items():
            fates.dropped[int(kept[i])] = f"near duplicate of line {lines[kept[p.first]]} (Jaccard {p.jaccard})"
        fates.near_pairs = [p for p in pairs if p.first not in later and p.second not in later]
        fates.keep_only(np.array([i for i in range(len(kept)) if i not in later], dtype=np.int64))
    return fates


def _reindex_pairs(pairs: list[dedup.NearPair], keep: np.ndarray) -> list[dedup.NearPair]:
    new_index = {int(old): new for new, old in enumerate(keep)}
    return [dedup.NearPair(new_index[p.first], new_index[p.second], p.jaccard)
            for p in pairs if p.first in new_index and p.second in new_index]


@dataclass
class Decontamination:
    overlaps: list                                # per suite, toolkit.data.decontamination.Overlap
    contaminated: np.ndarray                      # record numbers
    dropped: int
    max_documents: int


def _decontaminate(fates: Fates, suites, indexes: list[OverlapIndex], lines: np.ndarray, params: Params) -> Decontamination:
    """Training records sharing an n-gram with an evaluation suite: reported, dropped or exit 2."""
    cfg = params.data.decontamination
    kept = np.zeros(len(lines), dtype=bool)
    kept[fates.kept] = True
    overlaps = [index.result(len(fates.kept), cfg.boilerplate_fraction, cfg.boilerplate_min_documents, kept)
                for index in indexes]
    contaminated = np.unique(np.concatenate([o.involved for o in overlaps])) if overlaps else np.zeros(0, np.int64)
    max_documents = max(cfg.boilerplate_min_documents, int(cfg.boilerplate_fraction * len(fates.kept)))
    if len(contaminated) and cfg.action == "block":
        path = params.data.path
        pairs = sorted((int(lines[record]), suite.name, suite.lines[item]) for suite, o in zip(suites, overlaps)
                       for item, record in o.examples)
        messages = [f"overlaps evaluation suite {suite} (line {suite_line}) by a {cfg.ngram}-gram"
                    for _, suite, suite_line in pairs]
        raise DataError(messages[0], file=path, line=pairs[0][0],
                        more=[f"{path}:{line}: {message}" for (line, _, _), message in zip(pairs[1:], messages[1:])],
                        note=f"{len(contaminated)} training record(s) overlap in all; data.decontamination.action "
                             "is block (drop removes them)")
    if not (len(contaminated) and cfg.action == "drop"):
        return Decontamination(overlaps, contaminated, 0, max_documents)
    for number in contaminated:
        fates.dropped[int(number)] = "overlaps an evaluation suite"
    fates.keep_only(np.flatnonzero(~np.isin(fates.kept, contaminated)))
    return Decontamination(overlaps, contaminated, len(contaminated), max_documents)


@dataclass
class Splitting:
    split_of: np.ndarray                         # per kept record, an index into SPLITS
    group_sizes: Counter
    moved: int                                   # records placed in another split to stay with their group


def _split(fates: Fates, facts: RecordFacts, params: Params) -> Splitting:
    """Split by content hash; near (and kept exact) duplicates form groups, and a group never spans two splits."""
    related = fates.near_pairs + fates.exact_pairs
    labels = groups(len(fates.kept), np.array([p.first for p in related], dtype=np.int64),
                    np.array([p.second for p in related], dtype=np.int64))
    own = facts.column("own_split")[fates.kept]
    split_of = group_splits(own, labels)
    return Splitting(split_of, Counter(labels.tolist()), int((split_of != own).sum()))


# --- Pass 2: write the splits, and what needs the kept records' text -------------------------------

@dataclass
class Written:
    flagged: set = field(default_factory=set)
    by_pattern: Counter = field(default_factory=Counter)
    injection_examples: list[dict] = field(default_factory=list)
    balance: object = None
    pii_examples: list[dict] = field(default_factory=list)
    suite_ngrams: dict[tuple[int, int, int], str] = field(default_factory=dict)   # (suite, item, record) -> n-gram
    side_lines: dict[str, list[int]] = field(default_factory=lambda: {name: [] for name in SPLITS})
    heldout_pairs: list = field(default_factory=list)


def _second_pass(params: Params, parsed: ParsedFile, facts: RecordFacts, fates: Fates, splitting: Splitting,
                 screening: Screening, decontamination: Decontamination, suites, patterns, phases: Phases,
                 progress) -> Written:
    data = params.data
    split_of = np.full(len(facts), -1, dtype=np.int8)
    split_of[fates.kept] = splitting.split_of
    bad_lines = screening.bad_lines
    examples_needed = {t for o in decontamination.overlaps for _, t in o.examples}
    kept_lines = set(facts.line_array()[fates.kept].tolist())
    scanner = pii.PiiScanner.of(data.pii)
    balance = BalanceTally(data.class_balance.max_ratio, data.class_balance.max_classes)
    written, quarantined, texts_needed = Written(), {}, {}
    reader = RecordReader(data.path, data.format, layout=parsed.layout)
    with ExitStack() as stack:
        writers = [stack.enter_context(JsonlWriter(SPLIT_FILES[name])) for name in SPLITS]
        dropped = stack.enter_context(JsonlWriter(DROPPED_FILE))
        number = 0
        for chunk in phases.each("write", reader.chunks(data.chunk_records)):
            with phases.timed("write"):
                kept, heldout = [], []
                for record in chunk:
                    line = record.line
                    if line in facts.pii and (line in kept_lines or data.pii.action == "redact") \
                            and len(written.pii_examples) < MAX_EXAMPLES:
                        written.pii_examples.append(_pii_example(record, scanner))
                    if line in bad_lines:
                        if data.quarantine:
                            quarantined[line] = record.as_row()   # as read: the quarantine is for people to fix
                    else:
                        clean = as_written(record, facts, data.pii.action)
                        if number in examples_needed:
                            texts_needed[number] = dedup.content_texts(clean)
                        if number in fates.dropped:
                            dropped.write({"line": line, "reason": fates.dropped[number], "record": clean.as_row()})
                        elif split_of[number] >= 0:
                            writers[split_of[number]].write(clean.as_row())
                            written.side_lines[SPLITS[split_of[number]]].append(line)
                            kept.append(clean)
                            if SPLITS[split_of[number]] == "heldout":
                                heldout.append(clean)
                    number += 1
            with phases.timed("injection_balance"):
                flagged, by_pattern, examples = injection.scan(kept, patterns, MAX_EXAMPLES)
                written.flagged |= flagged
                written.by_pattern.update(by_pattern)
                written.injection_examples += examples[:MAX_EXAMPLES - len(written.injection_examples)]
                balance.add(kept)
            with phases.timed("heldout_overlap"):   # the held-out items numbered in file order
                first_item = len(written.side_lines["heldout"]) - len(heldout)
                written.heldout_pairs.append(text_pairs([dedup.content_texts(r) for r in heldout], first_item,
                                                        data.decontamination.ngram))
            progress(f"validate: {number} record(s) written")
        if data.quarantine:
            atomic_write_jsonl(QUARANTINE_FILE, [{**p.as_dict(), "record": quarantined.get(p.line)}
                                                 for p in screening.problems])
    written.balance = balance.section()
    n = data.decontamination.ngram
    for s, (suite, overlap) in enumerate(zip(suites, decontamination.overlaps)):
        for item, record in overlap.examples:
            written.suite_ngrams[(s, item, record)] = shared_ngram(suite.texts[item], texts_needed[record], n,
                                                                   overlap.ignored)
    return written


def _pii_example(record: Record, scanner) -> dict:
    """The record's first finding, masked, with its context masked too: what a reviewer needs."""
    texts = dict(record.texts())
    found = [(where, f) for where, text in record.texts() for f in scanner.find(text)]
    where, finding = found[0]
    return {"line": record.line, "field": source_field(record.layout, where), "type": finding.kind,
            "masked": finding.masked(), "score": finding.score,
            "context": pii.masked_context(texts[where], [f for w, f in found if w == where], finding)}


# --- Pass 3: the held-out split against the training side ----------------------------------------

def _heldout_overlap(params: Params, layout: str, facts: RecordFacts, written: Written) -> SuiteContamination:
    """The held-out split checked against the training side (train and validation) as if it were an
    evaluation suite. Its n-grams are indexed; the training side is read again and streamed past it."""
    data, cfg = params.data, params.data.decontamination
    heldout_lines = written.side_lines["heldout"]
    train_lines = sorted(written.side_lines["train"] + written.side_lines["validation"])
    pairs = written.heldout_pairs
    grams = np.concatenate([p.grams for p in pairs]) if pairs else np.zeros(0, dtype=np.uint64)
    docs = np.concatenate([p.docs for p in pairs]) if pairs else np.zeros(0, dtype=np.int64)
    cap = max(cfg.boilerplate_min_documents, int(cfg.boilerplate_fraction * len(train_lines)))
    index = OverlapIndex(NgramPairs(grams, docs), len(heldout_lines), cap)
    written.heldout_pairs = []
    number = 0
    for chunk in RecordReader(data.path, data.format, set(train_lines), layout).chunks(data.chunk_records):
        texts = [dedup.content_texts(as_written(r, facts, data.pii.action)) for r in chunk]
        index.add(text_pairs(texts, number, cfg.ngram))
        number += len(chunk)
    overlap = index.result(len(train_lines), cfg.boilerplate_fraction, cfg.boilerplate_min_documents)
    wanted = {heldout_lines[o] for o, _ in overlap.examples} | {train_lines[t] for _, t in overlap.examples}
    texts = {r.line: dedup.content_texts(as_written(r, facts, data.pii.action))
             for chunk in RecordReader(data.path, data.format, wanted, layout).chunks(len(wanted) or 1)
             for r in chunk}
    ngrams = [shared_ngram(texts[heldout_lines[o]], texts[train_lines[t]], cfg.ngram, overlap.ignored)
              for o, t in overlap.examples]
    return suite_contamination(HELDOUT_NAME, heldout_lines, train_lines, overlap, ngrams)


# --- The report's sections ------------------------------------------------------------------------

def _token_section(facts: RecordFacts, lines: np.ndarray, fates: Fates, splitting: Splitting, max_length: int,
                   source: str) -> TokenSection:
    rendered = facts.column("rendered").astype(np.int64)[fates.kept]
    truncated = lines[fates.kept][rendered > max_length]
    return TokenSection(tokenizer=source, chat_template_sha256=facts.chat_template_sha256,
                        max_length=max_length, rendered_tokens_p50=int(np.percentile(rendered, 50)),
                        rendered_tokens_p95=int(np.percentile(rendered, 95)), rendered_tokens_max=int(rendered.max()),
                        truncated_records=len(truncated), truncated_examples=truncated[:MAX_EXAMPLES].tolist(),
                        split_tokens={name: int(np.minimum(rendered[splitting.split_of == code], max_length).sum())
                                      for code, name in enumerate(SPLITS)})


def _dedup_section(lines: np.ndarray, fates: Fates, splitting: Splitting, params: Params) -> DedupSection:
    settings, near, kept = params.data.dedup, fates.near_pairs, lines[fates.kept]
    near_lines = {int(kept[i]) for p in near for i in (p.first, p.second)}
    return DedupSection(
        exact_action=settings.exact, exact_duplicates=fates.exact, exact_examples=fates.exact_examples,
        near_action=settings.near, near_threshold=settings.near_threshold, shingle_words=settings.shingle_words,
        near_duplicate_pairs=len(near) + fates.near_dropped, near_duplicate_records=len(near_lines),
        near_examples=[{"line_a": int(kept[p.first]), "line_b": int(kept[p.second]), "jaccard": p.jaccard}
                       for p in near[:MAX_EXAMPLES]] or fates.near_dropped_examples,
        leakage_groups=sum(1 for size in splitting.group_sizes.values() if size > 1),
        largest_group=max(splitting.group_sizes.values()), records_kept_with_group=splitting.moved,
        cross_split_pairs=sum(1 for p in near if splitting.split_of[p.first] != splitting.split_of[p.second]))


def _pii_section(facts: RecordFacts, kept_lines: set[int], bad_lines: set[int], examples: list[dict],
                 params: Params) -> PiiSection:
    action = params.data.pii.action
    kept = {line: spans for line, spans in facts.pii.items() if line in kept_lines or action == "redact"}
    return PiiSection(
        action=action, detectors=list(params.data.pii.detectors),
        findings=dict(Counter(kind for spans in kept.values() for _, kind, _, _ in spans)),
        records_with_pii=len(kept),
        redacted_records=sum(1 for line in facts.pii if line not in bad_lines) if action == "redact" else 0,
        unredacted_findings=0 if action == "redact" else sum(len(spans) for spans in kept.values()),
        examples=examples)


def _contamination_section(result: Decontamination, suites, ngrams: dict, heldout: SuiteContamination,
                           lines: np.ndarray, params: Params) -> ContaminationSection:
    cfg = params.data.decontamination
    sections = [suite_contamination(suite.name, suite.lines, lines, overlap,
                                    [ngrams[(s, item, record)] for item, record in overlap.examples])
                for s, (suite, overlap) in enumerate(zip(suites, result.overlaps))]
    return ContaminationSection(
        ngram=cfg.ngram, boilerplate_documents=result.max_documents, action=cfg.action, suites=sections,
        contaminated_training_records=len(result.contaminated), dropped=result.dropped,
        remaining=len(result.contaminated) - result.dropped, heldout=heldout,
        heldout_overlap_fraction=round(heldout.contaminated_items / max(1, heldout.items), 4))


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
