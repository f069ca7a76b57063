"""The exit statuses scripts can rely on, in one place (docs/cli.md has the table).

Every command ends with one of these. A goal's command (``goal start``, ``goal resume``) exits
with the status of the state the goal ended in; ``fuse`` and ``ask`` with ``EXIT_FAILED`` when no
answer came, ``EXIT_UNREACHABLE`` when that was because no provider could be reached.
"""

from __future__ import annotations

from collections.abc import Sequence

EXIT_OK = 0
"""Done: the answer was printed, the goal is complete."""
EXIT_FAILED = 1
"""The work failed (no answer, a goal ``failed``), or an error that is not bad input."""
EXIT_BAD_INPUT = 2
"""Bad input: an option, argument, workflow file, batch file or key is wrong or missing."""
EXIT_NOT_RECORDED = 3
"""The answer was printed but the run could not be recorded (it was spooled)."""
EXIT_BUDGET_LIMITED = 4
"""The goal stopped at a limit: budget, tokens, cycles or deadline."""
EXIT_BLOCKED = 5
"""The goal is blocked: the judge reported the same blocker cycle after cycle."""
EXIT_CANCELLED = 6
"""The goal was cancelled."""
EXIT_INTERRUPTED = 7
"""The goal stopped on an error that can pass (an outage, the store); ``goal resume`` goes on."""
EXIT_PAUSED = 8
"""The goal was paused (``goal resume`` goes on)."""
EXIT_UNREACHABLE = 9
"""No provider could be reached (every failed call was a connection failure)."""
EXIT_SIGINT = 130
"""Interrupted by Ctrl-C (SIGINT), as shells report it."""

GOAL_EXITS: dict[str, int] = {
    "complete": EXIT_OK,
    "failed": EXIT_FAILED,
    "budget_limited": EXIT_BUDGET_LIMITED,
    "blocked": EXIT_BLOCKED,
    "cancelled": EXIT_CANCELLED,
    "interrupted": EXIT_INTERRUPTED,
    "paused": EXIT_PAUSED,
    "active": EXIT_INTERRUPTED,
    "queued": EXIT_OK,
}
"""The exit status of a goal command by the state the goal is left in."""


def goal_exit(state: str) -> int:
    """The exit status for a goal left in ``state``."""
    return GOAL_EXITS.get(state, EXIT_FAILED)


def failure_exit(kinds: Sequence[str]) -> int:
    """The exit status of a command whose calls all failed with these failure kinds."""
    return EXIT_UNREACHABLE if kinds and all(k == "connection" for k in kinds) else EXIT_FAILED
