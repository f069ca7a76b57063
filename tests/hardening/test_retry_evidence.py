"""Retried 429 and 5xx responses leave weak failure evidence: a count, not a failure.

A model that needs three tries keeps no clean record any more: its retries are counted on the
call's own evidence event and in its aggregate, yet they move no weight and neither advance nor
reset the streak of failed calls that benches a member.
"""

from __future__ import annotations

from pathlib import Path

from apex.evidence import panel_weights
from apex.fusion import fuse
from apex.models import ModelClient, RetryPolicy
from apex.store import EvidenceStore, ModelAggregate
from apex.testing import Fail, InProcessServer, Reply, workflow_toml
from apex.workflow import parse_workflow

PANEL = ("m1", "m2", "m3")
RETRY_FIELDS = {"retries", "retries_total"}


async def run_cycles(server: InProcessServer, url: str, cycles: int = 3) -> None:
    """Vote cycles with ground truth over the scripted panel (m1, m2 right, m3 wrong)."""
    settings = 'synthesis = "vote"\nmax_retries = 2\n[extract]\nkind = "choice"'
    wf = parse_workflow(workflow_toml(server.base_url, PANEL, judge=None, settings=settings), "r")
    for model, letter in zip(PANEL, "AAB", strict=True):
        server.default(model, Reply(f"The answer is ({letter})."))
    retry = RetryPolicy(max_retries=2, backoff_s=0.001)
    with EvidenceStore(url) as store:
        async with ModelClient(wf.client_settings, retry=retry) as client:
            for i in range(cycles):
                await fuse("Which?", workflow=wf, client=client, store=store, seed=i,
                           run_id=f"r{i}", expected="A", category="quiz")  # fmt: skip


def without_retries(agg: ModelAggregate) -> dict[str, object]:
    return agg.model_dump(exclude=RETRY_FIELDS)


async def test_retries_that_recover_count_but_move_nothing(
    inproc: InProcessServer, tmp_path: Path
) -> None:
    flaky, clean = f"sqlite:///{tmp_path / 'flaky.db'}", f"sqlite:///{tmp_path / 'clean.db'}"
    inproc.script("m1", Fail(429, retry_after=0), Fail(503), Reply("The answer is (A)."))
    await run_cycles(inproc, flaky)
    with InProcessServer() as other:
        await run_cycles(other, clean)
    panel = [f"lab:{m}" for m in PANEL]
    with EvidenceStore(flaky) as f_store, EvidenceStore(clean) as c_store:
        m1, m1_clean = f_store.get("lab:m1", "quiz"), c_store.get("lab:m1", "quiz")
        assert (m1.retries_total, m1.failures_total, m1.consecutive_failures) == (2, 0, 0)
        assert m1.retries > 1.99 and m1_clean.retries_total == 0
        assert without_retries(m1) == without_retries(m1_clean)  # nothing else moved
        assert f_store.get("lab:m2", "quiz").retries_total == 0
        assert panel_weights(f_store, panel, "quiz") == panel_weights(c_store, panel, "quiz")
        run = f_store.run("r0")
        assert run is not None
        assert {c.model: c.attempts for c in run.calls}["lab:m1"] == 3


async def test_a_call_that_fails_after_retries_is_one_failure(
    inproc: InProcessServer, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'failing.db'}"
    inproc.script("m3", Fail(503), Fail(502), Fail(500))
    await run_cycles(inproc, url, cycles=1)
    with EvidenceStore(url) as store:
        m3 = store.get("lab:m3", "quiz")
    # one failed call after two retries: a failure, a streak of one (not three), two retries
    assert (m3.failures_total, m3.consecutive_failures, m3.retries_total) == (1, 1, 2)
    assert m3.last_failure_kind == "http_error" and m3.answers == 0
