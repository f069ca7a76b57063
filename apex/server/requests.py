"""From a chat-completions body to what the core takes: a prompt, a workflow, evidence inputs.

* The conversation: system (and developer) messages become instructions the panel sees in its
  system message and the judge as guidance; a single user turn is the prompt; a longer
  conversation is written out as a transcript ending with the latest user message.
* Panel overrides, in LiteLLM's shape (``fusion: {"models", "judge", "critics"}``) or
  OpenRouter's (``plugins: [{"id": "fusion", "analysis_models", "model"}]``, where a model
  without ``provider:`` is an OpenRouter one). The result is validated like a workflow file, so
  a judge that sits on the panel is refused here too.
* ``temperature``, ``max_tokens`` and ``seed`` apply to panel members that set none themselves;
  ``metadata`` carries ``category``, ``expected`` and ``n_options``.

Model names reach the workflow only; nothing from the request but the conversation reaches a
prompt, so the judge stays blind whatever the request says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError

from apex.models.types import Message
from apex.server.errors import problem
from apex.server.schemas import ChatCompletionRequest, ChatMessage
from apex.workflow import MAX_OPTIONS, Workflow

_ROLES: dict[str, Literal["system", "user", "assistant"]] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
}


@dataclass(frozen=True)
class Conversation:
    """The request's messages, as the fusion cycle takes them."""

    prompt: str
    """What the panel answers and the judge judges."""
    instructions: str
    """The caller's system messages ('' when none)."""
    messages: list[Message]
    """The messages as they are (for a pass-through call)."""


@dataclass(frozen=True)
class Evidence:
    """What the request's ``metadata`` says for the evidence."""

    category: str | None = None
    """Task category."""
    expected: str | None = None
    """The right answer, recorded as ground truth."""
    n_options: int | None = None
    """The question's number of options."""


def _text(message: ChatMessage, index: int) -> str:
    content = message.content
    if content is None or isinstance(content, str):
        return content or ""
    parts = []
    for j, part in enumerate(content):
        if part.type != "text" or part.text is None:
            raise problem(
                400,
                f"messages[{index}].content[{j}]: only text parts are supported",
                "unsupported_content",
                f"messages[{index}].content",
            )
        parts.append(part.text)
    return "".join(parts)


def conversation(request: ChatCompletionRequest) -> Conversation:
    """The prompt and instructions of the request's messages (400 when it has no user turn)."""
    messages: list[Message] = []
    for i, message in enumerate(request.messages):
        role = _ROLES.get(message.role)
        if role is None:
            raise problem(
                400,
                f"messages[{i}]: {message.role} messages are not supported (no tools)",
                "unsupported_role",
                f"messages[{i}].role",
            )
        messages.append(Message(role=role, content=_text(message, i)))
    system = [m.content for m in messages if m.role == "system" and m.content.strip()]
    turns = [m for m in messages if m.role != "system"]
    if not turns or turns[-1].role != "user" or not turns[-1].content.strip():
        raise problem(
            400, "the last message must be a non-empty user message", "invalid_messages", "messages"
        )
    if len(turns) == 1:
        prompt = turns[0].content
    else:
        earlier = "\n\n".join(f"{m.role}: {m.content}" for m in turns[:-1])
        prompt = f"Conversation so far:\n{earlier}\n\nLatest user message:\n{turns[-1].content}"
    return Conversation(prompt=prompt, instructions="\n\n".join(system), messages=messages)


def check_supported(request: ChatCompletionRequest) -> None:
    """Refuse what APEX cannot honour rather than ignore it silently."""
    if request.n not in (None, 1):
        raise problem(400, "n > 1 is not supported", "unsupported_parameter", "n")
    if request.tools:
        raise problem(400, "tools are not supported", "unsupported_parameter", "tools")
    kind = (request.response_format or {}).get("type", "text")
    if kind != "text":
        raise problem(
            400,
            f"response_format {kind!r} is not supported (only text)",
            "unsupported_parameter",
            "response_format",
        )


def max_tokens(request: ChatCompletionRequest) -> int | None:
    """``max_completion_tokens``, else ``max_tokens``."""
    return request.max_completion_tokens or request.max_tokens


