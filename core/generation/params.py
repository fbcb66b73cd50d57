"""What a caller asks for: the sampling parameters, their one table, and chat messages.

:data:`SAMPLING_PARAMETERS` is the only place a parameter's range, default, environment
variable and help text are written. The settings' parsing, the range checks of every
request, the CLI's flags and the app's sliders are all made from it, so they cannot drift
apart (the Evaluate tab's sliders once ignored ``HF_GENERATION_TEMPERATURE``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from core.errors import InvalidRequestError

if TYPE_CHECKING:
    from core.config import Settings

#: No answer may exceed this many output tokens, whatever a caller or the environment asks.
HARD_OUTPUT_TOKEN_LIMIT = 400

Role = Literal["system", "user", "assistant"]
_ROLES = ("system", "user", "assistant")


def allowed_range(low: float, high: float, *, low_open: bool = False) -> str:
    """A range in words, the same in every message: "from 0 to 2", "more than 0 up to 1"."""
    low_text, high_text = _number_text(low), _number_text(high)
    return f"more than {low_text} up to {high_text}" if low_open else f"from {low_text} to {high_text}"


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Parameter:
    """One sampling parameter: what it accepts, where its default comes from, what it does.

    ``env`` names the variables (first wins) that set the service's default, stored in the
    :class:`~core.config.Settings` field ``setting``; a parameter without one is per request
    only. ``slider`` narrows the range the UI offers, and ``off`` is the slider value that
    means "not set" (top_k's 0).
    """

    name: str
    kind: type[int | float]
    low: float
    high: float
    default: float | None
    label: str
    help: str
    step: float = 1
    low_open: bool = False  # the low end itself is not allowed (top_p 0 would allow no token)
    clamped: bool = False  # above ``high`` is cut to it, with a note, rather than refused
    env: tuple[str, ...] = ()
    setting: str | None = None
    slider: tuple[float, float] | None = None
    off: float | None = None

    @property
    def allowed(self) -> str:
        """The range in words, as every message about this parameter says it."""
        return allowed_range(self.low, self.high, low_open=self.low_open)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def allows(self, value: float) -> bool:
        above = value > self.high and not self.clamped
        return not (value < self.low or above or (self.low_open and value == self.low))


SAMPLING_PARAMETERS: tuple[Parameter, ...] = (
    Parameter(
        "temperature", float, 0, 2, 0.2, "Temperature", "0 for greedy decoding; higher is more varied.",
        step=0.05, env=("HF_GENERATION_TEMPERATURE",), setting="temperature",
    ),
    Parameter(
        "top_p", float, 0, 1, 0.9, "Top-p", "Nucleus sampling: the share of probability the next word is drawn from.",
        step=0.05, low_open=True, env=("ASSISTANT_MODEL_TOP_P",), setting="top_p", slider=(0.05, 1),
    ),
    Parameter(
        "top_k", int, 1, 1000, None, "Top-k (0: off)", "Draw the next word from the k likeliest only.",
        slider=(0, 200), off=0,
    ),
    Parameter(
        "repetition_penalty", float, 1, 2, 1.1, "Repetition penalty", "1 for none; higher discourages repeating words.",
        step=0.05, env=("ASSISTANT_MODEL_REPETITION_PENALTY", "ASSISTANT_MODEL_REPITION_PENALTY"), setting="repetition_penalty",
    ),
    Parameter(
        "max_new_tokens", int, 1, HARD_OUTPUT_TOKEN_LIMIT, HARD_OUTPUT_TOKEN_LIMIT, "Max new tokens",
        f"The answer's length limit in tokens; more than {HARD_OUTPUT_TOKEN_LIMIT} is cut to {HARD_OUTPUT_TOKEN_LIMIT}.",
        clamped=True, env=("ASSISTANT_MAX_OUTPUT_TOKENS",), setting="max_output_tokens",
    ),
    Parameter("seed", int, 0, 2**32 - 1, None, "Seed (blank: none)", "Makes sampling reproducible."),
)
PARAMETERS: dict[str, Parameter] = {p.name: p for p in SAMPLING_PARAMETERS}


def _default(name: str) -> object:
    return PARAMETERS[name].default


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "content": self.content}


@dataclass(frozen=True)
class GenerationParams:
    """Sampling parameters: a request's (every field resolved) or a preset's.

    ``temperature == 0`` means greedy decoding. ``seed`` makes sampling reproducible.
    """

    max_new_tokens: int = _default("max_new_tokens")  # type: ignore[assignment]
    temperature: float = _default("temperature")  # type: ignore[assignment]
    top_p: float = _default("top_p")  # type: ignore[assignment]
    top_k: int | None = None
    repetition_penalty: float = _default("repetition_penalty")  # type: ignore[assignment]
    seed: int | None = None
    stop: tuple[str, ...] = field(default=())

    @property
    def deterministic(self) -> bool:
        """Greedy or seeded: the same request gives the same answer, so it may be cached."""
        return self.temperature == 0 or self.seed is not None

    def overrides(self) -> dict[str, object]:
        """Keyword arguments for ``TextGenService.chat`` and its kin."""
        return {**asdict(self), "stop": list(self.stop)}

    def describe(self) -> str:
        """The settings in a line, as the Chat tab shows them."""
        parts = [
            f"temperature {self.temperature:g}", f"top_p {self.top_p:g}",
            f"repetition penalty {self.repetition_penalty:g}", f"max {self.max_new_tokens} tokens",
        ]
        if self.top_k:
            parts.append(f"top_k {self.top_k}")
        if self.seed is not None:
            parts.append(f"seed {self.seed}")
        if self.stop:
            parts.append("stop " + ", ".join(repr(s) for s in self.stop))
        return ", ".join(parts)

    @classmethod
    def configured(cls, settings: Settings) -> GenerationParams:
        """The service's defaults: the table's, or the environment's where it sets them."""
        return cls(**{p.name: getattr(settings, p.setting) for p in SAMPLING_PARAMETERS if p.setting})


@dataclass(frozen=True)
class ResolvedParams:
    params: GenerationParams
    requested_max_new_tokens: int | None  # set only when the request was clamped


def resolve_params(settings: Settings, overrides: Mapping[str, object]) -> ResolvedParams:
    """Fill unset parameters from the settings, check ranges, and clamp the output length.

    A request for more than the configured maximum (never above 400) is clamped rather than
    refused, so a caller asking for 1,000 tokens still gets an answer; the clamp is reported.
    """
    unknown = set(overrides) - set(GenerationParams.__dataclass_fields__)
    if unknown:
        raise InvalidRequestError(f"Unknown generation parameter(s): {', '.join(sorted(unknown))}.")
    given = {k: v for k, v in overrides.items() if v is not None}
    if "stop" in given:
        given["stop"] = _stop_sequences(given["stop"])
    params = replace(GenerationParams.configured(settings), **given)
    for parameter in SAMPLING_PARAMETERS:
        value = getattr(params, parameter.name)
        if value is not None and not parameter.allows(value):
            why = "would allow no token at all" if parameter.low_open and value == parameter.low else "is out of range"
            raise InvalidRequestError(f"{parameter.name}={value} {why}. Allowed: {parameter.allowed}.")
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
