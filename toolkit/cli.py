"""The `toolkit` command. Each command parses, calls the library, prints, and exits with
0 on success, 1 when a gate failed, 2 on bad input or configuration, 3 when an external service
kept failing, 4 on an unexpected error (operating system or internal; traceback in a log file)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from toolkit import __version__
from toolkit.config import DEFAULT_PARAMS_FILE, load_params
from toolkit.errors import ConfigError, ToolkitError

# Privacy and quiet by default: no usage pings from the libraries we drive.
for _name, _value in (("HF_HUB_DISABLE_TELEMETRY", "1"), ("GX_ANALYTICS_ENABLED", "false"),
                      ("TOKENIZERS_PARALLELISM", "false"), ("DO_NOT_TRACK", "1")):
    os.environ.setdefault(_name, _value)


UNEXPECTED_EXIT = 4   # a crash or an operating-system error (disk full, permissions): not a gate's "no"


class ToolkitGroup(click.Group):
    """Turns the toolkit's exceptions into a one-line message and the matching exit code; anything
    unexpected exits 4 with its traceback in a log file, so CI can tell a crash from a failed gate."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ToolkitError as exc:
            click.secho(f"error: {exc}", err=True, fg="red")
            ctx.exit(exc.exit_code)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:
            log = _traceback_log()
            click.secho(f"error: unexpected {type(exc).__name__}: {exc}" + (f" (traceback: {log})" if log else ""),
                        err=True, fg="red")
            ctx.exit(UNEXPECTED_EXIT)


def _traceback_log() -> str | None:
    """Write the current exception's traceback to .cache/errors/ (or the temp folder when the project
    cannot be written, e.g. a full disk); None when neither can, and then print it."""
    import datetime as dt
    import tempfile
    import traceback

    text = traceback.format_exc()
    name = f"toolkit-{dt.datetime.now().strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    for folder in (Path(".cache/errors"), Path(tempfile.gettempdir())):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / name).write_text(text, encoding="utf-8")
            return str(folder / name)
        except OSError:
            continue
    click.echo(text, err=True)
    return None


params_option = click.option(
    "--params", "params_file", default=DEFAULT_PARAMS_FILE, show_default=True, envvar="TOOLKIT_PARAMS",
    type=click.Path(dir_okay=False), help="Parameters file (the only configuration a run reads).",
)


@click.group(cls=ToolkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="toolkit")
def cli() -> None:
    """Release fine-tuned LLM adapters under governance.

    Each pipeline stage is a command; `dvc repro` runs them in order (see dvc.yaml).
    Exit codes: 0 success, 1 a gate failed, 2 bad input or configuration, 3 an external service
    kept failing, 4 an unexpected error (the traceback is in .cache/errors/).
    """


@cli.command()
@params_option
def base(params_file: str) -> None:
    """Build the builtin tiny base model, or resolve base.model (Hub id or local folder)."""
    from toolkit.train.base_stage import run_base

    report = run_base(load_params(params_file), progress=sys.stderr.isatty())
    click.echo(f"base: {report.model} ({report.source}), {report.parameters:,} parameters -> {report.model_path}")


