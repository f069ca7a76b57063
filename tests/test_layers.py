"""The import rule of ARCHITECTURE.md: every import in apex/ points down (or stays on its floor).

The floors are listed here once; the test parses each module's imports with ``ast`` (imports
under ``if TYPE_CHECKING`` count too) and reports every one that points to a higher floor or
across the graph/evidence divide.
"""

from __future__ import annotations

import ast
from pathlib import Path

APEX = Path(__file__).resolve().parent.parent / "apex"

FLOORS: list[list[str]] = [
    ["apex", "apex.cli", "apex.server", "apex.workers", "apex.ui"],
    ["apex.goals", "apex.report"],
    ["apex.fusion", "apex.feedback", "apex.recording", "apex.testing", "apex.tracing"],
    ["apex.graph", "apex.evidence"],
    ["apex.vote"],
    ["apex.store"],
    ["apex.workflow"],
    ["apex.models"],
    [
        "apex.errors",
        "apex.types",
        "apex.redact",
        "apex.logging",
        "apex.faults",
        "apex.telemetry",
        "apex.lazy",
    ],
]
"""Top floor first; a module may import its own floor and the floors below."""
APART = {frozenset({"apex.graph", "apex.evidence"})}
"""Units on one floor that may not import each other."""


def unit(module: str) -> str:
    """The floor unit a module belongs to: the longest listed prefix."""
    names = [n for floor in FLOORS for n in floor]
    matches = [n for n in names if module == n or module.startswith(n + ".")]
    if not matches:
        raise AssertionError(f"{module} has no floor: add it to FLOORS and ARCHITECTURE.md")
    return max(matches, key=len)


def floor(name: str) -> int:
    """The floor of a unit (0 is the top)."""
    return next(i for i, units in enumerate(FLOORS) if name in units)


def imported(module: str, source: str, is_package: bool) -> set[str]:
    """The apex modules ``source`` (the text of ``module``) imports."""
    package = module if is_package else module.rpartition(".")[0]
    known = {m for m, _ in sources()}
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:  # `from apex import errors` imports apex.errors
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return {m for m in found if m in known}


def sources() -> list[tuple[str, Path]]:
    """Every module of the apex package with its file."""
    out = []
    for path in sorted(APEX.rglob("*.py")):
        parts = path.relative_to(APEX.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out.append((name, path))
    return out


def violations(modules: dict[str, tuple[str, bool]]) -> list[str]:
    """Every import that breaks the rule, as ``importer -> imported (why)``."""
    bad = []
    for module, (source, is_package) in sorted(modules.items()):
        here = unit(module)
        for target in sorted(imported(module, source, is_package)):
            there = unit(target)
            if there == here:
                continue
            if floor(there) < floor(here):
                bad.append(f"{module} -> {target} (up from {here} to {there})")
            elif frozenset({here, there}) in APART:
                bad.append(f"{module} -> {target} ({here} and {there} stay apart)")
    return bad


def package_modules() -> dict[str, tuple[str, bool]]:
    """The apex package's modules: source text and whether each is a package ``__init__``."""
    return {
        name: (path.read_text(encoding="utf-8"), path.name == "__init__.py")
        for name, path in sources()
    }


def test_every_import_points_down() -> None:
    assert violations(package_modules()) == []


def test_the_rule_catches_a_wrong_import() -> None:
    """The check is live: the store importing the graph's result type, the graph importing
    the evidence policy, and models/ importing the workflow are each reported."""
    modules = package_modules()
    modules["apex.store.bad"] = ("from apex.graph.types import FusionResult\n", False)
    modules["apex.graph.bad"] = ("from ..evidence import policy\n", False)
    modules["apex.models.bad"] = (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import apex.workflow\n",
        False,
    )
    assert violations(modules) == [
        "apex.graph.bad -> apex.evidence.policy (apex.graph and apex.evidence stay apart)",
        "apex.models.bad -> apex.workflow (up from apex.models to apex.workflow)",
        "apex.store.bad -> apex.graph.types (up from apex.store to apex.graph)",
    ]
