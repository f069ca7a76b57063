"""Fault injection: named points where a test can have the process SIGKILL itself.

Set ``APEX_KILL_AT=<point>`` (e.g. ``evidence_write``) in a child process's environment; when
execution reaches that point the process sends itself SIGKILL — no cleanup, no flush, exactly
like a crash. Unset, every point is a no-op costing one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

KILL_AT_ENV = "APEX_KILL_AT"
POINTS = ("before_panel", "after_judge", "evidence_write", "after_compaction")
"""The named points (mid-panel kills are made from outside, by timing); ``after_compaction``
is reached from cycle 2 on, once the finished cycles' checkpoints are gone."""


def fault_point(name: str) -> None:
    """SIGKILL this process if ``APEX_KILL_AT`` names this point."""
    if os.environ.get(KILL_AT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
