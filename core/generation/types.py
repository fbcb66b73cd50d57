"""What the service gives back: typed values that the UI and the evaluation runner format."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.generation.params import GenerationParams
from core.scoring.repetition import RepetitionStats


@dataclass(frozen=True)
class StreamEvent:
    """One piece of a backend's stream. The last one carries ``finish_reason`` (and usage if known)."""

    text: str = ""
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    usage_estimated: bool = False  # the endpoint sent no counts; these are our estimates
    elapsed_s: float | None = None  # a batch's row: from the batch call to this row's end (else the caller times it)


@dataclass(frozen=True)
class TruncationReport:
    """What was cut so the prompt fits ``context_window - max_new_tokens``."""

    budget_tokens: int
    original_tokens: int
    final_tokens: int
    dropped_history_messages: int = 0
    dropped_context_passages: int = 0
    question_chars_removed: int = 0
    dropped_retrieved_passages: int = 0  # Scripture passages found by retrieval (core.retrieval)

    def describe(self) -> str:
        parts = []
        if self.dropped_retrieved_passages:
            parts.append(f"{self.dropped_retrieved_passages} retrieved Scripture passage(s)")
        if self.dropped_history_messages:
            parts.append(f"{self.dropped_history_messages} earlier message(s)")
        if self.dropped_context_passages:
            parts.append(f"{self.dropped_context_passages} context passage(s)")
        if self.question_chars_removed:
            parts.append(f"{self.question_chars_removed} characters from the middle of the question")
        return f"The prompt was too long for the model ({self.original_tokens} tokens, room for {self.budget_tokens}); left out: {', '.join(parts)}."


@dataclass(frozen=True)
class ValidationReport:
    """Checks on the answer. ``passed`` is False when any check failed."""

    too_short: bool
    repetitive: bool
    hit_token_limit: bool
    repetition: RepetitionStats

    @property
    def passed(self) -> bool:
        return not (self.too_short or self.repetitive)

    @property
    def flags(self) -> tuple[str, ...]:
        names = ("too_short", "repetitive", "hit_token_limit")
        return tuple(name for name in names if getattr(self, name))


@dataclass(frozen=True)
class TokenUsage:
    """Tokens a backend has used since start, for tracking API cost."""

    requests: int = 0
    prompt_tokens: int = 0
    output_tokens: int = 0

    def plus(self, prompt_tokens: int, output_tokens: int) -> TokenUsage:
        return TokenUsage(self.requests + 1, self.prompt_tokens + prompt_tokens, self.output_tokens + output_tokens)


@dataclass(frozen=True)
class GenerationResult:
    text: str
    prompt_tokens: int
    output_tokens: int
    finish_reason: str
    duration_ms: float
    ttft_ms: float | None
    backend: str
    model: str
    params: GenerationParams
    validation: ValidationReport
    attempts: int = 1
    cached: bool = False
    truncation: TruncationReport | None = None
    requested_max_new_tokens: int | None = None  # set when the request was clamped to the limit
    usage_estimated: bool = False  # True when the endpoint reported no token counts
    notices: tuple[str, ...] = field(default=())

    @property
    def tokens_per_s(self) -> float:
        """Output tokens over the time after the first token (decode speed), else over the whole call."""
        seconds = (self.duration_ms - (self.ttft_ms or 0.0)) / 1000
        if self.output_tokens <= 1 or seconds <= 0:
            seconds = self.duration_ms / 1000
        return self.output_tokens / seconds if seconds > 0 else 0.0


@dataclass(frozen=True)
class StreamUpdate:
    """What :meth:`TextGenService.stream_chat` yields: the text so far, and the result at the end."""

    delta: str
    text: str
    result: GenerationResult | None = None
