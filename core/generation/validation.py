"""Output validation: is the answer long enough, and is it free of loops?"""

from __future__ import annotations

from core.generation.types import ValidationReport
from core.scoring.repetition import is_degenerate, repetition_stats


def validate_output(text: str, *, min_chars: int, finish_reason: str) -> ValidationReport:
    """Check an answer. ``min_chars`` counts non-space characters, so padding does not pass."""
    stats = repetition_stats(text)
    return ValidationReport(
        too_short=len("".join(text.split())) < min_chars,
        repetitive=is_degenerate(stats),
        hit_token_limit=finish_reason == "length",
        repetition=stats,
    )
