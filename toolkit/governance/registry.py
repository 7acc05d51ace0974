"""The release registry's layout: releases/v<version>/ bundles, ledger.jsonl and keys/.

Kept apart from the release stage so that readers of the registry (the canary tier, `history`)
import only this and the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from toolkit.governance import ledger as ledger_mod


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

    def latest(self) -> Path | None:
        """The last released bundle: what the canary tier compares against."""
        entries = ledger_mod.read_entries(self.ledger)
        return self.bundle(entries[-1]["version"]) if entries else None
