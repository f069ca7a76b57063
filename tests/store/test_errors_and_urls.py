"""Where the database is, and one-line StoreErrors (password masked) when it cannot be used."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from apex.errors import StoreError
from apex.store import EvidenceStore, head_revision, mask_url, resolve_db_url
from apex.store.aggregate import EvidenceEvent


def test_default_is_apex_home(tmp_path: Path) -> None:
    home = Path(os.environ["APEX_HOME"])
    assert resolve_db_url() == f"sqlite:///{home / 'apex.db'}"
    assert home.is_dir()


def test_precedence_explicit_env_workflow(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert resolve_db_url(None, "sqlite:///wf.db") == "sqlite:///wf.db"
    monkeypatch.setenv("APEX_DB", "sqlite:///env.db")
    assert resolve_db_url(None, "sqlite:///wf.db") == "sqlite:///env.db"
    assert resolve_db_url("sqlite:///arg.db", "sqlite:///wf.db") == "sqlite:///arg.db"
    assert resolve_db_url(str(tmp_path / "plain.db")) == f"sqlite:///{tmp_path / 'plain.db'}"


def test_default_store_file_is_created(tmp_path: Path) -> None:
    with EvidenceStore() as store:
        assert store.revision() == head_revision()
    assert (Path(os.environ["APEX_HOME"]) / "apex.db").is_file()


def test_mask_url() -> None:
    assert mask_url("postgresql://bob:s3cret@db:5432/x") == "postgresql://bob:***@db:5432/x"
    assert mask_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"


def test_bad_url() -> None:
    with pytest.raises(StoreError, match=r"^not a url://: not a database URL; use sqlite:///"):
        EvidenceStore("not a url://")
    with pytest.raises(StoreError, match="unsupported database"):
        EvidenceStore("mysqlx://u@h/db")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_unreachable_server_masks_the_password() -> None:
    url = f"postgresql+psycopg://bob:hunter22@127.0.0.1:{_free_port()}/apex"
    with pytest.raises(StoreError) as info:
        EvidenceStore(url)
    message = str(info.value)
    assert "hunter22" not in message and "bob:***@127.0.0.1" in message
    assert "cannot connect to the server" in message and "\n" not in message


def test_read_only_file(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes to read-only files; test_read_only_database covers it")
    path = tmp_path / "ro.db"
    EvidenceStore(f"sqlite:///{path}").close()
    path.chmod(stat.S_IRUSR)
    with pytest.raises(StoreError, match="read-only"):
        EvidenceStore(f"sqlite:///{path}").apply([])


def test_read_only_database(tmp_path: Path) -> None:
    """Opened read-only (works as root too): reads work, a write fails with one clear line."""
    path = tmp_path / "ro.db"
    EvidenceStore(f"sqlite:///{path}").close()
    url = f"sqlite:///file:{path}?mode=ro&uri=true"
    with EvidenceStore(url) as store:
        assert store.get("lab:m1", "math").events == 0
        with pytest.raises(StoreError) as info:
            store.apply([EvidenceEvent(model="lab:m1", category="math", kind="answer")])
    assert str(info.value).startswith(f"{url} while applying evidence: the database file is")
    assert "read-only; make it writable" in str(info.value)


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not an SQLite database"):
        EvidenceStore(f"sqlite:///{path}")


def test_unwritable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create its directory"):
        EvidenceStore(f"sqlite:///{blocker / 'sub' / 'apex.db'}")
