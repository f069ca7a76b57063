"""Plain types every layer shares."""

from __future__ import annotations

from typing import Literal

Role = Literal["panel", "critic", "judge"]
"""The part a model plays in a cycle; evidence is kept per (model, role, category)."""

ROLES: tuple[Role, ...] = ("panel", "critic", "judge")
"""Every role, in the cycle's order."""
