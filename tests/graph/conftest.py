"""Helpers for fusion tests: a workflow builder over the test server."""

from __future__ import annotations

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
    lines = [
        'name = "t"',
        "max_retries = 0",
        "timeout_s = 5",
        extra,
        f'[providers.{PROVIDER}]\nbase_url = "{base_url}"',
    ]
    lines += [f'[[panel]]\nmodel = "{PROVIDER}:{m}"' for m in panel]
    lines += [f'[[critics]]\nmodel = "{PROVIDER}:{c}"' for c in critics]
    if judge:
        lines.append(f'[judge]\nmodel = "{PROVIDER}:{judge}"')
        if fallback:
            lines.append(f'fallback = "{PROVIDER}:{fallback}"')
    return parse_workflow("\n".join(lines), "t.toml")
