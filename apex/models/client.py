"""One async client for every OpenAI-compatible provider.

:class:`ModelClient` resolves ``provider:model`` specs, holds one HTTP transport per
provider, bounds concurrency per provider, retries 429, 5xx and connection errors with
exponential backoff and full jitter (honouring ``Retry-After``), and ends every call in a
:class:`~apex.models.types.ChatResult`: an answer, or a typed failure as data. httpx errors are
mapped to failure kinds here and nowhere else.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Protocol

import httpx

from apex.logging import get_logger
from apex.models.config import DEFAULT_SETTINGS, ClientSettings, Price
from apex.models.providers import LOCAL_PRICE, Provider, resolve_provider, split_spec
from apex.models.retry import RetryPolicy, parse_retry_after
from apex.models.streaming import StreamFailure, TextSink, read_completion, stream_body
from apex.models.structured import (
    StructuredOutputError,
    parse_structured,
    response_format,
    schema_instruction,
)
from apex.models.types import CallFailure, ChatRequest, ChatResult, FailureKind, Message, Usage
from apex.redact import redact, redact_known
from apex.telemetry import chat_span

CALLER_ERROR_STATUSES = frozenset({400, 413, 422})
"""Statuses that blame the request, not the model (too long for the context, a bad argument):
the failure kind ``bad_request``, which is never evidence against the model."""
_BASE_HEADERS = {"accept": "application/json", "accept-encoding": "gzip, deflate"}
"""Headers of every provider request, beside the provider's own (its key, its extras)."""
_RETRYABLE: frozenset[FailureKind] = frozenset({"rate_limited", "connection"})

log = get_logger("apex.models")


class ChatModel(Protocol):
    """One model: an async chat call that returns every failure as data.

    The judge node is given only its judge's (and fallback's) ``ChatModel``: it cannot call any
    other model, whatever it is passed.
    """

    @property
    def spec(self) -> str:
        """The model spec, ``provider:model``."""
        ...

    async def chat(self, request: ChatRequest, on_text: TextSink | None = None) -> ChatResult:
        """Answer ``request``; failures come back as ``ChatResult.failure``. With ``on_text``,
        the answer is streamed where the provider streams, and its text so far reported."""
        ...


class _Attempt:
    """What one HTTP attempt produced, and how long the server asked us to wait."""

    def __init__(self, result: ChatResult, retry_after: float | None = None) -> None:
        self.result = result
        self.retry_after = retry_after


class BoundModel:
    """A :class:`ChatModel` for one spec, bound to a :class:`ModelClient`."""

    def __init__(self, client: ModelClient, spec: str) -> None:
        self._spec = spec
        self._client = client

    @property
    def spec(self) -> str:
        """The model spec."""
        return self._spec

    def __repr__(self) -> str:
        return f"BoundModel({self._spec!r})"

    async def chat(self, request: ChatRequest, on_text: TextSink | None = None) -> ChatResult:
        """Answer ``request`` through the client (``on_text``: see :meth:`ModelClient.chat`)."""
        return await self._client.chat(self._spec, request, on_text)


