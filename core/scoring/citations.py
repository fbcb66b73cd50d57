"""Score one answer: its scripture citations, its quotations of verses, its repetition.

:func:`score_answer` is pure and fast (benchmarks/bench_scoring.py), so a results file
can always be re-scored. It never calls generation; the batch runner
composes them.

Citation units and deduplication
    Every reference :func:`core.scoring.references.extract_citations` finds is one *citation*, and
    each is classified (:data:`CitationClass`) and kept, with its sentence, in
    ``AnswerScore.citations`` for manual review. The *rates* are computed on
    deduplicated citations, so an answer that repeats "John 3:16" five times is not
    rewarded five times (precision) or punished five times (nonexistent rate):

    * an existing reference is one unit per normalised form ("Jn 3:16" and "John 3:16"
      are one unit; "John 3:16" and "John 3:16-17" are two, since they cite different
      verses);
    * a nonexistent reference is one unit per book and numbers, its normalised label
      ("John 3:99" and "Jn 3:99" are one unit, "John 3:99"), or per name and numbers
      when the book is unknown ("Hezekiah 3:4"), ignoring case and spacing;
    * a range that runs past the end ("Psalm 23:1-9") is two units: the verses that
      exist ("Psalms 23:1-6") and the overrun ("Psalms 23:7-9"), which is nonexistent.

    :func:`citation_unit` is that key and :func:`distinct_citations` the first
    occurrence of each unit; every place that counts citations (Chat, Tune, Evaluate,
    Review, the CLI) uses them, so one answer gets one count everywhere.

Classification, first rule that applies (:func:`classify_citation`)
    ``nonexistent``  the reference is not in the 66-book Bible (no such book, chapter
                     or verse: "John 3:99", "Jude 2:1", "Psalm 151", "Hezekiah 3:4").
    ``expected``     it shares at least one verse with an expected reference
                     (:func:`core.scoring.references.verse_overlap`: "Eph 2:8-9" matches
                     "Ephesians 2:8"; the whole chapter "Psalm 23" matches "Psalm 23:1").
    ``in_context``   it is *inside the context* (:func:`in_context`): it shares a verse
                     with a reference the context cites, or the context contains the full
                     text of one of its verses, KJV or ASV, word for word (ignoring case
                     and punctuation). Both, because a context is either a note that
                     cites passages or the passage itself pasted without a reference.
    ``unsupported``  it exists but is neither expected nor in the context.

Rates, following ALCE's citation precision and recall (Gao et al. 2023, "Enabling Large
Language Models to Generate Text with Citations"), with the expected references of the
question set standing in for ALCE's supporting passages and verse overlap standing in for
its entailment check:

    citation_precision = units that share a verse with an expected reference / all units
                         (nonexistent units count against precision)
    citation_recall    = distinct expected references shared by at least one unit
                         / distinct expected references
    citation_f1        = 2PR / (P + R); 0.0 when P + R = 0
    nonexistent_rate   = nonexistent units / all units
    grounded_rate      = existing units inside the context / existing units
    supported_rate     = units that are expected or inside the context / all units

With no expected references precision, recall and F1 are None (nothing to measure
against). With expected references but no citation at all, recall is 0.0, precision is
None (0/0: the answer claimed nothing, so nothing it claimed was wrong) and F1 is 0.0
(an answer that cites nothing has missed every expected reference). nonexistent_rate and
supported_rate are None when the answer cites nothing; grounded_rate is None when the
context is blank or the answer cites no existing reference. An existing unit that is
also expected still counts as inside the context for grounded_rate when it is.

"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Literal

from core.scoring.quotes import Misquote, Quote, check_quotes, find_quotes, normalized_words
from core.scoring.references import VERSIONS, Citation, extract_citations, verse_overlap, verse_text
from core.scoring.repetition import RepetitionStats, is_degenerate, repetition_stats

CitationClass = Literal["nonexistent", "expected", "in_context", "unsupported"]


@dataclass(frozen=True)
class ScoredCitation:
    """One reference in the answer, its class, and its sentence for manual review."""

    citation: Citation
    classification: CitationClass
    sentence: str


@dataclass(frozen=True)
class AnswerScore:
    """Everything measured on one answer; see the module docstring for each definition.

    ``citations`` holds every occurrence, in order; the other fields count deduplicated
    units, so ``len(valid_citations) + len(nonexistent_citations)`` is the denominator of
    ``nonexistent_rate``, ``supported_rate`` and ``citation_precision``.
    """

    citations: tuple[ScoredCitation, ...]
    valid_citations: tuple[str, ...]  # normalized, deduplicated, in order of appearance
    nonexistent_citations: tuple[str, ...]  # :func:`citation_shown` of each unit, in order
    citation_precision: float | None
    citation_recall: float | None
    citation_f1: float | None
    nonexistent_rate: float | None
    grounded_rate: float | None
    misquotes: tuple[Misquote, ...]
    quotes_checked: int
    repetition: RepetitionStats
    degenerate: bool
    supported_rate: float | None = None  # (expected or in-context units) / all units
    missed_references: tuple[str, ...] = ()  # expected references no citation overlaps


@dataclass(frozen=True)
class _Context:
    verse_ids: frozenset[int]
    padded_words: str  # " word word ... " for whole-word containment tests
    blank: bool


# --- the score ------------------------------------------------------------------------------


def score_answer(answer: str, *, expected: Sequence[Citation] = (), context: str = "") -> AnswerScore:
    """Score ``answer`` against the expected references and the context of its question.

    ``expected`` comes from :func:`core.scoring.references.parse_reference_list`; a nonexistent
    one raises ``ValueError``. Definitions: see the module docstring. Repetition is
    :func:`core.scoring.repetition.repetition_stats` and :func:`core.scoring.repetition.is_degenerate`, the same
    measure the generator's output validation uses.
    """
    for reference in expected:
        if not reference.exists:
            raise ValueError(
                f"The expected reference {reference.text!r} does not exist ({reference.reason}); "
                "fix the question set's expected_references."
            )
    found = extract_citations(answer)
    known_context = _context(context)
    quotes = find_quotes(answer)
    boundaries = _sentence_boundaries(answer, found, quotes)

    scored = tuple(
        ScoredCitation(
            citation,
            classify_citation(citation, expected, known_context),
            _sentence_at(answer, boundaries, citation.start),
        )
        for citation in found
    )
    units = _deduplicated(scored)
    valid = [unit for unit in units if unit.citation.exists]
    missing = [unit for unit in units if not unit.citation.exists]
    distinct_expected = list({reference.normalized: reference for reference in expected}.values())

    precision, recall, f1 = citation_precision_recall_f1(
        [unit.citation for unit in units], distinct_expected
    )
    inside = [unit for unit in valid if in_context(unit.citation, known_context)]
    supported = [unit for unit in units if unit.classification in ("expected", "in_context")]
    misquotes, checked = check_quotes(quotes, found, boundaries)
    repetition = repetition_stats(answer)
    return AnswerScore(
        citations=scored,
        valid_citations=tuple(unit.citation.normalized or "" for unit in valid),
        nonexistent_citations=tuple(citation_shown(unit.citation) for unit in missing),
        citation_precision=precision,
        citation_recall=recall,
        citation_f1=f1,
        nonexistent_rate=_share(len(missing), len(units)),
        grounded_rate=None if known_context.blank else _share(len(inside), len(valid)),
        misquotes=misquotes,
        quotes_checked=checked,
        repetition=repetition,
        degenerate=is_degenerate(repetition),
        supported_rate=_share(len(supported), len(units)),
        missed_references=tuple(
            reference.normalized or reference.text
            for reference in distinct_expected
            if not any(verse_overlap(unit.citation, reference) for unit in units)
        ),
    )


def citation_precision_recall_f1(
    cited: Sequence[Citation], expected: Sequence[Citation]
) -> tuple[float | None, float | None, float | None]:
    """Citation precision, recall and F1 (ALCE framing, Gao et al. 2023) by verse overlap.

    ``cited`` and ``expected`` should already be deduplicated. precision = cited
    references sharing a verse with any expected one / all cited (nonexistent ones
    included, and never matching); recall = expected references shared by at least one
    cited / all expected; F1 = 2PR/(P+R), 0.0 when P+R = 0. No expected references:
    (None, None, None). Nothing cited: (None, 0.0, 0.0).
    """
    if not expected:
        return None, None, None
    recall = sum(any(verse_overlap(c, e) for c in cited) for e in expected) / len(expected)
    if not cited:
        return None, recall, 0.0
    precision = sum(any(verse_overlap(c, e) for e in expected) for c in cited) / len(cited)
    f1 = 0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall)
    return precision, recall, f1


def classify_citation(
    citation: Citation, expected: Sequence[Citation], context: str | _Context = ""
) -> CitationClass:
    """nonexistent > expected (verse overlap) > in_context (:func:`in_context`) > unsupported."""
    if not citation.exists:
        return "nonexistent"
    if any(verse_overlap(citation, reference) for reference in expected):
        return "expected"
    if in_context(citation, context):
        return "in_context"
    return "unsupported"


def in_context(citation: Citation, context: str | _Context) -> bool:
    """Whether an existing citation is inside the context text.

    True when it shares a verse with a reference the context cites, or when the context
    contains the full text of one of its verses in KJV or ASV, word for word, ignoring
    case and punctuation. A nonexistent citation, or a blank context, gives False.
    """
    known = _context(context) if isinstance(context, str) else context
    if known.blank or not citation.exists:
        return False
    if not known.verse_ids.isdisjoint(citation.verse_ids):
        return True
    return _verse_text_in(known.padded_words, citation.verse_ids)


# --- sentences ------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"[.!?]+[\"”’')\]]*(?=\s+[^\sa-z(\[])|\n")
#: Words ending in "." that do not end a sentence ("e.g. John 3:16").
_ABBREVIATIONS = frozenset(["e.g", "i.e", "cf", "vs", "v", "vv", "ch", "chap", "st", "dr", "mr", "mrs", "ms", "rev", "etc"])
_WORD_BEFORE = re.compile(r"([\w.]+)\.$")


def _sentence_boundaries(text: str, found: Sequence[Citation], quotes: Sequence[Quote]) -> list[int]:
    """Offsets where sentences end: after . ! ? (and closing marks) before a space and a
    character that is not lower case or an opening bracket ("God is love. (1 John 4:8)"
    is one sentence), and at line breaks; never inside a citation ("Ps. 23") or a
    quotation, nor after an abbreviation ("e.g.")."""
    protected = sorted([(c.start, c.end) for c in found] + [(q.start, q.end) for q in quotes])
    starts = [start for start, _ in protected]
    reach = list(accumulate((end for _, end in protected), max))  # furthest end so far
    boundaries = []
    for match in _SENTENCE_END.finditer(text):
        position = match.end()
        before = bisect_left(starts, position)  # spans starting before the position
        if before and reach[before - 1] > position:
            continue
        if match.group() != "\n":
            word = _WORD_BEFORE.search(text, max(0, match.start() - 12), match.start() + 1)
            if word is not None and word.group(1).lower() in _ABBREVIATIONS:
                continue
        boundaries.append(position)
    return boundaries


def _sentence_at(text: str, boundaries: list[int], position: int) -> str:
    index = bisect_right(boundaries, position)
    start = boundaries[index - 1] if index else 0
    end = boundaries[index] if index < len(boundaries) else len(text)
    return text[start:end].strip()


# --- citation units -------------------------------------------------------------------------


def _deduplicated(scored: Sequence[ScoredCitation]) -> list[ScoredCitation]:
    """First occurrence of each unit (see the module docstring)."""
    seen: dict[str, ScoredCitation] = {}
    for item in scored:
        seen.setdefault(citation_unit(item.citation), item)
    return list(seen.values())


def citation_unit(citation: Citation) -> str:
    """The one key that decides which references of an answer are the same citation.

    Every place that counts citations (Chat, Tune, Evaluate, Review, the CLI) groups by
    this key, so one answer gets one count everywhere (see the module docstring).
    """
    if citation.exists:
        return citation.normalized or ""
    if citation.label is not None:
        return "?" + citation.label
    return "?" + " ".join(citation.text.casefold().split())


def distinct_citations(citations: Sequence[Citation]) -> list[Citation]:
    """The first occurrence of each :func:`citation_unit`, in order."""
    seen: dict[str, Citation] = {}
    for citation in citations:
        seen.setdefault(citation_unit(citation), citation)
    return list(seen.values())


def citation_shown(citation: Citation) -> str:
    """How lists of citations name one: the normalised form when it exists, the overrun of
    a range past the end by its own label ("Psalms 23:7-9"), any other nonexistent one as
    first written ("Jn 3:99")."""
    if citation.exists:
        return citation.normalized or citation.text
    return citation.label if citation.overrun and citation.label else citation.text


# --- helpers --------------------------------------------------------------------------------


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else part / whole


@lru_cache(maxsize=1024)
def _context(context: str) -> _Context:
    if not context.strip():
        return _Context(frozenset(), " ", True)
    verse_ids = frozenset(v for c in extract_citations(context) for v in c.verse_ids)
    return _Context(verse_ids, f" {' '.join(normalized_words(context))} ", False)


@lru_cache(maxsize=4096)
def _verse_text_in(padded_context: str, verse_ids: tuple[int, ...]) -> bool:
    # Cached: a whole-chapter citation means hundreds of verse texts to look for, and the
    # same context is scored with every model's answer to its question.
    return any(
        _padded_verse_words(verse_id, version) in padded_context
        for verse_id in verse_ids
        for version in VERSIONS
    )


@lru_cache(maxsize=65536)
def _padded_verse_words(verse_id: int, version: str) -> str:
    return f" {' '.join(normalized_words(verse_text(verse_id, version)))} "
