"""APEX: persistent, goal-directed multi-model workflows.

A panel of generator models answers in parallel, critics review, and a judge kept structurally
separate from the generators synthesizes the final answer; evidence about every model's failures
is kept so later syntheses weight each model by its record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from apex.errors import ApexError
from apex.lazy import lazy_names

if TYPE_CHECKING:
    __version__: str
    from apex.fusion import FusionEvent, fuse, fuse_sync
    from apex.goals import Goal, GoalStatus, Limits, VerifierSpec, resume
    from apex.graph.types import FusionResult
    from apex.models import ChatRequest, ChatResult, ModelClient
    from apex.workers import Schedule
    from apex.workflow import Workflow, load_workflow


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("apex-fusion")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "0.0.0"


# Imported on first use, so that `apex --version` and every command start without the whole
# stack (the graph, the store, the client): the names are the same, only the moment differs.
_LAZY: dict[str, str] = {
    "FusionEvent": "apex.fusion",
    "fuse": "apex.fusion",
    "fuse_sync": "apex.fusion",
    "Goal": "apex.goals",
    "GoalStatus": "apex.goals",
    "Limits": "apex.goals",
    "VerifierSpec": "apex.goals",
    "resume": "apex.goals",
    "FusionResult": "apex.graph.types",
    "ChatRequest": "apex.models",
    "ChatResult": "apex.models",
    "ModelClient": "apex.models",
    "Schedule": "apex.workers",
    "Workflow": "apex.workflow",
    "load_workflow": "apex.workflow",
}


_lazy = lazy_names(__name__, _LAZY, globals())


def __getattr__(name: str) -> Any:
    """The public names above, imported from their module on first use (logging is configured
    by :mod:`apex.logging` when the first module that logs is imported)."""
    if name == "__version__":
        globals()[name] = value = _version()
        return value
    return _lazy(name)


__all__ = [
    "ApexError",
    "ChatRequest",
    "ChatResult",
    "FusionEvent",
    "FusionResult",
    "Goal",
    "GoalStatus",
    "Limits",
    "ModelClient",
    "Schedule",
    "VerifierSpec",
    "Workflow",
    "__version__",
    "fuse",
    "fuse_sync",
    "load_workflow",
    "resume",
]
