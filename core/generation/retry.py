"""Retrying transient failures, only before the first token.

Once text has reached the caller it cannot be taken back, so a failure after the first
token ends the stream with an error instead of starting the answer again.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tenacity import AsyncRetrying, RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from core.config import Settings
from core.errors import GenerationError
from core.generation.types import StreamEvent

logger = logging.getLogger("scribes.textgen")


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` tries in all; waits of ``backoff_s`` × 1, 2, 4 … between them.

    A server's ``Retry-After`` lengthens a wait, and no wait is longer than ``max_wait_s``.
    """

    attempts: int = 3
    backoff_s: float = 2.0
    max_wait_s: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(settings.retry_attempts, settings.retry_backoff_s, settings.retry_max_wait_s)

    def wait_s(self, attempt_number: int, error: BaseException | None) -> float:
        exponential = self.backoff_s * 2 ** (attempt_number - 1)
        retry_after = getattr(error, "retry_after_s", None) or 0.0
        return min(max(exponential, retry_after), self.max_wait_s)


Events = TypeVar("Events", Iterator[StreamEvent], AsyncIterator[StreamEvent])


@dataclass
class OpenedStream(Generic[Events]):
    """A stream whose first text (or its end) has arrived, and how many tries that took."""

    head: list[StreamEvent]
    rest: Events
    attempts: int


def is_transient(error: BaseException) -> bool:
    return isinstance(error, GenerationError) and error.transient


def open_with_retry(open_stream: Callable[[], Iterator[StreamEvent]], policy: RetryPolicy) -> OpenedStream[Iterator[StreamEvent]]:
    """Start a stream and read up to its first text, retrying transient failures on the way.

    Raises the last error when the attempts run out or the error is not transient.
    """
    retrying = Retrying(**_retry_rules(policy))
    with _attempts_counted(retrying):
        for attempt in retrying:
            with attempt:
                stream = open_stream()
                return OpenedStream(_read_until_text(stream), stream, attempt.retry_state.attempt_number)
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover


async def open_with_retry_async(open_stream: Callable[[], AsyncIterator[StreamEvent]], policy: RetryPolicy) -> OpenedStream[AsyncIterator[StreamEvent]]:
    """:func:`open_with_retry` on the event loop: the waits between tries hold no thread."""
    retrying = AsyncRetrying(**_retry_rules(policy))
    with _attempts_counted(retrying):
        async for attempt in retrying:
            with attempt:
                stream = open_stream()
                return OpenedStream(await _read_until_text_async(stream), stream, attempt.retry_state.attempt_number)
    raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover


@contextmanager
def _attempts_counted(retrying: Retrying | AsyncRetrying) -> Iterator[None]:
    """The error that ends the tries says how many there were (the message names them)."""
    try:
        yield
    except Exception as error:
        error.attempts = retrying.statistics.get("attempt_number", 1)  # type: ignore[attr-defined]
        raise


def _retry_rules(policy: RetryPolicy) -> dict[str, Any]:
    """The policy as tenacity's arguments, the same for both ways of retrying."""

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        logger.warning(
            "retrying after %s (attempt %d of %d, waiting %.1f s)",
            type(error).__name__,
            state.attempt_number,
            policy.attempts,
            state.upcoming_sleep,
        )

    return {
        "stop": stop_after_attempt(policy.attempts),
        "wait": lambda state: policy.wait_s(state.attempt_number, state.outcome.exception() if state.outcome else None),
        "retry": retry_if_exception(is_transient),
        "before_sleep": log_retry,
        "reraise": True,
    }


def _read_until_text(stream: Iterator[StreamEvent]) -> list[StreamEvent]:
    """The stream's events up to its first text or its end; a stream that fails there is closed."""
    head: list[StreamEvent] = []
    try:
        for event in stream:
            head.append(event)
            if event.text or event.finish_reason:
                break
    except BaseException:
        close = getattr(stream, "close", None)
        if close is not None:
            close()
        raise
    return head


async def _read_until_text_async(stream: AsyncIterator[StreamEvent]) -> list[StreamEvent]:
    head: list[StreamEvent] = []
    try:
        async for event in stream:
            head.append(event)
            if event.text or event.finish_reason:
                break
    except BaseException:
        await stream.aclose()  # type: ignore[attr-defined]
        raise
    return head
