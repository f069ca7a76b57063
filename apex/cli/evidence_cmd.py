"""``apex evidence``: each model's record per role in the evidence store, and its vote weight.

A model has up to three records: ``panel`` (its answers: accuracy, agreement, the judge's scores,
critics' findings, and the weight its vote earns), ``judge`` (its verdicts: failures such as
schema mismatches, and how often its final answer turned out right) and ``critic``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from apex.cli.common import console, guarded, print_json
from apex.cli.stores import check_named_store
from apex.types import Role

if TYPE_CHECKING:
    from apex.store import AggKey, EvidenceStore, LeaderboardRow

GLOBAL_CATEGORY = "*"
"""The all-categories key (``apex.evidence.GLOBAL_CATEGORY``, checked by a test)."""


def _weights(store: EvidenceStore, rows: list[LeaderboardRow], category: str) -> list[float | None]:
    """Each panel row's current vote weight in ``category`` (None for judge and critic rows)."""
    from apex.evidence import panel_weights

    weights = panel_weights(store, [r.model for r in rows if r.role == "panel"], category)
    return [weights[r.model] if r.role == "panel" else None for r in rows]


def _retries(store: EvidenceStore, rows: list[LeaderboardRow]) -> list[int]:
    """Each row's lifetime retried attempts (429, 5xx, connection): weak failure evidence."""
    keys: list[AggKey] = [(r.model, r.role, r.category) for r in rows]
    found = store.get_keys(keys)
    return [found[key].retries_total for key in keys]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _show(
    rows: list[LeaderboardRow],
    weights: list[float | None],
    retries: list[int],
    category: str,
    db: str,
) -> None:
    scope = "all categories" if category == GLOBAL_CATEGORY else f"category {category}"
    table = Table(title=f"evidence, {scope}", title_justify="left")
    table.add_column("model", no_wrap=True)
    table.add_column("role")
    for name in ("calls", "fail %", "failures", "judge (n)", "accuracy (n)", "weight"):
        table.add_column(name, justify="left" if name == "failures" else "right")
    for row, weight, retried in zip(rows, weights, retries, strict=True):
        kinds = [f"{k} {n}" for k, n in row.failures_by_kind.items()]
        kinds += [f"{retried} retried"] if retried else []
        judge = "-" if row.judge_mean is None else f"{row.judge_mean:.2f} ({row.judge_scores})"
        accuracy = "-" if row.accuracy is None else f"{_pct(row.accuracy)} ({row.ground_truth:.0f})"
        table.add_row(
            escape(row.model),
            row.role,
            str(row.calls),
            _pct(row.failure_rate),
            ", ".join(kinds) or "-",
            judge,
            accuracy,
            "-" if weight is None else f"{weight:.2f}",
        )
    console.print(table)
    console.print(
        "[dim]rates and means decay with each record's own events; calls and counts are lifetime; "
        "retried: attempts repeated after a 429, 5xx or connection error (weak evidence, no "
        "weight); "
        "judge accuracy: how often its final answer was right; weight 1.00 is a plain majority "
        f"vote · {escape(db)}[/dim]",
        highlight=False,
    )


@guarded
def evidence(
    category: Annotated[
        str | None, typer.Option(help="Task category (default: every category together).")
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    db: Annotated[
        str | None, typer.Option(help="Evidence store URL (else APEX_DB, workflow db, default).")
    ] = None,
    workflow: Annotated[
        str | None,
        typer.Option("--workflow", "-w", help="Workflow whose `db` key names the database."),
    ] = None,
    role: Annotated[
        Role | None, typer.Option(help="Only this role's records: panel, judge or critic.")
    ] = None,
) -> None:
    """Show each model's record (calls, failures, judge scores, accuracy) and its weight."""
    from apex.store import EvidenceStore
    from apex.workflow import load_workflow

    cat = category or GLOBAL_CATEGORY
    workflow_db = load_workflow(workflow).db if workflow else None
    # Read-only: a healthy database is readable on a read-only file system too.
    check_named_store(db, workflow_db, write=False)
    with EvidenceStore(db, workflow_db=workflow_db, read_only=True) as store:
        rows = store.leaderboard(category, role)
        weights = _weights(store, rows, cat)
        retries = _retries(store, rows)
        name = store.masked_url
    if json_out:
        models: list[dict[str, Any]] = [
            row.model_dump(mode="json") | {"retries": retried, "weight": weight}
            for row, weight, retried in zip(rows, weights, retries, strict=True)
        ]
        print_json({"db": name, "category": cat, "models": models})
    elif not rows:
        where = "" if category is None else f" for category {category}"
        console.print(f"no evidence{where} yet in {name}; `apex fuse` records it", highlight=False)
    else:
        _show(rows, weights, retries, cat, name)
