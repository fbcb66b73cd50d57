"""Repetition measures: small pure functions over an answer's words.

The core's output validation and the evaluation tab both use :func:`repetition_stats`
and :func:`is_degenerate`, so "repetitive" means the same thing everywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"\w+(?:['’]\w+)*")

#: rep-n is measured on 4-grams: short enough to catch loops, long enough that ordinary
#: phrases ("the grace of God") repeated a few times do not count.
REP_N = 4

#: An answer is degenerate when at least this share of its 4-grams are repeats. Fluent
#: answers of 50-400 words score below 0.1; a model stuck in a loop scores above 0.5.
DEGENERATE_REP_N = 0.3

#: Below this many words there are too few n-grams to call an answer degenerate.
MIN_WORDS_TO_JUDGE = 12


@dataclass(frozen=True)
class RepetitionStats:
    words: int
    distinct_1: float
    distinct_2: float
    rep_n: float
    longest_repeat: int


def words(text: str) -> list[str]:
    """Lower-cased word tokens; punctuation and spacing are ignored."""
    return [w.lower() for w in _WORD.findall(text)]


def ngrams(tokens: list[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(tokens: list[str], n: int) -> float:
    """Distinct-n (Li et al. 2016): unique n-grams over all n-grams; 1.0 when there are none."""
    grams = ngrams(tokens, n)
    return len(set(grams)) / len(grams) if grams else 1.0


def rep_n(tokens: list[str], n: int = REP_N) -> float:
    """rep-n (Welleck et al. 2019, sequence level): 1 - unique n-grams / all n-grams.

    The share of n-grams that repeat an earlier one; 0.0 for text with no repeats.
    """
    return 1.0 - distinct_n(tokens, n)


def longest_repeat(tokens: list[str]) -> int:
    """Length in words of the longest word sequence that occurs at least twice.

    Occurrences may overlap ("a a a" has a repeat of 2). Binary search on the length
    with a set of n-grams per step keeps this O(n log n), fast enough for batch scoring.
    """

    def has_repeat(length: int) -> bool:
        seen: set[tuple[str, ...]] = set()
        for gram in ngrams(tokens, length):
            if gram in seen:
                return True
            seen.add(gram)
        return False

    low, high = 0, max(len(tokens) - 1, 0)
    while low < high:
        mid = (low + high + 1) // 2
        if has_repeat(mid):
            low = mid
        else:
            high = mid - 1
    return low


def repetition_stats(text: str) -> RepetitionStats:
    tokens = words(text)
    return RepetitionStats(
        words=len(tokens),
        distinct_1=distinct_n(tokens, 1),
        distinct_2=distinct_n(tokens, 2),
        rep_n=rep_n(tokens, REP_N),
        longest_repeat=longest_repeat(tokens),
    )


def is_degenerate(stats: RepetitionStats) -> bool:
    """True when an answer loops: rep-4 at or above :data:`DEGENERATE_REP_N`."""
    return stats.words >= MIN_WORDS_TO_JUDGE and stats.rep_n >= DEGENERATE_REP_N