class ModelClient:
    """Async access to every provider; use ``async with ModelClient(settings) as client``.

    ``settings`` (providers, prices, limits) usually comes from a workflow:
    ``ModelClient(workflow.client_settings)``; without it only the built-in providers exist.
    """

    def __init__(
        self,
        settings: ClientSettings | None = None,
        *,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.settings = settings or DEFAULT_SETTINGS
        """Providers, prices and limits."""
        self._retry = retry or RetryPolicy(max_retries=self.settings.max_retries)
        self._timeout_s = self.settings.timeout_s
        self._max_tokens = self.settings.max_tokens
        self._providers: dict[str, Provider] = {}
        self._http: dict[str, httpx.AsyncBaseTransport] = {}
        self._unstreamed: set[str] = set()  # providers that refused a streamed request

    async def __aenter__(self) -> ModelClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every provider's connections."""
        transports, self._http = list(self._http.values()), {}
        await asyncio.gather(*(t.aclose() for t in transports))

    def provider(self, name: str) -> Provider:
        """The resolved provider ``name`` (raises a ConfigError for unknown or keyless ones)."""
        if name not in self._providers:
            self._providers[name] = resolve_provider(name, self.settings.providers)
        return self._providers[name]

    def model(self, spec: str) -> BoundModel:
        """A :class:`ChatModel` for ``spec``; checks the provider and its key now."""
        self.provider(split_spec(spec)[0])
        return BoundModel(self, spec)

    def _transport_for(self, provider: Provider) -> httpx.AsyncBaseTransport:
        transport = self._http.get(provider.name)
        if transport is None:
            connections = max(provider.concurrency, 1) * 2
            transport = provider.transport or _remote_transport(connections)
            self._http[provider.name] = transport
        return transport

    async def _send(
        self,
        provider: Provider,
        body: dict[str, Any],
        headers: dict[str, str],
        timeout_s: float,
        stream: bool = False,
    ) -> httpx.Response:
        """POST ``body`` to the provider's chat completions; the response, its body read unless
        ``stream`` (then the caller closes it).

        Straight to the transport: ``httpx.AsyncClient`` around it (URL merging, auth and
        redirect hooks, a cookie jar filled from every response) cost 40-80 µs of CPU per call
        (over the in-process test server) for nothing a provider call uses.
        """
        request = httpx.Request(
            "POST",
            f"{provider.base_url}/chat/completions",
            json=body,
            headers=_BASE_HEADERS | headers,
            extensions={"timeout": httpx.Timeout(timeout_s).as_dict()},
        )
        response = await self._transport_for(provider).handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            finally:
                await response.aclose()
        return response

    def _price(self, spec: str, provider: Provider) -> Price | None:
        declared = self.settings.prices.get(spec)
        return declared or (LOCAL_PRICE if provider.name == "local" else None)

    def _body(self, provider: Provider, model: str, request: ChatRequest) -> dict[str, Any]:
        messages = list(request.messages)
        if request.json_schema is not None and not provider.json_schema:
            instruction = Message(role="system", content=schema_instruction(request.json_schema))
            messages.insert(0, instruction)
        body: dict[str, Any] = {
            "model": model,
            "messages": [m.model_dump() for m in messages],
            "max_tokens": request.max_tokens or self._max_tokens,
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.seed is not None:
            body["seed"] = request.seed
        if request.json_schema is not None and provider.json_schema:
            body["response_format"] = response_format(request.json_schema, request.schema_name)
        return body

    async def chat(
        self, spec: str, request: ChatRequest, on_text: TextSink | None = None
    ) -> ChatResult:
        """Run one call to ``spec``; every failure of the call comes back as data.

        With ``on_text``, the call is streamed (:mod:`apex.models.streaming`) and ``on_text``
        hears the answer so far as it arrives; the result is the same. A provider that refuses
        the streamed request (400 or 422) is asked again plainly, and plainly from then on.
        Only configuration errors raise (an unknown provider, a missing key, a refused remote
        host: :class:`~apex.errors.ConfigError`), before any request is made.
        """
        name, model = split_spec(spec)
        provider = self.provider(name)
        provider.check_allowed()
        body = self._body(provider, model, request)
        span = chat_span(provider.name, model, spec, body, provider.base_url)  # None: off
        timeout = request.timeout_s or self._timeout_s
        started = time.perf_counter()
        attempt_no = 0
        queued = 0.0
        streamed = on_text if provider.name not in self._unstreamed else None
        try:
            while True:
                attempt_no += 1
                waiting = time.perf_counter()
                async with provider.semaphore:
                    queued += time.perf_counter() - waiting
                    attempt = await self._attempt(spec, provider, body, request, timeout, streamed)
                failure = attempt.result.failure
                if streamed is not None and failure is not None and failure.kind == "bad_request":
                    # a server that refuses stream or stream_options: ask it plainly, from now on
                    self._unstreamed.add(provider.name)
                    streamed = None
                    log.info("stream_refused", provider=provider.name, status=failure.status)
                    continue
                if failure is None or (failure.kind not in _RETRYABLE and not _is_5xx(failure)):
                    break
                if attempt_no > self._retry.max_retries:
                    break
                if (attempt.retry_after or 0.0) > self._retry.max_retry_after_s:
                    break
                delay = self._retry.delay(attempt_no, attempt.retry_after)
                log.info("model_call_retry", model=spec, kind=failure.kind, delay_s=round(delay, 3))
                await asyncio.sleep(delay)
        except asyncio.CancelledError:  # the cycle was cancelled: the span still ends
            if span is not None:
                span.abandon("cancelled")
            raise
        if on_text is not None and streamed is None and attempt.result.ok:
            on_text(attempt.result.text)  # asked plainly: the whole answer, heard once
        result = attempt.result.model_copy(
            update={
                "latency_s": time.perf_counter() - started,
                "queue_s": round(queued, 3),  # an uncontended slot reads 0.0
                "attempts": attempt_no,
            }
        )
        if result.cost_usd is None and (price := self._price(spec, provider)) is not None:
            result.cost_usd = _priced(result.usage, price)
        log.debug(
            "model_call",
            model=spec,
            ok=result.ok,
            failure=result.failure.kind if result.failure else None,
            latency_s=round(result.latency_s, 3),
            attempts=attempt_no,
        )
        if span is not None:
            span.finish(result)
        return result

    async def _attempt(
        self,
        spec: str,
        provider: Provider,
        body: dict[str, Any],
        request: ChatRequest,
        timeout_s: float,
        on_text: TextSink | None = None,
    ) -> _Attempt:
        headers = provider.headers()

        def fail(kind: FailureKind, message: str, status: int | None = None) -> _Attempt:
            failure = CallFailure(
                model=spec, kind=kind, message=redact(message)[:500], status=status
            )
            return _Attempt(ChatResult(model=spec, failure=failure))

        data: Any = None
        try:
            async with asyncio.timeout(timeout_s):
                if on_text is None:
                    response = await self._send(provider, body, headers, timeout_s)
                else:
                    response = await self._send(
                        provider, stream_body(body), headers, timeout_s, stream=True
                    )
                    try:
                        if response.status_code == 200:
                            data = await read_completion(response, on_text)
                        else:
                            await response.aread()
                    finally:
                        await response.aclose()
        except StreamFailure as exc:
            return fail(exc.kind, str(exc))
        except (TimeoutError, httpx.TimeoutException):
            return fail("timeout", f"no answer within {timeout_s:g}s")
        except httpx.TransportError as exc:
            reason = str(exc) or type(exc).__name__
            return fail("connection", f"cannot reach {provider.base_url}: {reason}")
        except Exception as exc:  # a transport's own bug or crash (in-process ones): still data
            return fail("connection", f"the transport failed: {type(exc).__name__}: {exc}")
        status = response.status_code
        if status == 429:
            attempt = fail(
                "rate_limited", f"429 from {provider.name}: {_error_text(response)}", 429
            )
            attempt.retry_after = parse_retry_after(response.headers.get("retry-after"))
            return attempt
        if status >= 400:
            hint = _status_hint(status, provider)
            kind: FailureKind = "bad_request" if status in CALLER_ERROR_STATUSES else "http_error"
            return fail(kind, f"HTTP {status}: {_error_text(response)}{hint}", status)
        return self._parse(spec, response if data is None else data, request)

    def _parse(self, spec: str, answer: httpx.Response | Any, request: ChatRequest) -> _Attempt:
        """The attempt's result from the response (or, streamed, the completion it carried)."""

        def fail(kind: FailureKind, message: str, **spent: Any) -> _Attempt:
            failure = CallFailure(model=spec, kind=kind, message=redact(message)[:500])
            return _Attempt(ChatResult(model=spec, failure=failure, **spent))

        try:
            data = answer.json() if isinstance(answer, httpx.Response) else answer
            choice = data["choices"][0]
            message = choice["message"]
            content = message.get("content")
            if content is not None and not isinstance(content, str):
                raise TypeError("content is not a string")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            return fail("malformed_response", f"not a chat completion ({type(exc).__name__})")
        raw_usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        reported = raw_usage.get("cost")
        spent: dict[str, Any] = {
            "usage": _usage(raw_usage),
            "cost_usd": float(reported) if isinstance(reported, int | float) else None,
            "finish_reason": choice.get("finish_reason"),
            "response_model": data.get("model") if isinstance(data.get("model"), str) else None,
        }
        if message.get("refusal") or spent["finish_reason"] == "content_filter":
            return fail("refusal", str(message.get("refusal") or "content filter"), **spent)
        # The single entry point of model text: a key a provider echoes is masked here, before
        # anything parses, stores or prints it.
        text = redact_known((content or "").strip())
        if not text:
            return fail("empty", "the answer has no content", **spent)
        parsed: Any = None
        if request.json_schema is not None:
            try:
                parsed = parse_structured(text, request.json_schema)
            except StructuredOutputError as exc:
                return fail("schema_mismatch", str(exc), **spent)
        return _Attempt(ChatResult(model=spec, text=text, parsed=parsed, **spent))


def _is_5xx(failure: CallFailure) -> bool:
    return failure.kind == "http_error" and (failure.status or 0) >= 500


def _usage(raw: Any) -> Usage:
    if not isinstance(raw, dict):
        return Usage()
    prompt, completion = raw.get("prompt_tokens"), raw.get("completion_tokens")
    return Usage(
        prompt_tokens=prompt if isinstance(prompt, int) else None,
        completion_tokens=completion if isinstance(completion, int) else None,
    )


def _priced(usage: Usage, price: Price) -> float | None:
    if usage.prompt_tokens is None or usage.completion_tokens is None:
        return None
    return (
        usage.prompt_tokens * price.input_per_mtok + usage.completion_tokens * price.output_per_mtok
    ) / 1_000_000


ERROR_TEXT_CHARS = 200
"""How much of a provider's error body a failure message keeps (after redaction)."""


def _remote_transport(connections: int) -> httpx.AsyncBaseTransport:
    from apex.models.transport import AiohttpTransport  # aiohttp: imported once it is needed

    return AiohttpTransport(connections)


def _error_text(response: httpx.Response) -> str:
    """The provider's error message, redacted first and cut second (a key across the cut would
    otherwise survive in part)."""
    text = response.text
    try:
        data = response.json()
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            text = str(data["error"].get("message", ""))
    except ValueError:
        pass
    return redact(text)[:ERROR_TEXT_CHARS]


def _status_hint(status: int, provider: Provider) -> str:
    if status in (401, 403):
        return f" (check the API key of provider '{provider.name}')"
    if status == 404:
        return f" (check the model name and the base_url {provider.base_url})"
    return ""
