"""Scoring one row: an answer (generated or given) scored, joined to its generation figures."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from core.errors import GenerationError, OutputValidationError
from core.evaluation.question_sets import QuestionRow
from core.generation.params import HARD_OUTPUT_TOKEN_LIMIT
from core.generation.types import GenerationResult
from core.retrieval import Passage
from core.retrieval.quality import first_hit
from core.scoring.citations import AnswerScore, score_answer

AnswerSource = Literal["generated", "given"]


@dataclass(frozen=True)
class ScoredRow:
    """A question, its answer, the answer's scores and how it was produced.

    ``score`` is None when no answer was produced (``error`` says why). A strict-validation
    failure keeps its answer, so that row has both a score and an error.
    """

    row: QuestionRow
    answer: str
    answer_source: AnswerSource
    score: AnswerScore | None
    output_tokens: int | None = None
    latency_ms: float | None = None
    finish_reason: str | None = None
    error: str | None = None
    retrieved: tuple[Passage, ...] | None = None  # None: the run was not grounded

    @property
    def key(self) -> str:
        return self.row.key

    @property
    def retrieval_hit(self) -> bool | None:
        """Whether a retrieved passage hits an expected reference; None when ungrounded or nothing is expected."""
        if self.retrieved is None or not self.row.expected_references:
            return None
        return first_hit(self.row.expected_references, [p.verse_ids for p in self.retrieved]) is not None

    @property
    def within_token_limit(self) -> bool | None:
        """True when the answer kept to the hard output limit; None for given answers."""
        return None if self.output_tokens is None else self.output_tokens <= HARD_OUTPUT_TOKEN_LIMIT


def score_row(
    row: QuestionRow,
    result_or_answer: GenerationResult | GenerationError | str,
    *,
    retrieved: tuple[Passage, ...] | None = None,
) -> ScoredRow:
    """Score a generated result, a failed generation, or a given answer (a string) for ``row``.

    ``retrieved``: the passages the answer was grounded in, kept with the row.
    """
    return replace(_score_any(row, result_or_answer), retrieved=retrieved)


def _score_any(row: QuestionRow, result_or_answer: GenerationResult | GenerationError | str) -> ScoredRow:
    if isinstance(result_or_answer, str):
        return ScoredRow(row, result_or_answer, "given", answer_score(row, result_or_answer))
    if isinstance(result_or_answer, GenerationResult):
        return _scored_result(row, result_or_answer)
    if isinstance(result_or_answer, OutputValidationError) and isinstance(result_or_answer.result, GenerationResult):
        return _scored_result(row, result_or_answer.result, error=result_or_answer.message)
    partial = getattr(result_or_answer, "partial_text", "")
    return ScoredRow(row, partial, "generated", None, error=result_or_answer.message or type(result_or_answer).__name__)


def _scored_result(row: QuestionRow, result: GenerationResult, *, error: str | None = None) -> ScoredRow:
    return ScoredRow(
        row,
        result.text,
        "generated",
        answer_score(row, result.text),
        output_tokens=result.output_tokens,
        latency_ms=result.duration_ms,
        finish_reason=result.finish_reason,
        error=error,
    )


def answer_score(row: QuestionRow, answer: str) -> AnswerScore:
    return score_answer(answer, expected=row.expected_references, context=row.context)
