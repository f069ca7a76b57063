"""Helpers for fusion tests: a workflow builder over the test server."""

from __future__ import annotations

from apex.testing import workflow_toml
from apex.workflow import Workflow, parse_workflow

PROVIDER = "zzprov"  # a provider name that cannot appear by accident in prompt text


def fusion_workflow(
    base_url: str,
    panel: tuple[str, ...] = ("alpha-one", "beta-two", "gamma-three"),
    *,
    critics: tuple[str, ...] = (),
    judge: str | None = "judge-model",
    fallback: str | None = None,
    extra: str = "",
) -> Workflow:
    """A workflow on the test server with the given panel, critics and judge."""
    text = workflow_toml(
        base_url,
        panel,
        critics=critics,
        judge=judge,
        fallback=fallback,
        provider=PROVIDER,
        name="t",
        settings=f"max_retries = 0\ntimeout_s = 5\n{extra}",
    )
    return parse_workflow(text, "t.toml")
