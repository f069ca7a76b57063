"""Verifiers: the last word on whether a goal's answer meets it.

A verifier is a Python callable, a shell command (exit 0 means met; its output becomes the
feedback for the next cycle; the answer arrives on stdin and in ``$APEX_ANSWER_FILE``), or a match
on the answer (a regex, or an exact text). Every verdict is ground-truth evidence.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import tempfile
from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import BaseModel

DEFAULT_VERIFY_TIMEOUT_S = 300.0
MAX_FEEDBACK_CHARS = 4000


class Verdict(BaseModel):
    """A verifier's verdict on one answer."""

    met: bool
    """Whether the answer meets the goal."""
    feedback: str = ""
    """What the verifier said (a command's output), passed to the next cycle."""


class VerifierSpec(BaseModel):
    """A serializable verifier: a shell command or a match (callables live only in-process)."""

    kind: Literal["command", "regex", "exact"]
    """command: exit 0 means met; regex: the pattern is found; exact: normalized equality."""
    value: str
    """The command line, the pattern or the expected text."""
    timeout_s: float = DEFAULT_VERIFY_TIMEOUT_S
    """Commands only: seconds before the command is killed (a timeout is a failed verdict)."""
    cwd: str | None = None
    """Commands only: working directory."""

    def describe(self) -> str:
        """One line for listings."""
        return f"{self.kind}: {self.value}"


VerifierFunc = Callable[[str], bool | Verdict | Awaitable[bool | Verdict]]
"""A Python verifier: takes the answer, returns met (or a Verdict), possibly async."""


def _normalize(text: str) -> str:
    return " ".join(text.lower().split()).strip(" .")


async def _run_command(spec: VerifierSpec, answer: str) -> Verdict:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write(answer)
        answer_file = f.name
    try:
        proc = await asyncio.create_subprocess_shell(
            spec.value,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=spec.cwd,
            env=os.environ | {"APEX_ANSWER_FILE": answer_file},
            start_new_session=True,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(answer.encode()), spec.timeout_s)
        except TimeoutError:
            proc.kill()
            await proc.wait()
            return Verdict(met=False, feedback=f"verifier timed out after {spec.timeout_s:g}s")
        text = out.decode(errors="replace")[-MAX_FEEDBACK_CHARS:]
        return Verdict(met=proc.returncode == 0, feedback=text)
    finally:
        os.unlink(answer_file)


async def verify(verifier: VerifierSpec | VerifierFunc, answer: str) -> Verdict:
    """The verdict of ``verifier`` on ``answer``."""
    if isinstance(verifier, VerifierSpec):
        match verifier.kind:
            case "command":
                return await _run_command(verifier, answer)
            case "regex":
                found = re.search(verifier.value, answer) is not None
                return Verdict(met=found, feedback="" if found else "pattern not found")
            case "exact":
                same = _normalize(answer) == _normalize(verifier.value)
                return Verdict(met=same, feedback="" if same else "answer differs")
    outcome = verifier(answer)
    if inspect.isawaitable(outcome):
        outcome = await outcome
    return outcome if isinstance(outcome, Verdict) else Verdict(met=bool(outcome))
