"""Checkpoint upkeep: the serializer rebuilds every state type, compaction keeps a goal's rows
constant, and a goal killed after a compaction resumes on SQLite and PostgreSQL.

The kill tests reuse test_crash_resume's scenario (the goal needs two cycles; the loopback server
records every request) with the goal process killed in cycle 2, after the compaction that removed
cycle 1's checkpoints.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import subprocess
import types
import typing
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Send
from pydantic import BaseModel

from apex.goals import checkpoints
from apex.goals.checkpoints import STATE_ROOTS, checkpointed_types, open_checkpointer, serializer
from apex.goals.loop import GoalEvent, build_goal_graph
from apex.goals.runner import Goal
from apex.goals.store import GoalStore
from apex.goals.types import Limits
from apex.goals.verify import Verdict, VerifierSpec
from apex.graph.nodes import CritiqueTask, GenerateTask, JudgeOutcome
from apex.graph.types import Candidate, FusionResult, JudgeInput
from apex.store import EvidenceStore
from apex.testing import InProcessServer, Reply, TestServer, roles, workflow_toml
from tests.goals.test_crash_resume import (
    EXACTLY_ONCE,
    JUDGE,
    OBJECTIVE,
    PANEL,
    SLOW_MEMBER_S,
    Run,
    apex,
    child_env,
    member,
    panel_cycle,
    poll,
    requests_by_cycle,
    resume_and_check,
    script,
    stored,
    workflow_file,
)

# -- the allow-list ------------------------------------------------------------------------------


def example(annotation: Any) -> Any:
    """A valid value of ``annotation``; optional fields get a value too, to reach nested types."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return args[0]
    if origin is typing.Annotated:
        return example(args[0])
    if origin is typing.Union or isinstance(annotation, types.UnionType):
        return example(next(a for a in args if a is not type(None)))
    if origin in (list, tuple, set, frozenset):
        return origin([example(args[0])])
    if origin is dict:
        return {example(args[0]): example(args[1])}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        fields = annotation.model_fields.items()
        return annotation(**{name: example(f.annotation) for name, f in fields})
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return annotation(**{k: example(v) for k, v in typing.get_type_hints(annotation).items()})
    simple = {str: "lab:text", bool: True, int: 1, float: 0.5}
    assert annotation in simple, f"no example for {annotation!r}: extend example()"
    return simple[annotation]


def round_trip(value: Any, serde: JsonPlusSerializer | None = None) -> Any:
    """``value`` through a checkpoint serializer and back."""
    serde = serde or serializer()
    return serde.loads_typed(serde.dumps_typed(value))


def graph_schemas(graph: CompiledStateGraph[Any, Any, Any, Any]) -> set[type]:
    """The state and node input schemas of ``graph`` and of the subgraphs it runs as nodes."""
    found = set(graph.builder.schemas)
    for node in graph.builder.nodes.values():
        if isinstance(node.runnable, CompiledStateGraph):
            found |= graph_schemas(node.runnable)
    return found


def test_state_roots_are_every_schema_of_the_graphs() -> None:
    assert graph_schemas(build_goal_graph()) == set(STATE_ROOTS)


def test_checkpointed_types_reach_nested_and_sent_types() -> None:
    found = set(checkpointed_types())
    assert {Verdict, GenerateTask, CritiqueTask, JudgeInput, JudgeOutcome, FusionResult} <= found
    assert Candidate in found  # only inside a list, inside the state
    names = {c.__name__ for c in found}
    assert {"CallFailure", "PanelMember", "CriticConfig", "JudgeVerdict", "Problem"} <= names


@pytest.mark.parametrize("cls", checkpointed_types(), ids=lambda c: c.__name__)
def test_every_checkpointed_type_round_trips_as_itself(cls: type) -> None:
    value = example(cls)
    for wrapped in (value, {"channel": [value]}, Send("node", value)):
        back = round_trip(wrapped)
        assert back == wrapped and type(back) is type(wrapped)
    assert type(round_trip(value)) is cls


def test_a_type_left_off_the_allow_list_comes_back_as_a_dict() -> None:
    """What the round-trip test catches: without Verdict allowed, a Verdict resumes as a dict."""
    allowed = [(c.__module__, c.__name__) for c in checkpointed_types() if c is not Verdict]
    back = round_trip(Verdict(met=True), JsonPlusSerializer(allowed_msgpack_modules=allowed))
    assert back == {"met": True, "feedback": ""}


