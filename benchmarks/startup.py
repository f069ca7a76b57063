"""Start-up time of the ``apex`` command: ``--version``, ``--help`` and each command's ``--help``.

Each command runs ``--runs`` times as a fresh process (the console script in this virtualenv)
and the median wall time prints, in seconds. A command's ``--help`` imports its own module and
nothing of the stack behind it, so it is the start-up a command pays before its real work.

    .venv/bin/python benchmarks/startup.py             # apex --version and apex fuse --help
    .venv/bin/python benchmarks/startup.py --all --runs 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

APEX = str(Path(sys.executable).parent / "apex")
MAIN = (["--version"], ["fuse", "--help"])
ALL = (
    ["--help"],
    ["goal", "start", "--help"],
    ["evidence", "--help"],
    ["replay", "--help"],
    ["runs", "--help"],
    ["models", "--help"],
    ["db", "upgrade", "--help"],
    ["status", "--help"],
    ["worker", "--help"],
    ["schedule", "add", "--help"],
    ["serve", "--help"],
    ["report", "--help"],
)


def median_time(args: list[str], runs: int) -> float:
    """The median wall time of ``apex ARGS`` over ``runs`` fresh processes."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([APEX, *args], check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    """Print one line per command: the median start-up time."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=11, help="processes per command")
    parser.add_argument("--all", action="store_true", help="every command's --help too")
    args = parser.parse_args()
    median_time(["--version"], 1)  # warm the file cache
    for command in (*MAIN, *(ALL if args.all else ())):
        took = median_time(list(command), args.runs)
        print(f"apex {' '.join(command):<24} {took:.3f} s  (median of {args.runs})")


if __name__ == "__main__":
    main()
