"""Named sampling settings shared by the Chat, Tune and Evaluate tabs."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from core import Settings


@dataclass(frozen=True)
class Sampling:
    """The sampling settings a person can change in the UI; ``None`` means "the configured default"."""

    temperature: float
    top_p: float
    repetition_penalty: float
    max_new_tokens: int
    top_k: int | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def as_params(self) -> dict[str, object]:
        """Keyword arguments for ``TextGenService.chat`` / ``stream_chat``."""
        params = asdict(self)
        params["stop"] = list(self.stop)
        return params

    def describe(self) -> str:
        parts = [f"temperature {self.temperature:g}", f"top_p {self.top_p:g}", f"repetition penalty {self.repetition_penalty:g}", f"max {self.max_new_tokens} tokens"]
        if self.top_k:
            parts.append(f"top_k {self.top_k}")
        if self.seed is not None:
            parts.append(f"seed {self.seed}")
        if self.stop:
            parts.append("stop " + ", ".join(repr(s) for s in self.stop))
        return ", ".join(parts)


def factual(settings: Settings) -> Sampling:
    """The configured defaults (the spec's: temperature 0.2, top_p 0.9, penalty 1.1, 400 tokens)."""
    return Sampling(settings.temperature, settings.top_p, settings.repetition_penalty, settings.max_output_tokens)


def presets(settings: Settings) -> dict[str, Sampling]:
    limit = settings.max_output_tokens
    return {
        "Factual": factual(settings),
        "Greedy (deterministic)": Sampling(0.0, 1.0, 1.1, limit),
        "Balanced": Sampling(0.7, 0.9, 1.1, limit),
        "Creative": Sampling(1.0, 0.95, 1.05, limit),
        "No penalty": Sampling(0.2, 0.9, 1.0, limit),
    }
