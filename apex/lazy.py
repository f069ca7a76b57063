"""Public names of a package imported from their module on first use (PEP 562).

A package's ``__init__`` lists where each name lives; importing a light part of the package
(its types, a constant) then does not import the heavy rest (LangGraph, SQLAlchemy).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_names(
    package: str, where: Mapping[str, str], into: dict[str, Any]
) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``where[name]`` on first use and
    keeps the value in the package's globals ``into``."""

    def getattr_(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        into[name] = value
        return value

    return getattr_
