"""What a caller asks for: sampling parameters and chat messages."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from core.config import HARD_OUTPUT_TOKEN_LIMIT, Settings
from core.errors import InvalidRequestError

Role = Literal["system", "user", "assistant"]
_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters, fully resolved: every field has the value that will be sent.

    ``temperature == 0`` means greedy decoding. ``seed`` makes sampling reproducible.
    """

    max_new_tokens: int = HARD_OUTPUT_TOKEN_LIMIT
    temperature: float = 0.2
    top_p: float = 0.9
    top_k: int | None = None
    repetition_penalty: float = 1.1
    seed: int | None = None
    stop: tuple[str, ...] = ()

    @property
    def deterministic(self) -> bool:
        """Greedy or seeded: the same request gives the same answer, so it may be cached."""
        return self.temperature == 0 or self.seed is not None


@dataclass(frozen=True)
class ResolvedParams:
    params: GenerationParams
    requested_max_new_tokens: int | None  # set only when the request was clamped


_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 2.0),
    "top_p": (0.0, 1.0),
    "repetition_penalty": (1.0, 2.0),
    "top_k": (1, 1000),
}


def resolve_params(settings: Settings, overrides: Mapping[str, object]) -> ResolvedParams:
    """Fill unset parameters from the settings, check ranges, and clamp the output length.

    A request for more than the configured maximum (never above 400) is clamped rather than
    refused, so a caller asking for 1,000 tokens still gets an answer; the clamp is reported.
    """
    unknown = set(overrides) - set(GenerationParams.__dataclass_fields__)
    if unknown:
        raise InvalidRequestError(f"Unknown generation parameter(s): {', '.join(sorted(unknown))}.")
    base = GenerationParams(
        max_new_tokens=settings.max_output_tokens,
        temperature=settings.temperature,
        top_p=settings.top_p,
        repetition_penalty=settings.repetition_penalty,
    )
    given = {k: v for k, v in overrides.items() if v is not None}
    if "stop" in given:
        given["stop"] = _stop_sequences(given["stop"])
    params = replace(base, **given)
    for name, (low, high) in _RANGES.items():
        value = getattr(params, name)
        if value is not None and not (low <= value <= high):
            raise InvalidRequestError(f"{name}={value} is out of range. Allowed: {low:g} to {high:g}.")
    if params.top_p == 0:
        raise InvalidRequestError("top_p=0 would allow no token at all. Allowed: more than 0 up to 1.")
    if int(params.max_new_tokens) < 1:
        raise InvalidRequestError(f"max_new_tokens={params.max_new_tokens} must be at least 1.")
    limit = min(settings.max_output_tokens, HARD_OUTPUT_TOKEN_LIMIT)
    if params.max_new_tokens > limit:
        return ResolvedParams(replace(params, max_new_tokens=limit), requested_max_new_tokens=int(params.max_new_tokens))
    return ResolvedParams(params, requested_max_new_tokens=None)


def _stop_sequences(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    return tuple(s for s in value if isinstance(s, str) and s)  # type: ignore[union-attr]


def to_messages(messages: Sequence[ChatMessage | Mapping[str, str]]) -> list[ChatMessage]:
    """Accept our own messages or OpenAI-style dicts; refuse anything else with a plain message."""
    result: list[ChatMessage] = []
    for index, message in enumerate(messages):
        if isinstance(message, ChatMessage):
            result.append(message)
            continue
        role, content = message.get("role"), message.get("content")
        if role not in _ROLES or not isinstance(content, str):
            raise InvalidRequestError(
                f"Message {index + 1} needs a role ({', '.join(_ROLES)}) and text content; got role={role!r}."
            )
        result.append(ChatMessage(role, content))  # type: ignore[arg-type]
    return result
