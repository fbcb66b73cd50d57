"""The 66 books' verses, in order, with their KJV and ASV text as the installed packages ship it.

Read straight from pythonbible's ``Bible`` objects: one slice of the book's text per verse,
which is what lets the whole Bible be read at first use without a noticeable wait.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import pythonbible as pb

from core.scoring.references import LAST_CANON_BOOK

#: The translations the index reads, by the names :func:`core.scoring.references.verse_text` uses.
VERSIONS: dict[str, pb.Version] = {"KJV": pb.Version.KING_JAMES, "ASV": pb.Version.AMERICAN_STANDARD}

#: The translation whose words a passage shows (and the model reads); the shipped sets quote it.
SHOWN_VERSION = "KJV"


@dataclass(frozen=True)
class BibleText:
    """Every verse of the 66 books in canonical order; positions index the retrieval documents."""

    verse_ids: tuple[int, ...]

    @classmethod
    def load(cls) -> BibleText:
        bible = pb.get_bible(VERSIONS[SHOWN_VERSION], "plain_text_readers")
        return cls(tuple(v for v in bible.get_verse_ids() if v // 1_000_000 <= LAST_CANON_BOOK))

    def __len__(self) -> int:
        return len(self.verse_ids)

    @cached_property
    def _chapters(self) -> tuple[int, ...]:
        return tuple(v // 1000 for v in self.verse_ids)

    @cached_property
    def _positions(self) -> dict[int, int]:
        return {verse_id: n for n, verse_id in enumerate(self.verse_ids)}

    def position(self, verse_id: int) -> int:
        return self._positions[verse_id]

    def texts(self, version: str) -> list[str]:
        """One text per verse; a verse the translation lacks is empty (the ASV omits a few)."""
        bible = pb.get_bible(VERSIONS[version], "plain_text_readers")
        return [_plain(bible, verse_id) for verse_id in self.verse_ids]

    def text(self, positions: range, version: str = SHOWN_VERSION) -> str:
        """The verses at ``positions`` joined by spaces, read when asked: a search shows a few, never all."""
        bible = pb.get_bible(VERSIONS[version], "plain_text_readers")
        return " ".join(t for t in (_plain(bible, self.verse_ids[p]) for p in positions) if t)

    def window(self, position: int, radius: int) -> range:
        """The positions of a verse and up to ``radius`` neighbours each side, inside its chapter.

        A chapter is where a passage's sense usually ends; crossing into the next would hand
        the model a verse from another story.
        """
        chapter, chapters = self._chapters[position], self._chapters
        low = position
        while low > 0 and position - low < radius and chapters[low - 1] == chapter:
            low -= 1
        high = position
        while high < len(chapters) - 1 and high - position < radius and chapters[high + 1] == chapter:
            high += 1
        return range(low, high + 1)

    def joined(self, texts: Sequence[str], positions: range) -> str:
        return " ".join(texts[p] for p in positions if texts[p])


def _plain(bible: pb.Bible, verse_id: int) -> str:
    # Both texts bracket the words translators supplied, printed in italics; answers quote them plainly.
    if not bible.is_valid_verse_id(verse_id):
        return ""
    return bible.get_scripture(verse_id).replace("[", "").replace("]", "").strip()
