"""Quotations in an answer, and whether they match the verses they are attributed to.

Misquotes (:func:`find_quotes`, :func:`quote_similarity`)
    A *quote* is text in "…", “…”, ‘…’ or '…' of at least :data:`MIN_QUOTE_WORDS` words that
    contains no reference itself. Its *attribution* is the citations in its sentence
    (outside the quote), or, when its sentence has none, every citation within
    :data:`QUOTE_NEAR_CHARS` characters before or after it ("“…” (John 3:16)",
    "John 3:16 says:\\n“…”"). A quote is *checked* when its attribution includes an
    existing reference; quotes with no citation nearby, or only nonexistent ones (already
    counted), are not. A checked quote's similarity is the best, over the existing
    attributed references and over KJV and ASV, of :func:`quote_similarity`; below
    :data:`MISQUOTE_SIMILARITY` it is a :class:`Misquote`.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from functools import lru_cache

from core.scoring.references import VERSIONS, Citation, verse_text
from core.scoring.repetition import words

#: A quote whose best similarity to the cited verses is below this is a misquote. A
#: faithful KJV or ASV quote scores 1.0, one changed word in ten about 0.9, a close
#: paraphrase about 0.83 ("God loved the world so much that he gave his only Son"), one
#: changed meaning 0.77 ("For God so hated the world ..."), an invented saying under 0.4.
#: Only KJV and ASV are available offline, so a quote from a modern translation scores
#: anywhere from 0.89 (NIV John 3:16) to 0.5 (NIV "Love is patient, love is kind") and may
#: be flagged: the reviewer sees the similarity and the quoted words.
MISQUOTE_SIMILARITY = 0.8

#: Shorter quotations ("God is love", "born again") are phrases, not verse quotations,
#: and too short to compare fairly.
MIN_QUOTE_WORDS = 4

#: When a quote's sentence cites nothing, citations at most this many characters before
#: or after it are its attribution: a reference on the next line, or after the closing
#: quotation mark.
QUOTE_NEAR_CHARS = 150

#: Quotations longer than this are taken to be a stray, unmatched quotation mark.
MAX_QUOTE_CHARS = 1000

#: How many candidate windows of a long passage are compared with a quote, and by how
#: many words a window may reach past the quote's length (words the quote dropped).
_CANDIDATE_WINDOWS = 3
_WINDOW_SLACK = 3
#: A word found more often than this in the passage ("the", "and") says little about
#: where the quote starts.
_FREQUENT_WORD = 8


@dataclass(frozen=True)
class Misquote:
    """Quoted words that do not match the verse cited next to them in KJV or ASV."""

    reference: str  # normalized reference, e.g. "John 3:16"
    quoted: str  # the words in quotation marks, as written
    similarity: float  # best similarity to the verse text over KJV and ASV, 0..1
    best_version: str  # "KJV" or "ASV"


@dataclass(frozen=True)
class Quote:
    """Text in quotation marks: ``text`` is ``answer[start + 1 : end - 1]``, the marks left out."""

    text: str
    start: int  # of the opening mark
    end: int  # after the closing mark


_QUOTE = re.compile(
    r'"(?P<straight>[^"\n]+)"'
    r"|“(?P<double>[^“”]+)”"
    # A closing ’ followed by a letter is an apostrophe ("God’s"), not the end.
    r"|‘(?P<single>(?:[^‘’]|’(?=\w))+)’(?!\w)"
    # Straight single quotes, as small models write them ("which says 'Forgive us ...'"):
    # opened after a space or bracket, closed before a non-letter; "God's" stays inside.
    r"|(?<![\w'])'(?P<plain>[^'\n]*?(?:'\w[^'\n]*?)*)'(?![\w'])"
)
_ELLIPSIS = re.compile(r"\.\s*\.\s*\.|…")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'", "ʼ": "'"})


def normalized_words(text: str) -> list[str]:
    """Lower-case words with ’ and ' alike, as quotes and verse texts are compared."""
    return words(text.translate(_APOSTROPHES))


def find_quotes(text: str) -> list[Quote]:
    """Quotations in ``text`` of at least :data:`MIN_QUOTE_WORDS` words, in order."""
    quotes = []
    for match in _QUOTE.finditer(text):
        inner = match["straight"] or match["double"] or match["single"] or match["plain"] or ""
        if len(inner) <= MAX_QUOTE_CHARS and len(words(inner)) >= MIN_QUOTE_WORDS:
            quotes.append(Quote(inner, match.start(), match.end()))
    return quotes


def quote_similarity(quoted: str, passage: str) -> float:
    """How closely ``quoted`` reproduces some part of ``passage``, 0..1.

    Both are compared as lower-case words (punctuation, case and ’/' ignored). The quote
    may be any part of a longer passage, so it is compared with the stretch of the
    passage it aligns with: ``difflib.SequenceMatcher``'s matching words M between the
    quote (n words) and a window of the passage around its best alignment, and the
    similarity is 2M / (n + s), where s is the number of passage words from the first
    matched one to the last (the ratio SequenceMatcher would give against exactly that
    stretch). 1.0 when the quote's words occur in the passage as written; a changed word
    in ten gives about 0.9. A quote shortened with an ellipsis ("For God so loved the
    world … everlasting life") is scored fragment by fragment and the scores averaged,
    weighted by the fragments' words.
    """
    return _fragments_similarity(quoted, _passage(passage))


