"""Start-up: ``apex --version``, ``--help`` and a command's ``--help`` import none of the stack
behind the commands (the graph, the store, the client), so they start in a fraction of a second;
the constants the CLI keeps to stay light are the stack's own."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("langgraph", "sqlalchemy", "httpx", "apex.fusion", "apex.store", "apex.goals.loop")
"""Module name prefixes that no start-up may import (``apex.goals.heartbeat`` is a constant)."""
PROBE = """
import json, sys
from apex.cli.main import main
sys.argv = ["apex", *json.loads(sys.argv[1])]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in sys.modules if m.startswith(HEAVY))), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        ["fuse", "--help"],
        ["goal", "start", "--help"],
        ["status", "--help"],
        ["worker", "--help"],
        ["schedule", "add", "--help"],
    ],
)
def test_help_and_version_import_nothing_heavy(args: list[str]) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            f"HEAVY = {HEAVY!r}\n{PROBE}",
            json.dumps(args),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.strip(), out.stderr
    assert json.loads(out.stderr.strip().splitlines()[-1]) == []


def test_the_cli_constants_are_the_stacks_own() -> None:
    from apex.cli import evidence_cmd, fuse_cmd, goal_cmd
    from apex.evidence import GLOBAL_CATEGORY
    from apex.goals.types import TERMINAL_STATES
    from apex.workflow import DEFAULT_WORKFLOW, MAX_OPTIONS

    assert evidence_cmd.GLOBAL_CATEGORY == GLOBAL_CATEGORY
    assert goal_cmd.TERMINAL_STATES == TERMINAL_STATES
    assert goal_cmd.DEFAULT_WORKFLOW == DEFAULT_WORKFLOW
    assert fuse_cmd.MAX_OPTIONS == MAX_OPTIONS
