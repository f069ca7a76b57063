"""``apex feedback`` means what it says in every synthesis mode, and the judge gets its verdict."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from apex.cli.main import app
from apex.fusion import fuse
from apex.graph.prompts import boundary_of, read_blocks
from apex.store import EvidenceStore
from apex.store.tables import EVIDENCE
from apex.testing import TestServer, roles, workflow_toml
from apex.workflow import parse_workflow

runner = CliRunner()
CHOICE = {"m1": "The answer is (B).", "m2": "I think the answer is (B)", "m3": "The answer is (C)."}
TEXT = {"m1": "Paris is the capital.", "m2": "Paris is the capital.", "m3": "Lyon."}


async def recorded_run(server: TestServer, tmp_path: Path, mode: str) -> tuple[str, str]:
    """A run in ``mode`` recorded in a fresh store: its id and the store's URL.

    vote: choice answers B, B, C (final B). select: the judge selects one of the two "Paris"
    answers. judge: the judge writes "The capital is Paris.", which matches no candidate.
    """
    answers = CHOICE if mode == "vote" else TEXT
    for model, text in answers.items():
        server.default(model, text)
    if mode == "select":
        server.default("judge", lambda b: roles.judge(select=paris_label(b))(b))
    elif mode == "judge":
        server.default("judge", roles.judge("The capital is Paris."))
    settings = f'synthesis = "{mode}"\nmax_retries = 0' + (
        '\n[extract]\nkind = "choice"' if mode == "vote" else ""
    )
    text = workflow_toml(server.base_url, judge=None if mode == "vote" else "judge",
                         settings=settings)  # fmt: skip
    db = f"sqlite:///{tmp_path / 'fb.db'}"
    with EvidenceStore(db) as store:
        result = await fuse("Capital of France?", workflow=parse_workflow(text, "fb.toml"),
                            store=store)  # fmt: skip
    assert result.ok
    return result.run_id, db


def paris_label(body: dict[str, object]) -> str:
    """The label of the first candidate saying Paris, read from the judge's prompt."""
    messages = body["messages"]
    system, prompt = str(messages[0]["content"]), str(messages[-1]["content"])  # type: ignore[index]
    boundary = boundary_of(system)
    assert boundary is not None
    for label, text in read_blocks(prompt, "candidate", boundary):
        if label is not None and text.startswith("Paris"):
            return label
    raise AssertionError("no Paris candidate in the judge prompt")


def feedback_verdicts(db: str, run_id: str) -> dict[tuple[str, str], bool]:
    """The verdicts feedback recorded: (model, role) -> correct."""
    with EvidenceStore(db) as store, store.engine.connect() as conn:
        rows = conn.execute(
            sa.select(EVIDENCE.c.model, EVIDENCE.c.role, EVIDENCE.c.data).where(
                EVIDENCE.c.run_id == f"{run_id}/feedback"
            )
        ).all()
    return {(r.model.removeprefix("lab:"), r.role): r.data["correct"] for r in rows}


CASES = [
    # mode, feedback flags, expected verdicts per (model, role); absent = no verdict recorded
    ("vote", ["--correct"], {("m1", "panel"): True, ("m2", "panel"): True, ("m3", "panel"): False}),
    ("vote", ["--wrong"], {("m1", "panel"): False, ("m2", "panel"): False}),
    ("vote", ["--answer", "C"],
     {("m1", "panel"): False, ("m2", "panel"): False, ("m3", "panel"): True}),
    ("select", ["--correct"],
     {("m1", "panel"): True, ("m2", "panel"): True, ("judge", "judge"): True}),
    ("select", ["--wrong"],
     {("m1", "panel"): False, ("m2", "panel"): False, ("judge", "judge"): False}),
    ("select", ["--answer", "Lyon"],
     {("m1", "panel"): False, ("m2", "panel"): False, ("m3", "panel"): True,
      ("judge", "judge"): False}),
    # the judge's rewritten answer matches no candidate: no candidate gets a verdict from it
    ("judge", ["--correct"], {("judge", "judge"): True}),
    ("judge", ["--wrong"], {("judge", "judge"): False}),
    ("judge", ["--answer", "Paris"],
     {("m1", "panel"): True, ("m2", "panel"): True, ("m3", "panel"): False,
      ("judge", "judge"): True}),
    ("judge", ["--wrong", "--answer", "Lyon"],
     {("m1", "panel"): False, ("m2", "panel"): False, ("m3", "panel"): True,
      ("judge", "judge"): False}),
]  # fmt: skip


@pytest.mark.parametrize(("mode", "flags", "expected"), CASES)
async def test_feedback_means_what_it_says(
    server: TestServer, tmp_path: Path, mode: str, flags: list[str], expected: dict[str, bool]
) -> None:
    run_id, db = await recorded_run(server, tmp_path, mode)
    out = runner.invoke(app, ["feedback", run_id, *flags, "--db", db])
    assert out.exit_code == 0, out.output
    assert feedback_verdicts(db, run_id) == expected
    again = runner.invoke(app, ["feedback", run_id, *flags, "--db", db])
    assert "nothing new" in again.stdout  # the same feedback twice counts once
    with EvidenceStore(db) as store:
        judge = store.get("lab:judge", "*", role="judge")
        assert judge.gt_n == (1.0 if ("judge", "judge") in expected else 0.0)
        m1 = store.get("lab:m1", "*")
        assert m1.gt_n == pytest.approx(1.0 if ("m1", "panel") in expected else 0.0)


async def test_feedback_on_an_unknown_run_is_one_line(server: TestServer, tmp_path: Path) -> None:
    _, db = await recorded_run(server, tmp_path, "vote")
    out = runner.invoke(app, ["feedback", "no-such-run", "--correct", "--db", db])
    assert out.exit_code == 1
    assert out.stderr.count("\n") == 1 and "no run 'no-such-run'" in out.stderr