@cli.command()
@params_option
def validate(params_file: str) -> None:
    """Validate the training data and split it: formats, GX suite, tokens, dedup, PII, decontamination."""
    from toolkit.data.validate import run_validate

    report = run_validate(load_params(params_file), progress=lambda line: click.echo(line, err=True))
    splits = ", ".join(f"{name} {count}" for name, count in report.splits.items())
    dropped = ", ".join(f"{count} {why.replace('_', ' ')}" for why, count in report.dropped.items() if count) or "none"
    click.echo(f"validate: {report.records_valid}/{report.records_in} records valid ({report.format}), "
               f"{report.records_quarantined} quarantined, dropped: {dropped}; PII: {sum(report.pii.findings.values())} "
               f"finding(s), {report.pii.action}; splits: {splits}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"data report: {report.html_report}")


@cli.command()
@params_option
@click.option("--seed", type=int, help="one of train.seeds, into artifacts/runs/seed-SEED (the pipeline's train "
              "stages; `toolkit select-seed` then picks the released one); default: train.seeds[0] into "
              "artifacts/adapter")
def train(params_file: str, seed: int | None) -> None:
    """Fine-tune an adapter (TRL + PEFT): SFT, DPO/IPO, KTO, ORPO or GRPO; LoRA, rsLoRA, DoRA or QLoRA.

    Checkpoints every train.checkpoint_steps; run it again after an interruption to resume. Works
    under `accelerate launch` (data-parallel)."""
    from toolkit.train.run import run_train

    report = run_train(load_params(params_file), seed)
    if report is None:   # a non-main data-parallel process
        return
    resumed = f", resumed at step {report.resumed_from_step}" if report.resumed_from_step else ""
    grpo = report.objective if report.method == "grpo" else None
    watched = (f"validation reward {_loss(grpo.get('best_validation_reward'))}" if grpo
               else f"validation loss {_loss(report.best_validation_loss)}")
    best = f"; released the step-{report.best_step} checkpoint ({watched})" if report.best_step else ""
    early = " (stopped early)" if report.stopped_early else ""
    reward = f", reward {_loss(grpo.get('first_reward'))} -> {_loss(grpo.get('final_reward'))}" if grpo else ""
    click.echo(f"train ({report.method}, {report.adapter_type}): {report.optimizer_steps} steps{early}{resumed}, "
               f"loss {_loss(report.first_loss)} -> {_loss(report.final_loss)}{reward}, {report.tokens_seen:,} tokens in "
               f"{report.wall_time_s:.0f} s on {report.device} x{report.world_size}{best}")


@cli.command("select-seed")
@params_option
def select_seed(params_file: str) -> None:
    """Release one of the seeds' adapters by train.seed_selection (validation figures, never an evaluation)."""
    from toolkit.train.seeds import run_select

    report = run_select(load_params(params_file))
    selection = report.seeds
    figures = ", ".join(f"seed {run.seed}: {_loss(run.validation_reward if selection.rule_field == 'validation_reward' else run.validation_loss)}"
                        for run in selection.runs)
    click.echo(f"select-seed: seed {selection.chosen} of {selection.count} by {selection.rule}"
               + (f" ({selection.rule_field.replace('_', ' ')}: {figures})" if selection.rule_field else "")
               + " -> artifacts/adapter")


def _loss(value: float | None) -> str:
    return "not logged" if value is None else f"{value:.3f}"


@cli.group(cls=ToolkitGroup)
def evaluate() -> None:
    """Evaluation tiers: base vs adapter on the same items."""


def _echo_tier(report) -> None:
    for name, m in report.metrics.items():
        line = (f"{report.suite} {name} (n={m.n}): base {m.base:.4f} -> adapter {m.adapter:.4f} "
                f"(delta {m.delta:+.4f}, {m.confidence:.0%} CI [{m.ci_low:+.4f}, {m.ci_high:+.4f}]"
                + (f", McNemar p {m.p_value:.3g}" if m.p_value is not None else "") + ")")
        if report.against_prompted and name in report.against_prompted:
            line += f"; prompted base {report.against_prompted[name].base:.4f}"
        if report.against_previous and name in report.against_previous:
            line += f"; previous release {report.against_previous[name].base:.4f}"
        click.echo(line)
    if report.previous and report.previous.get("skipped_reason"):
        click.echo(f"{report.suite}: not compared with the previous adapter: {report.previous['skipped_reason']}")
    for side, count in report.regressed_items.items():
        if count:
            click.echo(f"{report.suite}: {count} item(s) scored lower on {report.primary_metric} than with the {side}"
                       f" (see {report.items_file})")
    if report.generation.get("prompts_over_context"):
        click.echo(f"warning: {report.generation['prompts_over_context']} prompt(s) plus max_new_tokens exceed the "
                   f"model's context of {report.generation['context_length']} tokens", err=True)


@evaluate.command("heldout")
@params_option
def evaluate_heldout(params_file: str) -> None:
    """Held-out tier: the task's metrics on the validated held-out split (eval_suites/heldout)."""
    from toolkit.evals.tiers import run_tier

    _echo_tier(run_tier(load_params(params_file), "heldout"))


@evaluate.command("ood")
@params_option
def evaluate_ood(params_file: str) -> None:
    """Out-of-distribution tier: probes unlike the training data (eval_suites/ood)."""
    from toolkit.evals.tiers import run_tier

    _echo_tier(run_tier(load_params(params_file), "ood"))


@evaluate.command("canary")
@params_option
def evaluate_canary(params_file: str) -> None:
    """Canary tier: a fixed set that must keep working, against the base and the last release."""
    from toolkit.evals.tiers import run_tier

    _echo_tier(run_tier(load_params(params_file), "canary"))


@evaluate.command("seed")
@params_option
@click.option("--seed", type=int, required=True, help="one of train.seeds")
def evaluate_seed(params_file: str, seed: int) -> None:
    """One training seed's adapter on the held-out, OOD and canary suites (for the across-seed figures)."""
    from toolkit.evals.seeds import run_seed_eval

    report = run_seed_eval(load_params(params_file), seed)
    means = "; ".join(f"{name}: " + ", ".join(f"{m} {v:.4f}" for m, v in tier.means.items())
                      for name, tier in report.tiers.items())
    click.echo(f"seed {seed}: {means} ({report.wall_time_s:.0f} s)")


@evaluate.command("suite")
@params_option
@click.argument("name")
def evaluate_suite(params_file: str, name: str) -> None:
    """Any suite in eval_suites/ by folder name; writes reports/eval_NAME.json."""
    from toolkit.evals.tiers import run_tier

    _echo_tier(run_tier(load_params(params_file), name))


@evaluate.command("list")
def evaluate_list() -> None:
    """The suites in eval_suites/, checked: tier, item count, metrics."""
    from toolkit.evals.suites import discover_suites, parse_suite
    from toolkit.layout import SPLIT_FILES

    for name, folder in discover_suites().items():
        suite = parse_suite(folder)
        from_split = suite.items_file in SPLIT_FILES.values()
        count = "validated split" if from_split else f"{len(suite.load_items())} items"
        click.echo(f"{name}: tier {suite.tier}, {count}, metrics {', '.join(suite.metrics)} "
                   f"(primary {suite.primary_metric}){', few-shot prompted baseline' if suite.few_shot else ''}")


@evaluate.command("general")
@params_option
def evaluate_general(params_file: str) -> None:
    """General-capability tier: lm-evaluation-harness tasks (MMLU by default) on base and adapter."""
    from toolkit.evals.general import run_general

    report = run_general(load_params(params_file))
    for name, m in report.metrics.items():
        if ":" in name:
            continue    # per task: in the report
        relative = f"{m.relative_delta:+.1%}" if m.relative_delta is not None else "n/a"
        click.echo(f"general capability {name}: base {m.base:.4f} -> adapter {m.adapter:.4f} (delta {m.delta:+.4f}, "
                   f"relative {relative}, {m.confidence:.0%} CI [{m.ci_low:+.4f}, {m.ci_high:+.4f}]"
                   + (f", McNemar p {m.p_value:.3g})" if m.p_value is not None else ")"))
    click.echo(f"tasks {', '.join(report.generation['tasks'])}: "
               f"base {'from cache' if report.generation['base_cached'] else 'evaluated'}, "
               f"{report.generation['stage_wall_s']:.1f} s")


# The tier's name while MMLU was its only task; scripts and CI jobs written then keep working.
evaluate.add_command(click.Command("mmlu", params=evaluate_general.params, callback=evaluate_general.callback,
                                   help="The general tier under its old name (same as `evaluate general`).",
                                   hidden=True))


@evaluate.command("judge")
@params_option
def evaluate_judge(params_file: str) -> None:
    """LLM-as-judge tier: an Anthropic model compares base and adapter answers in both orders."""
    from toolkit.evals.judge import run_judge

    report = run_judge(load_params(params_file))
    if report.skipped:
        click.echo(f"judge: skipped ({report.skip_reason})")
        return
    rate = report.win_rate
    click.echo(f"judge ({report.judge_model}): {report.wins} win(s), {report.ties} tie(s), {report.losses} loss(es), "
               f"{report.invalid} invalid of {report.n_pairs}; win rate "
               + (f"{rate.point:.3f} [{rate.ci_low:.3f}, {rate.ci_high:.3f}]" if rate else "n/a")
               + f"; position consistency {report.position_consistency or 0:.2f}; "
               f"{report.usage['requests']} request(s), {report.usage['cache_hits']} from cache")


@cli.group(cls=ToolkitGroup)
def cost() -> None:
    """FinOps: training cost estimates, actual cost, inference economics and ROI."""


@cost.command("estimate")
@params_option
@click.option("--gpu", help="a catalog GPU (default: finops.training.gpu)")
@click.option("--technique", type=click.Choice(["lora", "qlora", "full"]), help="default: finops.training.technique")
@click.option("--model", "model_shape", help="a catalog model shape, e.g. llama-3.1-8b (default: the run's base)")
@click.option("--pricing", type=click.Choice(["on_demand", "spot"]))
@click.option("--examples", type=int, help="with --tokens-per-example: size the data instead of the validated split")
@click.option("--tokens-per-example", type=int)
@click.option("--epochs", type=float, help="default: train.epochs")
def cost_estimate(params_file: str, gpu, technique, model_shape, pricing, examples, tokens_per_example, epochs) -> None:
    """Estimate GPU-hours, memory fit and cost of training, before training."""
    from toolkit.finops.stage import ESTIMATE_REPORT, run_what_if_estimate

    estimate = run_what_if_estimate(load_params(params_file), gpu=gpu, technique=technique, model=model_shape,
                                    pricing=pricing, epochs=epochs, examples=examples,
                                    tokens_per_example=tokens_per_example)
    cur = estimate.currency
    click.echo(f"estimate: {estimate.model} ({estimate.parameters:.3g} parameters), {estimate.technique} on {estimate.gpu}, "
               f"{estimate.tokens:,.0f} tokens ({estimate.tokens_per_epoch:,} x {estimate.epochs:g} epochs)")
    click.echo(f"  GPU-hours {estimate.gpu_hours:.3g} (range {estimate.gpu_hours_low:.3g} - {estimate.gpu_hours_high:.3g}, "
               f"MFU {estimate.mfu_low}-{estimate.mfu_high})")
    click.echo(f"  cost {estimate.cost:,.2f} {cur} (range {estimate.cost_low:,.2f} - {estimate.cost_high:,.2f}, {estimate.pricing})")
    click.echo(f"  memory {estimate.memory.total_gb} GB of {estimate.memory.gpu_memory_gb} GB: {estimate.memory.verdict} "
               f"({estimate.memory.assumptions})")
    click.echo(f"  written to {ESTIMATE_REPORT}")


@cost.command("report")
@params_option
def cost_report(params_file: str) -> None:
    """Actual cost of this run, inference economics and ROI: reports/cost.json and reports/cost/index.html."""
    from toolkit.finops.stage import run_cost

    report = run_cost(load_params(params_file))
    roi, inf = report.roi, report.inference
    payback = f"{roi.payback_months:.2f} months" if roi.payback_months is not None else "never"
    click.echo(f"cost: one-off {roi.one_off_cost:,.2f} {report.currency}; serving {inf.self_hosted_monthly:,.2f} "
               f"{report.currency}/month on {inf.instances} x {inf.device}; saving vs {roi.compared_with} "
               f"{roi.monthly_saving:,.2f}/month; payback {payback}; report: {report.files['html']}")
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)


