"""Providers: where a ``provider:model`` spec is sent, with which key, at what concurrency.

Built in: ``openrouter`` (``OPENROUTER_API_KEY``), ``openai`` (``OPENAI_API_KEY``) and ``local``
(the embedded llama.cpp model, no key, no network). A workflow may declare more under
``[providers.NAME]`` with a ``base_url`` and an optional ``api_key_env``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

from apex.errors import MissingAPIKeyError, RemoteRequestRefused, UnknownProviderError
from apex.models.config import DEFAULT_CONCURRENCY, Price, ProviderConfig
from apex.models.contexts import PARALLEL_GENERATIONS
from apex.models.local import LocalTransport
from apex.redact import register_secret

OPENROUTER_BASE_URL = "https://openrouter.ai/api/v1"
OPENAI_BASE_URL = "https://api.openai.com/v1"
LOCAL_BASE_URL = "http://apex-local/v1"
BLOCK_REMOTE_ENV = "APEX_BLOCK_REMOTE"
"""When set to 1, requests to non-loopback hosts are refused (the test suite sets it)."""

BUILTIN_PROVIDERS: dict[str, ProviderConfig] = {
    "openrouter": ProviderConfig(base_url=OPENROUTER_BASE_URL, api_key_env="OPENROUTER_API_KEY"),
    "openai": ProviderConfig(base_url=OPENAI_BASE_URL, api_key_env="OPENAI_API_KEY"),
    "local": ProviderConfig(
        base_url=LOCAL_BASE_URL, concurrency=PARALLEL_GENERATIONS, json_schema=True
    ),
}
LOCAL_PRICE = Price(input_per_mtok=0.0, output_per_mtok=0.0)
"""The local model runs on this machine: no per-token charge."""

_IN_PROCESS: dict[str, httpx.AsyncBaseTransport] = {}


def register_transport(host: str, transport: httpx.AsyncBaseTransport | None) -> None:
    """Serve every provider whose base URL has this host in-process (None: stop).

    For test doubles such as :class:`apex.testing.InProcessServer`: requests go through the
    whole client (body, retries, parsing) but no socket or thread.
    """
    if transport is None:
        _IN_PROCESS.pop(host, None)
    else:
        _IN_PROCESS[host] = transport


def split_spec(spec: str) -> tuple[str, str]:
    """``provider:model`` into its two parts."""
    provider, sep, model = spec.partition(":")
    if not sep or not provider or not model:
        raise UnknownProviderError(f"'{spec}' is not provider:model (e.g. 'local:smollm2')")
    return provider, model


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Provider:
    """A resolved provider: base URL, key, concurrency limit and capabilities."""

    name: str
    base_url: str
    api_key: SecretStr | None = field(default=None, repr=True)
    concurrency: int = DEFAULT_CONCURRENCY
    json_schema: bool = True
    transport: httpx.AsyncBaseTransport | None = field(default=None, repr=False)
    _semaphore: asyncio.Semaphore | None = field(default=None, repr=False)

    @property
    def semaphore(self) -> asyncio.Semaphore:
        """The per-provider concurrency limit (created on first use, in the running loop)."""
        if self._semaphore is None:
            self._semaphore = asyncio.Semaphore(self.concurrency)
        return self._semaphore

    def headers(self) -> dict[str, str]:
        """Request headers, including the key when there is one."""
        headers = {"Content-Type": "application/json"}
        if self.api_key is not None:
            headers["Authorization"] = f"Bearer {self.api_key.get_secret_value()}"
        return headers

    def check_allowed(self) -> None:
        """Refuse a non-loopback request when remote requests are blocked."""
        if self.transport is not None or os.environ.get(BLOCK_REMOTE_ENV) != "1":
            return
        if not _is_loopback(self.base_url):
            raise RemoteRequestRefused(
                f"provider '{self.name}' ({self.base_url}) is not on loopback and "
                f"{BLOCK_REMOTE_ENV}=1 refuses remote model requests; unset it to allow them"
            )


def provider_configs(
    declared: Mapping[str, ProviderConfig] | None = None,
) -> dict[str, ProviderConfig]:
    """Built-in providers overlaid with ``declared`` ones (a workflow's ``[providers.X]``)."""
    return dict(BUILTIN_PROVIDERS) | dict(declared or {})


def resolve_provider(name: str, declared: Mapping[str, ProviderConfig] | None = None) -> Provider:
    """Build the provider ``name``, loading its key from the environment."""
    configs = provider_configs(declared)
    config = configs.get(name)
    if config is None:
        known = ", ".join(sorted(configs))
        raise UnknownProviderError(
            f"unknown provider '{name}' (known: {known}); declare it as [providers.{name}] "
            "with a base_url in the workflow file"
        )
    key: SecretStr | None = None
    if config.api_key_env:
        raw = os.environ.get(config.api_key_env, "").strip()
        if not raw:
            raise MissingAPIKeyError(
                f"provider '{name}' needs an API key: set the environment variable "
                f"{config.api_key_env}"
            )
        register_secret(raw)
        key = SecretStr(raw)
    transport = _IN_PROCESS.get(urlsplit(config.base_url).hostname or "")
    if name == "local":
        transport = LocalTransport()
    return Provider(
        name=name,
        base_url=config.base_url.rstrip("/"),
        api_key=key,
        concurrency=config.concurrency,
        json_schema=config.json_schema,
        transport=transport,
    )
