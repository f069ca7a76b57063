"""``apex report`` on a 10-cycle goal and on a week of runs: the HTML's plots carry the store's
numbers (checked against SQL run here on the same SQLite file), and nothing loads from elsewhere.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apex.cli.common import console
from apex.cli.main import app
from tests.report.conftest import RUNS_PER_DAY, WEEK_DAYS, GoalStore
from tests.report.html_reader import Page, read_page

runner = CliRunner()


def html_of(db: Path, tmp_path: Path, *args: str) -> Page:
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["report", *args, "--html", str(out), "--db", f"sqlite:///{db}"])
    assert result.exit_code == 0, result.output
    page = read_page(out.read_text(encoding="utf-8"))
    assert [h for h in page.external if not h.startswith("#")] == []  # self-contained
    return page


def test_a_ten_cycle_goal(goal_db: GoalStore, tmp_path: Path) -> None:
    goal_id = goal_db.status.spec.id
    page = html_of(goal_db.path, tmp_path, goal_id)
    sql = sqlite3.connect(goal_db.path)

    # the timeline: each cycle's verdict, cost and latency, as stored
    stored = sql.execute(
        "SELECT c.cycle, c.cost_usd, r.latency_s, json_extract(c.summary, '$.verified'),"
        " json_extract(c.summary, '$.blocker') FROM goal_cycles c JOIN runs r USING (run_id)"
        " WHERE c.goal_id = ? ORDER BY c.cycle",
        (goal_id,),
    ).fetchall()
    timeline = page.plots["timeline"]
    assert timeline["cycle"] == [row[0] for row in stored] == list(range(1, 11))
    assert timeline["cost_usd"] == pytest.approx([row[1] for row in stored])
    assert timeline["cost_usd"][0] == pytest.approx(0.001 + 0.002 + 0.0005 + 0.003)
    assert timeline["latency_s"] == pytest.approx([row[2] for row in stored])
    assert timeline["verdict"] == ["not verified"] * 10 and {r[3] for r in stored} == {0}
    assert all(str(c) in page.svgs["timeline"] for c in range(1, 11))  # the axis shows cycles
    table = next(t for t in page.tables if t[0][:3] == ["cycle", "run", "verdict"])
    assert [row[3] for row in table[1:]] == [r[4] for r in stored] == ["needs data"] * 10

    # cost per model and role: sums over the goal's calls
    sums = {
        (model, role): (calls, cost)
        for model, role, calls, cost in sql.execute(
            "SELECT model, role, count(*), sum(cost_usd) FROM calls WHERE run_id IN"
            " (SELECT run_id FROM goal_cycles WHERE goal_id = ?) GROUP BY model, role",
            (goal_id,),
        )
    }
    drawn = {(r["model"], r["role"]): (r["calls"], r["cost_usd"]) for r in page.plots["costs"]}
    assert (
        drawn.keys()
        == sums.keys()
        == {
            ("lab:m1", "panel"),
            ("lab:m2", "panel"),
            ("lab:m3", "panel"),
            ("lab:judge", "judge"),
        }
    )
    for key, (calls, cost) in sums.items():
        assert drawn[key][0] == calls == 10 and drawn[key][1] == pytest.approx(cost)
    assert "lab:m1 (panel)" in page.svgs["costs"]

    # the weights each panel model had in each cycle, as the runs recorded them
    recorded: dict[str, list[list[float]]] = defaultdict(list)
    for cycle, evidence in sql.execute(
        "SELECT c.cycle, r.evidence FROM goal_cycles c JOIN runs r USING (run_id)"
        " WHERE c.goal_id = ? ORDER BY c.cycle",
        (goal_id,),
    ):
        for vote in json.loads(evidence)["votes"]:
            recorded[vote["model"]].append([cycle, vote["weight"]])
    weights = page.plots["weights"]
    assert weights.keys() == recorded.keys() == {"lab:m1", "lab:m2", "lab:m3"}
    for model, points in recorded.items():
        assert [c for c, _ in weights[model]] == [c for c, _ in points]
        assert [w for _, w in weights[model]] == pytest.approx([w for _, w in points])
    m1, m3 = [w for _, w in weights["lab:m1"]], [w for _, w in weights["lab:m3"]]
    assert m1[0] == m3[0] == 1.0 and m3[-1] < m3[0] and m1[-1] > m3[-1]  # verdicts moved them
    assert page.report["state"] == goal_db.status.state == "budget_limited"
    sql.close()


def test_a_week_of_runs(week_db: tuple[Path, object], tmp_path: Path) -> None:
    path, _ = week_db
    page = html_of(path, tmp_path, "--since", "8d")
    sql = sqlite3.connect(path)
    days = [d for (d,) in sql.execute("SELECT DISTINCT date(created_at) FROM runs ORDER BY 1")]
    assert len(days) == WEEK_DAYS and page.report["runs"] == WEEK_DAYS * RUNS_PER_DAY

    # failure rate by kind per day = failed calls of that kind / calls that day
    calls_per_day = dict(
        sql.execute(
            "SELECT date(r.created_at), count(*) FROM calls c JOIN runs r USING (run_id) GROUP BY 1"
        ).fetchall()
    )
    failed = sql.execute(
        "SELECT c.failure_kind, date(r.created_at), count(*) FROM calls c JOIN runs r"
        " USING (run_id) WHERE NOT c.ok GROUP BY 1, 2"
    ).fetchall()
    expected: dict[str, list[float]] = defaultdict(lambda: [0.0] * len(days))
    for kind, day, n in failed:
        expected[kind][days.index(day)] = n / calls_per_day[day]
    failures = page.plots["failures"]
    assert failures["days"] == days
    assert failures["series"].keys() == expected.keys() == {"http_error", "malformed_response"}
    for kind, rates in expected.items():
        assert failures["series"][kind] == pytest.approx(rates)
    assert failures["series"]["http_error"][0] == pytest.approx(1 / calls_per_day[days[0]])

    # judge scores per panel model per day: the mean of the stored scores
    scores: dict[str, list[float | None]] = defaultdict(lambda: [None] * len(days))
    for model, day, mean in sql.execute(
        "SELECT c.model, date(r.created_at), avg(c.score) FROM candidates c JOIN runs r"
        " USING (run_id) WHERE c.score IS NOT NULL GROUP BY 1, 2"
    ):
        scores[model][days.index(day)] = mean
    drawn = page.plots["judge_scores"]["series"]
    assert drawn.keys() == scores.keys() == {"lab:m1", "lab:m2", "lab:m3"}, (drawn, dict(scores))
    for model, values in scores.items():
        assert drawn[model] == pytest.approx(values)
    assert drawn["lab:m1"][0] == pytest.approx(0.5) and drawn["lab:m1"][-1] == pytest.approx(0.8)

    # weights per category per day: the mean of the weights the runs recorded
    weights: dict[str, dict[str, list[float | None]]] = defaultdict(
        lambda: defaultdict(lambda: [None] * len(days))
    )
    for category, day, model, mean in sql.execute(
        "SELECT r.category, date(r.created_at), json_extract(v.value, '$.model'),"
        " avg(json_extract(v.value, '$.weight')) FROM runs r, json_each(r.evidence, '$.votes') v"
        " GROUP BY 1, 2, 3"
    ):
        weights[category][model][days.index(day)] = mean
    assert set(weights) == {"math", "code"}
    for category, series in weights.items():
        plotted = page.plots[f"weights-{category}"]["series"]
        assert plotted.keys() == series.keys()
        for model, values in series.items():
            assert plotted[model] == pytest.approx(values)

    # the leaderboard: every (model, role) record with its lifetime counts
    board = next(t for t in page.tables if t[0][:2] == ["model", "role"] and "findings" in t[0])
    rows = {(r[0], r[1]): r for r in board[1:]}
    panel_calls = dict(
        sql.execute("SELECT model, count(*) FROM calls WHERE role = 'panel' GROUP BY 1").fetchall()
    )
    for model, n in panel_calls.items():
        assert rows[(model, "panel")][2] == str(n)
    m2_failed = sql.execute(
        "SELECT count(*) FROM calls WHERE model = 'lab:m2' AND NOT ok"
    ).fetchone()[0]
    assert rows[("lab:m2", "panel")][3] == str(m2_failed) == "3"  # days 0, 3 and 6
    sql.close()


def test_terminal_tables_and_json(goal_db: GoalStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(console, "width", 200)  # a wide terminal: cells do not wrap
    db = f"sqlite:///{goal_db.path}"
    goal_id = goal_db.status.spec.id
    shown = runner.invoke(app, ["report", goal_id, "--db", db])
    assert shown.exit_code == 0, shown.output
    assert "Timeline" in shown.output and "needs data" in shown.output
    assert "lab:judge" in shown.output and "not verified" in shown.output
    data = json.loads(runner.invoke(app, ["report", goal_id, "--json", "--db", db]).output)
    assert data["kind"] == "goal" and len(data["cycles"]) == 10
    run_id = goal_db.status.cycles[0].run_id
    run = json.loads(runner.invoke(app, ["report", run_id, "--json", "--db", db]).output)
    assert run["kind"] == "run" and len(run["calls"]) == 4
    period = runner.invoke(app, ["report", "--since", "1d", "--db", db])
    assert period.exit_code == 0 and "leaderboard" in period.output
    missing = runner.invoke(app, ["report", "nope", "--db", db])
    assert missing.exit_code != 0 and "no goal or run 'nope'" in missing.output
    both = runner.invoke(app, ["report", "--since", "week", "--db", db])
    assert both.exit_code != 0 and "not a duration" in both.output
