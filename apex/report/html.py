"""A report as one self-contained HTML file: inline SVG plots, inline CSS, no network."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

import jinja2

from apex.report.data import GoalReport, PeriodReport, RunReport
from apex.report.sections import sections_of


@functools.cache
def environment() -> jinja2.Environment:
    """The report's templates, escaped by default (JSON blocks through ``tojson``, which
    escapes ``<``, ``>`` and ``&`` so no text can close a script block)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("apex.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
    )


def title_of(report: GoalReport | RunReport | PeriodReport) -> str:
    """The page title."""
    if isinstance(report, GoalReport):
        return f"APEX goal {report.goal_id}"
    if isinstance(report, RunReport):
        return f"APEX run {report.run_id}"
    return f"APEX runs since {report.since:%Y-%m-%d %H:%M} UTC"


def render_html(report: GoalReport | RunReport | PeriodReport) -> str:
    """The HTML text of ``report``: every plot's data is embedded beside its SVG, and the whole
    report's data in ``<script id="report-data">``."""
    return (
        environment()
        .get_template("report.html")
        .render(
            title=title_of(report),
            sections=sections_of(report),
            report=report.model_dump(mode="json"),
            generated=datetime.now(UTC).strftime("%Y-%m-%d %H:%M"),
        )
    )
