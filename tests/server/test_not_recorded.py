"""A finished cycle whose run the store cannot record is still answered: the caller gets the
paid-for answer with ``recorded: false``, the run waits in the spool, and the server's next
successful write records it."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai

from tests.server.conftest import Lab, Serve
from tests.server.test_chat import QUESTION, apex_of


@contextmanager
def runs_refused(server: Serve, marker: str) -> Iterator[None]:
    """The server's database refuses to record a run whose prompt contains ``marker`` (a real
    write failure in SQLite, raised from inside the store's transaction)."""
    path = server.db.removeprefix("sqlite:///")
    trigger = f"refuse_{marker}"
    with sqlite3.connect(path) as conn:
        conn.execute(
            f"CREATE TRIGGER {trigger} BEFORE INSERT ON runs "
            f"WHEN NEW.prompt LIKE '%{marker}%' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )
    try:
        yield
    finally:
        with sqlite3.connect(path) as conn:
            conn.execute(f"DROP TRIGGER {trigger}")


def test_a_run_the_store_cannot_record_is_still_answered(
    sdk: openai.OpenAI, own: Lab, main_server: Serve
) -> None:
    model = own.workflow(answer="Lima")
    asked = [{"role": "user", "content": f"{QUESTION[0]['content']} ({own.tag})"}]
    with runs_refused(main_server, own.tag):
        completion = sdk.chat.completions.create(model=model, messages=asked)
        streamed = list(sdk.chat.completions.create(model=model, messages=asked, stream=True))
    assert completion.choices[0].message.content == "Lima"
    extra = apex_of(completion)
    run_id = extra["run_id"]
    assert extra["recorded"] is False and extra["synthesis_path"] == "judge"
    assert run_id in extra["not_recorded"] and "apex db recover" in extra["not_recorded"]
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "Lima"
    finish = next(c for c in streamed if c.choices and c.choices[0].finish_reason)
    assert apex_of(finish)["recorded"] is False
    spool = Path(main_server.home) / "apex-home" / "spool"
    assert {run_id, apex_of(finish)["run_id"]} <= {p.stem for p in spool.glob("*.json")}
    assert httpx.get(f"{main_server.url}/runs/{run_id}").status_code == 404
    assert len(own.requests("judge")) == 2  # each answer paid for once, and kept

    after = sdk.chat.completions.create(model=model, messages=QUESTION)
    assert apex_of(after)["recorded"] is True and "not_recorded" not in apex_of(after)
    recovered = httpx.get(f"{main_server.url}/runs/{run_id}")  # the next write took the spool
    assert recovered.status_code == 200 and recovered.json()["answer"] == "Lima"
    assert run_id not in {p.stem for p in spool.glob("*.json")}
