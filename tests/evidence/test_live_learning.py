"""Evidence from live fusion changes the next fusion: a panel member that is always wrong.

The models are in-process (the CLI runs in this process too, so it reaches them as well).
"""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from apex.cli.main import app
from apex.evidence import panel_weights
from apex.fusion import fuse
from apex.store import EvidenceStore
from apex.testing import Fail, InProcessServer, Reply, ScriptedModels, roles
from apex.workflow import parse_workflow

runner = CliRunner()
GOOD, OTHER, BAD = "good-model", "other-model", "bad-model"


def workflow_text(base_url: str, synthesis: str = "vote") -> str:
    judge = '[judge]\nmodel = "lab:judge"\n' if synthesis == "judge" else ""
    return (
        f'name = "learn"\nsynthesis = "{synthesis}"\ncategory = "quiz"\nmax_retries = 0\n'
        f'[providers.lab]\nbase_url = "{base_url}"\n'
        f'[[panel]]\nmodel = "lab:{GOOD}"\n[[panel]]\nmodel = "lab:{OTHER}"\n'
        f'[[panel]]\nmodel = "lab:{BAD}"\n{judge}[extract]\nkind = "choice"\n'
    )


def right_letter(body: dict[str, object]) -> str:
    prompt = str(body["messages"][-1]["content"])  # type: ignore[index]
    return prompt.rsplit(" ", 1)[-1]  # the question ends with its right letter


def script(server: ScriptedModels) -> None:
    server.default(GOOD, lambda b: Reply(f"The answer is ({right_letter(b)})"))
    server.default(OTHER, lambda b: Reply(f"The answer is ({right_letter(b)})"))
    server.default(BAD, lambda b: Reply("The answer is (J)" if right_letter(b) != "J" else "(A)"))


def test_batch_with_expected_changes_the_next_fusion(
    inproc: InProcessServer, tmp_path: Path
) -> None:
    script(inproc)
    wf_path = tmp_path / "learn.toml"
    wf_path.write_text(workflow_text(inproc.base_url))
    db = f"sqlite:///{tmp_path / 'apex.db'}"
    letters = "ABCDEFGH"
    batch = tmp_path / "quiz.jsonl"
    batch.write_text(
        "\n".join(
            json.dumps(
                {
                    "id": str(i),
                    "prompt": f"Question {i}? {letters[i % 8]}",
                    "expected": letters[i % 8],
                }
            )
            for i in range(24)
        )
    )
    out = runner.invoke(app, ["fuse", "--batch", str(batch), "-w", str(wf_path), "--db", db])
    assert out.exit_code == 0, out.output

    with EvidenceStore(db) as store:
        models = [f"lab:{m}" for m in (GOOD, OTHER, BAD)]
        weights = panel_weights(store, models, "quiz")
        bad_record = store.get(f"lab:{BAD}", "quiz")
    assert bad_record.gt_n > 0 and bad_record.gt_correct == 0
    assert weights[f"lab:{BAD}"] < weights[f"lab:{GOOD}"]

    # Next fusion: OTHER is down, so GOOD and BAD split 1-1. Without evidence that is a coin
    # toss over shuffled labels; with it, GOOD's record decides, every time.
    inproc.default(OTHER, Fail(500))
    answers = set()
    for _ in range(6):
        result = runner.invoke(
            app, ["fuse", "Final question? C", "-w", str(wf_path), "--db", db, "--json"]
        )
        data = json.loads(result.stdout)
        answers.add(data["answer"])
        by_model = {c["model"]: c["label"] for c in data["candidates"]}
        weights_now = data["label_weights"]
        assert weights_now[by_model[f"lab:{BAD}"]] < weights_now[by_model[f"lab:{GOOD}"]]
    assert answers == {"C"}


async def test_judge_gets_anonymous_reliability_hints(
    inproc: InProcessServer, tmp_path: Path
) -> None:
    script(inproc)
    inproc.default("judge", roles.judge("x"))
    wf = parse_workflow(workflow_text(inproc.base_url, "judge"), "learn.toml")
    with EvidenceStore(f"sqlite:///{tmp_path / 'apex.db'}") as store:
        for i in range(12):
            letter = "ABCDEFGH"[i % 8]
            await fuse(f"Q{i}? {letter}", workflow=wf, store=store, expected=letter)
        result = await fuse("Last? B", workflow=wf, store=store)
    body = inproc.requests_for("judge")[-1].body
    user = body["messages"][-1]["content"]
    hints = json.loads(user.split("Reliability hints from past evidence:\n", 1)[1].split("\n")[0])
    bad_label = next(c.label for c in result.candidates if c.model == f"lab:{BAD}")
    good_label = next(c.label for c in result.candidates if c.model == f"lab:{GOOD}")
    assert hints[bad_label]["reliability"] < hints[good_label]["reliability"]
    assert BAD.encode() not in inproc.requests_for("judge")[-1].raw


async def test_failing_member_sits_out_a_cool_down(inproc: InProcessServer, tmp_path: Path) -> None:
    script(inproc)
    inproc.default(BAD, Fail(503))
    text = workflow_text(inproc.base_url).replace(
        "max_retries = 0", "max_retries = 0\ncooldown_s = 600"
    )
    wf = parse_workflow(text, "learn.toml")
    with EvidenceStore(f"sqlite:///{tmp_path / 'apex.db'}") as store:
        for i in range(3):
            await fuse(f"Q{i}? A", workflow=wf, store=store)
        assert len(inproc.requests_for(BAD)) == 3
        skipped = await fuse("Q4? A", workflow=wf, store=store)
        assert len(inproc.requests_for(BAD)) == 3  # not called during the cool-down
        bad = next(c for c in skipped.candidates if c.model == f"lab:{BAD}")
        assert bad.error is not None and bad.error.startswith("skipped: cool-down")
        later = wf.model_copy(update={"cooldown_s": 0.0})  # the cool-down is over
        await fuse("Q5? A", workflow=later, store=store)
        assert len(inproc.requests_for(BAD)) == 4
