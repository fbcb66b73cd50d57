"""Backends: one small Protocol, one module per way of running a model.

Adding a backend means one new module and one line in :func:`create_backend`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import anyio

from core.config import Mode, Settings
from core.generation.params import ChatMessage, GenerationParams
from core.generation.types import StreamEvent, TokenUsage


@dataclass(frozen=True)
class BackendInfo:
    backend: str
    model: str
    device: str
    context_window: int
    details: tuple[tuple[str, str], ...] = ()


class Backend(Protocol):
    name: str

    def stream(
        self, messages: list[ChatMessage], params: GenerationParams, cancel: threading.Event
    ) -> Iterator[StreamEvent]:
        """Yield text as it is produced; the last event carries the finish reason.

        Stops early once ``cancel`` is set. Raises :class:`~core.errors.GenerationError`
        subclasses, with ``transient`` set where a retry may help.
        """
        ...

    def count_tokens(self, messages: list[ChatMessage]) -> int:
        """Prompt tokens for these messages as this backend's model sees them (or an estimate)."""
        ...

    def info(self) -> BackendInfo: ...

    def usage(self) -> TokenUsage: ...

    def sent_parameters(self, params: GenerationParams) -> dict[str, object]:
        """The parameters exactly as this backend passes them on, for display and export."""
        ...


@runtime_checkable
class BatchingBackend(Protocol):
    """A backend that answers several prompts in one pass (the local model)."""

    def generate_batch(
        self, conversations: list[list[ChatMessage]], params: GenerationParams
    ) -> list[StreamEvent | BaseException]:
        """One final event per conversation, with the whole answer in ``text``."""
        ...


@runtime_checkable
class LoopStreamingBackend(Protocol):
    """A backend that can also stream on the event loop (the API one): no thread waits on it."""

    def astream(
        self, messages: list[ChatMessage], params: GenerationParams, cancel: threading.Event
    ) -> AsyncIterator[StreamEvent]:
        """:meth:`Backend.stream`, read with ``async for``."""
        ...


def stream_on_loop(
    backend: Backend, messages: list[ChatMessage], params: GenerationParams, cancel: threading.Event
) -> AsyncIterator[StreamEvent]:
    """The backend's stream for the event loop; one that blocks (the local model) is read on a worker thread."""
    if isinstance(backend, LoopStreamingBackend):
        return backend.astream(messages, params, cancel)
    return _read_on_threads(backend.stream(messages, params, cancel), cancel)


async def _read_on_threads(events: Iterator[StreamEvent], cancel: threading.Event) -> AsyncIterator[StreamEvent]:
    """Each ``next`` on a worker thread, as Gradio reads a plain generator.

    A cancelled task does not leave a thread inside the stream: the read under way is
    shielded from the cancellation, the stream is told to stop, and it is closed only
    once that read has returned (closing a generator that another thread is running fails).
    """
    reading: asyncio.Task[StreamEvent | None] | None = None
    try:
        while True:
            reading = asyncio.ensure_future(anyio.to_thread.run_sync(next, events, None))
            event = await asyncio.shield(reading)
            if event is None:
                return
            yield event
    finally:
        cancel.set()  # a stream ends at its next token, so the read under way returns soon
        if reading is not None and not reading.done():
            await asyncio.wait([reading])
        await anyio.to_thread.run_sync(events.close)  # type: ignore[attr-defined]


def create_backend(mode: Mode, settings: Settings) -> Backend:
    """Build the backend for ``mode``; heavy imports (torch, transformers) happen only here."""
    if mode == "api":
        from core.generation.backends.api import InferenceAPIBackend

        return InferenceAPIBackend(settings)
    from core.generation.backends.local import LocalTransformersBackend

    return LocalTransformersBackend(settings)


class UsageMeter:
    """Thread-safe running total of a backend's token usage."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._usage = TokenUsage()

    def add(self, prompt_tokens: int, output_tokens: int) -> None:
        with self._lock:
            self._usage = self._usage.plus(prompt_tokens, output_tokens)

    def snapshot(self) -> TokenUsage:
        with self._lock:
            return self._usage