@cli.group(cls=ToolkitGroup, invoke_without_command=True)
@params_option
@click.pass_context
def card(ctx: click.Context, params_file: str) -> None:
    """Render the model card and the EU AI Act technical documentation (Markdown + HTML) from the reports."""
    if ctx.invoked_subcommand:
        return
    from toolkit.governance.card import run_card

    report = run_card(load_params(params_file))
    click.echo(f"card: {report.markdown}, {report.html}, {report.technical_documentation}")
    if report.governance_missing:
        click.echo(f"card: missing governance fields: {', '.join(report.governance_missing)}")
    if report.documentation_missing:
        click.echo(f"card: policy {report.documentation_policy!r} finds missing documentation: "
                   f"{'; '.join(report.documentation_missing)}")


@card.command("check")
@params_option
@click.option("--policy", "policy_name", help="a policy name or file (default: gate.policy)")
def card_check(params_file: str, policy_name: str | None) -> None:
    """List the sections and governance fields a policy requires that are missing or empty (exit 1 if any)."""
    from toolkit.errors import GateFailed
    from toolkit.governance.card import check_documentation

    policy, missing = check_documentation(load_params(params_file), policy_name)
    if not missing:
        click.echo(f"card check: all {len(policy.required_sections)} section(s) and "
                   f"{len(policy.required_governance)} governance field(s) required by policy {policy.name!r} are present")
        return
    for problem in missing:
        click.echo(f"missing: {problem}")
    raise GateFailed(f"{len(missing)} documentation requirement(s) of policy {policy.name!r} not met")


