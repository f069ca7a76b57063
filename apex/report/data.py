"""The facts of a report, read from the store: a goal, one run, or a period.

Every number a report shows (a table cell, a point of a plot) comes from one of these models,
so the terminal tables, the JSON and the HTML (which embeds each plot's numbers beside it) say
the same thing. Weights are the ones each panel model had in each cycle, as the run recorded
them (``runs.evidence``); costs are summed from ``calls`` (None where no call's cost is known).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from pydantic import BaseModel, Field
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from apex.goals.store import GoalStore
from apex.goals.types import CycleSummary
from apex.store import EvidenceStore, LeaderboardRow
from apex.store.engine import read_transaction, store_error
from apex.store.tables import CALLS, CANDIDATES, RUNS


class CycleFacts(BaseModel):
    """One cycle of a goal as its timeline shows it."""

    cycle: int
    """1-based cycle number."""
    run_id: str
    """Its fusion run."""
    at: datetime | None = None
    """When it was recorded (naive UTC)."""
    verdict: str
    """``verified``, ``not verified``, ``judge: met``, ``judge: not met`` or ``-``."""
    blocker: str = ""
    """What the judge said blocks progress."""
    synthesis_path: str
    """How the answer was produced."""
    cost_usd: float | None = None
    """Cost of the cycle (None when unknown)."""
    latency_s: float | None = None
    """Wall time of the cycle's fusion run."""
    tokens: int = 0
    """Tokens of the cycle."""


class CostRow(BaseModel):
    """Calls of one model in one role: how many, how many failed, what they cost."""

    model: str
    """``provider:model``."""
    role: str
    """panel, critic or judge."""
    calls: int
    """Calls made."""
    failures: int
    """Calls that failed."""
    cost_usd: float | None
    """Known cost summed (None when no call's cost is known)."""
    latency_s: float
    """Summed wall time."""


class GoalReport(BaseModel):
    """A goal: its state, a timeline of cycles, costs and the panel's weights per cycle."""

    kind: str = "goal"
    goal_id: str
    objective: str
    state: str
    reason: str = ""
    best_answer: str = ""
    cycles: list[CycleFacts]
    costs: list[CostRow]
    weights: dict[str, list[tuple[int, float]]]
    """Model -> (cycle, weight) for each cycle it answered in."""


class RunLine(BaseModel):
    """What a list of runs shows of each."""

    run_id: str
    at: datetime
    workflow: str
    category: str
    status: str
    synthesis_path: str
    cost_usd: float | None
    latency_s: float


class RunReport(RunLine):
    """One fusion run: its calls and what each cost."""

    kind: str = "run"
    judge_model: str | None
    answer: str
    calls: list[dict[str, object]]
    costs: list[CostRow]
    weights: dict[str, float]
    """Model -> the weight it had in this run."""


class PeriodReport(BaseModel):
    """Every run since a moment: the leaderboard and how things moved day by day."""

    kind: str = "period"
    since: datetime
    until: datetime
    runs: int
    days: list[str]
    """The days covered (``YYYY-MM-DD``, UTC), oldest first."""
    leaderboard: list[LeaderboardRow]
    """The lifetime record per (model, role) over every category."""
    failure_rates: dict[str, list[float | None]] = Field(default_factory=dict)
    """Failure kind -> per day: failed calls of that kind / calls (None: no calls that day)."""
    calls_per_day: list[int] = Field(default_factory=list)
    judge_scores: dict[str, list[float | None]] = Field(default_factory=dict)
    """Panel model -> per day: its mean judge score (None: not scored that day)."""
    weights: dict[str, dict[str, list[float | None]]] = Field(default_factory=dict)
    """Category -> model -> per day: its mean weight in that category's runs."""
    costs: list[CostRow] = Field(default_factory=list)


def _verdict(summary: CycleSummary) -> str:
    if summary.verified is not None:
        return "verified" if summary.verified else "not verified"
    if summary.judge_met is not None:
        return "judge: met" if summary.judge_met else "judge: not met"
    return "-"


