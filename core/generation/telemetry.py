"""What each generation leaves behind: one JSON log line and the Prometheus metrics.

Both are fed by the same :class:`GenerationLogRecord`, so the log and the dashboard never
disagree. The app serves the metrics at ``/metrics`` (see ``ui/prometheus.py``); the README
lists them.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field

from prometheus_client import Counter, Histogram

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

#: Seconds: from a cache hit (~0) through an API answer (~1-5 s) to a long local one (~60 s).
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10)
#: Up to the hard limit of 400 output tokens.
TOKEN_BUCKETS = (8, 16, 32, 64, 128, 256, 400)

GENERATION_SECONDS = Histogram(
    "scribes_generation_seconds", "Time to answer one request, by backend and outcome (ok, error, cancelled).",
    ("backend", "outcome"), buckets=DURATION_BUCKETS,
)
TIME_TO_FIRST_TOKEN_SECONDS = Histogram(
    "scribes_time_to_first_token_seconds", "Time until the first text of a streamed answer.", ("backend",), buckets=TTFT_BUCKETS,
)
OUTPUT_TOKENS = Histogram("scribes_output_tokens", "Tokens in a finished answer.", ("backend",), buckets=TOKEN_BUCKETS)
ERRORS = Counter("scribes_generation_errors", "Generations that ended in an error, by its type.", ("backend", "error_type"))
CACHE_HITS = Counter("scribes_cache_hits", "Answers served from the in-memory cache.", ("backend",))


def observe_generation(record: GenerationLogRecord) -> None:
    """Add one finished (or failed, or cancelled) generation to the metrics."""
    GENERATION_SECONDS.labels(record.backend, record.outcome).observe(record.duration_ms / 1000)
    if record.outcome == "error":
        ERRORS.labels(record.backend, record.error_type or "unknown").inc()
        return
    if record.cached:
        CACHE_HITS.labels(record.backend).inc()
        return
    if record.ttft_ms is not None:
        TIME_TO_FIRST_TOKEN_SECONDS.labels(record.backend).observe(record.ttft_ms / 1000)
    if record.outcome == "ok" and record.output_tokens is not None:
        OUTPUT_TOKENS.labels(record.backend).observe(record.output_tokens)


def log_generation(record: GenerationLogRecord) -> None:
    """Write the record as one JSON line and add it to the Prometheus metrics."""
    observe_generation(record)
    payload = {"event": "generation", **{k: v for k, v in vars(record).items() if v is not None}}
    for key in ("duration_ms", "ttft_ms", "tokens_per_s"):
        if key in payload:
            payload[key] = round(payload[key], 1)
    level = logging.INFO if record.outcome != "error" else logging.WARNING
    logger.log(level, json.dumps(payload, ensure_ascii=False))
