"""The test command's wall time on two commits, measured in one run on this machine.

Checks out each commit into a temporary worktree and runs what ``make test`` runs after its
install step (ruff check, ruff format --check, mypy, pytest) with this checkout's virtualenv,
the worktree first on ``PYTHONPATH`` so its own ``apex`` is the one imported. The two commits
run one after the other, base first, then again in the other order, and the medians print.

    .venv/bin/python benchmarks/suite_time.py                       # ab63dcc (the baseline) vs HEAD
    .venv/bin/python benchmarks/suite_time.py --base HEAD~3 --rounds 1
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
DEFAULT_BASE = "ab63dcc"
"""The last commit before the test suite was moved off sockets and threads (issue 15)."""
STEPS = (
    ["ruff", "check", "apex", "tests", "benchmarks", "examples"],
    ["ruff", "format", "--check", "apex", "tests", "benchmarks", "examples"],
    ["mypy"],
    ["pytest", "-q", "-p", "no:cacheprovider"],
)


def worktree(commit: str, into: Path) -> Path:
    """A detached checkout of ``commit``."""
    path = into / commit.replace("/", "_").replace("~", "-")
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-f", str(path), commit],
        check=True,
        capture_output=True,
    )
    return path


def run_suite(path: Path) -> tuple[float, bool]:
    """Wall time of the steps in ``path`` and whether all passed."""
    env = os.environ | {"PYTHONPATH": str(path), "MYPY_CACHE_DIR": str(path / ".mypy_cache")}
    started = time.perf_counter()
    ok = True
    for step in STEPS:
        done = subprocess.run(
            [str(BIN / step[0]), *step[1:]], cwd=path, env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            ok = False
            print(f"  {path.name}: {' '.join(step)} failed:\n{done.stdout[-2000:]}", flush=True)
    return time.perf_counter() - started, ok


def main() -> None:
    """Time both commits and print the figures and their ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=DEFAULT_BASE)
    parser.add_argument("--head", default="HEAD")
    parser.add_argument("--rounds", type=int, default=1, help="base/head pairs (order alternates)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="apex-suite-"))
    times: dict[str, list[float]] = {args.base: [], args.head: []}
    try:
        paths = {c: worktree(c, tmp) for c in times}
        for r in range(args.rounds):
            order = [args.base, args.head] if r % 2 == 0 else [args.head, args.base]
            for commit in order:
                took, ok = run_suite(paths[commit])
                times[commit].append(took)
                print(f"{commit}: {took:.1f}s {'passed' if ok else 'FAILED'}", flush=True)
    finally:
        for commit in times:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp / commit)],
                capture_output=True,
            )
        shutil.rmtree(tmp, ignore_errors=True)
    base, head = (statistics.median(times[c]) for c in (args.base, args.head))
    print(f"test command, median of {args.rounds}: {args.base} {base:.1f}s, {args.head} "
          f"{head:.1f}s, ratio {head / base:.2f} (target <= 0.67)")  # fmt: skip


if __name__ == "__main__":
    main()
