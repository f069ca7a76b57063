"""What a trace records of a cycle: the attributes of the fusion and goal-cycle spans.

The span machinery is :mod:`apex.telemetry` (floor 9); this module reads the cycle's own types
(a workflow, a :class:`~apex.graph.types.FusionResult`) into span attributes for ``apex.fuse``
and the goal loop, which open and close the spans.
"""

from __future__ import annotations

from apex.graph.types import FusionResult
from apex.telemetry.genai import AGENT_NAME, APEX_COST, OPERATION, AttributeValue
from apex.workflow import Workflow

FUSION_SPAN = "fusion"
"""Scope key of the fusion cycle's span."""
GOAL_CYCLE_SPAN = "goal_cycle"
"""Scope key (and name) of a goal cycle's span."""


def fusion_name(workflow: Workflow) -> str:
    """The fusion span's name: ``fusion {workflow}``."""
    return f"fusion {workflow.name}"


def fusion_start(workflow: Workflow, category: str) -> dict[str, AttributeValue | None]:
    """What the fusion span knows when the cycle starts."""
    return {
        OPERATION: "invoke_agent",
        AGENT_NAME: "apex.fusion",
        "apex.workflow": workflow.name,
        "apex.category": category,
        "apex.synthesis": workflow.synthesis,
        "apex.panel": [m.model for m in workflow.panel],
        "apex.judge": workflow.judge.model if workflow.judge is not None else None,
    }


def fusion_end(result: FusionResult) -> dict[str, AttributeValue | None]:
    """What the fusion span learns when the cycle ends (``error.type`` when no answer)."""
    return {
        "apex.synthesis_path": result.synthesis_path,
        "apex.panel.failed": sum(not c.ok for c in result.candidates),
        "apex.calls": len(result.calls),
        "apex.judge_model": result.judge_model,
        APEX_COST: result.cost_usd,
        "apex.latency_s": result.latency_s,
    }


def fusion_error(result: FusionResult) -> str | None:
    """The fusion span's ``error.type``: the failed path, or None for an answer."""
    return None if result.ok else result.synthesis_path


def goal_cycle_start(number: int) -> dict[str, AttributeValue | None]:
    """What a goal cycle's span knows when it starts."""
    return {OPERATION: "invoke_agent", AGENT_NAME: "apex.goal", "apex.goal.cycle": number}