@cli.command()
@params_option
@click.argument("logs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--release", default=None, help="The release the logs are of (default: the latest in the registry).")
@click.option("--since", default=None, metavar="TIME", help="Only records at or after this ISO time or date.")
@click.option("--until", default=None, metavar="TIME", help="Only records before this ISO time or date.")
@click.option("--window", type=click.Choice(["day", "week"]), default=None, help="Figures per day or week "
              "(default: monitor.window).")
@click.option("--registry", default=None, help="Registry folder (default: release.registry).")
@click.option("--export-review", "export_review", default=None, type=click.Path(dir_okay=False),
              help="Also write the records that failed a metric or got negative feedback, personal data redacted, "
                   "as chat records for a person to review (JSON Lines).")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Worker processes (default: one per core, up to 4, for logs over about 3 MB; 1: none).")
def monitor(params_file: str, logs: tuple[str, ...], release: str | None, since: str | None, until: str | None,
            window: str | None, registry: str | None, export_review: str | None, workers: int | None) -> None:
    """Measure production logs (JSON Lines, gzip, folders; OpenAI-style logs too) against a release:
    reports/monitor.json and reports/monitor/index.html; exit 1 when a monitoring rule fails."""
    from toolkit.monitoring.stage import run_monitor

    params = load_params(params_file)
    if window:
        params = params.model_copy(update={"monitor": params.monitor.model_copy(update={"window": window})})
    report = run_monitor(params, list(logs), release=release, since=_when(since, "--since"),
                         until=_when(until, "--until"), registry_root=registry,
                         export_review=Path(export_review) if export_review else None, workers=workers,
                         progress=lambda line: click.echo(line, err=True))
    for line in report.warnings:
        click.echo(f"warning: {line}", err=True)
    click.secho(f"monitoring passed for release {report.release}: {report.records_used} record(s), "
                f"{len(report.windows)} {report.window}(s); report: {report.html_report}", fg="green")


@cli.group(cls=ToolkitGroup)
def rollout() -> None:
    """A staged rollout of a release (monitor.rollout in params.yaml): plan, status, advance, rollback.
    Every decision is a ledger entry with who, when, why and the monitoring report's SHA-256."""


def _registry(params, registry: str | None):
    from toolkit.registry.store import Registry

    return Registry(Path(registry or params.release.registry))


_release_option = click.option("--release", default=None, help="The release (default: the latest in the registry).")
_registry_option = click.option("--registry", default=None, help="Registry folder (default: release.registry).")


