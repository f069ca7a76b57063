"""Helpers of the hardening tests: one-line CLI errors, and small file systems made for a test.

A small file system is a tmpfs mounted under the test's temp dir (it needs the right to mount:
root in a container); where it cannot be made, the test is skipped and says why.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest
from click.testing import Result


def one_line_error(result: Result) -> str:
    """The one error line a failed command printed (no traceback, nothing else on stderr)."""
    assert result.exit_code != 0, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.output, result.stderr
    return lines[0]


@dataclass
class SmallFS:
    """A tmpfs mounted for one test."""

    path: Path
    """Its mount point."""

    def fill(self) -> Path:
        """Fill it up (a file of zeros until the disk is full); the file, to free it later."""
        filler = self.path / "filler.bin"
        chunk = b"\0" * 65536
        with filler.open("ab") as out:
            while _wrote(out, chunk):
                pass
        return filler

    def read_only(self) -> None:
        """Remount it read-only."""
        _mount("-o", "remount,ro", str(self.path))


def _wrote(out: BinaryIO, chunk: bytes) -> bool:
    """Whether ``chunk`` went to disk; False once the disk is full (any other error raises)."""
    try:
        out.write(chunk)
        out.flush()
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        return False
    return True


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True, text=True)


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[SmallFS]:
    """A 4 MB tmpfs under the test's temp dir, unmounted afterwards (skipped where it cannot
    be mounted)."""
    point = tmp_path / "small-fs"
    point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the disk-full test cannot run here")
    try:
        _mount("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(point))
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = getattr(exc, "stderr", "") or str(exc)
        pytest.skip(f"cannot mount a tmpfs for the test here: {detail.strip()}")
    try:
        yield SmallFS(point)
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False, capture_output=True)
