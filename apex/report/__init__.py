"""Reports of what a store holds: a goal, a run, or every run of a period.

    from apex.report import goal_report, render_html
    html = render_html(goal_report(store, "g-1234"))

:mod:`~apex.report.data` reads the facts, :mod:`~apex.report.plots` draws them as SVG,
:mod:`~apex.report.sections` lays them out as tables for the terminal and the HTML, and
:mod:`~apex.report.html` writes one self-contained page.
"""

from apex.report.data import (
    CostRow,
    CycleFacts,
    GoalReport,
    PeriodReport,
    RunReport,
    goal_report,
    period_report,
    run_report,
)
from apex.report.html import render_html
from apex.report.sections import Section, Table, sections_of

__all__ = [
    "CostRow",
    "CycleFacts",
    "GoalReport",
    "PeriodReport",
    "RunReport",
    "Section",
    "Table",
    "goal_report",
    "period_report",
    "render_html",
    "run_report",
    "sections_of",
]
