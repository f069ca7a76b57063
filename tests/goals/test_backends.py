"""A goal pauses and resumes from its checkpoint on SQLite and on PostgreSQL alike."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from typer.testing import CliRunner

from apex.cli.main import app
from apex.goals.loop import GoalEvent
from apex.goals.runner import Goal, resume
from apex.goals.store import GoalStore, open_checkpointer, prune_checkpoints
from apex.store import EvidenceStore
from apex.testing import InProcessServer, roles
from tests.goals.test_goal_loop import workflow_file


async def test_goal_checkpoints_on_each_backend(
    inproc: InProcessServer, tmp_path: Path, db_url: str
) -> None:
    inproc.script("judge", roles.judge("first"))
    inproc.default("judge", roles.judge("second", goal_met=True))
    store = EvidenceStore(db_url)
    goals = GoalStore(store)

    def pause(event: GoalEvent) -> None:
        if event.kind == "cycle_finished":
            goals.request(event.goal_id, "paused", ["active"])

    goal = Goal("Reach 42", workflow=workflow_file(tmp_path, inproc.base_url), store=store,
                on_event=pause)  # fmt: skip
    assert (await goal.run()).state == "paused"
    async with open_checkpointer(store) as saver:
        assert [c async for c in saver.alist({"configurable": {"thread_id": goal.id}})]
    done = await resume(goal.id, store=store)
    assert done.state == "complete" and len(done.cycles) == 2
    assert done.best_answer == "second"
    assert await prune_checkpoints(store, timedelta(0)) == 1
    async with open_checkpointer(store) as saver:
        assert not [c async for c in saver.alist({"configurable": {"thread_id": goal.id}})]
    store.close()


def test_db_prune_drops_checkpoints_of_finished_goals(
    inproc: InProcessServer, tmp_path: Path
) -> None:
    inproc.default("judge", roles.judge("done", goal_met=True))
    url = f"sqlite:///{tmp_path / 'apex.db'}"
    store = EvidenceStore(url)
    goal = Goal("Reach 42", workflow=workflow_file(tmp_path, inproc.base_url), store=store)
    assert asyncio.run(goal.run()).state == "complete"

    async def checkpoints() -> int:
        async with open_checkpointer(store) as saver:
            return len([c async for c in saver.alist({"configurable": {"thread_id": goal.id}})])

    assert asyncio.run(checkpoints()) > 0
    result = CliRunner().invoke(
        app, ["db", "prune", "--older-than", "0s", "--yes", "--db", url, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert '"goal_checkpoints": 1' in result.stdout
    assert asyncio.run(checkpoints()) == 0
    assert GoalStore(store).status(goal.id).state == "complete"  # the goal itself is kept
