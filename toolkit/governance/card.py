"""The card stage: a Hugging Face-compatible model card and the EU AI Act technical documentation,
each as Markdown and HTML, rendered from the stage reports.

Every figure comes from a report; both documents cite each report with its SHA-256 so an auditor
can check the numbers against the files. What the toolkit cannot know (intended use, risk category,
oversight, monitoring ...) comes from params.yaml `governance`; empty fields are marked "Missing" in
the documents, and the policy decides whether that blocks: a required section is missing when its
heading is absent or its text still carries a "Missing" marker (`toolkit card check`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from toolkit.config import Params
from toolkit.files import atomic_write_text, remove_outputs, sha256_path
from toolkit.layout import ADAPTER_DIR, CARD_DIR, report_path
from toolkit.reports import (BaseModelReport, CardReport, CostReport, EvalReport, JudgeReport, TrainReport,
                             ValidateReport, digests, read_report, tier_reports, write_report)
from toolkit.governance.statements import card_tags, training_statements
from toolkit.templating import render

CARD_MARKDOWN = CARD_DIR / "README.md"
CARD_HTML = CARD_DIR / "model_card.html"
TECHDOC_MARKDOWN = CARD_DIR / "technical_documentation.md"
TECHDOC_HTML = CARD_DIR / "technical_documentation.html"
CITED = {"base": BaseModelReport, "validate": ValidateReport, "train": TrainReport, "eval_heldout": EvalReport,
         "cost": CostReport}
REQUIRED_GOVERNANCE = ("model_name", "provider", "contact", "license", "languages", "intended_use",
                       "out_of_scope_use", "risk_category", "risk_reasoning", "human_oversight")
EVAL_TIERS = ("heldout", "ood", "canary", "general", "judge")
MISSING_MARKER = "Missing:"
GPAI_THRESHOLD_FLOPS = 1e23        # Commission guidelines: indicative criterion for a general-purpose model
MODIFICATION_SHARE = 1 / 3         # ... and for a modifier becoming its provider


@dataclass(frozen=True)
class ProviderStatus:
    base_flops: float | None
    base_flops_source: str
    finetune_flops: float
    ratio: float | None
    assessment: str


def provider_status(base: BaseModelReport, train: TrainReport, declared_base_flops: float | None) -> ProviderStatus:
    """Does the fine-tune's compute exceed one third of the base model's training compute?"""
    finetune = 6.0 * train.total_parameters * train.tokens_seen
    if declared_base_flops:
        base_flops, source = declared_base_flops, "governance.base_training_compute_flops"
    elif base.source == "builtin" and base.pretraining:
        base_flops = 6.0 * base.parameters * base.pretraining["tokens_seen"]
        source = "6 x parameters x pre-training tokens of the builtin base (reports/base.json)"
    else:
        return ProviderStatus(None, "", finetune, None, "Cannot be assessed: the base model's training compute is not "
                              "known. Set governance.base_training_compute_flops from its documentation.")
    ratio = finetune / base_flops
    exceeds = ratio > MODIFICATION_SHARE
    if base_flops <= GPAI_THRESHOLD_FLOPS:
        assessment = (f"The base model's training compute ({base_flops:.3g} FLOPs) is below the indicative 10^23 FLOPs "
                      "of a general-purpose AI model, so the GPAI obligations do not attach to this modification; "
                      f"for completeness, the modification {'exceeds' if exceeds else 'stays below'} one third of it.")
    elif exceeds:
        assessment = ("The modification exceeds one third of the original training compute: the fine-tuner is to be "
                      "treated as the provider of a general-purpose AI model, with the Art. 53 obligations.")
    else:
        assessment = ("The modification stays below one third of the original training compute: the fine-tuner is not "
                      "presumed to become the provider of the general-purpose model; document the modification (this file).")
    return ProviderStatus(base_flops, source, finetune, ratio, assessment)


def run_card(params: Params) -> CardReport:
    remove_outputs(report_path("card"), CARD_DIR)
    reports = {name: read_report(report_path(name), schema) for name, schema in CITED.items()}
    evals = tier_reports()
    judge = read_report(report_path("eval_judge"), JudgeReport) if report_path("eval_judge").is_file() else None
    governance = params.governance
    missing = [name for name in REQUIRED_GOVERNANCE if getattr(governance, name) in ("", [], None)]
    cited = {report_path(name).as_posix(): sha256_path(report_path(name)) for name in CITED}
    cited.update({report_path(name).as_posix(): sha256_path(report_path(name))
                  for name in [*evals, *(["eval_judge"] if judge else [])]})
    adapter_sha256 = sha256_path(ADAPTER_DIR)
    context = dict(
        reports=reports,
        evals=evals,
        judge=judge,
        tiers_not_run=[tier for tier in EVAL_TIERS if f"eval_{tier}" not in evals and not (tier == "judge" and judge)],
        governance=governance,
        governance_missing=missing,
        model_name=governance.model_name or f"{reports['base'].model}-adapter",
        adapter_sha256=adapter_sha256,
        cited=cited,
        heldout=reports["eval_heldout"],
        provider=provider_status(reports["base"], reports["train"], governance.base_training_compute_flops),
        registry=params.release.registry,
        monitor=params.monitor,
        statements=training_statements(reports["train"].model_dump(mode="json")),
        tags=card_tags(reports["train"].model_dump(mode="json")),
    )
    atomic_write_text(CARD_MARKDOWN, render("model_card.md.j2", **context))
    atomic_write_text(CARD_HTML, render("model_card.html.j2", **context))
    techdoc = render("technical_documentation.md.j2", **context)
    atomic_write_text(TECHDOC_MARKDOWN, techdoc)
    atomic_write_text(TECHDOC_HTML, render("document.html.j2", title=f"{context['model_name']}: technical documentation",
                                           body=markdown_to_html(techdoc)))
    from toolkit.governance.policy import load_policy

    policy = load_policy(params.gate.policy)
    report = CardReport(
        params={"governance": params.section("governance"), "gate.policy": params.gate.policy},
        inputs={ADAPTER_DIR.as_posix(): adapter_sha256, **cited},
        outputs=digests([CARD_MARKDOWN, CARD_HTML, TECHDOC_MARKDOWN, TECHDOC_HTML]),
        model_name=context["model_name"],
        markdown=CARD_MARKDOWN.as_posix(),
        html=CARD_HTML.as_posix(),
        technical_documentation=TECHDOC_MARKDOWN.as_posix(),
        governance_missing=missing,
        documentation_policy=policy.name,
        documentation_missing=missing_sections(policy.required_sections, policy.required_governance, governance),
        provider_status=context["provider"].assessment,
        cited_reports=cited,
    )
    write_report(report)
    return report


def markdown_to_html(text: str) -> str:
    """CommonMark + tables; raw HTML in the text is escaped, never passed through."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def sections(text: str) -> dict[str, str]:
    """Markdown heading -> the text under it (to the next heading of any level)."""
    found, current, lines = {}, None, []
    for line in text.splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if heading:
            if current is not None:
                found[current] = "\n".join(lines)
            current, lines = heading.group(1), []
        else:
            lines.append(line)
    if current is not None:
        found[current] = "\n".join(lines)
    return found


