"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``, right status.

Routes refuse a request with :func:`problem` (FastAPI's own ``HTTPException`` carrying the
OpenAI fields); APEX's exceptions are mapped to a status here, in one place
(:func:`status_of`), and every message passes :func:`~apex.redact.redact` on the way out.

    400 invalid_request_error   a bad body, a bad override, a workflow or option APEX refuses
    401 invalid_api_key         no or wrong bearer key
    404 not_found               an unknown route, workflow, provider, goal or run
    409 conflict                a goal in a state that does not allow the change
    413 body_too_large          the body exceeds --max-body-bytes
    429 overloaded              --max-concurrent cycles are in flight (Retry-After)
    502 all_panel_failed ...    every panel member failed / the quorum was not met / upstream
    503 shutting_down           SIGTERM received: in-flight requests finish, new ones wait
    504 deadline_exceeded       the cycle (or call) passed --deadline-s, or the upstream timed out
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi import HTTPException as FastAPIHTTPException
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from apex.errors import (
    AllPanelFailed,
    ApexError,
    CallTimeout,
    ConfigError,
    GoalError,
    ModelCallError,
    QuorumFailed,
    RateLimited,
    StoreError,
    UnknownProviderError,
)
from apex.logging import get_logger
from apex.redact import redact
from apex.server.config import RETRY_AFTER_S

log = get_logger("apex.server")

_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    500: "server_error",
    502: "upstream_error",
    503: "server_error",
    504: "timeout_error",
}
_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed", 409: "conflict"}


def error_body(
    status: int, message: str, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """The OpenAI error object for ``status``."""
    return {
        "error": {
            "message": redact(message),
            "type": _TYPES.get(
                status, "server_error" if status >= 500 else "invalid_request_error"
            ),
            "param": param,
            "code": code or _CODES.get(status),
        }
    }


def error_bytes(status: int, message: str, code: str | None = None) -> bytes:
    """:func:`error_body` as JSON bytes (for the ASGI middleware and SSE error events)."""
    return json.dumps(error_body(status, message, code)).encode()


def problem(
    status: int,
    message: str,
    code: str | None = None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> HTTPException:
    """An ``HTTPException`` rendered in OpenAI's shape; ``raise problem(404, ...)``."""
    detail = {"message": message, "code": code, "param": param}
    return FastAPIHTTPException(status_code=status, detail=detail, headers=headers)


def overloaded(what: str) -> HTTPException:
    """429 with ``Retry-After``: the cap on work in flight is reached."""
    return problem(429, what, "overloaded", headers={"Retry-After": str(RETRY_AFTER_S)})


def status_of(error: ApexError) -> tuple[int, str | None]:
    """The HTTP status and error code of an APEX exception."""
    match error:
        case UnknownProviderError():
            return 404, "model_not_found"
        case ConfigError():
            return 400, "invalid_configuration"
        case AllPanelFailed():
            return 502, "all_panel_failed"
        case QuorumFailed():
            return 502, "quorum_failed"
        case CallTimeout():
            return 504, "upstream_timeout"
        case RateLimited():
            return 429, "upstream_rate_limited"
        case ModelCallError():
            return 502, f"upstream_{error.failure.kind}"
        case GoalError():
            return 409, "conflict"
        case StoreError():
            return 503, "store_unavailable"
    return 500, "internal_error"


def as_problem(error: ApexError) -> HTTPException:
    """``error`` as the ``HTTPException`` its status says."""
    status, code = status_of(error)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status in (429, 503) else None
    return problem(status, str(error), code, headers=headers)


def problem_body(exc: HTTPException) -> dict[str, Any]:
    """The OpenAI error object of an ``HTTPException`` (ours, or Starlette's own 404/405)."""
    detail = exc.detail
    if isinstance(detail, dict):
        return error_body(
            exc.status_code, str(detail.get("message")), detail.get("code"), detail.get("param")
        )
    return error_body(exc.status_code, str(detail))


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse(problem_body(exc), exc.status_code, headers=exc.headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"msg": "invalid request", "loc": ()}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    message = f"{param}: {first['msg']}" if param else str(first["msg"])
    return JSONResponse(error_body(400, message, "invalid_request", param), 400)


async def _apex_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApexError)
    http = as_problem(exc)
    return JSONResponse(problem_body(http), http.status_code, headers=http.headers)


async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
    log.error("server_error", error=redact(f"{type(exc).__name__}: {exc}"))
    return JSONResponse(error_body(500, f"internal error ({type(exc).__name__})"), 500)


def install_handlers(app: FastAPI) -> None:
    """Render every error the app can meet in OpenAI's shape."""
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(ApexError, _apex_error)
    app.add_exception_handler(Exception, _unexpected)
