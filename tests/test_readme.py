"""Every fenced code block of README.md, executed as written.

``python`` blocks run as a script in a fresh process; ``sh`` blocks run command by command in
bash (``\\`` continuations joined), from a scratch copy of the repository's ``examples/`` with the
``.venv`` at hand, while ``python -m apex.testing``'s server listens where ``examples/lab.toml``
points (its port rewritten to a free one); ``toml`` blocks are parsed as a workflow. A block
without a language is a diagram or a sample of output, not code.

What cannot run here is skipped by an explicit, justified rule below (a network and a key, an
install, a benchmark of minutes), and nothing else: a README marker
``<!-- readme-test: skip REASON -->`` on the line before a block skips it too, its reason shown.
Blocks that fail today are marked ``xfail(strict=True)`` with the fix proposed for the README,
so that the fix turns them green and this file must then be updated.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from apex.testing import TestServer, roles

ROOT = Path(__file__).resolve().parent.parent
README = Path(os.environ.get("APEX_README") or ROOT / "README.md")
"""The README under test (``APEX_README=path`` checks a proposed edit before it lands)."""
VENV = Path(sys.executable).parent.parent
MARKER = re.compile(r"<!--\s*readme-test:\s*skip\s+(.+?)\s*-->")

SKIP_COMMANDS: tuple[tuple[str, str], ...] = (
    ("make ", "installs the package and runs the whole suite: minutes, and the suite runs it"),
    ("OPENROUTER_API_KEY=", "needs an OpenRouter key and the network (tests refuse remote calls)"),
    ("-w fusion", "the fusion workflow calls OpenRouter: a key and the network"),
    ("-w budget", "the budget workflow calls OpenRouter: a key and the network"),
    ("benchmarks/", "a benchmark of minutes; benchmarks are run by hand, figures in README"),
    ("stress_panels", "a benchmark of minutes"),
    ("apex serve", "a server that runs until stopped; tests/server covers it"),
    ("apex worker", "a worker that runs until stopped; tests/workers covers it"),
)
"""A command containing the first text is not run, for the reason given."""
SKIP_PYTHON: tuple[tuple[str, str], ...] = (
    ('workflow="budget"', "the budget workflow calls OpenRouter: a key and the network"),
)
"""A python block containing the first text is not run, for the reason given."""


@dataclass(frozen=True)
class Block:
    """One fenced block of README.md."""

    line: int
    lang: str
    text: str
    skip: str | None

    @property
    def name(self) -> str:
        """``L<line>-<lang>`` for test ids."""
        return f"L{self.line}-{self.lang or 'text'}"


def blocks(text: str) -> list[Block]:
    """Every fenced block, its language, its first line number and any skip marker."""
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if fence is None:
            i += 1
            continue
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        marker = MARKER.search(lines[i - 1]) if i else None
        body = "\n".join(lines[i + 1 : end]) + "\n"
        found.append(Block(i + 1, fence.group(1), body, marker.group(1) if marker else None))
        i = end + 1
    return found


def commands(text: str) -> list[str]:
    """The commands of a shell block, continuations joined (comments are bash's to drop)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line for line in joined.splitlines() if line.strip() and not line.startswith("#")]


KNOWN_BROKEN: dict[str, str] = {}
"""A text of a block that fails as written -> the fix proposed to the README's owner."""

README_BLOCKS = blocks(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A scratch checkout: examples/ (lab.toml on the test server's port), .venv, docs/."""
    root = tmp_path_factory.mktemp("readme")
    with TestServer() as server:
        server.default("judge", roles.judge("a synthesized answer"))
        server.default("judge2", roles.judge("a synthesized answer"))
        server.default("critic", roles.critic())
        shutil.copytree(ROOT / "examples", root / "examples")
        lab = root / "examples" / "lab.toml"
        lab.write_text(lab.read_text().replace("127.0.0.1:8765", f"127.0.0.1:{server.port}"))
        (root / ".venv").symlink_to(VENV)
        (root / "docs").mkdir()
        (root / "home").mkdir()
        yield root


def run_env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    return env | {"APEX_HOME": str(root / "home"), "COLUMNS": "100"}


def skip_reason(block: Block) -> str | None:
    if block.skip:
        return f"README marker: {block.skip}"
    if not block.lang:
        return "no language: a diagram or a sample of output, not code"
    if block.lang == "python":
        return next((why for text, why in SKIP_PYTHON if text in block.text), None)
    return None


def params() -> list[object]:
    out: list[object] = []
    for block in README_BLOCKS:
        marks: list[pytest.MarkDecorator] = []
        broken = [why for text, why in KNOWN_BROKEN.items() if text in block.text]
        if broken:
            marks.append(pytest.mark.xfail(strict=True, reason=broken[0]))
        if "local" in block.text or "smollm2" in block.text or 'apex fuse "' in block.text:
            marks.append(pytest.mark.slow)
        out.append(pytest.param(block, id=block.name, marks=marks))
    return out


@pytest.mark.parametrize("block", params())
def test_readme_block_runs_as_written(block: Block, workspace: Path) -> None:
    reason = skip_reason(block)
    if reason is not None:
        pytest.skip(reason)
    env = run_env(workspace)
    if block.lang == "toml":
        from apex.workflow import parse_workflow

        parse_workflow(block.text, "README.toml")
        return
    if block.lang == "python":
        out = subprocess.run(
            [sys.executable, "-c", block.text], cwd=workspace, env=env, capture_output=True,
            text=True, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, f"README line {block.line}:\n{out.stderr[-2000:]}"
        return
    assert block.lang == "sh", f"README line {block.line}: unknown language {block.lang!r}"
    kept = [c for c in commands(block.text) if not any(t in c for t, _ in SKIP_COMMANDS)]
    if not kept:
        pytest.skip("every command needs what the skip rules name")
    # One script, so that a variable set on one line is there on the next; the first failing
    # command stops it and is named.
    script = "set -e -o pipefail\ntrap 'echo \"FAILED: $BASH_COMMAND\" >&2' ERR\n"
    out = subprocess.run(
        ["bash", "-c", script + "\n".join(kept)], cwd=workspace, env=env, capture_output=True,
        text=True, timeout=600, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert out.returncode == 0, f"README line {block.line}:\n{out.stderr.strip()[-1500:]}"
