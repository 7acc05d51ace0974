"""The cost report's plots (matplotlib, headless), written as PNG files next to the HTML."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolkit.finops.economics import DAYS_PER_MONTH, HOURS_PER_MONTH, InferenceEconomics, break_even, capacity_requests_per_day


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display on CI or servers
    import matplotlib.pyplot as plt

    return plt


def cost_vs_volume(inference: InferenceEconomics, path: Path) -> str:
    """Monthly cost against daily request volume: self-hosted (a step per instance) and each API."""
    plt = _pyplot()
    tokens_per_request = inference.input_tokens_per_request + inference.output_tokens_per_request
    per_instance = capacity_requests_per_day(inference.tokens_per_second, inference.utilisation, tokens_per_request)
    stated = max(inference.requests_per_day, 1.0)
    volumes = np.logspace(np.log10(stated) - 3, np.log10(stated) + 2, 400)
    instance_month = inference.price_per_hour * HOURS_PER_MONTH
    self_hosted = np.maximum(1, np.ceil(volumes / per_instance)) * instance_month
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    ax.step(volumes, self_hosted, where="post", label=f"self-hosted ({inference.device})", linewidth=2)
    for index, api in enumerate(inference.apis):
        line = ax.plot(volumes, volumes * DAYS_PER_MONTH * api.cost_per_request, label=api.model)[0]
        point = break_even(api.cost_per_request, inference.price_per_hour, per_instance)
        if point and volumes[0] <= point <= volumes[-1]:
            ax.plot([point], [instance_month], "o", color=line.get_color())
            ax.annotate(f"break-even {point:,.0f}/day", (point, instance_month), textcoords="offset points",
                        xytext=(6, -12 - 11 * index), fontsize=8, color=line.get_color())
    ax.axvline(stated, color="grey", linestyle="--", linewidth=1)
    ax.annotate(f"stated volume {stated:,.0f}/day", (stated, ax.get_ylim()[0]), textcoords="offset points",
                xytext=(4, 8), fontsize=8, color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("requests per day")
    ax.set_ylabel("cost per month")
    ax.set_title("Serving cost: self-hosted adapter vs API models")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    return _save(fig, plt, path)


def breakdown(parts: dict[str, float], currency: str, path: Path) -> str:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 3.2), dpi=110)
    labels = [name.replace("_", " ") for name in parts]
    bars = ax.barh(labels, list(parts.values()), color="#4a78b5")
    for bar, value in zip(bars, parts.values()):
        ax.annotate(f"{value:,.2f} {currency}", (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                    textcoords="offset points", xytext=(4, -3), fontsize=8)
    ax.set_xlabel(currency)
    ax.set_title("Cost breakdown (one-off costs, and serving per month)")
    ax.margins(x=0.25)
    return _save(fig, plt, path)


def eval_deltas(reports: dict, path: Path) -> str:
    """Adapter minus base for every metric of every evaluation tier, with its confidence interval."""
    plt = _pyplot()
    rows = [(f"{report.tier}: {name}", m.delta, m.ci_low, m.ci_high)
            for report in reports.values() for name, m in report.metrics.items()]
    fig, ax = plt.subplots(figsize=(7.5, 0.5 + 0.45 * max(1, len(rows))), dpi=110)
    for index, (label, delta, low, high) in enumerate(rows):
        ax.errorbar(delta, index, xerr=[[delta - low], [high - delta]], fmt="o", capsize=4, color="#2b7a3d")
    ax.set_yticks(range(len(rows)), [r[0] for r in rows])
    ax.axvline(0, color="grey", linewidth=1)
    ax.set_xlabel("adapter - base (with its confidence interval)")
    ax.set_title("Evaluation deltas")
    return _save(fig, plt, path)


def _save(fig, plt, path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
    return path.as_posix()
