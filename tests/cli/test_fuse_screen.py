"""What ``apex fuse`` tells a user: per-item ``correct`` in a batch, a request error of the
caller's making that benches nobody, failure reasons and skipped members on the normal screen,
the label ``select`` picked, cut-off answers, no filler where the analysis says nothing, and the
judge's answer on the live screen as it is written."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from apex.cli.fuse_show import LiveProgress, meaningful
from apex.cli.main import app
from apex.store import EvidenceStore
from apex.testing import Fail, InProcessServer, Reply, roles, workflow_toml
from apex.workflow import load_workflow

runner = CliRunner()
PANEL = ("m1", "m2", "m3")


def lab(tmp_path: Path, base_url: str, extra: str = "", settings: str = "") -> str:
    path = tmp_path / "lab.toml"
    text = workflow_toml(base_url, PANEL, settings=f"max_retries = 0\n{settings}") + extra
    path.write_text(text)
    return str(path)


def test_batch_lines_say_whether_each_item_was_right(
    inproc: InProcessServer, tmp_path: Path
) -> None:
    for model in PANEL:
        inproc.default(model, Reply("The capital of France is Paris."))
    inproc.default("judge", roles.judge("The capital of France is Paris."))
    batch = tmp_path / "items.jsonl"
    items = [
        {"id": "right", "prompt": "Capital of France?", "expected": "Paris"},
        {"id": "wrong", "prompt": "Capital of Peru?", "expected": "Lima"},
        {"id": "open", "prompt": "Say something."},
    ]
    batch.write_text("".join(json.dumps(i) + "\n" for i in items))
    out = runner.invoke(app, ["fuse", "--batch", str(batch), "-w", lab(tmp_path, inproc.base_url)])
    assert out.exit_code == 0, out.output
    lines = {line["id"]: line for line in map(json.loads, out.stdout.splitlines())}
    assert {k: v["correct"] for k, v in lines.items()} == {
        "right": True,
        "wrong": False,
        "open": None,
    }


def test_a_request_too_long_for_the_context_benches_nobody(
    inproc: InProcessServer, tmp_path: Path
) -> None:
    settings = "cooldown_failures = 1\ncooldown_s = 300"
    path = lab(tmp_path, inproc.base_url, settings=settings)
    db = f"sqlite:///{tmp_path / 'ctx.db'}"
    for model in PANEL:
        inproc.script(model, Fail(400))  # "maximum context length exceeded", once
        inproc.default(model, Reply("Paris"))
    inproc.default("judge", roles.judge("Paris"))
    first = runner.invoke(app, ["fuse", "x" * 2000, "-w", path, "--db", db])
    assert first.exit_code == 1
    assert "bad_request: HTTP 400" in first.stdout  # the reason, on the normal screen
    second = runner.invoke(app, ["fuse", "Capital of France?", "-w", path, "--db", db, "--json"])
    assert [c["ok"] for c in json.loads(second.stdout)["candidates"]] == [True, True, True]
    with EvidenceStore(db) as store:
        assert store.get("lab:m1", "general").failures_total == 0


def test_skipped_members_and_failure_reasons_are_on_screen(
    inproc: InProcessServer, tmp_path: Path
) -> None:
    path = lab(tmp_path, inproc.base_url, settings="cooldown_failures = 1\ncooldown_s = 300")
    db = f"sqlite:///{tmp_path / 'skip.db'}"
    inproc.default("m1", Reply("Paris"))
    inproc.default("m2", Reply("Paris"))
    inproc.script("m3", Fail(503))
    inproc.default("m3", Reply("Paris"))
    inproc.default("judge", roles.judge("Paris"))
    first = runner.invoke(app, ["fuse", "q", "-w", path, "--db", db])
    assert "failed: panel member 3 lab:m3: http_error: HTTP 503" in first.stdout
    second = runner.invoke(app, ["fuse", "q", "-w", path, "--db", db])
    assert second.exit_code == 0, second.output
    assert "skipped: member 3 lab:m3:" in second.stdout


def test_select_names_its_label_and_a_cut_answer_is_marked(
    inproc: InProcessServer, tmp_path: Path
) -> None:
    for model in PANEL:
        inproc.default(model, Reply(f"{model} thinks it is Par", finish_reason="length"))
    inproc.default("judge", roles.judge(select="B"))
    path = lab(tmp_path, inproc.base_url).replace("lab.toml", "lab.toml")
    text = Path(path).read_text().replace('synthesis = "judge"', 'synthesis = "select"')
    Path(path).write_text(text if "synthesis" in text else 'synthesis = "select"\n' + text)
    out = runner.invoke(app, ["fuse", "q", "-w", path, "--no-record"])
    assert out.exit_code == 0, out.output
    assert "select · picked B · cut off at max_tokens" in out.stdout
    assert "ok, cut off" in out.stdout


def test_empty_or_degenerate_analysis_sections_are_left_out(
    inproc: InProcessServer, tmp_path: Path
) -> None:
    for model in PANEL:
        inproc.default(model, Reply("Paris"))
    inproc.default("judge", roles.judge("Paris"))
    out = runner.invoke(app, ["fuse", "q", "-w", lab(tmp_path, inproc.base_url), "--no-record"])
    assert "consensus" in out.stdout and "(none)" not in out.stdout
    for heading in ("contradictions", "partial coverage", "unique insights", "blind spots"):
        assert heading not in out.stdout  # [] and ["none noticed"] say nothing
    filler = ["A, B, C", "1.0, 2.0, 3.0", "(none)", "", "None noticed", "No contradictions."]
    assert not any(map(meaningful, filler))
    assert meaningful("B cites the 1911 census") and meaningful("only A mentions Rayleigh")


def test_the_live_screen_shows_the_judge_writing(inproc: InProcessServer, tmp_path: Path) -> None:
    progress = LiveProgress(load_workflow(lab(tmp_path, inproc.base_url)))
    progress.write("Lima is the capital")
    screen = Console(record=True, width=80)
    screen.print(progress.view())
    shown = screen.export_text()
    assert "the judge is writing" in shown and "Lima is the capital" in shown
    assert "judge writing" in shown  # the table's stage

    answer = "Lima is the capital of Peru, on the Pacific coast."
    for model in PANEL:
        inproc.default(model, Reply("Lima"))
    inproc.default("judge", lambda body: Reply(roles.judge(answer)(body), token_delay=0.001))
    result = runner.invoke(app, ["fuse", "Capital of Peru?", "-w", lab(tmp_path, inproc.base_url)])
    assert result.exit_code == 0, result.output
    assert answer in result.output
    assert inproc.requests_for("judge")[0].body.get("stream") is True  # asked to stream
