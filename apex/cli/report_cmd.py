"""``apex report``: a goal, a run, or every run of a period, as tables, JSON or one HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table as RichTable

from apex.cli.common import console, guarded, print_json


@guarded
def report(
    target: Annotated[
        str | None, typer.Argument(help="A goal id or a run id (or use --since).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Every run of the last 30m, 24h, 7d, 2w...")
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Write one self-contained HTML file (plots embedded)."),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the report's data as JSON.")
    ] = False,
    db: Annotated[
        str | None, typer.Option(help="Evidence store URL (else APEX_DB, else the default).")
    ] = None,
) -> None:
    """Report on a goal (timeline, costs, weights), a run, or a period (leaderboard, trends)."""
    from apex.report import render_html, sections_of
    from apex.report.select import load_report
    from apex.store import EvidenceStore

    with EvidenceStore(db, read_only=True) as store:
        found = load_report(store, target, since)
    if html is not None:
        html.write_text(render_html(found), encoding="utf-8")
        console.print(f"wrote {escape(str(html))}", highlight=False)
    if json_out:
        print_json(found.model_dump(mode="json"))
        return
    if html is not None:
        return
    for section in sections_of(found, plots=False):
        if section.table is None:
            console.print(f"[bold]{escape(section.title)}[/bold]", highlight=False)
            console.print(escape(section.text), highlight=False)
            continue
        table = RichTable(title=section.title, title_justify="left")
        for header in section.table.headers:
            table.add_column(header)
        for row in section.table.rows:
            table.add_row(*(escape(cell) for cell in row))
        console.print(table)
