"""Repetition measures against values computed by hand."""

from __future__ import annotations

import pytest

from core.scoring.repetition import distinct_n, is_degenerate, longest_repeat, rep_n, repetition_stats, words


def test_words_ignore_case_and_punctuation() -> None:
    assert words("Grace, grace! God's grace.") == ["grace", "grace", "god's", "grace"]


@pytest.mark.parametrize(
    ("text", "n", "expected"),
    [
        ("a b c d", 1, 1.0),  # 4 unique / 4
        ("a a b b", 1, 0.5),  # 2 unique / 4
        ("a b a b", 2, 2 / 3),  # (a b), (b a), (a b): 2 unique / 3
        ("a", 2, 1.0),  # no bigrams at all
    ],
)
def test_distinct_n(text: str, n: int, expected: float) -> None:
    assert distinct_n(words(text), n) == pytest.approx(expected)


def test_rep_n_is_the_share_of_repeated_ngrams() -> None:
    # 4-grams of "a b c d a b c d": abcd bcda cdab dabc abcd -> 5 grams, 4 unique -> rep = 1/5
    assert rep_n(words("a b c d a b c d"), 4) == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a b c d", 0),
        ("a a a", 2),  # "a a" occurs at 0 and 1 (overlapping counts)
        ("grace and peace to you grace and peace", 3),
        ("the lord is my shepherd i shall not want the lord is my shepherd", 5),
    ],
)
def test_longest_repeat(text: str, expected: int) -> None:
    assert longest_repeat(words(text)) == expected


def test_a_degenerate_loop_is_flagged_and_a_normal_answer_is_not() -> None:
    loop = "God is love and love is God. " * 12
    normal = (
        "Grace is God's unearned favour. Ephesians 2:8-9 says we are saved by grace through faith, "
        "not by works, so that no one can boast. Romans 3:24 adds that we are justified freely by his "
        "grace through the redemption that is in Christ Jesus."
    )
    loop_stats, normal_stats = repetition_stats(loop), repetition_stats(normal)
    assert loop_stats.words == 84 and loop_stats.distinct_1 == pytest.approx(4 / 84)
    assert loop_stats.rep_n == pytest.approx(1 - 7 / 81)  # the loop has 7 distinct 4-grams
    assert is_degenerate(loop_stats)
    assert normal_stats.rep_n == 0.0 and not is_degenerate(normal_stats)


def test_short_text_is_never_judged_degenerate() -> None:
    assert not is_degenerate(repetition_stats("Amen amen amen amen"))
