"""What a reviewer reviews: the answers of a results table and each answer's distinct citations.

A citation here is one :func:`core.scoring.citations.citation_unit`, the unit every tab counts, so
"John 3:16" and "Jn 3:16" in one answer are one citation with one rating, and the
Review panel's count is the count Evaluate, Tune and Chat show.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

import pandas as pd

from core.evaluation.review_stats import AccuracyEstimate, CitationId, manual_accuracy
from core.scoring.citations import CitationClass, ScoredCitation, citation_unit, score_answer
from core.scoring.references import citation_text, parse_reference_list
from core.stores.reviews import Rating, ReviewStore, answer_key


@dataclass(frozen=True)
class ReviewCitation:
    """One citation unit of an answer, with what a reviewer needs to rate it."""

    unit: str  # citation_unit: the key its ratings are stored under
    written: tuple[str, ...]  # as the answer spelled it, each spelling once
    normalized: str | None  # None when the reference does not exist
    classification: CitationClass
    sentences: tuple[str, ...]  # the sentences that cite it, in order
    kjv: str = ""
    asv: str = ""
    reason: str | None = None  # why it does not exist

    @property
    def needs_rating(self) -> bool:
        """Nonexistent references are flagged automatically: there is no verse to judge."""
        return self.normalized is not None


@dataclass(frozen=True)
class ReviewItem:
    """One answer of the results table as the panel shows it."""

    key: str  # answer_key(question, answer): where its review is stored
    row: int  # position in the results table, from 0
    row_id: str
    question: str
    expected_references: str
    answer: str
    citations: tuple[ReviewCitation, ...]
    expected_problem: str | None = None  # why the expected references could not be read


def _cell(row: Mapping[str, object], column: str) -> str:
    value = row.get(column, "")
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def answer_list(frame: pd.DataFrame | None) -> list[tuple[str, int]]:
    """(answer key, table row) of each answer to review, in table order.

    Rows without an answer (a failed generation) have nothing to review. A question asked
    twice with the same answer is one answer and one review, so it is listed once.
    """
    if frame is None or frame.empty or "answer" not in frame:
        return []
    answers: dict[str, int] = {}
    for row, (question, answer) in enumerate(zip(frame["question"].fillna(""), frame["answer"].fillna(""))):
        if str(answer).strip():
            answers.setdefault(answer_key(str(question), str(answer)), row)
    return list(answers.items())


def _review_citation(group: list[ScoredCitation]) -> ReviewCitation:
    first = group[0].citation
    return ReviewCitation(
        unit=citation_unit(first),
        written=tuple(dict.fromkeys(s.citation.text for s in group)),
        normalized=first.normalized if first.exists else None,
        classification=group[0].classification,
        sentences=tuple(dict.fromkeys(s.sentence for s in group)),
        kjv=citation_text(first, "KJV") if first.exists else "",
        asv=citation_text(first, "ASV") if first.exists else "",
        reason=first.reason,
    )


@lru_cache(maxsize=4096)  # pure; the panel and the figures ask again at every step
def review_citations(answer: str, expected_references: str = "", context: str = "") -> tuple[tuple[ReviewCitation, ...], str | None]:
    """The answer's distinct citations, classified by :func:`core.scoring.citations.score_answer`.

    Returns the citations and, when the expected references cannot be read (a results
    file edited by hand), why: the citations are then classified without them rather
    than not shown at all.
    """
    try:
        expected, problem = parse_reference_list(expected_references), None
    except ValueError as error:
        expected, problem = [], str(error)
    groups: dict[str, list[ScoredCitation]] = {}
    for scored in score_answer(answer, expected=expected, context=context).citations:
        groups.setdefault(citation_unit(scored.citation), []).append(scored)
    return tuple(_review_citation(group) for group in groups.values()), problem


def review_item(frame: pd.DataFrame, row: int) -> ReviewItem:
    """The answer in table row ``row`` (from 0), ready to show."""
    record = frame.iloc[row].to_dict()
    question, answer = _cell(record, "question"), _cell(record, "answer")
    citations, problem = review_citations(answer, _cell(record, "expected_references"), _cell(record, "context"))
    return ReviewItem(
        key=answer_key(question, answer),
        row=row,
        row_id=_cell(record, "id"),
        question=question,
        expected_references=_cell(record, "expected_references"),
        answer=answer,
        citations=citations,
        expected_problem=problem,
    )


def citation_classes(frame: pd.DataFrame | None) -> dict[tuple[str, str], str]:
    """(answer key, citation unit) → automatic class, for every answer of the table."""
    classes: dict[tuple[str, str], str] = {}
    for key, row in answer_list(frame):
        assert frame is not None
        for citation in review_item(frame, row).citations:
            classes[(key, citation.unit)] = citation.classification
    return classes


@dataclass(frozen=True)
class ReviewedCitations:
    """The reviews of a results table's answers, as every figure counts them.

    Only ratings of citations the answers still have (a rating made under an older way
    of telling citations apart is left out of every figure alike), and the nonexistent
    citations of the answers someone rated, which count as not accurate unrated.
    """

    classes: dict[CitationId, str]
    ratings: tuple[Rating, ...]

    @property
    def nonexistent(self) -> int:
        rated = {rating.answer_key for rating in self.ratings}
        return sum(1 for (key, _), kind in self.classes.items() if kind == "nonexistent" and key in rated)

    def accuracy(self) -> AccuracyEstimate | None:
        return manual_accuracy(self.ratings, nonexistent=self.nonexistent)


def reviewed_citations(frame: pd.DataFrame | None, store: ReviewStore) -> ReviewedCitations:
    keys = [key for key, _ in answer_list(frame)]
    classes = citation_classes(frame)
    return ReviewedCitations(classes, tuple(r for r in store.ratings(keys) if (r.answer_key, r.citation) in classes))