def _fragments_similarity(quoted: str, passage: _Passage) -> float:
    fragments = [normalized_words(part) for part in _ELLIPSIS.split(quoted)]
    fragments = [fragment for fragment in fragments if fragment]
    total = sum(len(fragment) for fragment in fragments)
    if total == 0 or not passage.words:
        return 0.0
    return sum(_best_window_ratio(fragment, passage) * len(fragment) for fragment in fragments) / total


@dataclass(frozen=True)
class _Passage:
    words: tuple[str, ...]
    padded: str  # " word word ... "
    positions: dict[str, tuple[int, ...]]


def _passage(text: str) -> _Passage:
    tokens = tuple(normalized_words(text))
    positions: dict[str, list[int]] = {}
    for index, token in enumerate(tokens):
        positions.setdefault(token, []).append(index)
    return _Passage(
        tokens, f" {' '.join(tokens)} ", {token: tuple(places) for token, places in positions.items()}
    )


def _best_window_ratio(quote: list[str], passage: _Passage) -> float:
    if f" {' '.join(quote)} " in passage.padded:
        return 1.0
    size, length = len(quote), len(passage.words)
    matcher = SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(quote)
    if length <= size + 2 * _WINDOW_SLACK:
        matcher.set_seq1(passage.words)
        return _aligned_ratio(matcher, size)
    # Each quote word found in the passage votes for where the quote would start if it
    # were aligned there (words frequent in the passage vote only when nothing else
    # can); the best-voted windows, widened by the slack, are compared in full.
    places = [(offset, passage.positions.get(token, ())) for offset, token in enumerate(quote)]
    rare = [(offset, found) for offset, found in places if 0 < len(found) <= _FREQUENT_WORD]
    votes: Counter[int] = Counter(
        place - offset for offset, found in (rare or places) for place in found
    )
    best = 0.0
    compared: list[int] = []
    for start, _ in votes.most_common(_CANDIDATE_WINDOWS):
        if any(abs(start - other) <= _WINDOW_SLACK for other in compared):
            continue  # the widened window already compared covers this alignment
        compared.append(start)
        low = max(start - _WINDOW_SLACK, 0)
        matcher.set_seq1(passage.words[low : start + size + _WINDOW_SLACK])
        best = max(best, _aligned_ratio(matcher, size))
    return best


def _aligned_ratio(matcher: SequenceMatcher[str], size: int) -> float:
    """SequenceMatcher's ratio against the stretch of the window the quote aligns with:
    2 x matched words / (quote words + words from the first to the last matched one)."""
    blocks = [block for block in matcher.get_matching_blocks() if block.size]
    if not blocks:
        return 0.0
    matched = sum(block.size for block in blocks)
    span = blocks[-1].a + blocks[-1].size - blocks[0].a
    return 2 * matched / (size + span)


def check_quotes(
    quotes: list[Quote], found: Sequence[Citation], boundaries: list[int]
) -> tuple[tuple[Misquote, ...], int]:
    misquotes: list[Misquote] = []
    checked = 0
    for quote in quotes:
        if any(quote.start <= c.start and c.end <= quote.end for c in found):
            continue  # the quote cites a reference itself: speech or a title, not verse text
        attributed = [c for c in _attribution(quote, found, boundaries) if c.exists]
        if not attributed:
            continue
        checked += 1
        similarity, citation, version = -1.0, attributed[0], "KJV"
        for candidate in attributed:
            for candidate_version in VERSIONS:
                score = _fragments_similarity(quote.text, _cited_passage(candidate.verse_ids, candidate_version))
                if score > similarity:
                    similarity, citation, version = score, candidate, candidate_version
            if similarity == 1.0:
                break
        if similarity < MISQUOTE_SIMILARITY:
            misquotes.append(Misquote(citation.normalized or citation.text, quote.text, similarity, version))
    return tuple(misquotes), checked


def _attribution(quote: Quote, found: Sequence[Citation], boundaries: list[int]) -> list[Citation]:
    """The citations a quote is attributed to (see the module docstring)."""
    outside = [c for c in found if c.end <= quote.start or c.start >= quote.end]
    sentence = bisect_right(boundaries, quote.start)
    same = [c for c in outside if bisect_right(boundaries, c.start) == sentence]
    if same:
        return same
    return [
        c
        for c in outside
        if (quote.start - c.end if c.end <= quote.start else c.start - quote.end) <= QUOTE_NEAR_CHARS
    ]


@lru_cache(maxsize=8192)
def _cited_passage(verse_ids: tuple[int, ...], version: str) -> _Passage:
    return _passage(" ".join(verse_text(verse_id, version) for verse_id in verse_ids))