@rollout.command("plan")
@params_option
@_release_option
@_registry_option
@click.option("--reason", default="", help="Why, for the record.")
def rollout_plan(params_file: str, release: str | None, registry: str | None, reason: str) -> None:
    """Start the rollout of a release at its first stage (default: shadow)."""
    from toolkit.monitoring import rollout as rollout_mod

    params = load_params(params_file)
    reg = _registry(params, registry)
    state = rollout_mod.plan(params, reg, release, reason)
    click.echo(state.summary)
    click.echo(f"plan: {' -> '.join(f'{s.name} ({s.traffic:.0%})' for s in state.stages)}; replaces "
               f"{'v' + state.previous_release if state.previous_release else 'no earlier release'}; "
               f"record: {rollout_mod.status_path(reg, state.version)}")


@rollout.command("status")
@params_option
@_release_option
@_registry_option
def rollout_status(params_file: str, release: str | None, registry: str | None) -> None:
    """Where the rollout stands, what the stage needs to advance, and the last monitoring result."""
    from toolkit.monitoring import rollout as rollout_mod

    params = load_params(params_file)
    reg = _registry(params, registry)
    state = rollout_mod.write_status(reg, rollout_mod.release_version(reg, release))
    click.echo(state.summary)
    if state.stage is not None and not state.complete:
        click.echo(f"to advance: a passing `toolkit monitor` report of this stage with at least "
                   f"{state.stage.min_records} record(s) and {state.stage.min_days:g} day(s)")
    if state.last_monitor is not None:
        m = state.last_monitor
        click.echo(f"last monitoring: {m.time} {'passed' if m.passed else 'FAILED'} on {m.records} record(s)"
                   f"{' (stage ' + m.stage + ')' if m.stage else ''}")
    click.echo(f"record: {rollout_mod.status_path(reg, state.version)}")


@rollout.command("advance")
@params_option
@_release_option
@_registry_option
@click.option("--report", "report_file", default="reports/monitor.json", show_default=True,
              type=click.Path(dir_okay=False), help="The monitoring report of the current stage.")
@click.option("--reason", default="", help="Why, for the record.")
def rollout_advance(params_file: str, release: str | None, registry: str | None, report_file: str,
                    reason: str) -> None:
    """Move to the next stage; exit 1 unless the stage's monitoring report passed with enough records and days."""
    from toolkit.monitoring import rollout as rollout_mod

    params = load_params(params_file)
    state = rollout_mod.advance(params, _registry(params, registry), Path(report_file), release, reason)
    click.secho(state.summary, fg="green")


@rollout.command("rollback")
@params_option
@_release_option
@_registry_option
@click.option("--reason", required=True, help="Why, for the record.")
@click.option("--report", "report_file", default=None, type=click.Path(exists=True, dir_okay=False),
              help="The monitoring report that shows the problem (its SHA-256 is recorded).")
def rollout_rollback(params_file: str, release: str | None, registry: str | None, reason: str,
                     report_file: str | None) -> None:
    """Take a release out of traffic and name the release to return to."""
    from toolkit.monitoring import rollout as rollout_mod

    params = load_params(params_file)
    state = rollout_mod.rollback(params, _registry(params, registry), reason, release,
                                 Path(report_file) if report_file else None)
    click.secho(state.summary, fg="yellow")


def _when(value: str | None, option: str):
    from toolkit.monitoring.logs import parse_time

    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError:
        raise ConfigError(f"not an ISO time or date: {value!r}", key=option) from None


@cli.command()
@params_option
@click.option("--policy", default=None, help="Policy name in policies/ or a YAML path (default: gate.policy).")
def gate(params_file: str, policy: str | None) -> None:
    """Apply a policy to the stage reports; exit 1 if a blocking rule fails or is missing."""
    from toolkit.governance.gate import GATE_MARKDOWN, enforce, run_gate

    policy_name = policy or load_params(params_file).gate.policy
    report = run_gate(policy_name)
    for outcome in report.rules:
        colour = {"passed": "green", "warned": "yellow"}.get(outcome.status, "red")
        value = "" if outcome.value is None else f" value={outcome.value!r}"
        threshold = "" if outcome.threshold is None else f" {outcome.op} {outcome.threshold!r}"
        click.secho(f"  [{outcome.status:>7}] {outcome.id}:{value}{threshold}", fg=colour)
        if outcome.status != "passed":
            click.echo(f"            {outcome.rationale} {outcome.message}".rstrip())
    verdict = "PASSED" if report.passed else "FAILED"
    click.secho(f"gate {verdict} under policy '{report.policy}': {report.blocking_failures} blocking failure(s), "
                f"{report.warnings} warning(s); report: {GATE_MARKDOWN}", fg="green" if report.passed else "red",
                bold=True)
    enforce(report)


@cli.command()
@params_option
@click.option("--override", default=None, metavar="REASON",
              help="Release although the gate failed; the reason, who and when go into the ledger and onto the card.")
@click.option("--version", "version", default=None, help="Version to release (an integer or MAJOR.MINOR.PATCH; "
              "default: the next integer).")
