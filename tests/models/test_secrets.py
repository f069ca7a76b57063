"""API keys never reach logs, reprs, error messages or tracebacks."""

from __future__ import annotations

import io
import traceback
from contextlib import redirect_stderr

import pytest
import structlog
from structlog.testing import capture_logs

from apex.errors import MissingAPIKeyError, ModelCallError
from apex.logging import configure_logging, get_logger
from apex.models import ChatRequest, ModelClient
from apex.redact import redact
from apex.testing import Fail, TestServer
from apex.workflow import parse_workflow

KEY = "sk-test-SUPERSECRET-0123456789abcdef"


def keyed(base_url: str) -> str:
    return (
        f'name = "k"\n[providers.lab]\nbase_url = "{base_url}"\napi_key_env = "LAB_KEY"\n'
        '[[panel]]\nmodel = "lab:m1"\n[judge]\nmodel = "lab:judge"\n'
    )


async def test_key_is_sent_but_never_logged_or_shown(
    server: TestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LAB_KEY", KEY)
    wf = parse_workflow(keyed(server.base_url), "k.toml")
    server.script("m1", Fail(401))
    with capture_logs() as events:
        async with ModelClient(wf.client_settings) as c:
            result = await c.chat("lab:m1", ChatRequest.of("q"))
            provider_repr = repr(c.provider("lab"))
    assert server.requests_for("m1")[0].body["messages"]  # the request really went out
    assert result.failure is not None
    with pytest.raises(ModelCallError) as info:
        result.raise_for_failure()
    tb = "".join(traceback.format_exception(info.value))
    for text in (provider_repr, result.model_dump_json(), tb, str(events)):
        assert KEY not in text
    assert "check the API key of provider 'lab'" in result.failure.message


def test_rendered_logs_mask_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAB_KEY", KEY)
    ModelClient(parse_workflow(keyed("http://127.0.0.1:1/v1"), "k.toml").client_settings).model(
        "lab:m1"
    )
    stream = io.StringIO()
    try:
        with redirect_stderr(stream):
            configure_logging("DEBUG")
            get_logger().error("oops", detail=f"Authorization: Bearer {KEY}", key=KEY)
    finally:
        structlog.reset_defaults()
        configure_logging()
    assert "oops" in stream.getvalue() and KEY not in stream.getvalue()


def test_missing_key_names_the_variable(server: TestServer) -> None:
    wf = parse_workflow(keyed(server.base_url), "k.toml")
    with pytest.raises(MissingAPIKeyError, match="LAB_KEY"):
        ModelClient(wf.client_settings).model("lab:m1")


def test_redact_masks_registered_and_shaped_keys() -> None:
    assert "sk-or-v1-abcdef123456" not in redact("key sk-or-v1-abcdef123456 here")
    assert redact("Authorization: Bearer abc.def") == "Authorization: Bearer [REDACTED]"
