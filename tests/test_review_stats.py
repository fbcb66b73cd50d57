"""Manual citation accuracy, its Wilson interval and verdict, and reviewers' agreement, by hand."""

from __future__ import annotations

import math

import pytest

from core.evaluation.review_stats import (
    agreement,
    classes_against_ratings,
    consensus,
    disagreements,
    manual_accuracy,
    ordinal_alpha,
    ratings_to_settle,
    wilson_interval,
)
from core.stores.reviews import Rating


def _ratings(*rows: tuple[str, str, int]) -> list[Rating]:
    """(reviewer, citation, rating) rows, all of one answer."""
    return [Rating(reviewer, "k", citation, rating, 0.0) for reviewer, citation, rating in rows]


def test_wilson_interval_matches_the_formula() -> None:
    # Wilson (1927): (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n), z = 1.959964
    successes, trials, z = 48, 50, 1.959963984540054
    p = successes / trials
    centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
    assert wilson_interval(successes, trials) == pytest.approx((centre - half, centre + half), abs=1e-9)


@pytest.mark.parametrize(
    ("accurate", "rated", "verdict"),
    [(200, 200, "met"), (48, 50, "unknown"), (30, 50, "missed"), (1, 1, "unknown")],
)
def test_the_verdict_says_which_side_of_95_percent_the_interval_lies(accurate: int, rated: int, verdict: str) -> None:
    ratings = [Rating("Ruth", "k", f"c{i}", 2 if i < accurate else 0, 0.0) for i in range(rated)]
    estimate = manual_accuracy(ratings)
    assert estimate is not None and (estimate.accurate, estimate.rated, estimate.verdict) == (accurate, rated, verdict)
    assert estimate.low <= estimate.share <= estimate.high
    assert (estimate.more_needed is not None) == (verdict == "unknown")


def test_about_how_many_more_ratings_would_settle_it() -> None:
    more = ratings_to_settle(48, 50)  # 96%: the interval must shrink above 95%
    assert more is not None
    low, _ = wilson_interval(round(0.96 * (50 + more)), 50 + more)
    assert low > 0.95
    low_before, _ = wilson_interval(round(0.96 * (50 + more - 1)), 50 + more - 1)
    assert low_before <= 0.95
    assert ratings_to_settle(95, 100) is None  # exactly on the target: never settles


def test_a_citation_counts_once_with_its_reviewers_lower_median() -> None:
    assert [consensus(r) for r in ([2], [2, 1], [0, 2, 2], [1, 2, 0, 2])] == [2, 1, 2, 1]
    estimate = manual_accuracy(_ratings(("Ruth", "a", 2), ("Boaz", "a", 2), ("Ruth", "b", 2), ("Boaz", "b", 1)))
    assert estimate is not None and (estimate.accurate, estimate.rated) == (1, 2)
    assert manual_accuracy([]) is None


def test_agreement_overall_and_per_pair() -> None:
    ratings = _ratings(
        ("Ruth", "a", 2), ("Boaz", "a", 2), ("Naomi", "a", 2),
        ("Ruth", "b", 0), ("Boaz", "b", 1), ("Naomi", "b", 1),
        ("Ruth", "c", 2), ("Boaz", "c", 2),
        ("Ruth", "d", 1),  # rated by one reviewer: not part of agreement
    )
    result = agreement(ratings)
    assert (result.reviewers, result.citations) == (3, 3)
    # pairs of ratings: a 3 agree of 3, b 1 of 3, c 1 of 1 → 5 of 7
    assert result.percent == pytest.approx(5 / 7)
    pairs = {pair.reviewers: pair for pair in result.pairs}
    assert set(pairs) == {("Boaz", "Naomi"), ("Boaz", "Ruth"), ("Naomi", "Ruth")}
    assert (pairs[("Boaz", "Ruth")].citations, pairs[("Boaz", "Ruth")].percent) == (3, pytest.approx(2 / 3))
    assert pairs[("Boaz", "Naomi")].percent == 1.0 and pairs[("Boaz", "Naomi")].alpha == pytest.approx(1.0)
    assert result.alpha is not None and 0 < result.alpha < 1
    assert disagreements(ratings) == {("k", "b")}


def test_ordinal_alpha_matches_krippendorffs_worked_example() -> None:
    # Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", the 2-observer example
    # coded 0/1: alpha = 0.095 for nominal data, which equals ordinal with two values.
    first = [0, 1, 0, 0, 0, 0, 0, 0, 1, 0]
    second = [1, 1, 1, 0, 0, 1, 0, 0, 0, 0]
    assert ordinal_alpha([first, second]) == pytest.approx(0.095, abs=0.001)
    assert ordinal_alpha([[2, 2, 2], [2, 2, 2]]) is None  # no variation: alpha is undefined


def test_automatic_classes_against_the_reviewers_ratings() -> None:
    ratings = _ratings(("Ruth", "a", 2), ("Boaz", "a", 1), ("Ruth", "b", 0), ("Ruth", "c", 2))
    classes = {("k", "a"): "expected", ("k", "b"): "unsupported", ("k", "c"): "expected", ("k", "z"): "in_context"}
    assert classes_against_ratings(classes, ratings) == {"expected": {2: 1, 1: 1, 0: 0}, "unsupported": {2: 0, 1: 0, 0: 1}}


def test_nonexistent_citations_count_as_not_accurate_without_a_rating() -> None:
    estimate = manual_accuracy(_ratings(("Ruth", "a", 2), ("Ruth", "b", 2)), nonexistent=2)
    assert estimate is not None and (estimate.accurate, estimate.rated, estimate.nonexistent) == (2, 4, 2)


def test_settling_that_would_take_more_than_the_cap_says_so() -> None:
    from core.evaluation.review_stats import MOST_MORE

    assert ratings_to_settle(951, 1000) == MOST_MORE + 1