def missing_sections(required: tuple[str, ...], required_governance: tuple[str, ...], governance,
                     documents: tuple[Path, ...] = (CARD_MARKDOWN, TECHDOC_MARKDOWN)) -> list[str]:
    """Required headings that are absent, or whose text is empty or still marked Missing; plus empty
    governance fields the policy requires."""
    present: dict[str, str] = {}
    for document in documents:
        if document.is_file():
            present.update(sections(document.read_text(encoding="utf-8")))
    problems = []
    for heading in required:
        match = next((h for h in present if h == heading or h.startswith(heading + " (")), None)
        if match is None:
            problems.append(f"{heading}: section absent")
        elif not present[match].strip() or MISSING_MARKER in present[match]:
            problems.append(f"{heading}: empty or marked missing")
    problems += [f"governance.{name}: empty" for name in required_governance if getattr(governance, name) in ("", [], None)]
    return problems


def check_documentation(params: Params, policy_name: str | None = None):
    """(policy, missing): the sections and governance fields the policy (default: gate.policy)
    requires that the rendered card and technical documentation lack or leave empty."""
    from toolkit.errors import MissingInputError
    from toolkit.governance.policy import load_policy

    policy = load_policy(policy_name or params.gate.policy)
    if not CARD_MARKDOWN.is_file() or not TECHDOC_MARKDOWN.is_file():
        raise MissingInputError(f"{CARD_MARKDOWN} or {TECHDOC_MARKDOWN} not found; run `toolkit card` first")
    return policy, missing_sections(policy.required_sections, policy.required_governance, params.governance)
