"""Goal loops: fusion cycles toward an objective until met, blocked or out of budget.

The public names load their module on first use, so importing a light part (``apex.goals.types``)
does not import the loop and LangGraph with it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from apex.lazy import lazy_names

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


__getattr__ = lazy_names(__name__, _LAZY, globals())

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
