"""The exception tree is true: drawn in errors.py's docstring, and every node is raised."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from apex import errors
from apex.errors import AllPanelFailed, ApexError, FusionError, QuorumFailed
from apex.graph.types import CallRecord, CandidateReport, FusionResult

APEX = Path(errors.__file__).parent

CLASSES = {
    name: cls
    for name, cls in vars(errors).items()
    if inspect.isclass(cls) and issubclass(cls, ApexError)
}


def drawn_tree() -> dict[str, str]:
    """Each class drawn in the docstring's tree, with the class drawn as its parent."""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []  # (column of the name, name) of the open branches
    for line in (errors.__doc__ or "").splitlines():
        found = re.match(r"^[\s│├└─]*?(\b[A-Z]\w+)\b", line)
        if found is None or found.group(1) not in CLASSES:
            continue
        column, name = found.start(1), found.group(1)
        while stack and stack[-1][0] >= column:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((column, name))
    return parents


def test_the_docstring_draws_every_class_under_its_parent() -> None:
    parents = drawn_tree()
    assert sorted(parents) == sorted(n for n in CLASSES if n != "ApexError")
    for name, parent in parents.items():
        assert CLASSES[name].__bases__[0].__name__ == parent, name


def test_every_class_is_raised_somewhere() -> None:
    source = "\n".join(
        p.read_text(encoding="utf-8") for p in APEX.rglob("*.py") if p.name != "errors.py"
    )
    for name, cls in CLASSES.items():
        if any(issubclass(other, cls) and other is not cls for other in CLASSES.values()):
            continue  # a base is raised through its subclasses
        raised = re.search(rf"raise {name}\(|errors\.{name}\b|\b{name}\(", source)
        assert raised, f"{name} is never raised: raise it where it happens or remove it"


def failed_result(path: str, answered: int) -> FusionResult:
    call = CallRecord(role="panel", model="lab:m", ok=False, failure_kind="timeout")
    reports = [
        CandidateReport(label="A" if i < answered else None, member=i, model="lab:m",
                        ok=i < answered, error=None if i < answered else "timeout: slow")
        for i in range(3)
    ]  # fmt: skip
    return FusionResult(
        run_id="r", prompt="q", category="c", workflow="w", answer="",
        synthesis_path=path, candidates=reports, calls=[call],  # type: ignore[arg-type]
    )  # fmt: skip


def test_a_failed_cycle_raises_on_request() -> None:
    with pytest.raises(AllPanelFailed, match="every panel member failed"):
        failed_result("all_panel_failed", 0).raise_for_failure()
    with pytest.raises(QuorumFailed, match="only 1 panel member"):
        failed_result("quorum_failed", 1).raise_for_failure()
    assert issubclass(QuorumFailed, FusionError) and issubclass(AllPanelFailed, FusionError)
    ok = failed_result("judge", 3).model_copy(update={"answer": "x"})
    assert ok.raise_for_failure() is ok
