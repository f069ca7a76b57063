"""What the server serves: the shipped workflows, those in ``--workflows DIR``, and clients.

Every workflow is served as ``apex/<name>`` (a file in DIR may shadow a shipped name). The
providers and prices declared in any served workflow are known to all of them, and to
pass-through calls (``model: "lab:m1"``), so one base URL serves every model the server knows.

Model clients are shared between requests, one per distinct client configuration: connections
are reused, and a provider's ``concurrency`` bounds the calls in flight to it across the whole
server (not per cycle, as with one ``apex fuse`` process per cycle).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from apex.errors import WorkflowFileError
from apex.logging import get_logger
from apex.models.client import ModelClient
from apex.models.config import ClientSettings, Price, ProviderConfig
from apex.models.providers import split_spec
from apex.workflow import Workflow, load_workflow, parse_workflow, shipped_workflows

WORKFLOW_PREFIX = "apex/"
"""``model: "apex/<workflow>"`` asks for a fusion cycle on that workflow."""

log = get_logger("apex.server")


@dataclass(frozen=True)
class Served:
    """A served workflow: its name, where it came from, and its validated definition."""

    name: str
    """The name after ``apex/``."""
    source: str
    """A shipped name or the file's path (what a goal stores to find it again)."""
    workflow: Workflow
    """The workflow as written (see :meth:`Registry.workflow` for the one that runs)."""


def _mtime(directory: Path | None) -> int:
    """When files were last added to or removed from ``directory`` (0 without one)."""
    try:
        return directory.stat().st_mtime_ns if directory is not None else 0
    except OSError:
        return 0


def _scan(directory: Path | None, strict: bool) -> dict[str, Served]:
    found: dict[str, Served] = {}
    for path in sorted(directory.glob("*.toml")) if directory else []:
        try:
            wf = parse_workflow(path.read_text(encoding="utf-8"), str(path))
        except (OSError, WorkflowFileError) as error:
            if strict:
                raise WorkflowFileError(str(error)) from error
            log.warning("workflow_skipped", path=str(path), error=str(error))
            continue
        if wf.name in found:
            message = f"{path}: workflow name '{wf.name}' is also used by {found[wf.name].source}"
            if strict:
                raise WorkflowFileError(message)
            log.warning("workflow_skipped", path=str(path), error=message)
            continue
        found[wf.name] = Served(wf.name, str(path), wf)
    return found


class Registry:
    """Served workflows by name, the providers they declare, and shared model clients."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory
        """``--workflows DIR``, or None."""
        self._shipped = {n: Served(n, n, load_workflow(n)) for n in shipped_workflows()}
        self._scanned = _mtime(directory)
        self._local = _scan(directory, strict=True)
        self._merged: dict[str, Workflow] = {}
        self._clients: dict[str, ModelClient] = {}

    def _all(self) -> dict[str, Served]:
        return self._shipped | self._local

    def names(self) -> list[str]:
        """Every served workflow name."""
        return sorted(self._all())

    def get(self, name: str) -> Served | None:
        """The served workflow ``name``; when it is not known, DIR is scanned again if files
        were added since the last scan (so a file added while the server runs is served)."""
        found = self._all().get(name)
        if found is None and self.directory is not None:
            changed = _mtime(self.directory)
            if changed != self._scanned:
                scanned = _scan(self.directory, strict=False)
                if len(scanned) == len(list(self.directory.glob("*.toml"))):
                    self._scanned = changed  # else a file being written: look again next time
                self._local = scanned | self._local
                self._merged.clear()
                found = self._all().get(name)
        return found

    def providers(self) -> dict[str, ProviderConfig]:
        """Every provider declared by a served workflow (DIR's win over shipped ones)."""
        out: dict[str, ProviderConfig] = {}
        for served in self._all().values():
            out |= served.workflow.providers
        return out

    def prices(self) -> dict[str, Price]:
        """Every declared price."""
        out: dict[str, Price] = {}
        for served in self._all().values():
            out |= served.workflow.prices
        return out

    def workflow(self, name: str) -> Workflow | None:
        """The workflow ``name`` as it runs here: its own providers and prices over the
        server's (so overrides may name any model the server knows)."""
        if name not in self._merged:
            served = self.get(name)
            if served is None:
                return None
            wf = served.workflow
            self._merged[name] = wf.model_copy(
                update={
                    "providers": self.providers() | wf.providers,
                    "prices": self.prices() | wf.prices,
                }
            )
        return self._merged[name]

    def model_specs(self) -> list[str]:
        """Every ``provider:model`` a served workflow names."""
        specs: set[str] = set()
        for served in self._all().values():
            wf = served.workflow
            specs.update(m.model for m in wf.panel)
            specs.update(c.model for c in wf.critics)
            if wf.judge is not None:
                specs.add(wf.judge.model)
                if wf.judge.fallback:
                    specs.add(wf.judge.fallback)
        return sorted(specs)

    def client(self, settings: ClientSettings) -> ModelClient:
        """The shared client for ``settings`` (created on first use)."""
        key = repr(
            (
                sorted((n, p.model_dump_json()) for n, p in settings.providers.items()),
                sorted((s, p.model_dump_json()) for s, p in settings.prices.items()),
                settings.timeout_s,
                settings.max_retries,
                settings.max_tokens,
            )
        )
        client = self._clients.get(key)
        if client is None:
            client = self._clients[key] = ModelClient(settings)
        return client

    def passthrough_client(self) -> ModelClient:
        """The client of ``provider:model`` pass-through calls: every known provider."""
        return self.client(ClientSettings(providers=self.providers(), prices=self.prices()))

    async def aclose(self) -> None:
        """Close every shared client."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


def owner(spec: str) -> str:
    """The provider part of a model spec."""
    return split_spec(spec)[0]
