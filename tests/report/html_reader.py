"""Reading a report's HTML back: each plot's SVG and embedded data, each table's cells."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any


@dataclass
class Page:
    plots: dict[str, Any] = field(default_factory=dict)
    """Plot id -> the JSON data embedded beside it."""
    svgs: dict[str, str] = field(default_factory=dict)
    """Plot id -> the text inside its SVG (tick labels, legends)."""
    tables: list[list[list[str]]] = field(default_factory=list)
    report: Any = None
    external: list[str] = field(default_factory=list)
    """Every src/href that would load something (none in a self-contained page)."""


class _Reader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.page = Page()
        self._script: str | None = None
        self._buffer: list[str] = []
        self._figure: str | None = None
        self._svg = 0
        self._cell: list[str] | None = None
        self._row: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        for key in ("src", "href"):
            if a.get(key):
                self.page.external.append(str(a[key]))
        if tag == "figure" and a.get("data-plot"):
            self._figure = a["data-plot"]
            self.page.svgs[str(self._figure)] = ""
        elif tag == "svg":
            self._svg += 1
        elif tag == "script" and a.get("type") == "application/json":
            self._script = a.get("data-plot") or a.get("id") or ""
            self._buffer = []
        elif tag == "table":
            self.page.tables.append([])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._script is not None:
            data = json.loads("".join(self._buffer))
            if self._script == "report-data":
                self.page.report = data
            else:
                self.page.plots[self._script] = data
            self._script = None
        elif tag == "svg":
            self._svg -= 1
        elif tag == "figure":
            self._figure = None
        elif tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.page.tables[-1].append(self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._script is not None:
            self._buffer.append(data)
        elif self._cell is not None:
            self._cell.append(data)
        elif self._svg and self._figure is not None:
            self.page.svgs[self._figure] += data + " "


def read_page(text: str) -> Page:
    """The plots, tables and data of a report page."""
    reader = _Reader()
    reader.feed(text)
    return reader.page
