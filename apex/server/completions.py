"""``POST /v1/chat/completions`` and ``GET /v1/models``.

``model: "apex/<workflow>"`` runs one fusion cycle (:func:`apex.fusion.fuse`) on that workflow
over the request's messages; ``model: "provider:model"`` is one call through the shared
:class:`~apex.models.ModelClient`. Both answer in the same shape, as JSON or as a stream.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from apex.fusion import check_workflow
from apex.models.types import ChatRequest
from apex.server.errors import problem
from apex.server.registry import WORKFLOW_PREFIX, owner
from apex.server.requests import check_supported, conversation, evidence, max_tokens, resolve
from apex.server.schemas import ChatCompletionRequest
from apex.server.state import ServerState, state_of
from apex.server.streaming import respond
from apex.server.work import Work

router = APIRouter(prefix="/v1", tags=["chat"])


def _fusion_work(state: ServerState, body: ChatCompletionRequest) -> Work:
    name = body.model.removeprefix(WORKFLOW_PREFIX)
    base = state.registry.workflow(name)
    if base is None:
        served = ", ".join(f"{WORKFLOW_PREFIX}{n}" for n in state.registry.names())
        raise problem(
            404,
            f"no workflow '{name}' is served here (served: {served})",
            "model_not_found",
            "model",
        )
    talk = conversation(body)
    wf = resolve(base, body)
    client = state.registry.client(wf.client_settings)
    check_workflow(wf, client)
    return state.workshop.fusion(
        wf, client, talk, evidence(body), model=body.model, seed=body.seed, stream=body.stream
    )


def _passthrough_work(state: ServerState, body: ChatCompletionRequest) -> Work:
    if body.fusion is not None or any(
        isinstance(p, dict) and p.get("id") == "fusion" for p in body.plugins or []
    ):
        raise problem(
            400,
            f"panel overrides need model '{WORKFLOW_PREFIX}<workflow>', not '{body.model}'",
            "invalid_override",
            "model",
        )
    talk = conversation(body)
    client = state.registry.passthrough_client()
    client.model(body.model)  # an unknown provider or a missing key refuses the request now
    request = ChatRequest(
        messages=talk.messages,
        temperature=body.temperature,
        seed=body.seed,
        max_tokens=max_tokens(body),
    )
    return state.workshop.passthrough(client, body.model, request, stream=body.stream)


@router.post("/chat/completions", summary="A fused answer (apex/<workflow>) or one call")
async def chat_completions(body: ChatCompletionRequest, request: Request) -> Response:
    """OpenAI's chat completions: a fusion cycle for ``apex/<workflow>``, else one call.

    The response is a ``chat.completion`` whose ``usage`` sums every call of the cycle, with an
    ``apex`` object (run id, synthesis path, analysis, candidates, cost); with
    ``stream: true`` a stream of ``chat.completion.chunk`` events ending in ``[DONE]``.
    """
    state = state_of(request)
    check_supported(body)
    if body.model.startswith(WORKFLOW_PREFIX):
        work = _fusion_work(state, body)
    else:
        work = _passthrough_work(state, body)
    usage = body.stream_options is not None and body.stream_options.include_usage
    keepalive_s = state.config.keepalive_s
    return await respond(
        work, request, model=body.model, stream=body.stream, usage=usage, keepalive_s=keepalive_s
    )


@router.get("/models", summary="Every workflow as apex/<name>, and the provider models")
async def models(request: Request) -> dict[str, Any]:
    """Every served workflow as ``apex/<name>``, then every model the workflows name."""
    registry = state_of(request).registry
    data = [
        {"id": f"{WORKFLOW_PREFIX}{name}", "object": "model", "created": 0, "owned_by": "apex"}
        for name in registry.names()
    ]
    data += [
        {"id": spec, "object": "model", "created": 0, "owned_by": owner(spec)}
        for spec in registry.model_specs()
    ]
    return {"object": "list", "data": data}