@click.option("--registry", default=None, help="Registry folder (default: release.registry).")
@click.option("--repair", is_flag=True, help="Move bundles that have no ledger entry (a release killed before it was "
              "recorded) to <registry>/orphaned/.")
def release(params_file: str, override: str | None, version: str | None, registry: str | None, repair: bool) -> None:
    """Release the adapter into the registry: a verified bundle and a ledger entry. Refuses unless
    the gate passed or --override is given."""
    from toolkit.governance.release import run_release

    params = load_params(params_file)
    result = run_release(params, override=override, version=version, registry_root=registry,
                         repair=repair)
    for folder in result.cleaned:
        click.echo(f"removed {folder}: the half-written bundle of a release that was killed", err=True)
    for orphan in result.orphans:
        what = "moved to the registry's orphaned/ folder" if repair else \
            "its version number is skipped; `toolkit release --repair` moves it aside"
        click.secho(f"warning: {orphan} has no ledger entry (a release killed before it was recorded); {what}",
                    fg="yellow", err=True)
    entry, serving = result.entry, result.serving
    if entry.override:
        click.secho(f"released with an OVERRIDE by {entry.override.by}: {entry.override.reason}", fg="yellow", bold=True)
    click.echo(f"released version {entry.version} -> {result.bundle} "
               f"(manifest sha256 {entry.manifest_sha256[:12]}…, ledger entry {entry.entry_sha256[:12]}…)")
    click.echo(f"serving: rank {serving.rank}, vLLM --max-lora-rank {serving.vllm_max_lora_rank}, "
               f"reloaded logits max |diff| {serving.logit_max_abs_diff:.1e}"
               + ("" if serving.vllm_compatible else f"; {'; '.join(serving.notes)}"))
    tracking = params.tracking
    if tracking.registered_model:
        from toolkit.governance.tracking import register_release

        number = register_release(params, result.bundle, entry.entry_sha256)
        click.echo(f"registered in MLflow: {tracking.registered_model} version {number} (tags: release {entry.version}, "
                   f"ledger entry {entry.entry_sha256[:12]}…)")


@cli.group(cls=ToolkitGroup)
def track() -> None:
    """MLflow tracking and registry (optional extra `mlflow`; docs/tracking.md)."""


@track.command("mlflow")
@params_option
@click.option("--force", is_flag=True, help="Log again a pipeline state (dvc.lock) already logged.")
def track_mlflow(params_file: str, force: bool) -> None:
    """Log the completed pipeline: a parent run and a child per stage (params, headline figures, reports)."""
    from toolkit.governance.tracking import log_pipeline, server_uri, shown

    params = load_params(params_file)
    tracked = log_pipeline(params, force=force)
    where = f"{shown(server_uri(params))}, experiment {tracked.experiment}"
    if tracked.already_logged:
        click.echo(f"this pipeline state (dvc.lock) is already logged as run {tracked.parent_run_id} ({where}); "
                   "--force logs it again")
        return
    click.echo(f"logged run {tracked.parent_run_id} with {len(tracked.child_runs)} stage runs "
               f"({', '.join(tracked.child_runs)}) to {where}")


@track.command("register")
@params_option
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
def track_register(params_file: str, bundle: str) -> None:
    """Register a release bundle as a version of tracking.registered_model (what `toolkit release` does)."""
    from toolkit.governance.tracking import register_release
    from toolkit.registry.bundle import Bundle
    from toolkit.registry.store import Registry

    params = load_params(params_file)
    if not params.tracking.registered_model:
        raise ConfigError("set tracking.registered_model to the registered model's name", file=params_file,
                          key="tracking.registered_model")
    release = Bundle(Path(bundle))
    registry = Registry(Path(bundle).resolve().parents[1])
    entry = next((e for e in registry.entries() if e.version == release.version), None)
    if entry is None:
        raise ConfigError(f"{bundle}: no entry in {registry.ledger} for version {release.version}; only a recorded "
                          "release can be registered")
    number = register_release(params, release.root, entry.entry_sha256)
    click.echo(f"registered {release.version} as {params.tracking.registered_model} version {number}")


@cli.command()
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--ledger", default=None, type=click.Path(dir_okay=False),
              help="The ledger (default: ledger.jsonl of the registry the bundle sits in).")
@click.option("--trusted-key", "trusted_keys", multiple=True, type=click.Path(exists=True),
              help="A public key (PEM) or a folder of *.pub keys to trust; repeatable. With it, an unsigned bundle "
                   "or ledger entry, or one signed by another key, fails.")
@click.option("--deep", is_flag=True, help="Load the adapter onto its base and measure the serving probe's logits "
              "again, instead of reading the figure recorded at release.")
@click.option("--base", "base_path", default=None, type=click.Path(file_okay=False),
              help="With --deep: the base model folder (default: the path in reports/base.json); it must match the "
                   "attested digests.")
