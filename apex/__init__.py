"""APEX: persistent, goal-directed multi-model workflows.

A panel of generator models answers in parallel, critics review, and a judge kept structurally
separate from the generators synthesizes the final answer; evidence about every model's failures
is kept so later syntheses weight each model by its record.
"""

from importlib.metadata import PackageNotFoundError, version

import structlog

from apex.errors import ApexError
from apex.fusion import FusionEvent, fuse, fuse_sync
from apex.goals import Goal, GoalStatus, Limits, VerifierSpec, resume
from apex.graph.types import FusionResult
from apex.logging import configure_logging
from apex.models import ChatRequest, ChatResult, ModelClient
from apex.workers import Schedule
from apex.workflow import Workflow, load_workflow

try:
    __version__ = version("apex-fusion")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0"

if not structlog.is_configured():
    configure_logging()

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
