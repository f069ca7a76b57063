"""The rows one recorded run writes: the store's own types, built by the layer above.

The store knows nothing of the fusion cycle's types; whoever records a run (``apex.recording``)
turns its result into these rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from apex.store.tables import CallRow, CandidateRow, CritiqueRow, RunRow


@dataclass
class RunRows:
    """Every row one run writes: the run, its calls, its candidates, its critics' findings."""

    run: RunRow
    """The ``runs`` row."""
    calls: list[CallRow] = field(default_factory=list)
    """The ``calls`` rows, in call order."""
    candidates: list[CandidateRow] = field(default_factory=list)
    """The ``candidates`` rows, in panel order."""
    critiques: list[CritiqueRow] = field(default_factory=list)
    """The ``critiques`` rows, one per problem."""


def row_values(row: RunRow | CallRow | CandidateRow | CritiqueRow) -> dict[str, Any]:
    """A row as ``INSERT`` values (generated ids left to the database)."""
    return row.model_dump(exclude={"id"})
