"""The release registry's layout: releases/v<version>/ bundles, ledger.jsonl and keys/.

A release killed between renaming its bundle into place and appending its ledger entry leaves an
orphan: a bundle no entry names. One killed while filling its bundle leaves a `.staging-*` folder.
Both are found here; the release stage reports them and never reuses an orphan's version number.

Kept apart from the release stage so that readers of the registry (the canary tier, `history`)
import only this and the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from toolkit.registry import ledger as ledger_mod
from toolkit.registry.bundle import LedgerEntry, typed_entries
from toolkit.registry.events import LedgerEvent, is_event, typed_events


@dataclass(frozen=True)
class Registry:
    root: Path

    @property
    def ledger(self) -> Path:
        return self.root / "ledger.jsonl"

    @property
    def releases(self) -> Path:
        return self.root / "releases"

    def bundle(self, version: str) -> Path:
        return self.releases / f"v{version}"

    def entries(self) -> list[LedgerEntry]:
        """The ledger's release entries, typed (a malformed one is a LedgerError naming its line)."""
        return typed_entries(ledger_mod.read_entries(self.ledger), self.ledger)

    def events(self, version: str | None = None) -> list[LedgerEvent]:
        """Monitoring results and rollout decisions after the releases (of one release, if given)."""
        events = typed_events(ledger_mod.read_entries(self.ledger), self.ledger)
        return [e for e in events if version is None or e.version == version]

    def latest(self) -> Path | None:
        """The last released bundle not rolled back (what serves users): what the canary tier compares against."""
        version = self.in_service()
        return self.bundle(version) if version else None

    def in_service(self, before: str | None = None) -> str | None:
        """The last release (released before `before`, when given) that was not rolled back."""
        return next(iter(self.not_rolled_back(before)), None)

    def not_rolled_back(self, before: str | None = None) -> list[str]:
        """The releases (released before `before`, when given) that were not rolled back, newest first."""
        entries = ledger_mod.read_entries(self.ledger)
        rolled_back = {e.get("version") for e in entries if e.get("event") == "rollout" and e.get("action") == "rollback"}
        releases = [e["version"] for e in entries if not is_event(e)]
        if before is not None:
            releases = releases[:releases.index(before)] if before in releases else []
        return [v for v in reversed(releases) if v not in rolled_back]

    def orphans(self, entries: list[dict]) -> list[Path]:
        """Bundles with no ledger entry (a release killed before it was recorded)."""
        recorded = {f"v{entry.get('version')}" for entry in entries}
        return sorted(p for p in self.releases.glob("v*") if p.is_dir() and p.name not in recorded) \
            if self.releases.is_dir() else []

    @property
    def orphaned(self) -> Path:
        """Where `toolkit release --repair` moves orphans and torn ledger lines (kept as evidence)."""
        return self.root / "orphaned"

    def retired_versions(self, entries: list[dict]) -> set[str]:
        """Version numbers of orphans, in place or moved aside: never given to a new release."""
        names = [p.name for p in self.orphans(entries)]
        if self.orphaned.is_dir():
            names += [p.name.rsplit("-", 1)[0] for p in self.orphaned.glob("v*-*") if p.is_dir()]
        return {name[1:] for name in names}

    def stale_staging(self) -> list[Path]:
        """Half-filled bundles of killed releases. Only call under the ledger's lock: a live release
        holds the lock while it fills its staging folder."""
        return sorted(self.releases.glob(".staging-*")) if self.releases.is_dir() else []

