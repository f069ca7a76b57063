"""Workflow files for the test server: one panel, optional critics and judge, one provider."""

from __future__ import annotations

from collections.abc import Sequence


def workflow_toml(
    base_url: str,
    panel: Sequence[str] = ("m1", "m2", "m3"),
    *,
    critics: Sequence[str] = (),
    judge: str | None = "judge",
    fallback: str | None = None,
    provider: str = "lab",
    name: str = "lab",
    settings: str = "max_retries = 0",
) -> str:
    """The TOML text of a workflow whose models all live on the server at ``base_url``.

    ``settings`` holds extra top-level keys (``synthesis = "vote"``, ``quorum = 2``...); tables
    such as ``[extract]`` may follow them since they are written before the provider table.
    """
    lines = [f'name = "{name}"', settings]
    lines += [f'[providers.{provider}]\nbase_url = "{base_url}"']
    lines += [f'[[panel]]\nmodel = "{provider}:{m}"' for m in panel]
    lines += [f'[[critics]]\nmodel = "{provider}:{c}"' for c in critics]
    if judge:
        lines.append(f'[judge]\nmodel = "{provider}:{judge}"')
        if fallback:
            lines.append(f'fallback = "{provider}:{fallback}"')
    return "\n".join(lines) + "\n"
