"""`toolkit rollout plan|status|advance|rollback`: a staged rollout of a release, decided on monitoring.

The state of a rollout is nothing but the ledger's events for the release (toolkit.registry.events):
`plan` records the stages (copied from params.yaml `monitor.rollout`, so a later edit cannot change a
rollout under way) and the release it replaces; each `advance` moves one stage on and names the
monitoring report that allowed it by SHA-256; `rollback` names the release to return to. Every
decision says who, when and why, and is signed when the registry's releases are.

`advance` refuses (exit 1) unless the report is the one `toolkit monitor` recorded in the ledger for
this release and the current stage, it passed, and it holds the stage's minimum records and days.
`toolkit monitor` compares the new release with the previous one on the same window (paired where the
same request was answered by both, in shadow), so a significant regression fails the report.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from pathlib import Path

from toolkit.config import Params, RolloutStage
from toolkit.errors import ConfigError, GateFailed
from toolkit.files import atomic_write_text, sha256_file
from toolkit.monitoring.logs import parse_time
from toolkit.registry import ledger as ledger_mod
from toolkit.registry.events import LedgerEvent, append_event, decision_signer
from toolkit.registry.store import Registry
from toolkit.reports import MonitorReport, read_report
from toolkit.templating import render

ROLLED_BACK = "rolled_back"


@dataclass
class RolloutState:
    version: str
    stages: list[RolloutStage] = field(default_factory=list)   # as planned; empty: no rollout planned
    index: int | None = None                                    # the current stage; None: not planned
    previous_release: str | None = None                         # what the release replaces, and rollback returns to
    stage_started: dt.datetime | None = None
    rolled_back: bool = False
    decisions: list[LedgerEvent] = field(default_factory=list)
    last_monitor: LedgerEvent | None = None

    @property
    def planned(self) -> bool:
        return self.index is not None

    @property
    def stage(self) -> RolloutStage | None:
        return None if self.index is None or self.rolled_back else self.stages[self.index]

    @property
    def stage_name(self) -> str | None:
        return ROLLED_BACK if self.rolled_back else (self.stage.name if self.stage else None)

    @property
    def complete(self) -> bool:
        return self.planned and not self.rolled_back and self.index == len(self.stages) - 1

    @property
    def summary(self) -> str:
        if not self.planned:
            return f"release {self.version}: no rollout planned (`toolkit rollout plan`)"
        if self.rolled_back:
            back = f"v{self.previous_release}" if self.previous_release else "no earlier release"
            return f"release {self.version}: rolled back (traffic returns to {back})"
        stage = self.stage
        done = " (complete)" if self.complete else ""
        return (f"release {self.version}: stage {self.index + 1} of {len(self.stages)}, {stage.name} "
                f"({stage.traffic:.0%} of traffic){done}, since {self.stage_started.isoformat()}")


def rollout_state(registry: Registry, version: str) -> RolloutState:
    state = RolloutState(version)
    for event in registry.events(version):
        if event.event == "monitor":
            state.last_monitor = event
            continue
        state.decisions.append(event)
        if event.action == "plan":
            state.stages = [RolloutStage.model_validate(stage) for stage in event.plan]
            state.index, state.previous_release = 0, event.previous_release
            state.stage_started = parse_time(event.time)
        elif event.action == "advance" and state.index is not None:
            state.index += 1
            state.stage_started = parse_time(event.time)
        elif event.action == "rollback":
            state.rolled_back = True
    return state


def release_version(registry: Registry, version: str | None, purpose: str = "") -> str:
    """The named release (`3` or `v3`), default the latest; ConfigError when it is not in the ledger."""
    versions = [entry.version for entry in registry.entries()] if registry.ledger.is_file() else []
    if not versions:
        raise ConfigError(f"no release in {registry.root}{': ' + purpose if purpose else ''}", key="--release")
    wanted = (version or versions[-1]).removeprefix("v")
    if wanted not in versions:
        raise ConfigError(f"release {wanted} is not in the ledger (released: {', '.join(versions)})", key="--release")
    return wanted


def plan(params: Params, registry: Registry, version: str | None = None, reason: str = "") -> RolloutState:
    version = release_version(registry, version)
    state = rollout_state(registry, version)
    if state.planned:
        raise ConfigError(f"release {version} already has a rollout: {state.summary}", key="--release")
    stages = params.monitor.rollout.stages
    _decide(params, registry, {
        "event": "rollout", "action": "plan", "version": version, "to_stage": stages[0].name,
        "traffic": stages[0].traffic, "previous_release": registry.in_service(before=version),
        "plan": [stage.model_dump(mode="json") for stage in stages], "reason": reason.strip(),
    })
    return write_status(registry, version)


def advance(params: Params, registry: Registry, report_file: Path, version: str | None = None,
            reason: str = "") -> RolloutState:
    version = release_version(registry, version)
    state = rollout_state(registry, version)
    if not state.planned:
        raise ConfigError(f"release {version} has no rollout to advance; start one with `toolkit rollout plan`",
                          key="--release")
    if state.rolled_back or state.complete:
        raise ConfigError(f"nothing to advance: {state.summary}", key="--release")
    digest, refusals = _advance_refusals(registry, state, Path(report_file))
    if refusals:
        raise GateFailed(f"advance refused for release {version} at stage {state.stage.name}: " + "; ".join(refusals))
    following = state.stages[state.index + 1]
    _decide(params, registry, {
        "event": "rollout", "action": "advance", "version": version, "from_stage": state.stage.name,
        "to_stage": following.name, "traffic": following.traffic, "report_sha256": digest,
        "previous_release": state.previous_release, "reason": reason.strip(),
    })
    return write_status(registry, version)


def _advance_refusals(registry: Registry, state: RolloutState, report_file: Path) -> tuple[str, list[str]]:
    """The report's SHA-256 and every reason the current stage may not be left on its strength."""
    if not report_file.is_file():
        raise ConfigError("monitoring report not found; run `toolkit monitor LOGS` first", file=str(report_file))
    report = read_report(report_file, MonitorReport)
    digest = sha256_file(report_file)
    stage = state.stage
    refusals = []
    recorded = [e for e in registry.events(state.version) if e.event == "monitor" and e.report_sha256 == digest]
    if report.release != state.version:
        refusals.append(f"the report is of release {report.release}, not {state.version}")
    if not recorded:
        refusals.append("the report is not one `toolkit monitor` recorded in the ledger (changed since, or of "
                        "another registry)")
    if report.rollout_stage != stage.name:
        refusals.append(f"the report measured stage {report.rollout_stage or '(none)'}, not {stage.name}")
    if not report.passed:
        refusals.append(f"the report failed {len(report.failed)} rule(s): {'; '.join(report.failed[:3])}")
    if report.records_used < stage.min_records:
        refusals.append(f"{report.records_used} record(s) of the release, the stage needs {stage.min_records}")
    if report.last_record is not None:
        days = (parse_time(report.last_record) - state.stage_started).total_seconds() / 86400
        if days < stage.min_days:
            refusals.append(f"the stage has {math.floor(days * 100) / 100:.2f} day(s) of records, it needs "
                            f"{stage.min_days:g} day(s)")
    elif stage.min_days > 0:
        refusals.append("the report holds no record time")
    return digest, refusals