class Recording(JsonPlusSerializer):
    """The checkpoint serializer, keeping every value it writes."""

    def __init__(self) -> None:
        allowed = [(c.__module__, c.__name__) for c in checkpointed_types()]
        super().__init__(allowed_msgpack_modules=allowed)
        self.values: list[Any] = []

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        self.values.append(obj)
        return super().dumps_typed(obj)


def classes(value: Any) -> Iterator[type]:
    """The class of every object in ``value`` that is not a builtin container or scalar."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from classes(k)
            yield from classes(v)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from classes(item)
    elif isinstance(value, Send):
        yield Send
        yield from classes(value.arg)
    elif isinstance(value, BaseModel):
        yield type(value)
        for name in type(value).model_fields:
            yield from classes(getattr(value, name))
    elif value is not None and not isinstance(value, str | bytes | int | float):
        yield type(value)


async def test_every_type_a_goal_checkpoints_is_allowed(
    inproc: InProcessServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    recording = Recording()
    monkeypatch.setattr(checkpoints, "serializer", lambda: recording)
    inproc.default("critic", roles.critic())
    inproc.default("judge", roles.judge("the answer is 42"))
    path = tmp_path / "critics.toml"
    path.write_text(workflow_toml(inproc.base_url, PANEL, critics=["critic"]))
    store = EvidenceStore(f"sqlite:///{tmp_path / 'apex.db'}")
    verifier = VerifierSpec(kind="regex", value=r"\b42\b")
    status = await Goal("Reach 42", workflow=str(path), store=store, verifier=verifier).run()
    store.close()
    assert status.state == "complete"
    seen = {c for value in recording.values for c in classes(value)}
    ours = {c for c in seen if c.__module__.split(".")[0] == "apex"}
    assert {Verdict, CritiqueTask, GenerateTask, JudgeInput, JudgeOutcome} <= ours
    assert ours <= set(checkpointed_types())
    for value in recording.values:  # what was written is what a resume reads
        assert Counter(classes(round_trip(value))) == Counter(classes(value))


# -- compaction ----------------------------------------------------------------------------------


def thread_rows(url: str, goal_id: str) -> dict[str, Any]:
    """The goal thread's rows in each of the saver's tables, its namespaces and candidates."""
    sqlite = url.startswith("sqlite")
    tables = ("checkpoints", "writes") if sqlite else ("checkpoints", "checkpoint_writes")
    tables += () if sqlite else ("checkpoint_blobs",)
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            rows: dict[str, Any] = {
                t: conn.execute(
                    sa.text(f"SELECT count(*) FROM {t} WHERE thread_id = :t"),  # noqa: S608
                    {"t": goal_id},
                ).scalar_one()
                for t in tables
            }
            query = "SELECT DISTINCT checkpoint_ns FROM checkpoints WHERE thread_id = :t"
            namespaces = conn.execute(sa.text(query), {"t": goal_id}).scalars()
            rows["namespaces"] = {ns.split(":")[0] for ns in namespaces}  # less the task id
            query = f"SELECT count(*) FROM {tables[1]} WHERE thread_id = :t AND channel = :c"  # noqa: S608
            rows["candidates"] = conn.execute(
                sa.text(query), {"t": goal_id, "c": "candidates"}
            ).scalar_one()
            return rows
    finally:
        engine.dispose()


async def test_checkpoint_rows_stay_constant_over_cycles(
    inproc: InProcessServer, tmp_path: Path, db_url: str
) -> None:
    inproc.default("judge", roles.judge("a partial answer"))
    path = tmp_path / "size.toml"
    path.write_text(workflow_toml(inproc.base_url, PANEL))
    store = EvidenceStore(db_url)
    at_cycle_end: list[dict[str, Any]] = []

    def count(event: GoalEvent) -> None:
        if event.kind == "cycle_finished":
            at_cycle_end.append(thread_rows(db_url, event.goal_id))

    finals = []
    for cycles in (2, 6):
        goal = Goal("Keep improving", workflow=str(path), store=store,
                    limits=Limits(max_cycles=cycles), on_event=count)  # fmt: skip
        assert (await goal.run()).state == "budget_limited"
        finals.append(thread_rows(db_url, goal.id))
    store.close()
    assert finals[0] == finals[1] and finals[0]["namespaces"] == {""}
    # Mid-cycle, a goal holds its latest top-level checkpoint and the running cycle's rows:
    # the same from cycle 2 on (cycle 1 also has the run's input checkpoint).
    later = [rows for i, rows in enumerate(at_cycle_end) if i not in (0, 2)]
    assert len(later) == 6 and all(rows == later[0] for rows in later), at_cycle_end


async def test_compaction_keeps_the_latest_state_whole(
    inproc: InProcessServer, tmp_path: Path, db_url: str
) -> None:
    inproc.default("judge", roles.judge("the answer is 42", goal_met=True))
    path = tmp_path / "done.toml"
    path.write_text(workflow_toml(inproc.base_url, PANEL))
    store = EvidenceStore(db_url)
    verifier = VerifierSpec(kind="regex", value=r"\b42\b")
    goal = Goal("Reach 42", workflow=str(path), store=store, verifier=verifier)
    assert (await goal.run()).state == "complete"  # ends after decide: nothing compacted yet
    config: RunnableConfig = {"configurable": {"thread_id": goal.id}}

    async def latest() -> dict[str, Any]:
        async with open_checkpointer(store) as saver:
            return (await build_goal_graph(saver).aget_state(config)).values

    before, rows = await latest(), thread_rows(db_url, goal.id)
    assert rows["namespaces"] == {"", "fusion"}
    await GoalStore(store).compact(goal.id)  # with a checkpointer of its own
    assert await latest() == before
    assert isinstance(before["result"], FusionResult) and isinstance(
        before["verdicts"]["final"], Verdict
    )
    rows = thread_rows(db_url, goal.id)
    assert rows["checkpoints"] == 1 and rows["namespaces"] == {""}, rows
    store.close()


class BackendRun(Run):
    """test_crash_resume's first (doomed) goal process, on the database at ``url``."""

    def __init__(self, tmp_path: Path, server: TestServer, kill_at: str | None, url: str) -> None:
        self.tmp_path, self.url = tmp_path, url
        self.out, self.err = tmp_path / "start.out", tmp_path / "start.err"
        command = apex(
            "goal", "start", OBJECTIVE, "-w", str(workflow_file(tmp_path, server.base_url)),
            "--db", url, "--max-cycles", "3", "--match", r"\b42\b",
        )  # fmt: skip
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                command, stdout=out, stderr=err, env=child_env(tmp_path, kill_at)
            )


