"""A release bundle: the one place that knows the paths inside registry/releases/v<N>/, and the typed
records a release writes (release.json) and appends to the ledger.

The release stage fills a bundle, `verify`, `publish`, `export` and the canary tier read one; all of
them go through `Bundle`, so a file moved inside the bundle is moved here only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from toolkit.errors import LedgerError, VerificationFailed
from toolkit.files import file_digests

MANIFEST = "MANIFEST.json"
RELEASE_INFO = "release.json"
POLICY_FILE = "policy.json"
ATTESTATION = "attestation.intoto.json"
BOM_FILE = "bom.cdx.json"
DATASHEET = "datasheet.yaml"
CARD_MARKDOWN = "README.md"
CARD_HTML = "model_card.html"
TECHDOC_MARKDOWN = "technical_documentation.md"


def _inside(*parts: str) -> property:
    return property(lambda self: self.root.joinpath(*parts), doc="/".join(parts))


@dataclass(frozen=True)
class Bundle:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def version(self) -> str:
        return self.root.name.removeprefix("v")

    adapter = _inside("adapter")
    reports = _inside("reports")
    model_card = _inside("model_card")
    eval = _inside("eval")
    manifest = _inside(MANIFEST)
    release_info = _inside(RELEASE_INFO)
    policy = _inside(POLICY_FILE)
    attestation = _inside(ATTESTATION)
    bom = _inside(BOM_FILE)
    datasheet = _inside(DATASHEET)
    adapter_weights = _inside("adapter", "adapter_model.safetensors")
    serving_probe = _inside("eval", "serving_probe.safetensors")

    def card(self, name: str = CARD_MARKDOWN) -> Path:
        return self.model_card / name

    def report(self, name: str) -> Path:
        """reports/<name>.json, e.g. report("eval_heldout")."""
        return self.reports / f"{name}.json"

    def read_report(self, name: str) -> dict:
        """A bundled report as written (the bundle may come from an older toolkit, so untyped)."""
        return json.loads(self.report(name).read_text(encoding="utf-8"))

    def read_policy(self) -> dict:
        return json.loads(self.policy.read_text(encoding="utf-8"))

    def is_bundle(self) -> bool:
        return self.release_info.is_file()

    def info(self) -> ReleaseInfo:
        try:
            return ReleaseInfo.model_validate_json(self.release_info.read_bytes())
        except ValidationError as exc:
            error = exc.errors()[0]
            raise VerificationFailed(f"{self.release_info}: field '{'.'.join(map(str, error['loc']))}': "
                                     f"{error['msg']}") from None

    def manifest_files(self) -> dict[str, str]:
        """Every file's SHA-256 but the manifest's and the attestation's (which attests the manifest too)."""
        return file_digests(self.root, (MANIFEST, ATTESTATION))


class Record(BaseModel):
    # Records from newer toolkits may carry fields this one does not know: kept, never dropped.
    model_config = ConfigDict(extra="allow")


class Override(Record):
    reason: str
    by: str
    at: str


class Headline(Record):
    metric: str
    base: float
    adapter: float
    delta: float
    ci_low: float | None = None
    ci_high: float | None = None


class ServingRecord(Record):
    """The release's serving check: the adapter's shape against vLLM's limits, and its reloaded logits."""
    rank: int
    alpha: float | None = None
    target_modules: list[str] = []
    use_rslora: bool = False
    use_dora: bool = False
    vllm_max_lora_rank: int | None = None
    vllm_compatible: bool = False
    notes: list[str] = []
    logit_max_abs_diff: float | None = None
    logit_tolerance: float | None = None
    logits_match: bool = False


class ChainedLine(Record):
    """What every line of ledger.jsonl carries: its place in the hash chain and, with a release key, its
    signature. The chain and signatures are checked on the raw JSON (toolkit.registry.ledger: the hash
    covers the bytes as written); the typed views below are what everyone else reads."""
    prev_sha256: str
    entry_sha256: str
    signature: dict[str, str] | None = None

    @property
    def signed(self) -> bool:
        return self.signature is not None

    @classmethod
    def parse(cls, raw: dict, ledger: Path, line: int):
        """The typed line, or a LedgerError naming the ledger's line and the field."""
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            error = exc.errors()[0]
            raise LedgerError(f"field '{'.'.join(map(str, error['loc']))}': {error['msg']}", file=str(ledger),
                              line=line) from None


class _ReleaseFields(Record):
    """What the release record and its ledger entry both state."""
    version: str
    base_model: str
    data_sha256: str
    policy: str
    gate_passed: bool
    override: Override | None = None
    git_commit: str | None = None
    dvc_lock_sha256: str | None = None
    headline: Headline | None = None


class ReleaseInfo(_ReleaseFields):
    """release.json."""
    created_at: str
    base_model_path: str
    headline: Headline
    serving: ServingRecord | None = None
    signed_by: str | None = None

    def ledger_fields(self) -> dict[str, Any]:
        """What the ledger entry repeats of the release record."""
        return {**self.model_dump(mode="json", include=set(_ReleaseFields.model_fields)), "time": self.created_at}


class LedgerEntry(_ReleaseFields, ChainedLine):
    """A release's line of ledger.jsonl."""
    time: str
    manifest_sha256: str
    attestation_sha256: str | None = None
    bundle: str = ""


def typed_entries(raw: list[dict], ledger: Path) -> list[LedgerEntry]:
    """The release entries; event lines (monitoring, rollout: toolkit.registry.events) are left out."""
    return [LedgerEntry.parse(entry, ledger, number) for number, entry in enumerate(raw, start=1)
            if "event" not in entry]