def rollback(params: Params, registry: Registry, reason: str, version: str | None = None,
             report_file: Path | None = None) -> RolloutState:
    if not reason.strip():
        raise ConfigError("a rollback needs a reason for the record", key="--reason")
    version = release_version(registry, version)
    state = rollout_state(registry, version)
    if state.rolled_back:
        raise ConfigError(f"release {version} is already rolled back", key="--release")
    previous = state.previous_release if state.planned else registry.in_service(before=version)
    _decide(params, registry, {
        "event": "rollout", "action": "rollback", "version": version, "from_stage": state.stage_name,
        "to_stage": ROLLED_BACK, "traffic": 0.0, "previous_release": previous, "reason": reason.strip(),
        **({"report_sha256": sha256_file(report_file)} if report_file else {}),
    })
    return write_status(registry, version)


def _decide(params: Params, registry: Registry, fields: dict) -> LedgerEvent:
    entries = ledger_mod.read_entries(registry.ledger)
    signer = decision_signer(registry.root, params.release.signing.key, entries, f"the rollout {fields['action']}")
    return append_event(registry.ledger, fields, signer=signer)


def status_path(registry: Registry, version: str) -> Path:
    return registry.root / "rollout" / f"v{version}.md"


def write_status(registry: Registry, version: str) -> RolloutState:
    """The release's post-market record (plan, current stage, decisions, last monitoring result), rendered
    from the ledger after every decision and monitoring run: the bundle's card is immutable, this is
    the living part the card points to."""
    state = rollout_state(registry, version)
    path = status_path(registry, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, render("rollout_status.md.j2", state=state, ledger=registry.ledger.name))
    return state
