"""A report as sections: a title, a table of plain cells and (in HTML) a plot.

The terminal prints the tables with rich, the HTML renders the same tables next to the plots: one
list of facts for both.
"""

from __future__ import annotations

from pydantic import BaseModel

from apex.report.data import CostRow, GoalReport, PeriodReport, RunReport
from apex.report.plots import Plot, goal_plots, period_plots, run_plots


class Table(BaseModel):
    """Column headers and rows of already formatted cells."""

    headers: list[str]
    rows: list[list[str]]


class Section(BaseModel):
    """One part of a report."""

    title: str
    table: Table | None = None
    plot: Plot | None = None
    text: str = ""


def money(value: float | None) -> str:
    """A cost as the report shows it (``-`` when unknown)."""
    return "-" if value is None else f"${value:.6f}"


def number(value: float | None, digits: int = 3) -> str:
    """A number rounded for display (``-`` when missing)."""
    return "-" if value is None else f"{value:.{digits}f}"


def _cost_table(rows: list[CostRow]) -> Table:
    return Table(
        headers=["model", "role", "calls", "failures", "cost", "latency (s)"],
        rows=[
            [
                r.model,
                r.role,
                str(r.calls),
                str(r.failures),
                money(r.cost_usd),
                number(r.latency_s, 2),
            ]
            for r in rows
        ],
    )


def goal_sections(report: GoalReport, plots: bool = True) -> list[Section]:
    """The sections of a goal report."""
    drawn = goal_plots(report) if plots else [None, None, None]
    timeline = Table(
        headers=["cycle", "run", "verdict", "blocker", "path", "cost", "latency (s)", "tokens"],
        rows=[
            [
                str(c.cycle),
                c.run_id,
                c.verdict,
                c.blocker or "-",
                c.synthesis_path,
                money(c.cost_usd),
                number(c.latency_s, 2),
                str(c.tokens),
            ]
            for c in report.cycles
        ],
    )
    cycles = sorted({c for points in report.weights.values() for c, _ in points})
    weights = Table(
        headers=["model", *(f"c{c}" for c in cycles)],
        rows=[
            [model, *(number(dict(points).get(c)) for c in cycles)]
            for model, points in report.weights.items()
        ],
    )
    state = f"{report.state}" + (f" ({report.reason})" if report.reason else "")
    return [
        Section(title=f"Goal {report.goal_id}: {report.objective}", text=f"State: {state}"),
        Section(title="Timeline", table=timeline, plot=drawn[0]),
        Section(title="Cost per model and role", table=_cost_table(report.costs), plot=drawn[1]),
        Section(title="Panel weights per cycle", table=weights, plot=drawn[2]),
        Section(title="Best answer", text=report.best_answer or "-"),
    ]


def run_sections(report: RunReport, plots: bool = True) -> list[Section]:
    """The sections of a run report."""
    drawn = run_plots(report) if plots else [None, None]
    calls = Table(
        headers=["#", "role", "model", "ok", "failure", "latency (s)", "tokens", "cost"],
        rows=[
            [
                str(c["seq"]),
                str(c["role"]),
                str(c["model"]),
                "yes" if c["ok"] else "no",
                str(c["failure_kind"] or "-"),
                number(float(str(c["latency_s"])), 2),
                str(c["tokens"]),
                money(c["cost_usd"] if isinstance(c["cost_usd"], float) else None),
            ]
            for c in report.calls
        ],
    )
    head = (
        f"{report.at:%Y-%m-%d %H:%M} UTC, workflow {report.workflow}, category {report.category}: "
        f"{report.status} by {report.synthesis_path}, {money(report.cost_usd)}, "
        f"{report.latency_s:.2f} s"
    )
    weights = Table(
        headers=["model", "weight"], rows=[[m, number(w)] for m, w in report.weights.items()]
    )
    return [
        Section(title=f"Run {report.run_id}", text=head),
        Section(title="Calls", table=calls, plot=drawn[0]),
        Section(title="Cost per model and role", table=_cost_table(report.costs), plot=drawn[1]),
        Section(title="Panel weights", table=weights),
        Section(title="Answer", text=report.answer or "-"),
    ]


def _series_table(days: list[str], series: dict[str, list[float | None]], digits: int) -> Table:
    return Table(
        headers=["", *days],
        rows=[[name, *(number(v, digits) for v in values)] for name, values in series.items()],
    )


def period_sections(report: PeriodReport, plots: bool = True) -> list[Section]:
    """The sections of a period report."""
    drawn = {p.id: p for p in period_plots(report)} if plots else {}
    board = Table(
        headers=[
            "model",
            "role",
            "calls",
            "failures",
            "failure rate",
            "judge",
            "accuracy",
            "findings",
        ],
        rows=[
            [
                r.model,
                r.role,
                str(r.calls),
                str(r.failures),
                number(r.failure_rate, 3),
                number(r.judge_mean, 2),
                number(r.accuracy, 3),
                str(r.findings),
            ]
            for r in report.leaderboard
        ],
    )
    span = f"{report.since:%Y-%m-%d %H:%M} to {report.until:%Y-%m-%d %H:%M} UTC"
    sections = [
        Section(title="Runs", text=f"{report.runs} runs from {span}"),
        Section(title="Evidence leaderboard (lifetime, every category)", table=board),
        Section(
            title="Failure rate by kind, per day",
            table=_series_table(report.days, report.failure_rates, 3),
            plot=drawn.get("failures"),
        ),
        Section(
            title="Mean judge score per panel model, per day",
            table=_series_table(report.days, report.judge_scores, 2),
            plot=drawn.get("judge_scores"),
        ),
    ]
    for category, series in report.weights.items():
        sections.append(
            Section(
                title=f"Mean panel weight per day: {category}",
                table=_series_table(report.days, series, 3),
                plot=drawn.get(f"weights-{category}"),
            )
        )
    sections.append(
        Section(
            title="Cost per model and role",
            table=_cost_table(report.costs),
            plot=drawn.get("costs"),
        )
    )
    return sections


def sections_of(report: GoalReport | RunReport | PeriodReport, plots: bool = True) -> list[Section]:
    """The sections of any report."""
    if isinstance(report, GoalReport):
        return goal_sections(report, plots)
    if isinstance(report, RunReport):
        return run_sections(report, plots)
    return period_sections(report, plots)