@click.option("--mlflow-model", default=None, help="Also check this MLflow registered model's version of the "
              "release (the same files and ledger tags); the server: --mlflow-uri or MLFLOW_TRACKING_URI.")
@click.option("--mlflow-version", default=None, help="With --mlflow-model: the version (default: the one tagged "
              "with the bundle's release version).")
@click.option("--mlflow-uri", default=None, envvar="MLFLOW_TRACKING_URI", show_envvar=True)
def verify(bundle: str, ledger: str | None, trusted_keys: tuple[str, ...], deep: bool, base_path: str | None,
           mlflow_model: str | None, mlflow_version: str | None, mlflow_uri: str | None) -> None:
    """Verify a release bundle against its manifest, signature, reports and the ledger (for auditors)."""
    from toolkit.errors import VerificationFailed
    from toolkit.governance.verify import verify_bundle

    if mlflow_model and not mlflow_uri:
        raise ConfigError("--mlflow-model needs the tracking server: --mlflow-uri or MLFLOW_TRACKING_URI")
    checks = verify_bundle(Path(bundle), Path(ledger) if ledger else None,
                           trusted_keys=[Path(k) for k in trusted_keys] or None, deep=deep,
                           base=Path(base_path) if base_path else None,
                           mlflow={"uri": mlflow_uri, "model": mlflow_model, "version": mlflow_version}
                           if mlflow_model else None)
    colours = {"PASS": "green", "WARN": "yellow", "FAIL": "red"}
    for check in checks:
        click.secho(f"[{check.status}] {check.name}: {check.detail}", fg=colours[check.status])
    failed = [c.name for c in checks if not c.ok]
    if failed:
        raise VerificationFailed(f"{bundle}: {len(failed)} check(s) failed: {', '.join(failed)}")
    warned = [c.name for c in checks if c.warning]
    click.secho(f"{bundle}: all {len(checks)} checks passed"
                + (f" ({len(warned)} with a warning: {', '.join(warned)})" if warned else ""), fg="green", bold=True)


@cli.group(cls=ToolkitGroup)
def keys() -> None:
    """Release signing keys (Ed25519)."""


@keys.command("generate")
@params_option
@click.option("--out", default=None, type=click.Path(dir_okay=False),
              help="Private key file (default: ~/.config/toolkit/keys/<keyid>.key); never inside the repository.")
@click.option("--registry", default=None, help="Registry whose keys/ folder gets the public key (default: release.registry).")
def keys_generate(params_file: str, out: str | None, registry: str | None) -> None:
    """Make an Ed25519 key pair: the private key (mode 0600) outside the repository, the public key
    in <registry>/keys/<keyid>.pub to commit."""
    from toolkit.registry.signing import SIGNING_KEY_ENV, generate_key

    registry_root = registry or (load_params(params_file).release.registry if Path(params_file).is_file() else "registry")
    pair = generate_key(Path(registry_root), Path(out) if out else None)
    click.echo(f"key id:      {pair.keyid}")
    click.echo(f"private key: {pair.private_path} (mode 0600; keep it secret, back it up)")
    click.echo(f"public key:  {pair.public_path} (commit it; auditors verify with --trusted-key)")
    click.echo(f"to sign releases: export {SIGNING_KEY_ENV}={pair.private_path}   (or set release.signing.key)")


@cli.command()
@params_option
@click.argument("bundle", type=click.Path(exists=True, file_okay=False))
@click.option("--repo", default=None, help="owner/name on the Hub (default: release.hub.repo)")
@click.option("--public", is_flag=True, help="create the repository public (default: release.hub.private)")
@click.option("--ledger", type=click.Path(exists=True, dir_okay=False), default=None,
              help="the ledger to verify against (default: the registry's)")
def publish(params_file: str, bundle: str, repo: str | None, public: bool, ledger: str | None) -> None:
    """Publish a verified release bundle to a Hugging Face Hub model repository (HF_TOKEN from the
    environment). Refuses a bundle that fails any `toolkit verify` check."""
    from toolkit.governance.publish import publish_to_hub

    hub = load_params(params_file).release.hub
    result = publish_to_hub(Path(bundle), repo or hub.repo, private=hub.private and not public,
                            endpoint=hub.endpoint, ledger=Path(ledger) if ledger else None)
    click.echo(f"published v{result['version']} to {result['repo']} ({'private' if result['private'] else 'public'}, "
               f"{result['files']} files): {result['commit_url']}")


@cli.command()
@params_option
@click.option("--registry", default=None, help="Registry folder (default: release.registry).")
def history(params_file: str, registry: str | None) -> None:
    """List releases with their gate results and headline deltas."""
    from toolkit.registry.store import Registry

    reg = Registry(Path(registry or load_params(params_file).release.registry))
    entries = reg.entries()
    if not entries:
        click.echo(f"no releases in {reg.root}")
        return
    from toolkit.monitoring.rollout import rollout_state

    click.echo(f"{'version':<9} {'time':<26} {'gate':<9} {'policy':<12} {'rollout':<12} headline")
    for entry in entries:
        gate = "passed" if entry.gate_passed else ("OVERRIDE" if entry.override else "failed")
        h = entry.headline
        headline = f"{h.metric} {h.base:.4f} -> {h.adapter:.4f} ({h.delta:+.4f})" if h else "-"
        stage = rollout_state(reg, entry.version).stage_name or "-"
        click.echo(f"{entry.version:<9} {entry.time:<26} {gate:<9} {entry.policy:<12} {stage:<12} {headline}")


