"""The card stage: a Hugging Face-compatible model card (Markdown + HTML) rendered from reports.

Every figure on the card comes from a report; the card cites each report with its SHA-256 so an
auditor can check the numbers against the files. Governance fields the toolkit cannot know come
from params.yaml; empty ones are listed on the card as missing.
"""

from __future__ import annotations


from toolkit.config import Params
from toolkit.files import atomic_write_text, sha256_path
from toolkit.layout import ADAPTER_DIR, CARD_DIR, report_path
from toolkit.reports import (BaseModelReport, CardReport, CostReport, EvalReport, TrainReport, ValidateReport, digests,
                             read_report, write_report)
from toolkit.templating import render

CARD_MARKDOWN = CARD_DIR / "README.md"
CARD_HTML = CARD_DIR / "model_card.html"
CITED = {"base": BaseModelReport, "validate": ValidateReport, "train": TrainReport, "eval_heldout": EvalReport,
         "cost": CostReport}
REQUIRED_GOVERNANCE = ("model_name", "provider", "contact", "license", "languages", "intended_use",
                       "out_of_scope_use", "risk_category", "risk_reasoning", "human_oversight")


def run_card(params: Params) -> CardReport:
    reports = {name: read_report(report_path(name), schema) for name, schema in CITED.items()}
    governance = params.governance
    missing = [name for name in REQUIRED_GOVERNANCE if getattr(governance, name) in ("", [], None)]
    cited = {report_path(name).as_posix(): sha256_path(report_path(name)) for name in CITED}
    adapter_sha256 = sha256_path(ADAPTER_DIR)
    context = dict(
        reports=reports,
        governance=governance,
        governance_missing=missing,
        model_name=governance.model_name or f"{reports['base'].model}-adapter",
        adapter_sha256=adapter_sha256,
        cited=cited,
        heldout=reports["eval_heldout"],
    )
    atomic_write_text(CARD_MARKDOWN, render("model_card.md.j2", **context))
    atomic_write_text(CARD_HTML, render("model_card.html.j2", **context))
    report = CardReport(
        params={"governance": params.section("governance")},
        inputs={ADAPTER_DIR.as_posix(): adapter_sha256, **cited},
        outputs=digests([CARD_MARKDOWN, CARD_HTML]),
        model_name=context["model_name"],
        markdown=CARD_MARKDOWN.as_posix(),
        html=CARD_HTML.as_posix(),
        governance_missing=missing,
        cited_reports=cited,
    )
    write_report(report)
    return report
