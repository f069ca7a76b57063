"""Goal loops: fusion cycles toward an objective until met, blocked or out of budget.

The public names load their module on first use, so importing a light part (``apex.goals.types``)
does not import the loop and LangGraph with it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apex.goals.loop import GoalEvent
    from apex.goals.runner import Goal, resume
    from apex.goals.types import CycleSummary, GoalSpec, GoalStatus, Limits
    from apex.goals.verify import Verdict, VerifierSpec

_LAZY = {
    "GoalEvent": "apex.goals.loop",
    "Goal": "apex.goals.runner",
    "resume": "apex.goals.runner",
    "CycleSummary": "apex.goals.types",
    "GoalSpec": "apex.goals.types",
    "GoalStatus": "apex.goals.types",
    "Limits": "apex.goals.types",
    "Verdict": "apex.goals.verify",
    "VerifierSpec": "apex.goals.verify",
}


def __getattr__(name: str) -> Any:
    """A public name, imported from its module on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'apex.goals' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "CycleSummary",
    "Goal",
    "GoalEvent",
    "GoalSpec",
    "GoalStatus",
    "Limits",
    "Verdict",
    "VerifierSpec",
    "resume",
]
