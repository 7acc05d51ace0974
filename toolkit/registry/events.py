"""Events after a release, in the same ledger: monitoring results and rollout decisions.

A release entry has no `event` field (ledgers from before events existed stay valid, byte for byte);
an event entry names its kind in `event` ("monitor" or "rollout") and the release it concerns in
`version`. Events share the hash chain and, when a release key is at hand, its signatures: a signed
event pins every entry before it like a signed release does.

A rollout decision on a registry whose releases are signed must be signed too (the decision to put
an adapter in front of users is as much on the record as the release). A monitoring event is signed
when a key is configured; a scheduled job without the key appends it unsigned, which `verify` reports
as a warning, never as a failure.
"""

from __future__ import annotations

import datetime as dt
import getpass
import subprocess
from pathlib import Path
from typing import Any, Literal

from toolkit.errors import ConfigError
from toolkit.registry import ledger as ledger_mod
from toolkit.registry.bundle import ChainedLine
from toolkit.registry.signing import keyring_dir, load_signer, signer_public_pem, signing_key_path

EVENT_KINDS = ("monitor", "rollout")


def is_event(raw: dict) -> bool:
    return "event" in raw


def who() -> str:
    """The person on the record: git's user.name <user.email>, else the login name."""
    def git(key: str) -> str:
        result = subprocess.run(["git", "config", key], capture_output=True, text=True)
        return result.stdout.strip()

    name, email = git("user.name"), git("user.email")
    if name or email:
        return f"{name} <{email}>".strip()
    return getpass.getuser()


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


class LedgerEvent(ChainedLine):
    """An event's line of ledger.jsonl."""
    event: Literal["monitor", "rollout"]
    version: str                    # the release the event concerns
    time: str
    by: str
    # monitor
    report_sha256: str | None = None
    passed: bool | None = None
    stage: str | None = None        # the rollout stage the monitored records were served in
    records: int | None = None
    first_record: str | None = None
    last_record: str | None = None
    failed: list[str] = []
    # rollout
    action: Literal["plan", "advance", "rollback"] | None = None
    from_stage: str | None = None
    to_stage: str | None = None
    traffic: float | None = None
    previous_release: str | None = None
    reason: str = ""
    plan: list[dict[str, Any]] = []


def typed_events(raw: list[dict], ledger: Path) -> list[LedgerEvent]:
    return [LedgerEvent.parse(entry, ledger, number) for number, entry in enumerate(raw, start=1) if is_event(entry)]


def registry_signer(registry_root: Path, configured_key: str | None):
    """The release key's signer (TOOLKIT_SIGNING_KEY, else release.signing.key), or None when no key is
    configured. Its public key is put into the registry's keyring when it is not there yet."""
    path = signing_key_path(configured_key)
    if path is None:
        return None
    signer = load_signer(path)
    public = keyring_dir(registry_root) / f"{signer.public_key.keyid}.pub"
    if not public.is_file():
        public.parent.mkdir(parents=True, exist_ok=True)
        public.write_bytes(signer_public_pem(signer))
    return signer


def decision_signer(registry_root: Path, configured_key: str | None, entries: list[dict], purpose: str):
    """The signer for a decision (a rollout step): required when the registry's releases are signed."""
    signer = registry_signer(registry_root, configured_key)
    if signer is None and any_signed(entries):
        raise ConfigError(f"{purpose} must be signed: this registry's releases are signed and no signing key is "
                          "configured; set TOOLKIT_SIGNING_KEY (or release.signing.key) to the private key file",
                          key="TOOLKIT_SIGNING_KEY")
    return signer


def any_signed(entries: list[dict]) -> bool:
    return any("signature" in entry for entry in entries)


def append_event(ledger: Path, fields: dict[str, Any], signer=None) -> LedgerEvent:
    """Append one event (under the ledger's lock) and return it typed."""
    if fields.get("event") not in EVENT_KINDS:
        raise ValueError(f"not an event kind: {fields.get('event')!r}")
    with ledger_mod.locked(ledger):
        entry = ledger_mod.append(ledger, {"time": now(), "by": who(), **fields}, signer=signer)
    return LedgerEvent.model_validate(entry)
