"""One JSON log line per generation, with the figures a developer needs to compare runs."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from core.monitoring import observe_generation

logger = logging.getLogger("scribes.textgen")


@dataclass
class GenerationLogRecord:
    """The fields of the ``generation`` event; ``outcome`` is ok, error or cancelled."""

    backend: str
    model: str
    outcome: str = "ok"
    duration_ms: float = 0.0
    ttft_ms: float | None = None
    prompt_tokens: int | None = None
    output_tokens: int | None = None
    tokens_per_s: float | None = None
    attempts: int = 1
    finish_reason: str | None = None
    cached: bool = False
    clamped_from: int | None = None
    truncated: bool = False
    flags: tuple[str, ...] = ()
    error_type: str | None = None
    error: str | None = None
    prompt: list[dict[str, str]] | None = field(default=None)  # only when HF_LOG_PROMPTS is on


def log_generation(record: GenerationLogRecord) -> None:
    """Write the record as one JSON line and add it to the Prometheus metrics."""
    observe_generation(record)
    payload = {"event": "generation", **{k: v for k, v in vars(record).items() if v is not None}}
    for key in ("duration_ms", "ttft_ms", "tokens_per_s"):
        if key in payload:
            payload[key] = round(payload[key], 1)
    level = logging.INFO if record.outcome != "error" else logging.WARNING
    logger.log(level, json.dumps(payload, ensure_ascii=False))
