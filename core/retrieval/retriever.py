"""Find the Bible passages that answer a question: :class:`ScriptureRetriever` and :class:`Passage`."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pythonbible as pb

from core.retrieval.bible_text import BibleText
from core.retrieval.index import IndexSpec, load_or_build_index, stemmer, tokenize

#: Neighbours each side of the best-matching verse that a passage shows, inside its chapter.
PASSAGE_RADIUS = 1

#: Most passages one question may ask for: more would crowd the question out of a small context window.
MAX_PASSAGES = 20

_SEPARATOR = " — "  # the shipped sets' context format: "Romans 5:8 — But God commendeth ..."


@dataclass(frozen=True)
class Passage:
    """A verse that matched a question, with its neighbours: what the model is given to read."""

    reference: str  # pythonbible's normal form, e.g. "Philippians 4:5-7"
    verse_ids: tuple[int, ...]
    text: str  # in SHOWN_VERSION, brackets of supplied words removed
    score: float

    def as_context(self) -> str:
        """The passage as one context passage of a prompt, in the question sets' own format."""
        return f"{self.reference}{_SEPARATOR}{self.text}"


def check_passage_count(k: int) -> None:
    if not 1 <= k <= MAX_PASSAGES:
        raise ValueError(f"The number of passages must be from 1 to {MAX_PASSAGES}, not {k}.")


def normal_reference(verse_ids: tuple[int, ...]) -> str:
    """pythonbible's form of consecutive verses of one chapter (its own converter scans every verse id)."""
    first, last = verse_ids[0], verse_ids[-1]
    book, chapter = pb.Book(first // 1_000_000), first // 1000 % 1000
    return pb.format_scripture_references([pb.NormalizedReference(book, chapter, first % 1000, chapter, last % 1000)])


@dataclass
class ScriptureRetriever:
    """BM25 over the Bible; one per process (see :func:`get_retriever`), safe to share between threads."""

    bible: BibleText
    spec: IndexSpec
    passage_radius: int = PASSAGE_RADIUS
    _index: object = field(default=None, repr=False)
    _stem: object = field(default=None, repr=False)

    @classmethod
    def open(cls, cache_dir: Path, spec: IndexSpec | None = None, *, passage_radius: int = PASSAGE_RADIUS) -> ScriptureRetriever:
        """Load the cached index under ``cache_dir`` (building and caching it the first time)."""
        spec = spec or IndexSpec()
        bible, stem = BibleText.load(), stemmer()
        index = load_or_build_index(cache_dir, bible, spec, stem)
        return cls(bible, spec, passage_radius, index, stem)

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document for ``query`` (zeros when no word of it is indexed)."""
        tokens = tokenize([query], self._stem)[0]
        known = self._index.get_tokens_ids(tokens)  # type: ignore[attr-defined]
        if not known:
            return np.zeros(len(self.bible), dtype=np.float32)
        return self._index.get_scores_from_ids(known)  # type: ignore[attr-defined]

    def search(self, query: str, k: int) -> tuple[Passage, ...]:
        """The ``k`` best passages for ``query``, best first; fewer when fewer documents match at all."""
        return self.passages(self.scores(query), k)

    def passages(self, scores: np.ndarray, k: int) -> tuple[Passage, ...]:
        """The ``k`` best passages for document ``scores``; a passage never repeats a verse centred in an earlier one."""
        check_passage_count(k)
        # Each passage can cover 2 * radius + 1 candidates, so this many always yields k passages.
        pool = min(len(scores), k * (2 * self.passage_radius + 1) + k)
        candidates = np.argpartition(-scores, pool - 1)[:pool]
        candidates = candidates[np.argsort(-scores[candidates], kind="stable")]
        chosen: list[Passage] = []
        covered: set[int] = set()
        for position in candidates:
            if scores[position] <= 0 or len(chosen) == k:
                break
            if int(position) in covered:
                continue
            window = self.bible.window(int(position), self.passage_radius)
            covered.update(window)
            verse_ids = tuple(self.bible.verse_ids[p] for p in window)
            chosen.append(Passage(normal_reference(verse_ids), verse_ids, self.bible.text(window), float(scores[position])))
        return tuple(chosen)


_retrievers: dict[tuple[Path, IndexSpec], ScriptureRetriever] = {}
_retrievers_lock = threading.Lock()


def get_retriever(cache_dir: Path, spec: IndexSpec | None = None) -> ScriptureRetriever:
    """The process's retriever for ``cache_dir``, opened on first call; later calls return the same one."""
    key = (Path(cache_dir), spec or IndexSpec())
    with _retrievers_lock:
        retriever = _retrievers.get(key)
        if retriever is None:
            retriever = _retrievers[key] = ScriptureRetriever.open(*key)
    return retriever
