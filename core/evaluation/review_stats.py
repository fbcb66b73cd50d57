"""What the reviews say: manual citation accuracy with its interval, and reviewers' agreement.

The spec's target is "Citation Accuracy > 95%, measured by manual review". A citation
counts once however many people rated it: its rating is the lower median of its
reviewers' ratings (two reviewers who say 2 and 1 give 1), and it is *accurate* when that
rating is 2, "supports". Partly supported citations are not accurate: the target is about
citations a pastor can trust as written.

The share of accurate citations comes with its 95% Wilson score interval (Wilson 1927;
Brown, Cai and DasGupta 2001 recommend it over the normal approximation for proportions
near 0 or 1, which is where this one lives). The target is *met* when the whole interval
lies above it, *missed* when the whole interval lies below, and *not yet known* otherwise.

Agreement is measured on the citations that two or more reviewers rated: percent
agreement (the share of pairs of ratings of one citation that are equal) and
Krippendorff's alpha for ordinal data (Krippendorff 2004; the ``krippendorff`` package),
overall and for each pair of reviewers.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

import krippendorff
import numpy as np
from scipy.stats import binomtest

from core.stores.reviews import RATINGS, Rating

#: The spec's target for manual citation accuracy.
ACCURACY_TARGET = 0.95
CONFIDENCE = 0.95
#: Beyond this many more ratings, "about how many more" is not worth a number.
MOST_MORE = 100_000

Verdict = Literal["met", "missed", "unknown"]
CitationId = tuple[str, str]  # (answer key, citation unit)


@dataclass(frozen=True)
class AccuracyEstimate:
    rated: int  # distinct citations with at least one rating
    accurate: int
    share: float
    low: float
    high: float
    verdict: Verdict
    more_needed: int | None  # with verdict "unknown": about how many more rated citations would settle it (see ratings_to_settle)
    nonexistent: int = 0  # of ``rated``: nonexistent citations, counted as not accurate without a rating


@dataclass(frozen=True)
class PairAgreement:
    reviewers: tuple[str, str]
    citations: int  # rated by both
    percent: float
    alpha: float | None  # None when it is undefined (see :func:`ordinal_alpha`)


@dataclass(frozen=True)
class Agreement:
    reviewers: int
    citations: int  # rated by two or more reviewers
    percent: float | None
    alpha: float | None
    pairs: tuple[PairAgreement, ...]


def by_citation(ratings: Iterable[Rating]) -> dict[CitationId, dict[str, int]]:
    """Each citation's ratings, by reviewer."""
    grouped: dict[CitationId, dict[str, int]] = defaultdict(dict)
    for rating in ratings:
        grouped[(rating.answer_key, rating.citation)][rating.reviewer] = rating.rating
    return dict(grouped)