def evidence(request: ChatCompletionRequest) -> Evidence:
    """``metadata.category``, ``metadata.expected`` and ``metadata.n_options``."""
    meta = request.metadata or {}
    category, expected, options = meta.get("category"), meta.get("expected"), meta.get("n_options")
    n_options: int | None = None
    if options is not None:
        try:
            n_options = int(options)
        except (TypeError, ValueError):
            n_options = 0
        if not 2 <= n_options <= MAX_OPTIONS:
            raise problem(
                400,
                f"metadata.n_options must be an integer from 2 to {MAX_OPTIONS}",
                "invalid_metadata",
                "metadata.n_options",
            )
    return Evidence(
        category=str(category) if category else None,
        expected=str(expected) if expected is not None else None,
        n_options=n_options,
    )


def _spec(value: Any, where: str, bare_provider: str | None) -> str:
    if isinstance(value, dict):
        value = value.get("model")
    if not isinstance(value, str) or not value.strip():
        raise problem(
            400, f"{where}: a model spec (provider:model) is required", "invalid_override", where
        )
    spec: str = value.strip()
    if ":" not in spec and bare_provider is not None:
        return f"{bare_provider}:{spec}"
    return spec


def _member(value: Any, where: str, bare: str | None) -> dict[str, Any]:
    member: dict[str, Any] = {"model": _spec(value, where, bare)}
    if isinstance(value, dict):
        member |= {k: value[k] for k in ("temperature", "seed", "max_tokens") if k in value}
    return member


def _override(request: ChatCompletionRequest) -> tuple[dict[str, Any], str, str | None] | None:
    """The override table, where it came from, and the provider of bare model names."""
    plugins = [p for p in request.plugins or [] if isinstance(p, dict) and p.get("id") == "fusion"]
    if request.fusion is not None and plugins:
        raise problem(
            400,
            "give the panel either as fusion or as plugins, not both",
            "invalid_override",
            "fusion",
        )
    if len(plugins) > 1:
        raise problem(400, "more than one fusion plugin", "invalid_override", "plugins")
    if request.fusion is not None:
        return request.fusion, "fusion", None
    if plugins:
        plugin = plugins[0]
        table = {
            "models": plugin.get("analysis_models", plugin.get("models")),
            "judge": plugin.get("model", plugin.get("judge")),
            "critics": plugin.get("critics"),
        }
        return {k: v for k, v in table.items() if v is not None}, "plugins[fusion]", "openrouter"
    return None


def resolve(base: Workflow, request: ChatCompletionRequest) -> Workflow:
    """``base`` with the request's panel overrides and sampling applied, validated."""
    found = _override(request)
    cap = max_tokens(request)
    if found is None and request.temperature is None and request.seed is None and cap is None:
        return base
    data = base.model_dump()
    if found is not None:
        table, where, bare = found
        models = table.get("models")
        if models is not None:
            if not isinstance(models, list) or not models:
                raise problem(
                    400,
                    f"{where}.models: a non-empty list of models is required",
                    "invalid_override",
                    f"{where}.models",
                )
            data["panel"] = [_member(m, f"{where}.models[{i}]", bare) for i, m in enumerate(models)]
        if table.get("judge") is not None:
            judge = table["judge"]
            data["judge"] = {"model": _spec(judge, f"{where}.judge", bare)}
            if isinstance(judge, dict) and "temperature" in judge:
                data["judge"]["temperature"] = judge["temperature"]
        critics = table.get("critics")
        if critics is not None:
            if not isinstance(critics, list):
                raise problem(
                    400,
                    f"{where}.critics: a list of models is required",
                    "invalid_override",
                    f"{where}.critics",
                )
            data["critics"] = [
                {"model": _spec(c, f"{where}.critics[{i}]", bare)} for i, c in enumerate(critics)
            ]
    for i, member in enumerate(data["panel"]):
        if request.temperature is not None and member.get("temperature") is None:
            member["temperature"] = request.temperature
        if request.seed is not None and member.get("seed") is None:
            member["seed"] = request.seed + i
        if cap is not None:
            member["max_tokens"] = min(cap, member.get("max_tokens") or cap)
    try:
        return Workflow.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = first["msg"].removeprefix("Value error, ")
        raise problem(
            400,
            f"workflow '{base.name}' with this request's overrides: "
            f"{where + ': ' if where else ''}{message}",
            "invalid_override",
        ) from None
