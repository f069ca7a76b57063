"""Turning recorded evidence into weights: the cycle's events, the policy, panel selection, replay.

See :mod:`apex.evidence.policy` for the policy in plain words and :mod:`apex.evidence.events`
for the one function every path records evidence through.
"""

from apex.evidence.events import (
    CallOutcome,
    CycleRecord,
    Finding,
    PanelVote,
    Truth,
    cycle_events,
)
from apex.evidence.panel import read_selection, select_panel, store_weights
from apex.evidence.policy import (
    DEFAULT_AGREEMENT_GAIN,
    DEFAULT_AGREEMENT_THRESHOLD,
    DEFAULT_GT_HANDOVER_EVENTS,
    DEFAULT_JUDGE_GAIN,
    DEFAULT_MAX_WEIGHT,
    DEFAULT_MIN_WEIGHT,
    DEFAULT_POLICY,
    DEFAULT_PRIOR_WEIGHT,
    DEFAULT_SHRINKAGE_EVENTS,
    WeightPolicy,
    model_weight,
    panel_weights,
    weights_of,
)
from apex.evidence.replay import (
    AnswerTable,
    CurvePoint,
    ModelStats,
    ReplayReport,
    load_answers,
    run_replay,
)
from apex.store.aggregate import GLOBAL_CATEGORY, EvidenceEvent, ModelAggregate

__all__ = [
    "DEFAULT_AGREEMENT_GAIN",
    "DEFAULT_AGREEMENT_THRESHOLD",
    "DEFAULT_GT_HANDOVER_EVENTS",
    "DEFAULT_JUDGE_GAIN",
    "DEFAULT_MAX_WEIGHT",
    "DEFAULT_MIN_WEIGHT",
    "DEFAULT_POLICY",
    "DEFAULT_PRIOR_WEIGHT",
    "DEFAULT_SHRINKAGE_EVENTS",
    "GLOBAL_CATEGORY",
    "AnswerTable",
    "CallOutcome",
    "CurvePoint",
    "CycleRecord",
    "EvidenceEvent",
    "Finding",
    "ModelAggregate",
    "ModelStats",
    "PanelVote",
    "ReplayReport",
    "Truth",
    "WeightPolicy",
    "cycle_events",
    "load_answers",
    "model_weight",
    "panel_weights",
    "read_selection",
    "run_replay",
    "select_panel",
    "store_weights",
    "weights_of",
]
