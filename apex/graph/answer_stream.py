"""The judge's answer as it is written: ``final_answer`` read out of its streamed verdict.

The judge answers with one JSON object whose last field is ``final_answer`` (after the analysis
and the scores). While the verdict streams, :class:`FinalAnswerScanner` follows the JSON text
and decodes that field's string so far; :class:`AnswerStream` hands it to the caller's sink.
The first judge attempt that writes any of its answer owns the stream: a retry or the fallback
judge, which would write another answer, is not streamed (its answer arrives with the result).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from apex.models.streaming import TextSink

FIELD = "final_answer"
"""The verdict's answer field."""
_ESCAPE_TAIL = re.compile(r"\\(u[0-9a-fA-F]{0,3})?$")
"""An escape cut off at the end of the text so far."""
_HIGH_SURROGATE_TAIL = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}$")
"""The first half of a surrogate pair, whose second half has not arrived."""


class FinalAnswerScanner:
    """Follows a JSON object's text as it grows; :meth:`feed` returns its ``final_answer`` so far.

    Only a key of the top-level object counts (the same words inside a string or a nested
    object do not). Returns None until the field's string has begun.
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._seen = ""
        self._depth = 0
        self._in_string = False
        self._escaped = False
        self._string = ""
        self._last_string: str | None = None
        self._key: str | None = None
        self._start: int | None = None  # where the answer's characters begin in the text
        self._end: int | None = None  # where its closing quote is, once written

    def feed(self, text: str) -> str | None:
        """The answer written so far in ``text`` (the whole verdict so far, each time)."""
        if not text.startswith(self._seen):
            self._reset()  # the text changed under us (a key masked): read it afresh
        begin, self._seen = len(self._seen), text
        if self._start is None:
            self._scan(text, begin)
        if self._start is None:
            return None
        if self._end is None:
            self._find_end(text, max(begin, self._start))
        raw = text[self._start : self._end]
        if self._end is None:
            raw = _HIGH_SURROGATE_TAIL.sub("", _ESCAPE_TAIL.sub("", raw))
        try:
            return str(json.loads(f'"{raw}"'))
        except ValueError:
            return None

    def _scan(self, text: str, begin: int) -> None:
        for i in range(begin, len(text)):
            char = text[i]
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
                    self._last_string = self._string if self._depth == 1 else None
                elif self._depth == 1 and len(self._string) <= len(FIELD):
                    self._string += char
                continue
            if char == '"':
                if self._depth == 1 and self._key == FIELD:
                    self._start = i + 1
                    return
                self._in_string, self._string = True, ""
            elif char == ":" and self._depth == 1:
                self._key = self._last_string
            elif char == ",":
                self._key = self._last_string = None
            elif char in "{[":
                self._depth += 1
            elif char in "}]":
                self._depth -= 1

    def _find_end(self, text: str, begin: int) -> None:
        for i in range(begin, len(text)):
            if self._escaped:
                self._escaped = False
            elif text[i] == "\\":
                self._escaped = True
            elif text[i] == '"':
                self._end = i
                return


class AnswerStream:
    """Hands the judge's answer, as it is written, to ``sink`` (stripped, as the result has it)."""

    def __init__(self, sink: Callable[[str], None]) -> None:
        self._sink = sink
        self._owner: object | None = None

    def attempt(self) -> TextSink:
        """A text sink for one judge attempt's streamed verdict."""
        scanner, me = FinalAnswerScanner(), object()

        def feed(text: str) -> None:
            if self._owner is not None and self._owner is not me:
                return
            answer = scanner.feed(text)
            if answer is not None and answer.strip():
                self._owner = me
                self._sink(answer.strip())

        return feed