def _costs(
    conn: Connection, run_ids: Iterable[str] | None, since: datetime | None
) -> list[CostRow]:
    query = sa.select(
        CALLS.c.model,
        CALLS.c.role,
        sa.func.count().label("calls"),
        sa.func.sum(sa.case((CALLS.c.ok, 0), else_=1)).label("failures"),
        sa.func.sum(CALLS.c.cost_usd).label("cost"),
        sa.func.sum(CALLS.c.latency_s).label("latency"),
    ).group_by(CALLS.c.model, CALLS.c.role)
    if run_ids is not None:
        query = query.where(CALLS.c.run_id.in_(list(run_ids)))
    if since is not None:
        query = query.join(RUNS, RUNS.c.run_id == CALLS.c.run_id).where(RUNS.c.created_at >= since)
    rows = [
        CostRow(
            model=r.model,
            role=r.role,
            calls=int(r.calls),
            failures=int(r.failures or 0),
            cost_usd=float(r.cost) if r.cost is not None else None,
            latency_s=float(r.latency or 0.0),
        )
        for r in conn.execute(query)
    ]
    return sorted(rows, key=lambda r: (("panel", "critic", "judge").index(r.role), r.model))


def _vote_weights(evidence: object) -> dict[str, float]:
    """Model -> weight from a run's stored evidence record (a model's mean if it sat twice)."""
    votes = evidence.get("votes", []) if isinstance(evidence, dict) else []
    found: dict[str, list[float]] = defaultdict(list)
    for vote in votes:
        if isinstance(vote, dict) and isinstance(vote.get("weight"), int | float):
            found[str(vote.get("model"))].append(float(vote["weight"]))
    return {model: sum(ws) / len(ws) for model, ws in sorted(found.items())}


def goal_report(store: EvidenceStore, goal_id: str) -> GoalReport:
    """The report of goal ``goal_id`` (raises GoalError when there is none)."""
    status = GoalStore(store).status(goal_id)
    run_ids = [c.run_id for c in status.cycles]
    try:
        with read_transaction(store.engine) as conn:
            runs = {
                r.run_id: r
                for r in conn.execute(
                    sa.select(
                        RUNS.c.run_id, RUNS.c.created_at, RUNS.c.latency_s, RUNS.c.evidence
                    ).where(RUNS.c.run_id.in_(run_ids))
                )
            }
            costs = _costs(conn, run_ids, None)
    except exc.SQLAlchemyError as error:
        raise store_error(error, store.url, f"reading goal {goal_id}") from error
    cycles: list[CycleFacts] = []
    weights: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for summary in status.cycles:
        run = runs.get(summary.run_id)
        cycles.append(
            CycleFacts(
                cycle=summary.cycle,
                run_id=summary.run_id,
                at=run.created_at if run is not None else None,
                verdict=_verdict(summary),
                blocker=summary.blocker,
                synthesis_path=summary.synthesis_path,
                cost_usd=summary.cost_usd,
                latency_s=float(run.latency_s) if run is not None else None,
                tokens=summary.tokens,
            )
        )
        for model, weight in _vote_weights(run.evidence if run is not None else None).items():
            weights[model].append((summary.cycle, weight))
    return GoalReport(
        goal_id=goal_id,
        objective=status.spec.objective,
        state=status.state,
        reason=status.reason,
        best_answer=status.best_answer,
        cycles=cycles,
        costs=costs,
        weights=dict(sorted(weights.items())),
    )


