"""Schedules on SQLite and PostgreSQL with an injected clock: one firing per due time,
``--overlap``, ``--catch-up``, ``--carry`` and the daily spend cap; the CLI commands."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apex.cli.main import app
from apex.errors import ScheduleError
from apex.goals.queue import job_lock
from apex.goals.runner import drive
from apex.goals.store import GoalStore
from apex.goals.types import Limits
from apex.store import EvidenceStore
from apex.testing import InProcessServer, Reply, roles, workflow_toml
from apex.workers import Schedule, ScheduleStore
from apex.workers.firing import fire_due, fire_one, shown_state, spent
from apex.workers.schedules import aware

PANEL = ("m1", "m2", "m3")


@pytest.fixture
def store(db_url: str) -> EvidenceStore:
    return EvidenceStore(db_url)


def workflow(tmp_path: Path, inproc: InProcessServer) -> str:
    path = tmp_path / "sched.toml"
    path.write_text(workflow_toml(inproc.base_url, PANEL, settings="max_retries = 0"))
    return str(path)


def schedule(store: EvidenceStore, path: str, name: str = "daily", **kwargs: object) -> Schedule:
    options: dict[str, object] = {"every": "1h"} | kwargs
    return Schedule(name, objective="Report the number", workflow=path, store=store, **options)  # type: ignore[arg-type]


def due_now(store: EvidenceStore, name: str, late: float = 1.0) -> datetime:
    """The schedule's next due time, plus ``late`` seconds: the injected clock's "now"."""
    return aware(ScheduleStore(store).get(name).next_fire_at) + timedelta(seconds=late)


def queued_goals(store: EvidenceStore, name: str) -> list[str]:
    return [g.spec.id for g in GoalStore(store).all(schedule=name)]


def test_a_due_time_fires_one_goal_however_many_ticks_race_for_it(
    store: EvidenceStore, tmp_path: Path, inproc: InProcessServer
) -> None:
    info = schedule(store, workflow(tmp_path, inproc), every="30m", tz="Europe/Paris").add()
    assert info.next_fire_at - info.created_at == timedelta(minutes=30)
    now = due_now(store, "daily")
    assert fire_due(store, now - timedelta(seconds=2)) == []  # not due yet
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: fire_due(store, now), range(4)))
    fired = [f for batch in results for f in batch if f.action == "fired"]
    assert len(fired) == 1 and fired[0].goal is not None
    goal = GoalStore(store).status(fired[0].goal.id)
    assert goal.state == "queued" and goal.queued and goal.spec.schedule == "daily"
    assert goal.spec.objective == "Report the number"
    after = ScheduleStore(store).get("daily")
    assert after.last_goal_id == goal.spec.id and after.note == f"fired {goal.spec.id}"
    assert after.next_fire_at == info.next_fire_at + timedelta(minutes=30)
    assert queued_goals(store, "daily") == [goal.spec.id]


def test_overlap_skip_waits_for_the_previous_goal_and_queue_does_not(
    store: EvidenceStore, tmp_path: Path, inproc: InProcessServer
) -> None:
    path = workflow(tmp_path, inproc)
    schedule(store, path, "skipper").add()
    schedule(store, path, "queuer", overlap="queue").add()
    goals = GoalStore(store)
    for name in ("skipper", "queuer"):
        first = fire_one(store, name, due_now(store, name))
        assert first.action == "fired"
    busy = fire_one(store, "skipper", due_now(store, "skipper"))
    assert busy.action == "skipped" and "is still queued (--overlap skip)" in busy.note
    second = fire_one(store, "queuer", due_now(store, "queuer"))
    assert second.action == "fired" and second.goal is not None
    assert len(queued_goals(store, "skipper")) == 1 and len(queued_goals(store, "queuer")) == 2
    # Both of queuer's goals share the job lock: they run one after the other.
    specs = [goals.status(g).spec for g in queued_goals(store, "queuer")]
    assert {job_lock(s) for s in specs} == {"schedule:queuer"}
    (previous,) = queued_goals(store, "skipper")
    goals.set_goal_state(previous, "complete", "done")
    again = fire_one(store, "skipper", due_now(store, "skipper"))
    assert again.action == "fired"


def test_catch_up_once_fires_one_goal_for_missed_days_and_skip_none(
    store: EvidenceStore, tmp_path: Path, inproc: InProcessServer
) -> None:
    path = workflow(tmp_path, inproc)
    for mode in ("once", "skip"):
        schedule(
            store, path, mode, every=None, cron="0 9 * * *", tz="Europe/Paris", catch_up=mode
        ).add()
    later = {n: due_now(store, n) + timedelta(days=2, hours=2) for n in ("once", "skip")}
    once = fire_one(store, "once", later["once"])
    assert once.action == "fired" and "for 3 due times (--catch-up once)" in once.note
    skip = fire_one(store, "skip", later["skip"])
    assert skip.action == "skipped" and skip.note == "skipped 3 missed firing(s) (--catch-up skip)"
    assert len(queued_goals(store, "once")) == 1 and queued_goals(store, "skip") == []
    for name in ("once", "skip"):
        following = ScheduleStore(store).get(name).next_fire_at
        assert aware(following) > later[name] and following.hour in (7, 8)  # 09:00 Paris


async def test_carry_hands_the_previous_answer_missing_and_feedback_to_the_next_goal(
    store: EvidenceStore, tmp_path: Path, inproc: InProcessServer
) -> None:
    inproc.default("judge", roles.judge("the number is 41", goal_met=False))
    schedule(store, workflow(tmp_path, inproc), carry=True, limits=Limits(max_cycles=1)).add()
    first = fire_one(store, "daily", due_now(store, "daily"))
    assert first.goal is not None and first.goal.context == ""  # nothing to carry yet
    done = await drive(first.goal, store)
    assert done.state == "budget_limited"
    missing, feedback = done.cycles[0].missing, done.cycles[0].feedback
    assert missing and feedback
    second = fire_one(store, "daily", due_now(store, "daily"))
    assert second.goal is not None
    carried = second.goal.context
    assert first.goal.id in carried and "the number is 41" in carried
    assert all(m in carried for m in missing) and feedback in carried
    inproc.default("judge", roles.judge("the number is 42", goal_met=True))
    asked = len(inproc.requests)
    assert (await drive(second.goal, store)).state == "complete"
    panel = [r for r in inproc.requests[asked:] if r.model in PANEL]
    assert panel and all("the number is 41" in str(r.body["messages"][0]) for r in panel)


async def test_the_daily_cap_counts_every_goal_of_the_schedule_and_stops_firing(
    store: EvidenceStore, tmp_path: Path, inproc: InProcessServer
) -> None:
    for model in PANEL:
        inproc.default(model, Reply("partial", cost=0.02))
    inproc.default("judge", lambda b: Reply(roles.judge("partial")(b), cost=0.02))
    path = workflow(tmp_path, inproc)
    schedule(store, path, budget_usd_per_day=0.10, limits=Limits(max_cycles=1)).add()
    now = datetime.now(UTC)

    async def fire_and_run() -> str:
        firing = fire_one(store, "daily", now, force=True)
        assert firing.goal is not None
        await drive(firing.goal, store)
        return firing.note

    assert "budget $0.1000" in await fire_and_run()  # no budget of its own: the cap's rest
    note = await fire_and_run()  # $0.08 spent: the next goal may spend only what is left
    assert "budget $0.0200: what is left of today's $0.1" in note
    info = ScheduleStore(store).get("daily")
    assert spent(store, info, now) == pytest.approx(0.16)
    assert shown_state(info, spent(store, info, now)) == "capped"
    capped = fire_one(store, "daily", now, force=True)
    assert capped.action == "capped" and capped.goal is None
    assert "$0.1600 of $0.1 spent today (UTC)" in capped.note
    (tomorrow,) = fire_due(store, now + timedelta(days=1))  # a new day: it fires again
    assert tomorrow.action == "fired"
    assert len(GoalStore(store).all(schedule="daily")) == 3


def test_the_schedule_commands(db_url: str, tmp_path: Path, inproc: InProcessServer) -> None:
    runner, path, db = CliRunner(), workflow(tmp_path, inproc), ["--db", db_url]
    added = runner.invoke(
        app,
        [
            "schedule",
            "add",
            "standup",
            "--cron",
            "0 9 * * 1-5",
            "--tz",
            "Europe/Paris",
            "--objective",
            "Summarise",
            "-w",
            path,
            "--carry",
            "--budget-usd-per-day",
            "0.5",
            "--deadline",
            "30m",
            *db,
        ],
    )
    assert added.exit_code == 0, added.output
    assert "cron 0 9 * * 1-5 (Europe/Paris), next firing" in added.stdout
    listed = runner.invoke(app, ["schedule", "list", *db])
    assert "standup" in listed.stdout and "active" in listed.stdout
    shown = runner.invoke(app, ["schedule", "show", "standup", *db])
    assert "carry True" in shown.stdout and "spent today $0.0000 of $0.5" in shown.stdout
    assert runner.invoke(app, ["schedule", "pause", "standup", *db]).stdout.strip() == (
        "schedule standup: paused"
    )
    now = runner.invoke(app, ["schedule", "run-now", "standup", *db])
    assert now.exit_code == 0, now.output
    with EvidenceStore(db_url) as store:
        goal = GoalStore(store).status(now.stdout.strip())
        assert goal.state == "queued" and goal.spec.schedule == "standup"
        assert goal.spec.limits.deadline is not None  # 30 minutes after its firing
    resumed = runner.invoke(app, ["schedule", "resume", "standup", *db])
    assert "schedule standup: active, next firing" in resumed.stdout
    twice = runner.invoke(
        app, ["schedule", "add", "standup", "--every", "1h", "--objective", "x", "-w", path, *db]
    )
    assert twice.exit_code == 1
    assert (
        twice.stderr
        == "error: a schedule named 'standup' exists; remove it first or pick another name\n"
    )
    bad = runner.invoke(
        app, ["schedule", "add", "b", "--cron", "9 * *", "--objective", "x", "-w", path, *db]
    )
    assert bad.exit_code == 1 and len(bad.stderr.splitlines()) == 1
    assert "is not a five-field cron expression" in bad.stderr
    gone = runner.invoke(app, ["schedule", "remove", "standup", *db])
    assert gone.stdout.strip() == "schedule standup: removed"
    missing = runner.invoke(app, ["schedule", "show", "standup", *db])
    assert missing.exit_code == 1 and "no schedule 'standup'" in missing.stderr


def test_a_fixed_deadline_cannot_be_scheduled(
    store: EvidenceStore, tmp_path: Path, inproc: InProcessServer
) -> None:
    with pytest.raises(ScheduleError, match="a schedule takes a deadline per firing"):
        schedule(store, workflow(tmp_path, inproc), limits=Limits(deadline=datetime.now(UTC)))