def test_resume_after_kill_after_compaction(
    server: TestServer, tmp_path: Path, db_url: str
) -> None:
    script(server)
    run = BackendRun(tmp_path, server, "after_compaction", db_url)
    run.wait_killed()
    goal_id = run.goal_id()
    runs, counts = stored(db_url, goal_id)
    assert runs == [f"{goal_id}-c1"] and counts["runs"] == 1  # cycle 1 done, cycle 2 not begun
    assert requests_by_cycle(server) == {m: Counter({1: 1}) for m in (*PANEL, JUDGE)}
    rows = thread_rows(db_url, goal_id)  # compaction left the one checkpoint to resume from
    assert rows["checkpoints"] == 1 and rows["namespaces"] == {""}, rows

    seen = resume_and_check(run, goal_id, server)
    assert seen == {m: EXACTLY_ONCE for m in (*PANEL, JUDGE)}


def test_resume_after_kill_mid_panel_after_compaction(
    server: TestServer, tmp_path: Path, db_url: str
) -> None:
    script(server)
    slow = {"pending": True}

    def m3(body: dict[str, Any]) -> Reply:
        reply = member("m3")(body)
        if panel_cycle(body) == 2 and slow.pop("pending", False):
            return Reply(reply.text, latency=SLOW_MEMBER_S)  # in flight when the goal is killed
        return reply

    server.default("m3", m3)
    run = BackendRun(tmp_path, server, None, db_url)

    def cycle_2_checkpointed() -> bool:
        requests = [r for m in ("m1", "m2") for r in server.requests_for(m)]
        if sum(panel_cycle(r.body) == 2 and r.finished for r in requests) < 2:
            return False
        goal_id = run.out.read_text().split()[0]  # printed before cycle 1
        with contextlib.suppress(sa.exc.OperationalError):  # SQLite: the saver is writing
            return bool(thread_rows(db_url, goal_id)["candidates"] == 2)
        return False

    poll(cycle_2_checkpointed, run, "checkpointing cycle 2's finished calls")
    in_flight = [r for r in server.requests_for("m3") if panel_cycle(r.body) == 2]
    assert len(in_flight) == 1 and not in_flight[0].finished, "m3 must be in flight at the kill"
    os.kill(run.proc.pid, signal.SIGKILL)
    run.wait_killed()
    goal_id = run.goal_id()
    assert stored(db_url, goal_id)[0] == [f"{goal_id}-c1"]

    seen = resume_and_check(run, goal_id, server)
    assert seen["m1"] == seen["m2"] == seen[JUDGE] == EXACTLY_ONCE
    assert seen["m3"] == Counter({1: 1, 2: 2})  # only the unfinished call was made again