def run_report(store: EvidenceStore, run_id: str) -> RunReport | None:
    """The report of run ``run_id``, or None when it is not stored."""
    run = store.run(run_id)
    if run is None:
        return None
    try:
        with read_transaction(store.engine) as conn:
            costs = _costs(conn, [run_id], None)
            row = conn.execute(
                sa.select(RUNS.c.created_at, RUNS.c.latency_s, RUNS.c.evidence).where(
                    RUNS.c.run_id == run_id
                )
            ).one()
    except exc.SQLAlchemyError as error:
        raise store_error(error, store.url, f"reading run {run_id}") from error
    return RunReport(
        run_id=run_id,
        at=row.created_at,
        workflow=run.workflow,
        category=run.category,
        status=run.status,
        synthesis_path=run.synthesis_path,
        cost_usd=run.cost_usd,
        latency_s=float(row.latency_s),
        judge_model=run.judge_model,
        answer=run.answer,
        calls=[
            c.model_dump(include={"seq", "role", "model", "ok", "failure_kind", "latency_s"})
            | {
                "cost_usd": c.cost_usd,
                "tokens": (c.prompt_tokens or 0) + (c.completion_tokens or 0),
            }
            for c in run.calls
        ],
        costs=costs,
        weights=_vote_weights(row.evidence),
    )


def period_report(store: EvidenceStore, since: datetime, until: datetime) -> PeriodReport:
    """Every run recorded from ``since`` to ``until`` (naive UTC), day by day."""
    try:
        with read_transaction(store.engine) as conn:
            runs = list(
                conn.execute(
                    sa.select(RUNS.c.run_id, RUNS.c.created_at, RUNS.c.category, RUNS.c.evidence)
                    .where(RUNS.c.created_at >= since, RUNS.c.created_at <= until)
                    .order_by(RUNS.c.created_at)
                )
            )
            day_of = {r.run_id: r.created_at.strftime("%Y-%m-%d") for r in runs}
            calls = list(
                conn.execute(
                    sa.select(CALLS.c.run_id, CALLS.c.ok, CALLS.c.failure_kind).where(
                        CALLS.c.run_id.in_(list(day_of))
                    )
                )
            )
            scores = list(
                conn.execute(
                    sa.select(CANDIDATES.c.run_id, CANDIDATES.c.model, CANDIDATES.c.score).where(
                        CANDIDATES.c.run_id.in_(list(day_of)), CANDIDATES.c.score.is_not(None)
                    )
                )
            )
            costs = _costs(conn, list(day_of), None)
    except exc.SQLAlchemyError as error:
        raise store_error(error, store.url, "reading runs") from error
    leaderboard = store.leaderboard()
    days = sorted(set(day_of.values()))
    index = {d: i for i, d in enumerate(days)}
    per_day = [0] * len(days)
    failed: dict[str, list[int]] = defaultdict(lambda: [0] * len(days))
    for call in calls:
        i = index[day_of[call.run_id]]
        per_day[i] += 1
        if not call.ok:
            failed[call.failure_kind or "unknown"][i] += 1
    rates = {
        kind: [n / per_day[i] if per_day[i] else None for i, n in enumerate(counts)]
        for kind, counts in sorted(failed.items())
    }
    score_sums: dict[str, list[list[float]]] = defaultdict(lambda: [[] for _ in days])
    for row in scores:
        score_sums[row.model][index[day_of[row.run_id]]].append(float(row.score))
    weight_sums: dict[str, dict[str, list[list[float]]]] = defaultdict(
        lambda: defaultdict(lambda: [[] for _ in days])
    )
    for run in runs:
        for model, weight in _vote_weights(run.evidence).items():
            weight_sums[run.category][model][index[day_of[run.run_id]]].append(weight)
    return PeriodReport(
        since=since,
        until=until,
        runs=len(runs),
        days=days,
        leaderboard=leaderboard,
        failure_rates=rates,
        calls_per_day=per_day,
        judge_scores={m: _means(v) for m, v in sorted(score_sums.items())},
        weights={
            cat: {m: _means(v) for m, v in sorted(models.items())}
            for cat, models in sorted(weight_sums.items())
        },
        costs=costs,
    )


def _means(values: list[list[float]]) -> list[float | None]:
    return [sum(v) / len(v) if v else None for v in values]


__all__ = [
    "CostRow",
    "CycleFacts",
    "GoalReport",
    "PeriodReport",
    "RunReport",
    "goal_report",
    "period_report",
    "run_report",
]
