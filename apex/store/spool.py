"""Runs that finished but could not be recorded wait in a spool until the store takes them.

When a run's write fails (a full disk, a damaged or unreachable database), its rows and evidence
events are written as one JSON file, ``$APEX_HOME/spool/RUN_ID.json``, naming the database they
were meant for. :func:`recover` records every waiting run of a store (``apex db recover``, and
``apex.fuse`` after each successful write) and removes its file. Recording is idempotent on the
run id, so a run recovered twice, or recovered by two processes at once, counts once.

A file is written to a temporary name and renamed into place, so a reader never sees half of
one; a file that cannot be read is left where it is and reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from apex.errors import StoreError
from apex.store.aggregate import EvidenceEvent
from apex.store.engine import apex_home
from apex.store.repository import EvidenceStore
from apex.store.rows import RunRows
from apex.store.tables import CallRow, CandidateRow, CritiqueRow, RunRow, utcnow

SPOOL_DIR = "spool"
"""The spool's folder inside ``APEX_HOME``."""
FORMAT = 1
"""Version of a spool file's layout."""
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


class SpooledRun(BaseModel):
    """A run waiting in the spool: where, for which database, and why it waits."""

    path: Path
    """Its file."""
    run_id: str
    """The run."""
    db: str
    """The database it was meant for (password masked)."""
    error: str
    """Why it could not be recorded."""
    spooled_at: datetime
    """When it was spooled (naive UTC)."""


class Recovery(BaseModel):
    """What :func:`recover` did."""

    recorded: list[str] = Field(default_factory=list)
    """Runs recorded now."""
    already: list[str] = Field(default_factory=list)
    """Runs the store held already (their files removed)."""
    other_db: list[SpooledRun] = Field(default_factory=list)
    """Runs meant for another database, left waiting."""
    unreadable: list[str] = Field(default_factory=list)
    """Files that could not be read, each with why, left where they are."""


def spool_dir(directory: Path | None = None) -> Path:
    """The spool folder (``directory``, else ``$APEX_HOME/spool``); not created here."""
    return directory if directory is not None else apex_home() / SPOOL_DIR


def _dump(rows: RunRows, events: list[EvidenceEvent]) -> dict[str, Any]:
    return {
        "run": rows.run.model_dump(mode="json"),
        "calls": [r.model_dump(mode="json", exclude={"id"}) for r in rows.calls],
        "candidates": [r.model_dump(mode="json", exclude={"id"}) for r in rows.candidates],
        "critiques": [r.model_dump(mode="json", exclude={"id"}) for r in rows.critiques],
        "events": [e.model_dump(mode="json", exclude_defaults=True) for e in events],
    }


def spool_run(
    rows: RunRows,
    events: list[EvidenceEvent],
    *,
    db: str,
    error: str,
    directory: Path | None = None,
) -> Path:
    """Write an unrecorded run to the spool; its file. A StoreError when it cannot be written."""
    run_id = rows.run.run_id
    folder = spool_dir(directory)
    target = folder / f"{_UNSAFE.sub('_', run_id)}.json"
    partial = folder / f".{target.name}.{os.getpid()}.partial"
    data = {
        "format": FORMAT,
        "run_id": run_id,
        "db": db,
        "error": error,
        "spooled_at": utcnow().isoformat(),
        **_dump(rows, events),
    }
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with partial.open("w", encoding="utf-8") as out:
            json.dump(data, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        raise StoreError(
            f"cannot spool run {run_id} in {folder} ({exc.strerror or exc}); free space there "
            "or set APEX_HOME to a writable directory"
        ) from None
    return target


def _read(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"not a spool file of format {FORMAT}")
    return data


def load(path: Path) -> tuple[SpooledRun, RunRows, list[EvidenceEvent]]:
    """A spool file's run: what it is, its rows and its events (ValueError, OSError if bad)."""
    data = _read(path)
    rows = RunRows(
        run=RunRow.model_validate(data["run"]),
        calls=[CallRow.model_validate(r) for r in data["calls"]],
        candidates=[CandidateRow.model_validate(r) for r in data["candidates"]],
        critiques=[CritiqueRow.model_validate(r) for r in data["critiques"]],
    )
    events = [EvidenceEvent.model_validate(e) for e in data["events"]]
    meta = SpooledRun(
        path=path,
        run_id=str(data["run_id"]),
        db=str(data["db"]),
        error=str(data["error"]),
        spooled_at=datetime.fromisoformat(str(data["spooled_at"])),
    )
    return meta, rows, events


def pending(directory: Path | None = None) -> list[Path]:
    """The spool's files, oldest first (none when the folder does not exist)."""
    folder = spool_dir(directory)
    try:
        files = [p for p in folder.iterdir() if p.suffix == ".json" and not p.name.startswith(".")]
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise StoreError(f"cannot read the spool {folder} ({exc.strerror or exc})") from None
    return sorted(files, key=lambda p: (_mtime(p), p.name))


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:  # recovered by another process meanwhile
        return 0.0


def recover(
    store: EvidenceStore, directory: Path | None = None, *, any_db: bool = False
) -> Recovery:
    """Record every spooled run meant for ``store`` (``any_db``: every spooled run) and remove
    its file; a StoreError from the store stops it, with the files not yet recorded kept."""
    report = Recovery()
    for path in pending(directory):
        try:
            meta, rows, events = load(path)
        except FileNotFoundError:  # another process recovered it meanwhile
            continue
        except (OSError, ValueError, KeyError, TypeError) as exc:
            report.unreadable.append(f"{path}: {type(exc).__name__}: {exc}")
            continue
        if not any_db and meta.db != store.masked_url:
            report.other_db.append(meta)
            continue
        new = store.record_run(rows, events)
        (report.recorded if new else report.already).append(meta.run_id)
        path.unlink(missing_ok=True)
    return report
