"""Workflow definitions: TOML files loaded by name (shipped) or by path, validated by pydantic.

A bad file raises :class:`~apex.errors.WorkflowFileError` with one line naming the file and the
key, e.g. ``lab.toml: panel[1].model: field required``.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from apex.errors import WorkflowFileError
from apex.models.config import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_RETRIES,
    DEFAULT_MAX_TOKENS,
    DEFAULT_TIMEOUT_S,
    ClientSettings,
    Price,
    ProviderConfig,
)

DEFAULT_WORKFLOW = "local"
MAX_PANEL = 8
MAX_OPTIONS = 26
DEFAULT_COOLDOWN_FAILURES = 3
DEFAULT_COOLDOWN_S = 300.0
MAX_TIMEOUT_S = 3600.0
"""The longest per-call timeout a workflow may set (an hour)."""
MAX_RETRIES = 10
"""The most retries a workflow may ask for (with backoff, minutes of waiting already)."""

_MODEL_SPEC = re.compile(r"^[A-Za-z0-9_.-]+:.+$")


def _check_spec(spec: str) -> str:
    if not _MODEL_SPEC.match(spec):
        raise ValueError(f"'{spec}' is not provider:model (e.g. 'local:smollm2')")
    return spec


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PanelMember(_Strict):
    """One generator on the panel; the same model may appear several times."""

    model: str
    """``provider:model``."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    """Sampling temperature for this member."""
    seed: int | None = None
    """Sampling seed for this member."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Token cap for this member's answer."""

    _spec = field_validator("model")(_check_spec)


class CriticConfig(_Strict):
    """A critic that reviews the anonymized candidates."""

    model: str
    """``provider:model``."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    """Sampling temperature."""

    _spec = field_validator("model")(_check_spec)


class JudgeConfig(_Strict):
    """The judge, structurally separate from the panel."""

    model: str
    """``provider:model``."""
    fallback: str | None = None
    """A second judge tried when the first fails twice."""
    temperature: float | None = Field(default=None, ge=0, le=2)
    """Sampling temperature."""
    max_tokens: int | None = Field(default=None, ge=1)
    """Token cap for the verdict (default: the larger of the workflow's and 1024)."""

    _spec = field_validator("model")(_check_spec)

    @field_validator("fallback")
    @classmethod
    def _fallback_spec(cls, value: str | None) -> str | None:
        return None if value is None else _check_spec(value)


class ExtractConfig(_Strict):
    """How ``vote`` synthesis extracts a comparable answer from free text."""

    kind: Literal["choice", "number", "exact", "regex"] = "choice"
    """choice: a letter A-J; number: the last number; exact: normalized text; regex: group 1."""
    pattern: str | None = None
    """The regex for ``kind = "regex"`` (its first group, or whole match, is the answer)."""
    n_options: int | None = Field(default=None, ge=2, le=MAX_OPTIONS)
    """choice: how many options every question has (else the item's, else counted from the
    prompt's option lines); it corrects agreement and learned weights for chance."""

    @model_validator(mode="after")
    def _regex_needs_pattern(self) -> ExtractConfig:
        if self.kind == "regex":
            if not self.pattern:
                raise ValueError("kind = 'regex' needs a pattern")
            try:
                re.compile(self.pattern)
            except re.error as exc:
                raise ValueError(f"pattern is not a valid regex: {exc}") from exc
        return self


class Workflow(_Strict):
    """A complete workflow: providers, panel, critics, judge and synthesis settings."""

    name: str
    """Workflow name."""
    description: str = ""
    """What this workflow is for."""
    synthesis: Literal["judge", "vote", "select"] = "judge"
    """judge: the judge writes the answer; vote: weighted plurality; select: judge picks one."""
    allow_self_judge: bool = False
    """Allow the judge model to also sit on the panel."""
    quorum: int = Field(default=1, ge=1)
    """Minimum successful panel members to go on."""
    category: str = "general"
    """Default task category for evidence."""
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, gt=0, le=MAX_TIMEOUT_S, allow_inf_nan=False)
    """Per-call timeout, in seconds (at most an hour)."""
    max_retries: int = Field(default=DEFAULT_MAX_RETRIES, ge=0, le=MAX_RETRIES)
    """Retries on 429, 5xx and connection errors (at most 10)."""
    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, ge=1)
    """Default token cap per call."""
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1)
    """Bound on concurrent calls in one cycle."""
    selection: Literal["all", "budget"] = "all"
    """budget: leave out members whose record says they add nothing (see apex.evidence.panel)."""
    cooldown_failures: int = Field(default=DEFAULT_COOLDOWN_FAILURES, ge=1)
    """Skip a member after this many failed calls in a row..."""
    cooldown_s: float = Field(default=DEFAULT_COOLDOWN_S, ge=0, allow_inf_nan=False)
    """...until this many seconds have passed; then it is tried again."""
    db: str | None = None
    """Database URL for the evidence store (``--db`` and ``APEX_DB`` take precedence)."""
    providers: dict[str, ProviderConfig] = Field(default_factory=dict)
    """Named providers in addition to the built-in ones."""
    prices: dict[str, Price] = Field(default_factory=dict)
    """Declared prices by model spec."""
    panel: list[PanelMember] = Field(min_length=1, max_length=MAX_PANEL)
    """The generators, 1 to 8."""
    critics: list[CriticConfig] = Field(default_factory=list)
    """Critics, 0 or more."""
    judge: JudgeConfig | None = None
    """The judge; required for judge and select synthesis."""
    extract: ExtractConfig | None = None
    """Answer extraction for vote synthesis and the judge-failure vote (see ``extraction``)."""

    @property
    def extraction(self) -> ExtractConfig:
        """The declared extraction, else ``choice`` for vote synthesis and ``exact`` otherwise."""
        if self.extract is not None:
            return self.extract
        return ExtractConfig(kind="choice" if self.synthesis == "vote" else "exact")

    @property
    def client_settings(self) -> ClientSettings:
        """What the model client needs from this workflow: providers, prices, limits."""
        return ClientSettings(
            providers=dict(self.providers),
            prices=dict(self.prices),
            timeout_s=self.timeout_s,
            max_retries=self.max_retries,
            max_tokens=self.max_tokens,
        )

    @model_validator(mode="after")
    def _judge_when_needed(self) -> Workflow:
        if self.synthesis in ("judge", "select") and self.judge is None:
            raise ValueError(f"synthesis = '{self.synthesis}' needs a [judge] table")
        return self

    @model_validator(mode="after")
    def _quorum_within_panel(self) -> Workflow:
        if self.quorum > len(self.panel):
            size = f"{len(self.panel)} member{'s' if len(self.panel) > 1 else ''}"
            raise ValueError(
                f"quorum = {self.quorum} is larger than the panel ({size}): no cycle could "
                "ever reach it; lower quorum or add panel members"
            )
        return self

    @model_validator(mode="after")
    def _judge_apart_from_panel(self) -> Workflow:
        """The judge is structurally separate: a panel model may not judge unless allowed."""
        if self.judge is None or self.allow_self_judge:
            return self
        panel = {m.model for m in self.panel}
        for spec in (self.judge.model, self.judge.fallback):
            if spec in panel:
                raise ValueError(
                    f"judge model {spec} also sits on the panel; use a different judge "
                    "or set allow_self_judge = true"
                )
        return self


