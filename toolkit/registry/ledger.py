"""The release ledger: an append-only JSON Lines file whose entries form a hash chain.

Each entry carries the SHA-256 of the previous entry (`prev_sha256`) and of itself
(`entry_sha256`, over its canonical JSON without that field). Editing, deleting or reordering a
line breaks the chain, and `check_chain` says where. Appends happen under an exclusive file lock,
so concurrent releases cannot interleave or fork the chain.

A hash chain alone can be recomputed by whoever can write the file. With a release key, an entry
also carries `signature` ({keyid, sig}: Ed25519 over the canonical entry without `signature` and
`entry_sha256`). Since the signed bytes include `prev_sha256`, a valid signature on entry N also
pins every entry before it: rewriting the chain needs the private key.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from toolkit.errors import LedgerError

GENESIS = "0" * 64


def canonical(data: dict) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def entry_hash(entry: dict) -> str:
    return hashlib.sha256(canonical({k: v for k, v in entry.items() if k != "entry_sha256"})).hexdigest()


def signed_bytes(entry: dict) -> bytes:
    """What an entry's signature covers: everything but the signature and the entry's own hash."""
    return canonical({k: v for k, v in entry.items() if k not in ("entry_sha256", "signature")})


@contextlib.contextmanager
def locked(ledger: Path) -> Iterator[None]:
    """Exclusive lock for the read-decide-append sequence of a release."""
    ledger.parent.mkdir(parents=True, exist_ok=True)
    with open(ledger.with_suffix(".lock"), "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_entries(ledger: Path) -> list[dict]:
    if not ledger.is_file():
        return []
    data = ledger.read_bytes()
    torn = _torn(data)
    if torn:
        raise LedgerError("the last ledger entry was not completely written (a release killed or a disk full "
                          "while recording it); `toolkit release --repair` sets it aside", file=str(ledger), line=torn[0])
    entries = []
    for number, line in enumerate(_split(data.decode("utf-8")), start=1):
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise LedgerError(f"not a ledger entry ({exc.msg})", file=str(ledger), line=number) from None
    return entries


def torn_tail(ledger: Path) -> tuple[int, bytes] | None:
    """(line number, bytes) of a last line cut short mid-append, or None."""
    return _torn(ledger.read_bytes()) if ledger.is_file() else None


def _torn(data: bytes) -> tuple[int, bytes] | None:
    """Appends end with a newline, so only a last line without one can be torn; a complete entry that
    merely lacks the newline is not."""
    if not data or data.endswith(b"\n"):
        return None
    tail = data[data.rfind(b"\n") + 1:]
    try:
        entry = json.loads(tail)
        if isinstance(entry, dict) and entry.get("entry_sha256") == entry_hash(entry):
            return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        pass
    return data.count(b"\n") + 1, tail


def set_tail_aside(ledger: Path, keep: Path) -> None:
    """Move a torn last line into `keep` (evidence, never deleted) and cut it from the ledger."""
    torn = torn_tail(ledger)
    if torn is None:
        return
    keep.parent.mkdir(parents=True, exist_ok=True)
    keep.write_bytes(torn[1])
    with open(ledger, "r+b") as handle:
        handle.truncate(ledger.stat().st_size - len(torn[1]))
        os.fsync(handle.fileno())


def _lines(ledger: Path) -> list[str]:
    return _split(ledger.read_text(encoding="utf-8"))


def _split(text: str) -> list[str]:
    """The ledger's lines, split on "\n" only: entries are written with ensure_ascii=False, so a reason
    may hold U+2028 and the like, which str.splitlines() would cut."""
    return [line.removesuffix("\r") for line in text.removesuffix("\n").split("\n")] if text else []


def append(ledger: Path, entry: dict, signer=None) -> dict:
    """Append `entry` after the current tail, signed when a signer is given. Call inside `locked(ledger)`."""
    entries = read_entries(ledger)
    problems = check_chain_entries(entries)
    if problems:
        raise LedgerError(f"refusing to append to a broken chain: {problems[0].message}", file=str(ledger))
    entry = {**entry, "prev_sha256": entries[-1]["entry_sha256"] if entries else GENESIS}
    if signer is not None:
        from toolkit.registry.signing import sign_bytes

        entry["signature"] = sign_bytes(signer, signed_bytes(entry))
    entry["entry_sha256"] = entry_hash(entry)
    line = canonical(entry) + b"\n"
    with open(ledger, "ab+") as handle:
        if handle.seek(0, os.SEEK_END):
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) != b"\n":
                line = b"\n" + line     # the last entry is complete but lost its newline: never glue two
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    return entry


@dataclass(frozen=True)
class ChainProblem:
    line: int
    message: str


def check_chain(ledger: Path) -> list[ChainProblem]:
    if not ledger.is_file():
        return [ChainProblem(0, f"{ledger} not found")]
    problems, entries = [], []
    for number, line in enumerate(_lines(ledger), start=1):
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError as exc:
            problems.append(ChainProblem(number, f"line {number} is not valid JSON ({exc.msg})"))
            return problems
    return check_chain_entries(entries)


def check_chain_entries(entries: list[dict]) -> list[ChainProblem]:
    problems = []
    previous = GENESIS
    for number, entry in enumerate(entries, start=1):
        if entry.get("prev_sha256") != previous:
            problems.append(ChainProblem(number, f"line {number} does not follow line {number - 1} "
                                                 "(prev_sha256 mismatch: a line was removed, reordered or edited)"))
        if entry.get("entry_sha256") != entry_hash(entry):
            problems.append(ChainProblem(number, f"line {number} was edited (its entry_sha256 does not match its content)"))
        previous = entry.get("entry_sha256")
    return problems


def signature_problems(entries: list[dict], keys: dict, version: str | None) -> tuple[list[str], list[str]]:
    """(failures, warnings) of the entries' signatures against trusted `keys`.

    The entry of `version` must be signed by a trusted key. Every signed entry must verify. Unsigned
    release entries are allowed only before the first signed one (releases from before signing was
    adopted, a warning); an unsigned release entry after a signed one fails (its signature was
    removed). An unsigned event (monitoring, rollout) is a warning.
    """
    from toolkit.registry.signing import signature_problem

    failures, warnings, seen_signed = [], [], False
    for number, entry in enumerate(entries, start=1):
        event = entry.get("event")
        label = f"line {number} (v{entry.get('version')}{f' {event} event' if event else ''})"
        if "signature" not in entry:
            if event:
                # A monitoring job may run without the release key; its event is on record, unsigned.
                # (The rollout commands refuse to record an unsigned decision on a signed registry.)
                warnings.append(f"{label}: unsigned")
            elif entry.get("version") == version:
                failures.append(f"{label}: this release's entry is not signed")
            elif seen_signed:
                failures.append(f"{label}: unsigned after signed entries (a signature was removed)")
            else:
                warnings.append(f"{label}: unsigned (released before signing was adopted)")
            continue
        seen_signed = True
        problem = signature_problem(entry.get("signature"), signed_bytes(entry), keys)
        if problem:
            failures.append(f"{label}: {problem}")
    return failures, warnings
