"""Jinja2 rendering. A project's own templates/ folder overrides the toolkit's defaults.

HTML templates (any name containing ".html") are autoescaped, so text from data files or
parameters cannot inject markup into a page.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

TOOLKIT_TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader("templates"), jinja2.FileSystemLoader(TOOLKIT_TEMPLATES)]),
        autoescape=lambda name: name is not None and ".html" in name,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
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
    return _environment().get_template(template_name).render(**context)
