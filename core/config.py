"""Settings for the generator service, read once from the environment and ``.env``.

Everything below this module takes its values as arguments; nothing else reads
``os.environ``. Each variable is checked here, and a bad value raises a
:class:`ConfigurationError` that names the variable and what it accepts.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from dotenv import dotenv_values

from core.errors import ConfigurationError
from core.generation.params import PARAMETERS, SAMPLING_PARAMETERS, allowed_range

#: The spec's default API model. Local mode ignores it and runs ``HF_LOCAL_MODEL``.
DEFAULT_API_MODEL = "meta-llama/Llama-2-7b-chat-hf"

Mode = Literal["api", "local"]
Device = Literal["auto", "cpu", "cuda"]
Precision = Literal["auto", "float32", "bfloat16", "float16"]
QuantizationRequest = Literal["auto", "none", "int4", "int8"]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Settings:
    """The service's configuration. Build it with :meth:`from_env`, or directly in tests."""

    token: str | None = field(default=None, repr=False)
    use_api: bool | None = None  # None: decide from the token / endpoint (see ``mode``)
    model: str = DEFAULT_API_MODEL
    base_url: str | None = field(default=None, repr=False)  # may hold user:password; public_base_url is safe
    provider: str | None = None
    local_model: str | None = None  # None: the embedded SmolLM2-135M-Instruct GGUF
    embedding_model: str | None = None  # re-ranks retrieved passages through the Inference API; None: BM25 alone
    device: Device = "auto"
    local_dtype: Precision = "auto"
    local_quantization: QuantizationRequest = "auto"
    timeout_s: float = 60.0
    # the service's sampling defaults: see core.generation.params.SAMPLING_PARAMETERS
    temperature: float = PARAMETERS["temperature"].default  # type: ignore[assignment]
    max_output_tokens: int = PARAMETERS["max_new_tokens"].default  # type: ignore[assignment]
    top_p: float = PARAMETERS["top_p"].default  # type: ignore[assignment]
    repetition_penalty: float = PARAMETERS["repetition_penalty"].default  # type: ignore[assignment]
    context_window: int = 2048
    retry_attempts: int = 3
    retry_backoff_s: float = 2.0
    retry_max_wait_s: float = 30.0
    min_answer_chars: int = 20
    strict_validation: bool = False
    cache_size: int = 256
    log_prompts: bool = False
    cache_dir: Path = field(default_factory=lambda: Path.home() / ".cache" / "scribes-textgen")
    data_dir: Path = field(default_factory=lambda: _default_data_dir())
    sessions_kept: int = 1000  # visitors' sessions the app keeps in memory, least recently used dropped first

    def __post_init__(self) -> None:
        if self.use_api is True and not (self.token or self.base_url):
            raise ConfigurationError(
                "HF_USE_API is true, but neither HF_TOKEN nor HF_BASE_URL is set. Set HF_TOKEN to a "
                "Hugging Face token, or HF_BASE_URL to your own endpoint, or set HF_USE_API=false "
                "to run the local model."
            )

    @property
    def mode(self) -> Mode:
        """API when asked for, or when a token or endpoint is configured; otherwise local."""
        if self.use_api is not None:
            return "api" if self.use_api else "local"
        return "api" if (self.token or self.base_url) else "local"

    @property
    def public_base_url(self) -> str | None:
        """The endpoint URL without any user:password part, safe to show and log."""
        if not self.base_url:
            return None
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        return urlunsplit((parts.scheme, host, parts.path, "", ""))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, dotenv_path: str | Path | None = ".env") -> Settings:
        """Read the settings; real environment variables win over ``.env`` lines."""
        values: dict[str, str] = {}
        if dotenv_path is not None and Path(dotenv_path).is_file():
            values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
        values.update(os.environ if environ is None else environ)
        return cls(**_parse(values))


def _default_data_dir() -> Path:
    """``/data`` where it exists (a Space's persistent storage), else ``./data``."""
    persistent = Path("/data")
    return persistent if persistent.is_dir() and os.access(persistent, os.W_OK) else Path("data")


@dataclass(frozen=True)
class _Var:
    """One environment variable: its names (first wins), the field it sets, how to parse it."""

    names: tuple[str, ...]
    field_name: str
    parse: Callable[[str, str], object]


def _text(name: str, raw: str) -> str | None:
    return raw.strip() or None


def _bool(name: str, raw: str) -> bool | None:
    value = raw.strip().lower()
    if not value:
        return None
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigurationError(f"{name}={raw!r} is not a yes/no value. Use true or false.")


