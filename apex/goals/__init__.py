"""Goal loops: fusion cycles toward an objective until met, blocked or out of budget."""

from apex.goals.loop import GoalEvent
from apex.goals.runner import Goal, resume
from apex.goals.types import CycleSummary, GoalSpec, GoalStatus, Limits
from apex.goals.verify import Verdict, VerifierSpec

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
