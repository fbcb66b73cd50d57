"""How well retrieved passages cover a question's expected references: pure functions.

One definition for the evaluation runner, its summary and the retrieval benchmark. A
passage *hits* an expected reference when they share a verse (verse-level, like
:func:`core.scoring.references.verse_overlap`), so "Philippians 4:5-7" hits an expected
"Philippians 4:6-7".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from core.scoring.references import Citation

if TYPE_CHECKING:
    from core.retrieval.retriever import Passage


def first_hit(expected: Sequence[Citation], passages: Sequence[Iterable[int]]) -> int | None:
    """The 0-based rank of the first passage (given as its verse ids) that hits any expected reference."""
    wanted = {verse_id for citation in expected for verse_id in citation.verse_ids}
    return next((rank for rank, verse_ids in enumerate(passages) if wanted.intersection(verse_ids)), None)


def recall(expected: Sequence[Citation], passages: Sequence[Iterable[int]]) -> float | None:
    """Share of the expected references that some passage hits (recall@K for K passages); None without any expected."""
    if not expected:
        return None
    found = {verse_id for verse_ids in passages for verse_id in verse_ids}
    return sum(1 for citation in expected if found.intersection(citation.verse_ids)) / len(expected)


def reciprocal_rank(expected: Sequence[Citation], passages: Sequence[Iterable[int]]) -> float:
    """1 / rank of the first hit (MRR's term, Voorhees 1999); 0 when nothing hits."""
    rank = first_hit(expected, passages)
    return 0.0 if rank is None else 1.0 / (rank + 1)


def matching_passage(citation: Citation, passages: Sequence[Passage]) -> Passage | None:
    """The first passage the cited reference shares a verse with: a citation "from the passages" (None: not from them)."""
    return next((p for p in passages if not set(citation.verse_ids).isdisjoint(p.verse_ids)), None)
