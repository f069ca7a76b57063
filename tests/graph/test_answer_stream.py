"""The judge's answer heard as it is written: read out of its streamed verdict, never another's.

The scanner follows a verdict's JSON text as it grows and decodes ``final_answer`` so far (only
the top-level key: the same words in a reason or a nested object do not count). Through
``fuse(on_answer=...)``, what is heard grows and ends as the result's answer; select mode hears
nothing; a retry after a streamed attempt is not heard (its answer comes with the result), while
a retry after an attempt that streamed none of its answer is.
"""

from __future__ import annotations

import itertools
import json

from apex.fusion import fuse
from apex.graph.answer_stream import AnswerStream, FinalAnswerScanner
from apex.testing import InProcessServer, Reply, roles
from tests.graph.conftest import fusion_workflow

TRICKY = {
    "consensus": ['"final_answer": "not this"'],
    "scores": [{"label": "A", "score": 0.5, "reason": "final_answer"}],
    "nested": {"final_answer": "nor this"},
    "final_answer": 'Lima, "the City of Kings"\n\u00e9t\u00e9 \U0001f600 \\ done',
    "goal_met": True,
}


def grown(text: str) -> list[str]:
    """What the scanner returns as ``text`` arrives one character at a time (changes only)."""
    scanner, seen = FinalAnswerScanner(), []
    for end in range(1, len(text) + 1):
        answer = scanner.feed(text[:end])
        if answer is not None and (not seen or seen[-1] != answer):
            seen.append(answer)
    return seen


def test_only_the_top_level_answer_is_read_and_every_escape_decoded() -> None:
    for text in (json.dumps(TRICKY), json.dumps(TRICKY, ensure_ascii=False, indent=2)):
        seen = grown(text)
        assert seen[-1] == TRICKY["final_answer"]
        assert all(b.startswith(a) for a, b in itertools.pairwise(seen))  # never a half escape
        assert not any("not this" in s or "nor this" in s for s in seen)


def test_a_verdict_without_the_field_gives_nothing() -> None:
    assert grown(json.dumps({"selected": "A", "consensus": ["final_answer"]})) == []


def test_the_first_attempt_that_writes_owns_the_stream() -> None:
    heard: list[str] = []
    stream = AnswerStream(heard.append)
    silent, first, second = stream.attempt(), stream.attempt(), stream.attempt()
    silent('{"consensus": [')  # cut before its answer began: owns nothing
    first('{"final_answer": "Lima')
    second('{"final_answer": "Cusco')
    first('{"final_answer": "Lima, Peru"}')
    assert heard == ["Lima", "Lima, Peru"]


async def test_fuse_hears_the_judge_write_its_answer(inproc: InProcessServer) -> None:
    answer = "Lima is the capital of Peru; it lies on the Pacific coast."
    for model in ("alpha-one", "beta-two", "gamma-three"):
        inproc.default(model, Reply(f"{model}: Lima"))
    inproc.default("judge-model", lambda body: Reply(roles.judge(answer)(body), token_delay=0.001))
    heard: list[str] = []
    result = await fuse("Capital of Peru?", workflow=fusion_workflow(inproc.base_url),
                        on_answer=heard.append)  # fmt: skip
    assert result.synthesis_path == "judge" and result.answer == answer
    assert len(heard) > 3 and heard[-1] == answer
    assert all(b.startswith(a) for a, b in itertools.pairwise(heard))


async def test_select_mode_and_a_retry_after_streaming_are_not_heard(
    inproc: InProcessServer,
) -> None:
    for model in ("alpha-one", "beta-two", "gamma-three"):
        inproc.default(model, Reply(f"{model}: Lima"))
    inproc.default("judge-model", roles.judge(select="A"))
    heard: list[str] = []
    wf = fusion_workflow(inproc.base_url, extra='synthesis = "select"')
    result = await fuse("Capital of Peru?", workflow=wf, on_answer=heard.append)
    assert result.synthesis_path == "select" and heard == []

    cut = '{"consensus": [], "scores": [], "final_answer": "Cusco, no wait'  # truncated JSON
    inproc.script("judge-model", Reply(cut, finish_reason="length"), roles.judge("Lima."))
    result = await fuse("Capital of Peru?", workflow=fusion_workflow(inproc.base_url),
                        on_answer=heard.append)  # fmt: skip
    assert result.synthesis_path == "judge_retry" and result.answer == "Lima."
    assert heard and all(h.startswith("Cusco") for h in heard)  # the retry was not heard
