"""llama.cpp contexts of the local models: up to ``PARALLEL_GENERATIONS`` per model file.

A context generates one answer at a time; :func:`pool` hands out a free one for a generation
(loading another when all are busy and there is room), and each context's abort callback stops
its generation at the next token once the caller's stop event is set.
"""

from __future__ import annotations

import functools
import os
import threading
from pathlib import Path
from typing import Any

from apex.errors import ConfigError
from apex.logging import get_logger

log = get_logger("apex.models.local")

DEFAULT_CONTEXT = 8192
"""Tokens each context holds (prompt and answer)."""


OMP_WAIT_POLICY = "PASSIVE"
"""How llama.cpp's OpenMP threads wait for work, unless the environment says otherwise: asleep.
Spinning (OpenMP's default) takes the cores of every other process that is generating, so two
local cycles at once (a worker and the CLI, a batch and a server) took 26-30 s instead of 20 s
each on two cores; alone, a cycle takes the same time either way."""


_log_sink: list[Any] = []  # llama.cpp's log callback, kept alive for as long as it may call


def llama() -> Any:
    """The ``llama_cpp`` module, its OpenMP runtime told how to wait before it loads, and
    llama.cpp's log sent to APEX's (at debug) instead of the terminal."""
    os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
    try:
        import llama_cpp
    except ImportError as exc:
        raise ConfigError(
            "local models need llama-cpp-python: pip install llama-cpp-python"
        ) from exc
    if not _log_sink:
        _log_sink.append(llama_cpp.llama_log_callback(_to_log))
        llama_cpp.llama_log_set(_log_sink[0], None)
    return llama_cpp


def _to_log(_level: int, text: bytes, _data: Any) -> None:
    """llama.cpp's messages (a stopped generation writes "decode: removing memory module
    entries ..." at its error level, which printed under Ctrl-C's one line) at debug."""
    log.debug("llama_cpp", text=text.decode("utf-8", "replace").rstrip())


class Cancelled(Exception):
    """The caller stopped waiting (Ctrl-C, a timeout): the generation was stopped."""


PARALLEL_GENERATIONS = 3
"""Generations one local model runs at once, each in its own llama.cpp context (created when a
call finds every other context busy). A context generates one token at a time, so a panel of
three calls to SmolLM2 took the three one after another (10 s on two cores); three contexts
side by side take 6 s. Each context holds its own cache for ``DEFAULT_CONTEXT`` tokens (about
300 MB more for SmolLM2); contexts are made only as calls arrive together, so a workflow whose
``[providers.local]`` has ``concurrency = 1`` keeps to one."""


class _Slot:
    """One llama.cpp context of a model: one generation at a time, stopped by its event."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.stop: threading.Event | None = None
        llama_cpp = llama()

        def abort(_data: Any) -> bool:
            return self.stop is not None and self.stop.is_set()

        # llama.cpp's abort callback: a set stop event makes the current decode fail, so
        # ``create_chat_completion`` raises at the next token instead of generating on
        self._abort = llama_cpp.ggml_abort_callback(abort)  # kept alive with the context
        llama_cpp.llama_set_abort_callback(llm._ctx.ctx, self._abort, None)


class _Pool:
    """The contexts of one model file, up to ``PARALLEL_GENERATIONS``, shared by every client."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.free: list[_Slot] = []
        self.count = 0
        self.busy = 0
        self.changed = threading.Condition()

    def acquire(self, stop: threading.Event) -> _Slot:
        """A free context (the most recently used: its cache may hold the prompt's start), a
        new one if none is free and there is room, else one as it is freed; ``stop``, once
        set, ends the wait."""
        with self.changed:
            while not self.free and self.count >= PARALLEL_GENERATIONS:
                if stop.is_set():
                    raise Cancelled
                self.changed.wait(timeout=0.05)
            self.busy += 1
            if self.free:
                return self.free.pop()
            self.count += 1
        try:
            return _Slot(_open(self.path))
        except BaseException:
            with self.changed:
                self.count -= 1
                self.busy -= 1
                self.changed.notify()
            raise

    def release(self, slot: _Slot) -> None:
        """Give ``slot`` back for the next generation."""
        slot.stop = None
        with self.changed:
            self.free.append(slot)
            self.busy -= 1
            self.changed.notify()


_opening = threading.Lock()


def _open(path: Path) -> Any:
    """A new context of the model at ``path``, one at a time: llama-cpp-python silences
    llama.cpp's loading by pointing file descriptors 1 and 2 at /dev/null and back, and two
    loads at once left the process's stdout and stderr on /dev/null for good. Flash attention
    read SmolLM2's judge prompt (1,100 tokens) in 4.3 s instead of 5.0-5.5 s on two cores."""
    with _opening:
        module = llama()
        bindings = module.llama_cpp  # where ``Llama`` reads its default model parameters
        defaults = bindings.llama_model_default_params
        if cpu_has_amx():
            bindings.llama_model_default_params = lambda: _without_extra_buffers(defaults())
        try:
            return module.Llama(
                model_path=str(path), n_ctx=DEFAULT_CONTEXT, flash_attn=True, verbose=False
            )
        finally:
            bindings.llama_model_default_params = defaults


def _without_extra_buffers(params: Any) -> Any:
    """Model parameters that keep the weights in plain CPU buffers (llama.cpp's AMX and
    repacking buffers off), where this llama-cpp-python has the setting."""
    if any(field[0] == "use_extra_bufts" for field in type(params)._fields_):
        params.use_extra_bufts = False
    return params


@functools.cache
def cpu_has_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Whether the CPU has Intel AMX (its ``amx_int8`` flag in ``cpuinfo``; False where the file
    is missing). llama.cpp built for such a CPU puts quantised weights in its AMX buffers, and
    its AMX matrix product crashed the process (SIGSEGV in ``ggml_backend_amx_mul_mat``, every
    call, SmolLM2's Q4_1 weights, llama-cpp-python 0.3.36 on a Xeon with AMX): there the
    weights stay in plain CPU buffers, which ran the same model without fault."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(
        line.startswith("flags") and "amx_int8" in line.split() for line in text.splitlines()
    )


_pools: dict[Path, _Pool] = {}
_pools_lock = threading.Lock()


def pool(path: Path) -> _Pool:
    """The contexts of the model at ``path``."""
    with _pools_lock:
        return _pools.setdefault(path, _Pool(path))


def generating() -> int:
    """How many local generations run now, over every model (a stopped one no longer counts)."""
    with _pools_lock:
        pools = list(_pools.values())
    return sum(pool.busy for pool in pools)
