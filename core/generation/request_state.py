"""What the service holds for one request while it runs: the request made ready for a
backend, and its answer as the stream brings it in. Both ways of streaming (a thread, the
event loop) fill the same two, so they time, cache and log alike.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass, field

from core.generation.backends import Backend, BackendInfo
from core.generation.params import ChatMessage, GenerationParams
from core.generation.telemetry import GenerationLogRecord
from core.generation.types import StreamEvent, StreamUpdate, TruncationReport


@dataclass
class StreamingAnswer:
    """An answer as its stream comes in: the text so far, when its first word came, how it ended."""

    started: float = field(default_factory=time.perf_counter)
    text: str = ""
    ttft_ms: float | None = None
    final: StreamEvent = field(default_factory=StreamEvent)

    def add(self, event: StreamEvent) -> StreamUpdate | None:
        """The update to hand on for this event, if it brings text."""
        if event.finish_reason:
            self.final = event
        if not event.text:
            return None
        self.ttft_ms = self.ttft_ms if self.ttft_ms is not None else self.elapsed_ms()
        self.text += event.text
        return StreamUpdate(delta=event.text, text=self.text)

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000


@dataclass
class PreparedRequest:
    """A request made ready for a backend: resolved parameters, fitted prompt, log record."""

    backend: Backend
    info: BackendInfo
    messages: list[ChatMessage]
    truncation: TruncationReport | None
    params: GenerationParams
    requested_max_new_tokens: int | None
    record: GenerationLogRecord

    @property
    def cache_key(self) -> Hashable | None:
        if not self.params.deterministic:
            return None
        return (self.info.backend, self.info.model, tuple((m.role, m.content) for m in self.messages), self.params)