def _number(kind: type, low: float, high: float, *, low_open: bool = False) -> Callable[[str, str], object]:
    def parse(name: str, raw: str) -> object:
        allowed = allowed_range(low, high, low_open=low_open)
        try:
            value = kind(raw.strip())
        except ValueError:
            what = "a whole number" if kind is int else "a number"
            raise ConfigurationError(f"{name}={raw!r} is not {what}. Allowed: {allowed}.") from None
        if value < low or value > high or (low_open and value == low):
            raise ConfigurationError(f"{name}={raw!r} is out of range. Allowed: {allowed}.")
        return value

    return parse


def _choice(*allowed: str) -> Callable[[str, str], object]:
    def parse(name: str, raw: str) -> object:
        value = raw.strip().lower()
        if value not in allowed:
            raise ConfigurationError(f"{name}={raw!r} is not allowed. Use one of: {', '.join(allowed)}.")
        return value

    return parse


def _url(name: str, raw: str) -> str | None:
    value = raw.strip()
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(f"{name} must be an http:// or https:// URL, e.g. http://localhost:8080/v1.")
    return value.rstrip("/")


def _path(name: str, raw: str) -> Path:
    return Path(raw.strip()).expanduser()


_VARIABLES: tuple[_Var, ...] = (
    _Var(("HF_TOKEN", "HF_API_KEY"), "token", _text),
    _Var(("HF_USE_API",), "use_api", _bool),
    _Var(("HF_GENERATION_MODEL",), "model", _text),
    _Var(("HF_BASE_URL",), "base_url", _url),
    _Var(("HF_PROVIDER",), "provider", _text),
    _Var(("HF_LOCAL_MODEL",), "local_model", _text),
    _Var(("HF_EMBEDDING_MODEL",), "embedding_model", _text),
    _Var(("HF_DEVICE",), "device", _choice("auto", "cpu", "cuda")),
    _Var(("HF_LOCAL_DTYPE",), "local_dtype", _choice("auto", "float32", "bfloat16", "float16")),
    _Var(("HF_LOCAL_QUANTIZATION",), "local_quantization", _choice("auto", "none", "int4", "int8")),
    _Var(("HF_GENERATION_TIMEOUT",), "timeout_s", _number(float, 1, 600)),
    *(
        _Var(p.env, p.setting, _number(p.kind, p.low, p.high, low_open=p.low_open))
        for p in SAMPLING_PARAMETERS
        if p.env and p.setting
    ),
    _Var(("ASSISTANT_MODEL_CONTEXT_WINDOW",), "context_window", _number(int, 256, 131072)),
    _Var(("HF_RETRY_ATTEMPTS",), "retry_attempts", _number(int, 1, 10)),
    _Var(("HF_RETRY_BACKOFF",), "retry_backoff_s", _number(float, 0, 60)),
    _Var(("HF_RETRY_MAX_WAIT",), "retry_max_wait_s", _number(float, 0, 300)),
    _Var(("ASSISTANT_MIN_ANSWER_CHARS",), "min_answer_chars", _number(int, 0, 10000)),
    _Var(("ASSISTANT_STRICT_VALIDATION",), "strict_validation", _bool),
    _Var(("HF_CACHE_SIZE",), "cache_size", _number(int, 0, 100000)),
    _Var(("HF_LOG_PROMPTS",), "log_prompts", _bool),
    _Var(("SCRIBES_CACHE_DIR",), "cache_dir", _path),
    _Var(("SCRIBES_DATA_DIR",), "data_dir", _path),
    _Var(("SCRIBES_SESSIONS_KEPT",), "sessions_kept", _number(int, 10, 100000)),
)

#: Every variable the service reads, for documentation and the UI's "Export .env".
ENVIRONMENT_VARIABLES: tuple[str, ...] = tuple(name for var in _VARIABLES for name in var.names)


def _parse(values: Mapping[str, str]) -> dict[str, object]:
    parsed: dict[str, object] = {}
    for var in _VARIABLES:
        name = next((n for n in var.names if values.get(n, "").strip()), None)
        if name is None:
            continue
        value = var.parse(name, values[name])
        if value is not None:
            parsed[var.field_name] = value
    return parsed


def env_lines(params: Mapping[str, object]) -> list[str]:
    """``.env`` lines that make these generation parameters the service's defaults.

    Only the parameters that have a variable are written (top_k, seed and stop sequences
    are per request), so the lines can be pasted into a Space's settings as they are.
    """
    lines = []
    for parameter in SAMPLING_PARAMETERS:
        value = params.get(parameter.name)
        if parameter.env and value is not None:
            lines.append(f"{parameter.env[0]}={value:g}" if isinstance(value, float) else f"{parameter.env[0]}={value}")
    return lines
