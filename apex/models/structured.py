"""Structured output: the ``response_format`` to send, and parse-and-repair for the answer.

Providers that accept a JSON schema get one in ``response_format``; for the rest, the schema is
stated in a system message. Either way the answer is parsed leniently (code fences, prose around
the object, trailing commas, truncation are repaired) and then validated against the schema.
"""

from __future__ import annotations

import json
import re
from typing import Any

import jsonschema
from json_repair import repair_json

_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
_VALIDATORS: dict[str, Any] = {}


class StructuredOutputError(ValueError):
    """The text could not be turned into JSON that matches the schema."""


def response_format(schema: dict[str, Any], name: str) -> dict[str, Any]:
    """The OpenAI ``response_format`` object for a JSON schema."""
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": False}}


def schema_instruction(schema: dict[str, Any]) -> str:
    """A system instruction asking for JSON matching ``schema`` (for providers without support)."""
    return (
        "Reply with one JSON object and nothing else. It must match this JSON schema:\n"
        + json.dumps(schema, separators=(",", ":"))
    )


def _candidates(text: str) -> list[str]:
    found = [m.group(1) for m in _FENCE.finditer(text)]
    start, end = text.find("{"), text.rfind("}")
    if start != -1:
        found.append(text[start : end + 1] if end > start else text[start:])
    found.append(text)
    return found


def _validator(schema: dict[str, Any]) -> Any:
    """The schema's validator, checked and built once: ``jsonschema.validate`` checks the
    schema against its metaschema on every call, which costs more than the validation."""
    key = json.dumps(schema, sort_keys=True, separators=(",", ":"))
    found = _VALIDATORS.get(key)
    if found is None:
        cls = jsonschema.validators.validator_for(schema)
        cls.check_schema(schema)
        found = _VALIDATORS[key] = cls(schema)
    return found


def parse_structured(text: str, schema: dict[str, Any]) -> Any:
    """The JSON value in ``text`` that validates against ``schema``, repaired if needed."""
    last_error = "no JSON object found"
    for candidate in _candidates(text):
        try:
            value = json.loads(candidate)
        except ValueError:
            value = repair_json(candidate, return_objects=True)
            if value in ("", None):
                continue
        exc = jsonschema.exceptions.best_match(_validator(schema).iter_errors(value))
        if exc is not None:  # the error jsonschema.validate would raise
            path = ".".join(str(p) for p in exc.absolute_path) or "(root)"
            last_error = f"{path}: {exc.message}"
            continue
        return value
    raise StructuredOutputError(last_error[:300])
