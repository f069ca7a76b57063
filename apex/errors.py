"""APEX's one exception tree.

Every error APEX raises derives from :class:`ApexError`; library errors (httpx, pydantic,
SQLAlchemy, llama.cpp) are mapped to the most specific type here, in one place each, with
``raise ... from exc``. Messages are one line, say what is wrong and how to fix it, and never
contain an API key.

    ApexError
    ├── ConfigError                 a workflow file, model spec or option is wrong
    │   ├── WorkflowFileError       names the file and the key
    │   ├── UnknownProviderError    ``foo:model`` where no provider ``foo`` is declared
    │   ├── MissingAPIKeyError      names the environment variable to set
    │   ├── RemoteRequestRefused    a non-loopback request while remote requests are blocked
    │   └── ReplayDataError         an answers CSV or a replay panel is invalid
    ├── ModelCallError              a model call ended in a typed failure (``.failure``)
    │   ├── CallTimeout             timeout
    │   ├── RateLimited             rate_limited
    │   ├── HTTPStatusFailure       http_error, bad_request (``.failure.status``)
    │   ├── ConnectionFailure       connection (also: unreachable base URL)
    │   ├── MalformedResponse       malformed_response
    │   ├── EmptyResponse           empty
    │   ├── RefusalResponse         refusal
    │   └── SchemaMismatch          schema_mismatch
    ├── FusionError                 a cycle produced no answer (``FusionResult.raise_for_failure``)
    │   ├── AllPanelFailed          every panel member failed (``all_panel_failed``)
    │   └── QuorumFailed            fewer than ``quorum`` members answered (``quorum_failed``)
    ├── StoreError                  the evidence store cannot be read or written
    │   └── RunNotRecorded          a finished run was not recorded (``.result``, ``.spooled``)
    ├── GoalError                   a goal cannot be started, resumed or changed
    │   ├── GoalBusy                another process runs the goal now (names the holder)
    │   └── GoalInterrupted         the goal stopped on an error that can pass; resumable
    ├── ScheduleError               a schedule is unknown, exists already, or its rule is bad
    └── WorkerError                 a worker cannot start (e.g. a second one on SQLite)
"""

from __future__ import annotations

from typing import Any, Protocol


class Failure(Protocol):
    """What a typed call failure carries (``apex.models.types.CallFailure`` is one)."""

    @property
    def model(self) -> str:
        """The model spec."""
        ...

    @property
    def kind(self) -> str:
        """The failure kind."""
        ...

    @property
    def message(self) -> str:
        """One line saying what happened."""
        ...


class ApexError(Exception):
    """Base of every error APEX raises."""


class ConfigError(ApexError):
    """A workflow, model spec or option is invalid."""


class WorkflowFileError(ConfigError):
    """A workflow file cannot be read or has a bad key; the message names the file and key."""


class UnknownProviderError(ConfigError):
    """A model spec names a provider that is neither built in nor declared in the workflow."""


class MissingAPIKeyError(ConfigError):
    """A provider needs an API key and its environment variable is unset."""


class RemoteRequestRefused(ConfigError):
    """A request to a non-loopback host was made while remote requests are blocked (tests)."""


class ReplayDataError(ConfigError):
    """An answers CSV or a panel is invalid; the message names the file and the problem."""


class ModelCallError(ApexError):
    """A model call failed; ``failure`` holds the typed failure recorded as evidence."""

    def __init__(self, failure: Failure) -> None:
        super().__init__(f"{failure.model}: {failure.kind}: {failure.message}")
        self.failure = failure


class CallTimeout(ModelCallError):
    """The call did not finish within its timeout."""


class RateLimited(ModelCallError):
    """The provider answered 429 on every attempt."""


class HTTPStatusFailure(ModelCallError):
    """The provider answered a non-retryable or persistent HTTP error status."""


class ConnectionFailure(ModelCallError):
    """The provider could not be reached."""


class MalformedResponse(ModelCallError):
    """The response body was not a valid chat-completions object."""


class EmptyResponse(ModelCallError):
    """The response carried no content."""


class RefusalResponse(ModelCallError):
    """The model refused to answer."""


class SchemaMismatch(ModelCallError):
    """Structured output could not be parsed or repaired into the requested schema."""


class FusionError(ApexError):
    """A fusion cycle could not produce an answer."""


class AllPanelFailed(FusionError):
    """Every panel member failed, so there is nothing to synthesize."""


class QuorumFailed(FusionError):
    """Fewer panel members answered than the workflow's ``quorum``."""


class StoreError(ApexError):
    """The evidence store cannot be opened, migrated, read or written."""


class RunNotRecorded(StoreError):
    """A cycle finished, but its run could not be recorded: the answer is not lost.

    ``result`` holds the finished result (a ``FusionResult``) and ``spooled`` the spool file the
    run waits in for ``apex db recover`` (None when it could not be spooled either).
    """

    def __init__(self, message: str, *, result: Any, spooled: str | None) -> None:
        super().__init__(message)
        self.result = result
        self.spooled = spooled


class GoalError(ApexError):
    """A goal cannot be started, resumed or changed in its current state."""


class GoalBusy(GoalError):
    """The goal is being run by another process now; the message names it."""


class GoalInterrupted(GoalError):
    """The goal stopped on an error that can pass (a key, the database, a provider, a worker).

    Its state is ``interrupted`` and it resumes from its checkpoint; workers raise this so that
    the job queue retries the goal later.
    """


class ScheduleError(ApexError):
    """A schedule is unknown or exists already, or its rule, time zone or options are bad."""


class WorkerError(ApexError):
    """A worker cannot start or serve the database (e.g. a second worker on one SQLite file)."""
