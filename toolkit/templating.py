"""Jinja2 rendering. A project's own templates/ folder overrides the toolkit's defaults.

HTML templates (any name containing ".html") are autoescaped, so text from data files or
parameters cannot inject markup into a page. Markdown templates (".md") escape <, > and & in every
value they print: the Hub and most viewers render raw HTML inside Markdown, so a governance field
holding <script> would otherwise reach a reader's browser. Values marked safe (`tojson`) pass.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import markupsafe

TOOLKIT_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def _escape_markdown_value(value):
    if isinstance(value, str) and not isinstance(value, markupsafe.Markup):
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value


def _environment(markdown: bool = False) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader("templates"), jinja2.FileSystemLoader(TOOLKIT_TEMPLATES)]),
        autoescape=lambda name: name is not None and ".html" in name,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        **({"finalize": _escape_markdown_value} if markdown else {}),
    )
    env.filters["pct"] = lambda value, digits=1: f"{100 * value:.{digits}f} %"
    env.filters["signed"] = lambda value, digits=3: f"{value:+.{digits}f}"
    env.filters["num"] = lambda value: f"{value:,}"
    env.filters["brief"] = _brief
    env.filters["cell"] = _cell
    return env


def _brief(value) -> str:
    """A measured value as a reader wants it: floats to 4 decimals, nothing as a dash."""
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _cell(value) -> str:
    """Free text made safe for one Markdown table cell: no line breaks, pipes escaped."""
    return " ".join(str(value).split()).replace("|", "\\|")


def render(template_name: str, **context) -> str:
    return _environment(".md" in template_name).get_template(template_name).render(**context)
