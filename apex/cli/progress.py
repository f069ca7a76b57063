"""Progress for long commands: a bar on stderr when it is a terminal, nothing otherwise.

Piped or redirected, a command's stderr stays silent and its stdout holds only its output (JSON
lines for ``fuse --batch``); the bar never writes to stdout.
"""

from __future__ import annotations

import sys
from typing import Any


class TerminalBar:
    """A progress bar on stderr when it is a terminal; nothing otherwise."""

    def __init__(self, total: int, label: str) -> None:
        self.progress: Any = None
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

            self.progress = Progress(
                label,
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=Console(stderr=True),
                redirect_stdout=sys.stdout.isatty(),  # piped stdout keeps only the JSON lines
                redirect_stderr=False,
                transient=False,
            )
            self.task = self.progress.add_task(label, total=total)

    def __enter__(self) -> TerminalBar:
        if self.progress is not None:
            self.progress.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        if self.progress is not None:
            self.progress.stop()

    def advance(self) -> None:
        """One item done."""
        if self.progress is not None:
            self.progress.advance(self.task)
