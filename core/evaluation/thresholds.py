"""Pass/fail checks of a run's summary against limits a person sets (in the Evaluate tab)."""

from __future__ import annotations

from dataclasses import dataclass

from core.evaluation import Summary


@dataclass(frozen=True)
class Thresholds:
    """Defaults: what a pastor could rely on; tighten or loosen them per question set."""

    min_citation_f1: float = 0.5
    max_nonexistent_rate: float = 0.05
    max_degenerate_share: float = 0.05
    max_error_rate: float = 0.05
    min_token_limit_compliance: float = 1.0


@dataclass(frozen=True)
class Check:
    name: str
    value: float | None
    limit: str
    passed: bool | None  # None: nothing to judge (e.g. no expected references)


def check_thresholds(summary: Summary, limits: Thresholds) -> list[Check]:
    def at_least(name: str, value: float | None, minimum: float) -> Check:
        return Check(name, value, f"≥ {minimum:g}", None if value is None else value >= minimum)

    def at_most(name: str, value: float | None, maximum: float) -> Check:
        return Check(name, value, f"≤ {maximum:g}", None if value is None else value <= maximum)

    return [
        at_least("Citation F1 (mean)", summary.mean_citation_f1, limits.min_citation_f1),
        at_most("Nonexistent citations (share)", summary.nonexistent_rate, limits.max_nonexistent_rate),
        at_most("Degenerate answers (share)", summary.degenerate_share, limits.max_degenerate_share),
        at_most("Errors (share of rows)", summary.error_rate, limits.max_error_rate),
        at_least("Within the 400-token limit (share)", summary.token_limit_compliance, limits.min_token_limit_compliance),
    ]