def consensus(ratings: Iterable[int]) -> int:
    """The lower median: with an even count the lower of the two middle ratings."""
    ordered = sorted(ratings)
    return ordered[(len(ordered) - 1) // 2]


def wilson_interval(successes: int, trials: int) -> tuple[float, float]:
    interval = binomtest(successes, trials).proportion_ci(confidence_level=CONFIDENCE, method="wilson")
    return float(interval.low), float(interval.high)


def _verdict(low: float, high: float, target: float) -> Verdict:
    if low > target:
        return "met"
    if high < target:
        return "missed"
    return "unknown"


def ratings_to_settle(accurate: int, rated: int, target: float = ACCURACY_TARGET) -> int | None:
    """About how many more rated citations would settle the verdict, if the share stayed as it is.

    None when it would never settle (the share sits on the target); :data:`MOST_MORE` + 1
    when it would take more than :data:`MOST_MORE`.
    """
    share = accurate / rated
    if math.isclose(share, target):
        return None

    def settled(more: int) -> bool:
        trials = rated + more
        return _verdict(*wilson_interval(round(share * trials), trials), target) != "unknown"

    high = 1
    while not settled(high):
        high *= 2
        if high > MOST_MORE:
            return MOST_MORE + 1
    low = high // 2
    while low + 1 < high:  # settled(high) holds, settled(low) does not (or low is 0)
        middle = (low + high) // 2
        low, high = (low, middle) if settled(middle) else (middle, high)
    return high


def manual_accuracy(ratings: Iterable[Rating], target: float = ACCURACY_TARGET, *, nonexistent: int = 0) -> AccuracyEstimate | None:
    """Manual citation accuracy against ``target``; None before any rating.

    ``nonexistent``: citations of the reviewed answers that do not exist. They need no
    rating (there is no verse to judge) and are never accurate, so they count as rated
    and not accurate: an answer cannot gain accuracy by inventing a verse.
    """
    consensus_ratings = [consensus(by_reviewer.values()) for by_reviewer in by_citation(ratings).values()]
    if not consensus_ratings:
        return None
    rated, accurate = len(consensus_ratings) + nonexistent, sum(rating == 2 for rating in consensus_ratings)
    low, high = wilson_interval(accurate, rated)
    verdict = _verdict(low, high, target)
    return AccuracyEstimate(
        rated=rated,
        accurate=accurate,
        share=accurate / rated,
        low=low,
        high=high,
        verdict=verdict,
        more_needed=ratings_to_settle(accurate, rated, target) if verdict == "unknown" else None,
        nonexistent=nonexistent,
    )


def ordinal_alpha(matrix: Sequence[Sequence[float]]) -> float | None:
    """Krippendorff's alpha, ordinal, for reviewers × citations (NaN where not rated).

    None when alpha is undefined: every rating is the same (there is no disagreement to
    expect, so none to compare with) or no citation has two ratings.
    """
    data = np.asarray(matrix, dtype=float)
    values = data[~np.isnan(data)]
    if values.size == 0 or np.unique(values).size < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        alpha = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal", value_domain=sorted(RATINGS))
    return None if math.isnan(alpha) else float(alpha)


def _percent(units: Iterable[Sequence[int]]) -> float | None:
    agreeing = pairs = 0
    for ratings in units:
        for first, second in combinations(ratings, 2):
            pairs += 1
            agreeing += first == second
    return agreeing / pairs if pairs else None


def agreement(ratings: Iterable[Rating]) -> Agreement:
    """Agreement over the citations rated by two or more reviewers, overall and per pair."""
    shared = {cid: by_reviewer for cid, by_reviewer in by_citation(ratings).items() if len(by_reviewer) >= 2}
    names = sorted({name for by_reviewer in shared.values() for name in by_reviewer})
    matrix = [[by_reviewer.get(name, math.nan) for by_reviewer in shared.values()] for name in names]
    pairs = []
    for first, second in combinations(names, 2):
        both = [by_reviewer for by_reviewer in shared.values() if first in by_reviewer and second in by_reviewer]
        if both:
            pairs.append(
                PairAgreement(
                    reviewers=(first, second),
                    citations=len(both),
                    percent=sum(b[first] == b[second] for b in both) / len(both),
                    alpha=ordinal_alpha([[b[first] for b in both], [b[second] for b in both]]),
                )
            )
    return Agreement(
        reviewers=len(names),
        citations=len(shared),
        percent=_percent(list(by_reviewer.values()) for by_reviewer in shared.values()),
        alpha=ordinal_alpha(matrix) if shared else None,
        pairs=tuple(pairs),
    )


def disagreements(ratings: Iterable[Rating]) -> set[CitationId]:
    """Citations whose reviewers gave different ratings."""
    return {cid for cid, by_reviewer in by_citation(ratings).items() if len(set(by_reviewer.values())) > 1}


def classes_against_ratings(
    classes: Mapping[CitationId, str], ratings: Iterable[Rating]
) -> dict[str, dict[int, int]]:
    """How many citations of each automatic class got each consensus rating.

    ``classes`` maps each citation of the answers under review to its automatic class
    (:data:`core.scoring.citations.CitationClass`); citations nobody rated are left out.
    """
    table: dict[str, dict[int, int]] = {}
    for cid, by_reviewer in by_citation(ratings).items():
        if cid in classes:
            row = table.setdefault(classes[cid], {rating: 0 for rating in sorted(RATINGS, reverse=True)})
            row[consensus(by_reviewer.values())] += 1
    return table
