"""Prometheus metrics of the generator service, observed once per generation.

Every generation already ends in one :class:`~core.logs.GenerationLogRecord`; the same
record feeds these metrics, so the log and the dashboard never disagree. The app serves
them at ``/metrics`` (see app.py); the README lists them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import Counter, Histogram

if TYPE_CHECKING:  # core.logs calls this module; only the type comes from there
    from core.logs import GenerationLogRecord

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
