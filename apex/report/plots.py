"""The plots of a report, drawn with matplotlib as inline SVG, each with the numbers behind it.

A :class:`Plot` carries the SVG and the exact data it was drawn from; the HTML puts that data in
a JSON block beside the SVG, so a reader (or a test) can check every point against the store.
Figures are made with matplotlib's object API (no pyplot state), so threads may draw at once.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from apex.report.data import CostRow, GoalReport, PeriodReport, RunReport

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.DOTALL)
_VERDICT_COLOURS = {
    "verified": "tab:green",
    "judge: met": "tab:olive",
    "not verified": "tab:red",
    "judge: not met": "tab:orange",
}


class Plot(BaseModel):
    """One figure: where it goes, its SVG and the data it shows."""

    id: str
    """Stable name (``timeline``, ``costs``, ``weights``, ``failures``...)."""
    title: str
    svg: str
    data: Any
    """The numbers drawn, JSON-ready."""


def _svg(fig: Figure) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buf.getvalue()
    text = _METADATA.sub("", text)  # matplotlib's RDF block: nothing a reader needs
    return text[text.index("<svg") :]  # drop the XML prolog and doctype: it sits inside HTML


def _figure(width: float = 7.5, height: float = 3.2) -> tuple[Figure, Any]:
    # matplotlib is imported by the first plot drawn, not with the reports: the server and the
    # dashboard import this module at start and draw only when a page asks (0.4 s of a start)
    import matplotlib
    from matplotlib.figure import Figure

    matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: small, selectable, searchable
    matplotlib.rcParams["svg.hashsalt"] = "apex-report"  # the same report draws the same SVG
    fig = Figure(figsize=(width, height))
    ax = fig.subplots()
    ax.grid(alpha=0.3)
    return fig, ax


def _nan(values: Sequence[float | None]) -> list[float]:
    return [math.nan if v is None else v for v in values]


def timeline(report: GoalReport) -> Plot:
    """Cost per cycle as bars coloured by verdict, latency as a line."""
    cycles = [c.cycle for c in report.cycles]
    data: dict[str, Any] = {
        "cycle": cycles,
        "cost_usd": [c.cost_usd for c in report.cycles],
        "latency_s": [c.latency_s for c in report.cycles],
        "verdict": [c.verdict for c in report.cycles],
    }
    fig, ax = _figure()
    colours = [_VERDICT_COLOURS.get(v, "tab:grey") for v in data["verdict"]]
    ax.bar(cycles, [c or 0.0 for c in data["cost_usd"]], color=colours, label="cost (USD)")
    ax.set_xlabel("cycle")
    ax.set_ylabel("cost (USD)")
    ax.set_xticks(cycles)
    twin = ax.twinx()
    twin.plot(cycles, _nan(data["latency_s"]), "o-", color="tab:blue", label="latency (s)")
    twin.set_ylabel("latency (s)")
    fig.legend(loc="upper left", fontsize="small")
    return Plot(
        id="timeline", title="Cycles: cost (bars, by verdict) and latency", svg=_svg(fig), data=data
    )


def costs(rows: Sequence[CostRow]) -> Plot:
    """Known cost per model and role, as horizontal bars."""
    data = [r.model_dump() for r in rows]
    names = [f"{r.model} ({r.role})" for r in rows]
    fig, ax = _figure(7.5, max(1.6, 0.45 * len(rows) + 0.8))
    ax.barh(names, [r.cost_usd or 0.0 for r in rows], color="tab:purple")
    ax.invert_yaxis()
    ax.set_xlabel("cost (USD, known)")
    return Plot(id="costs", title="Cost per model and role", svg=_svg(fig), data=data)


def goal_weights(report: GoalReport) -> Plot:
    """Each panel model's weight over the goal's cycles."""
    data = {model: [list(p) for p in points] for model, points in report.weights.items()}
    fig, ax = _figure()
    for model, points in report.weights.items():
        ax.plot([c for c, _ in points], [w for _, w in points], "o-", label=model)
    ax.set_xlabel("cycle")
    ax.set_ylabel("weight")
    if report.weights:
        ax.legend(fontsize="small")
    return Plot(id="weights", title="Panel weights per cycle", svg=_svg(fig), data=data)


def _per_day(
    plot_id: str, title: str, days: list[str], series: dict[str, list[float | None]], ylabel: str
) -> Plot:
    fig, ax = _figure()
    x = list(range(len(days)))
    for name, values in series.items():
        ax.plot(x, _nan(values), "o-", label=name)
    ax.set_xticks(x, [d[5:] for d in days])
    ax.set_xlabel("day (UTC)")
    ax.set_ylabel(ylabel)
    if series:
        ax.legend(fontsize="small")
    data = {"days": days, "series": series}
    return Plot(id=plot_id, title=title, svg=_svg(fig), data=data)


def period_plots(report: PeriodReport) -> list[Plot]:
    """Failure rates by kind, judge scores, weights per category (each over the days), costs."""
    plots = [
        _per_day(
            "failures",
            "Failure rate by kind (failed calls of the kind / calls that day)",
            report.days,
            report.failure_rates,
            "failure rate",
        ),
        _per_day(
            "judge_scores",
            "Mean judge score per panel model",
            report.days,
            report.judge_scores,
            "score",
        ),
    ]
    for category, series in report.weights.items():
        plots.append(
            _per_day(
                f"weights-{category}",
                f"Mean panel weight per day, category {category}",
                report.days,
                series,
                "weight",
            )
        )
    plots.append(costs(report.costs))
    return plots


def goal_plots(report: GoalReport) -> list[Plot]:
    """The goal's timeline, costs and weights."""
    return [timeline(report), costs(report.costs), goal_weights(report)]


def run_plots(report: RunReport) -> list[Plot]:
    """A run's costs and the latency of each call."""
    fig, ax = _figure(7.5, max(1.6, 0.4 * len(report.calls) + 0.8))
    names = [f"{c['seq']}: {c['model']} ({c['role']})" for c in report.calls]
    latencies = [float(str(c["latency_s"])) for c in report.calls]
    ax.barh(names, latencies, color=["tab:blue" if c["ok"] else "tab:red" for c in report.calls])
    ax.invert_yaxis()
    ax.set_xlabel("latency (s); red: failed")
    data = {"call": names, "latency_s": latencies}
    return [
        Plot(id="latency", title="Latency per call", svg=_svg(fig), data=data),
        costs(report.costs),
    ]
