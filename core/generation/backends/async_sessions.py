"""One pooled HTTP client per event loop, shared by every ``AsyncInferenceClient``.

huggingface_hub gives each ``AsyncInferenceClient`` a new ``httpx2.AsyncClient``: each one
builds its TLS context from the certificate bundle, a cost in CPU that a busy app pays at
every question, and none of them keeps a connection for the next request. The API
backend still needs a client per request, because a streamed response stays in the
client's exit stack until the client closes. So the hub's session factory (its own hook,
``set_async_client_factory``) hands each client a lease on its event loop's one pooled
client instead, and closing the client ends the lease, not the pool.
"""

from __future__ import annotations

import asyncio
import weakref
from types import TracebackType

import httpx2
from huggingface_hub import set_async_client_factory
from huggingface_hub.utils._http import default_async_client_factory  # the hub's own settings and hooks

_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx2.AsyncClient] = weakref.WeakKeyDictionary()
_installed = False


class _Lease:
    """What the hub enters as its session: the shared client, which leaving does not close."""

    def __init__(self, client: httpx2.AsyncClient):
        self._client = client

    async def __aenter__(self) -> httpx2.AsyncClient:
        return self._client

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        return None


def _lease() -> _Lease:
    loop = asyncio.get_running_loop()  # a pool's connections belong to the loop that opened them
    client = _pools.get(loop)
    if client is None or client.is_closed:
        client = _pools[loop] = default_async_client_factory()
    return _Lease(client)


def share_async_sessions() -> None:
    """Make every ``AsyncInferenceClient`` in this process use its loop's pooled client."""
    global _installed
    if not _installed:
        set_async_client_factory(_lease)  # type: ignore[arg-type]  # the hub only enters what it gets
        _installed = True