@cli.command()
@params_option
@click.option("--merged", "out_dir", default=None, type=click.Path(file_okay=False),
              help="Write the base model with the adapter merged in (safetensors) to this folder.")
@click.option("--vllm", "vllm_dir", default=None, type=click.Path(file_okay=False),
              help="Write vLLM multi-LoRA serving of the release beside the earlier ones on its base to this "
                   "folder: the adapters, serve.sh and vllm_modules.json.")
@click.option("--bundle", default=None, type=click.Path(exists=True, file_okay=False),
              help="A release bundle (default: --merged the current artifacts/adapter; --vllm the release in service).")
@click.option("--name", default="adapter", show_default=True, help="--vllm: LoRA module names are NAME-v<version>.")
def export(params_file: str, out_dir: str | None, vllm_dir: str | None, bundle: str | None, name: str) -> None:
    """Export a merged model for single-tenant serving, or releases as vLLM LoRA modules."""
    if bool(out_dir) == bool(vllm_dir):
        raise click.UsageError("give one of --merged OUT or --vllm OUT")
    if vllm_dir:
        from toolkit.governance.serving import run_vllm_export

        exported = run_vllm_export(load_params(params_file), Path(vllm_dir), Path(bundle) if bundle else None, name)
        modules = ", ".join(m["name"] for m in exported["modules"])
        click.echo(f"vLLM: release {exported['release']} with {len(exported['modules'])} LoRA module(s) ({modules}) "
                   f"on {exported['base_model']} -> {vllm_dir}/serve.sh")
        for skipped in exported["skipped"]:
            click.secho(f"warning: release {skipped['version']} left out: {skipped['why']}", fg="yellow", err=True)
        return
    from toolkit.governance.serving import run_export

    adapter, base_name, out = run_export(load_params(params_file), Path(out_dir), Path(bundle) if bundle else None)
    click.echo(f"merged {adapter} into {base_name} -> {out}")


@cli.group(cls=ToolkitGroup)
def data() -> None:
    """Data utilities."""


@data.command("synth")
@click.option("--count", default=1200, show_default=True, help="Number of distinct records.")
@click.option("--seed", default=20261123, show_default=True)
@click.option("--out", default="data/support_tickets.jsonl", show_default=True, type=click.Path(dir_okay=False))
@click.option("--preference", is_flag=True, help="Preference pairs (chosen: the right triage, rejected: a mistake) "
              "for the SFT -> DPO variant of the demo.")
@click.option("--varied", is_flag=True, help="Untemplated multi-turn chat with a wide, long-tailed length "
              "distribution, like real chat data (for benchmarks; no task to learn).")
def data_synth(count: int, seed: int, out: str, preference: bool, varied: bool) -> None:
    """Write the embedded default dataset (synthetic support tickets -> JSON triage)."""
    from toolkit.files import atomic_write_jsonl

    if varied:
        from toolkit.data.synth_varied import varied_chat_records as records
    elif preference:
        from toolkit.data.synth_preference import support_ticket_preference_records as records
    else:
        from toolkit.data.synth import support_ticket_records as records
    atomic_write_jsonl(Path(out), records(count, seed))
    click.echo(f"wrote {count} {'preference pairs' if preference and not varied else 'records'} to {out}")


@data.command("synth-mmlu")
@click.option("--per-subject", default=25, show_default=True)
@click.option("--seed", default=20261123, show_default=True)
@click.option("--out", default="eval_suites/mmlu_local/data", show_default=True, type=click.Path(file_okay=False))
def data_synth_mmlu(per_subject: int, seed: int, out: str) -> None:
    """Write the offline general-capability probe in MMLU's layout (one JSONL per subject)."""
    from toolkit.data.mmlu_probe import mmlu_layout_items
    from toolkit.files import atomic_write_jsonl

    for subject, items in mmlu_layout_items(per_subject, seed).items():
        atomic_write_jsonl(Path(out) / f"{subject}.jsonl", items)
    click.echo(f"wrote {per_subject} questions per subject to {out}")


@cli.command("check-params")
@params_option
def check_params(params_file: str) -> None:
    """Validate the parameters file and print the resolved values."""
    import yaml

    params = load_params(params_file)
    click.echo(yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False).rstrip())
    click.echo(f"{params_file}: OK")


def main() -> None:
    from toolkit.tracing import start_if_requested

    start_if_requested(sys.argv[1:])   # only with TOOLKIT_TRACE_READS set (the dependency test)
    cli(prog_name="toolkit")


if __name__ == "__main__":
    main()
