"""The figures of a whole run, and pass/fail checks of them against limits a person sets."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from core.evaluation.table import METRIC_DECIMALS
from core.generation.params import HARD_OUTPUT_TOKEN_LIMIT
from core.retrieval.quality import recall
from core.scoring.citations import score_answer
from core.scoring.references import parse_reference_list


@dataclass(frozen=True)
class Summary:
    """The figures of a whole run (or of any results table).

    Means are over the rows where the metric applies (empty cells are left out), so a
    row without expected references does not pull recall down. Rates are shares (0-1).

    Citations are counted as :mod:`core.scoring.citations` counts them: each distinct reference
    once per answer. ``automatic_citation_accuracy`` is the share of all those citations,
    over all scored answers, that exist *and* are expected for their row or inside its
    context (cited by it or quoted in it): right citations over all citations, with
    nonexistent and unsupported ones counting as wrong. It is the citation-weighted mean
    of the rows' ``supported_rate`` (:class:`core.scoring.citations.AnswerScore`), got by
    re-scoring the saved answers, which is fast and exact because scoring is pure.
    ``manual_citation_accuracy`` comes from reviewers' judgements and is filled in by the
    review module; None here.

    Retrieval figures are over the grounded rows with expected references
    (``retrieval_rows``): ``retrieval_hit_rate`` is the share whose passages hit an
    expected reference, ``retrieval_recall`` the mean share of a row's expected references
    hit (recall@K, K the run's passages per question). None when the run was not grounded.
    """

    rows: int
    answered: int  # rows with an answer and no error
    generated: int  # answered rows whose answer was generated in the run
    given: int  # answered rows whose answer came from the set
    errors: int
    error_rate: float | None
    mean_citation_precision: float | None
    mean_citation_recall: float | None
    mean_citation_f1: float | None
    mean_grounded_rate: float | None
    mean_rep_n: float | None
    mean_distinct_1: float | None
    mean_distinct_2: float | None
    citations: int  # distinct references cited, summed over the scored answers
    nonexistent_citations: int
    nonexistent_rate: float | None  # nonexistent citations / all citations
    degenerate: int
    degenerate_share: float | None  # degenerate answers / scored answers
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    within_token_limit: int
    token_limit_compliance: float | None  # within the limit / generated answers with a token count
    automatic_citation_accuracy: float | None
    manual_citation_accuracy: float | None = None
    retrieval_rows: int = 0
    retrieval_hit_rate: float | None = None
    retrieval_recall: float | None = None


def summarize(frame: pd.DataFrame) -> Summary:
    """Summarise a results table (from :func:`results_frame` or :func:`load_results`)."""
    has_error = frame["error"].astype(str) != ""
    answered = frame[~has_error]
    scored = frame[frame["degenerate"].notna()]
    generated = answered[answered["answer_source"] == "generated"]
    citations, nonexistent, supported = _citation_counts(scored)
    degenerate = int(scored["degenerate"].astype(bool).sum())
    within = generated["within_token_limit"].dropna().astype(bool)
    latencies = generated["latency_ms"].dropna()
    recalls = _retrieval_recalls(frame)
    return Summary(
        rows=len(frame),
        answered=len(answered),
        generated=len(generated),
        given=int((answered["answer_source"] == "given").sum()),
        errors=int(has_error.sum()),
        error_rate=_share(int(has_error.sum()), len(frame)),
        mean_citation_precision=_mean(frame["citation_precision"]),
        mean_citation_recall=_mean(frame["citation_recall"]),
        mean_citation_f1=_mean(frame["citation_f1"]),
        mean_grounded_rate=_mean(frame["grounded_rate"]),
        mean_rep_n=_mean(frame["rep_n"]),
        mean_distinct_1=_mean(frame["distinct_1"]),
        mean_distinct_2=_mean(frame["distinct_2"]),
        citations=citations,
        nonexistent_citations=nonexistent,
        nonexistent_rate=_share(nonexistent, citations),
        degenerate=degenerate,
        degenerate_share=_share(degenerate, len(scored)),
        latency_p50_ms=_percentile(latencies, 0.50),
        latency_p95_ms=_percentile(latencies, 0.95),
        within_token_limit=int(within.sum()),
        token_limit_compliance=_share(int(within.sum()), len(within)),
        automatic_citation_accuracy=_share(supported, citations),
        retrieval_rows=len(recalls),
        retrieval_hit_rate=_share(sum(1 for r in recalls if r > 0), len(recalls)),
        retrieval_recall=_mean(pd.Series(recalls, dtype="float64")),
    )


def _retrieval_recalls(frame: pd.DataFrame) -> list[float]:
    """recall@K of each grounded row with expected references, from the saved reference lists."""
    grounded = frame[frame["retrieval_hit"].notna()]
    recalls = []
    for expected_text, retrieved_text in grounded[["expected_references", "retrieved_references"]].itertuples(index=False):
        try:
            expected, retrieved = parse_reference_list(expected_text), parse_reference_list(retrieved_text)
        except ValueError:  # a hand-edited file: leave the row out, as the citation counts do
            continue
        row_recall = recall(expected, [c.verse_ids for c in retrieved])
        if row_recall is not None:
            recalls.append(row_recall)
    return recalls


def _citation_counts(scored: pd.DataFrame) -> tuple[int, int, int]:
    """(citations, nonexistent ones, right ones) over the scored rows, by re-scoring their answers.

    A row whose expected references no longer parse (a hand-edited results file) is left out.
    """
    citations = nonexistent = supported = 0
    for answer, expected_text, context in scored[["answer", "expected_references", "context"]].itertuples(index=False):
        try:
            expected = parse_reference_list(expected_text)
        except ValueError:
            continue
        score = score_answer(answer, expected=expected, context=context)
        units = len(score.valid_citations) + len(score.nonexistent_citations)
        citations += units
        nonexistent += len(score.nonexistent_citations)
        supported += round((score.supported_rate or 0.0) * units)
    return citations, nonexistent, supported


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, METRIC_DECIMALS)


def _mean(values: pd.Series) -> float | None:
    values = values.dropna()
    return None if len(values) == 0 else round(float(values.mean()), METRIC_DECIMALS)


def _percentile(values: pd.Series, q: float) -> float | None:
    return None if len(values) == 0 else round(float(values.quantile(q)), 1)


def format_summary(summary: Summary, *, title: str | None = None) -> str:
    """The summary as a few aligned lines of plain text, for the command line."""

    def number(value: float | None, digits: int = 2) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    def percent(value: float | None) -> str:
        return "–" if value is None else f"{value * 100:.1f}%"

    def seconds(value: float | None) -> str:
        return "–" if value is None else f"{value / 1000:.1f} s"

    s = summary
    answered = f"{s.answered} answered ({s.generated} generated, {s.given} given), {s.errors} errors ({percent(s.error_rate)})"
    citations = (
        f"precision {number(s.mean_citation_precision)}  recall {number(s.mean_citation_recall)}  "
        f"F1 {number(s.mean_citation_f1)}  grounded {number(s.mean_grounded_rate)}"
    )
    counts = (
        f"{s.citations} cited, {s.nonexistent_citations} nonexistent ({percent(s.nonexistent_rate)}); "
        f"automatic citation accuracy {percent(s.automatic_citation_accuracy)}"
    )
    repetition = (
        f"rep-4 {number(s.mean_rep_n)}  distinct-1 {number(s.mean_distinct_1)}  "
        f"distinct-2 {number(s.mean_distinct_2)}  degenerate {s.degenerate} ({percent(s.degenerate_share)})"
    )
    limit = (
        f"{s.within_token_limit} of {s.generated} generated answers within {HARD_OUTPUT_TOKEN_LIMIT} tokens "
        f"({percent(s.token_limit_compliance)})"
    )
    manual = "not reviewed yet" if s.manual_citation_accuracy is None else f"citation accuracy {percent(s.manual_citation_accuracy)}"
    retrieval = (
        f"hit rate {percent(s.retrieval_hit_rate)}  recall@K {number(s.retrieval_recall)} "
        f"over {s.retrieval_rows} rows with expected references"
    )
    lines = [
        *([title] if title else []),
        f"Rows           {s.rows}: {answered}",
        f"Citations      {citations}",
        f"               {counts}",
        *([f"Retrieval      {retrieval}"] if s.retrieval_rows else []),
        f"Repetition     {repetition}",
        f"Latency        p50 {seconds(s.latency_p50_ms)}  p95 {seconds(s.latency_p95_ms)}",
        f"Token limit    {limit}",
        f"Manual review  {manual}",
    ]
    return "\n".join(lines)


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