def _shipped_dir() -> Path:
    """Where shipped workflows live: inside the wheel, or the source tree when editable."""
    packaged = Path(__file__).parent / "_data" / "workflows"
    return packaged if packaged.is_dir() else Path(__file__).parent.parent / "workflows"


def shipped_workflows() -> list[str]:
    """Names of the workflows shipped with APEX."""
    return sorted(p.stem for p in _shipped_dir().glob("*.toml"))


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def parse_workflow(text: str, source: str) -> Workflow:
    """Parse TOML text into a workflow; ``source`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise WorkflowFileError(f"{source}: not valid TOML: {exc}") from exc
    data.setdefault("name", Path(source).stem)
    try:
        return Workflow.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        msg = first["msg"].removeprefix("Value error, ")
        where = _format_loc(first["loc"])
        raise WorkflowFileError(f"{source}: {where + ': ' if where else ''}{msg}") from None


def workflow_text(name_or_path: str | Path | None = None) -> tuple[str, str]:
    """The TOML text of a workflow given by shipped name or path, and where it came from."""
    target = str(name_or_path or DEFAULT_WORKFLOW)
    path = Path(target)
    if not path.is_file():
        shipped = _shipped_dir() / f"{target}.toml"
        if not shipped.is_file():
            names = ", ".join(shipped_workflows())
            raise WorkflowFileError(
                f"{target}: no such workflow file or shipped workflow (shipped: {names})"
            )
        path = shipped
    try:
        return path.read_text(encoding="utf-8-sig"), str(path)
    except OSError as exc:
        raise WorkflowFileError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise WorkflowFileError(f"{path}: {not_utf8(path.read_bytes(), exc)}") from None


def not_utf8(data: bytes, error: UnicodeDecodeError) -> str:
    """Why bytes that are not UTF-8 cannot be read, and the fix: one line for a message."""
    found = f"byte 0x{data[error.start]:02x} at offset {error.start}"
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return f"the file is UTF-16 ({found}), not UTF-8; save it as UTF-8"
    return f"not UTF-8 text ({found}); save it as UTF-8"


def load_workflow(name_or_path: str | Path | None = None) -> Workflow:
    """Load a workflow by shipped name (``local``, ``fusion``...) or by file path."""
    return parse_workflow(*workflow_text(name_or_path))
