"""The `toolkit` command. Each command parses, calls the library, prints, and exits with
0 on success, 1 when a gate failed, 2 on bad input or configuration."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from toolkit import __version__
from toolkit.config import DEFAULT_PARAMS_FILE, load_params
from toolkit.errors import ToolkitError

# Privacy and quiet by default: no usage pings from the libraries we drive.
for _name, _value in (("HF_HUB_DISABLE_TELEMETRY", "1"), ("GX_ANALYTICS_ENABLED", "false"),
                      ("TOKENIZERS_PARALLELISM", "false"), ("DO_NOT_TRACK", "1")):
    os.environ.setdefault(_name, _value)


class ToolkitGroup(click.Group):
    """Turns the toolkit's exceptions into a one-line message and the matching exit code."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ToolkitError as exc:
            click.secho(f"error: {exc}", err=True, fg="red")
            ctx.exit(exc.exit_code)


params_option = click.option(
    "--params", "params_file", default=DEFAULT_PARAMS_FILE, show_default=True, envvar="TOOLKIT_PARAMS",
    type=click.Path(dir_okay=False), help="Parameters file (the only configuration a run reads).",
)


@click.group(cls=ToolkitGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="toolkit")
def cli() -> None:
    """Release fine-tuned LLM adapters under governance.

    Each pipeline stage is a command; `dvc repro` runs them in order (see dvc.yaml).
    Exit codes: 0 success, 1 a gate failed, 2 bad input or configuration.
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
    """Validate the training data (Great Expectations suite, datasheet) and split it."""
    from toolkit.data.validate import run_validate

    report = run_validate(load_params(params_file))
    splits = ", ".join(f"{name} {count}" for name, count in report.splits.items())
    click.echo(f"validate: {report.records_valid}/{report.records_in} records valid, "
               f"{report.records_quarantined} quarantined; splits: {splits}")


@cli.command()
@params_option
def train(params_file: str) -> None:
    """Fine-tune a LoRA adapter on the train split (TRL SFTTrainer + PEFT)."""
    from toolkit.train.sft import run_train

    report = run_train(load_params(params_file))
    click.echo(f"train: {report.optimizer_steps} steps, loss {report.first_loss:.3f} -> {report.final_loss:.3f}, "
               f"{report.tokens_seen:,} tokens in {report.wall_time_s:.0f} s on {report.device}")


@cli.group(cls=ToolkitGroup)
def evaluate() -> None:
    """Evaluation tiers: base vs adapter on the same items."""


@evaluate.command("heldout")
@params_option
def evaluate_heldout(params_file: str) -> None:
    """Held-out tier: task metrics on the validated held-out split, with paired bootstrap CIs."""
    from toolkit.evals.heldout import run_heldout

    report = run_heldout(load_params(params_file))
    for name, m in report.metrics.items():
        click.echo(f"held-out {name}: base {m.base:.4f} -> adapter {m.adapter:.4f} "
                   f"(delta {m.delta:+.4f}, {m.confidence:.0%} CI [{m.ci_low:+.4f}, {m.ci_high:+.4f}])")


@cli.command()
@params_option
def card(params_file: str) -> None:
    """Render the model card (Markdown + HTML) from the stage reports."""
    from toolkit.governance.card import run_card

    report = run_card(load_params(params_file))
    click.echo(f"card: {report.markdown}, {report.html}")
    if report.governance_missing:
        click.echo(f"card: missing governance fields: {', '.join(report.governance_missing)}")


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


@cli.group(cls=ToolkitGroup)
def data() -> None:
    """Data utilities."""


@data.command("synth")
@click.option("--count", default=1200, show_default=True, help="Number of distinct records.")
@click.option("--seed", default=20261123, show_default=True)
@click.option("--out", default="data/support_tickets.jsonl", show_default=True, type=click.Path(dir_okay=False))
def data_synth(count: int, seed: int, out: str) -> None:
    """Write the embedded default dataset (synthetic support tickets -> JSON triage)."""
    from toolkit.data.synth import support_ticket_records
    from toolkit.files import atomic_write_jsonl

    atomic_write_jsonl(Path(out), support_ticket_records(count, seed))
    click.echo(f"wrote {count} records to {out}")


@cli.command("check-params")
@params_option
def check_params(params_file: str) -> None:
    """Validate the parameters file and print the resolved values."""
    import yaml

    params = load_params(params_file)
    click.echo(yaml.safe_dump(params.model_dump(mode="json"), sort_keys=False).rstrip())
    click.echo(f"{params_file}: OK")


def main() -> None:
    cli(prog_name="toolkit")


if __name__ == "__main__":
    main()
