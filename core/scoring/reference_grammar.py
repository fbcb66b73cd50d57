"""The chapter-and-verse grammar: which numbers after a book name form a reference.

:mod:`core.scoring.book_names` finds the book names that stand before a number; this module reads
the numbers after each one into :class:`Span` values (book, chapters, verses) and knows
nothing of whether they exist (:mod:`core.scoring.references` decides that). The grammar and each
of its ambiguities are described in ``eval_sets/README.md`` ("How references are read").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pythonbible import Book, get_number_of_chapters, get_number_of_verses

from core.scoring.book_names import GAP, BookName, book_names

#: Words that, right after "Name N", make the number a count, not a chapter or verse:
#: "Mark 10 times", "John 22 years later", "John 3:16, 3 things".
COUNTING_WORDS: frozenset[str] = frozenset(
    ["year", "years", "month", "months", "week", "weeks", "day", "days", "hour", "hours", "minute", "minutes", "time", "times", "people", "men", "women", "children", "sons", "daughters", "brothers", "sisters", "disciples", "apostles", "friends", "thing", "things", "way", "ways", "reason", "reasons", "point", "points", "step", "steps", "mile", "miles", "percent", "other", "more", "others", "questions", "stars", "tips", "lessons", "ideas", "words", "verses", "chapters", "of"]
)

_NUMBER = r"\d{1,3}(?!\d)"
_NONZERO = r"[1-9]\d{0,2}(?!\d)"
#: Between chapter and verse: ":" (spaces around allowed), "." ("John 3.16"), or a verse
#: word ("John 3 v 16", "John 3, vv. 3-5", "Romans 8 verse 28").
_CHAPTER_VERSE = rf"(?:{GAP}*:{GAP}*|\.|{GAP}*,?{GAP}*(?:verses?|vv?\.?){GAP}*)(?=\d)"
_COLON = rf"{GAP}*:{GAP}*(?=\d)"
_LETTER = r"(?:[a-d](?![A-Za-z]))?"  # "Psalm 17:6a": the first part of verse 6
_FOLLOWING = rf"(?P<ff>{GAP}?ff?\.?)(?![A-Za-z])"  # "121:1ff" to the chapter's end, "8:28f" and the next
_TO = rf"(?:{GAP}*[-\u2010\u2011\u2012\u2013\u2014]{GAP}*|{GAP}+(?:through|thru|to){GAP}+)"
_CHAPTER_WORD = rf"(?:(?:chapter|chap|ch)\.?{GAP}*)?"


def _numbers(first: str, separator: str) -> str:
    return (
        rf"(?P<c1>{first})(?:(?P<sep1>{separator})(?P<v1>{_NUMBER}){_LETTER}(?:{_FOLLOWING})?)?"
        rf"(?:(?P<to>{_TO})(?P<c2>{_NUMBER})(?:(?P<sep2>{separator})(?P<v2>{_NUMBER}){_LETTER})?)?"
    )


_FIRST = re.compile(_CHAPTER_WORD + _numbers(_NUMBER, _CHAPTER_VERSE), re.IGNORECASE)
_CONTINUATION = re.compile(
    rf"{GAP}*(?P<link>[,;&]|and\b){GAP}*(?:(?P<verses>verses?|vv?\.?)|(?P<chapters>chapters?|chap\.?|ch\.))?"
    rf"{GAP}*(?=[1-9])" + _numbers(_NONZERO, _CHAPTER_VERSE),
    re.IGNORECASE,
)
_RANGE_TO_BOOK = re.compile(_TO)
#: A number followed by am/pm is a time ("Mark 3:30 pm").
CLOCK_SUFFIX = re.compile(r"\s*(?:[ap]\.?m\b\.?)", re.IGNORECASE)
_COUNTED = re.compile(rf"{GAP}+(?:{'|'.join(sorted(COUNTING_WORDS))})\b", re.IGNORECASE)
_NTH_PSALM = re.compile(rf"\bthe{GAP}+(?P<c1>\d{{1,3}})(?:st|nd|rd|th){GAP}+Psalm\b", re.IGNORECASE)
_CLOCK_TIME = re.compile(r"(?:[01]?\d|2[0-4]):[0-5]\d")
_OPENS_CITATION = re.compile(rf"[(\[](?:(?:see|cf\.?){GAP}+)?\Z", re.IGNORECASE)
_CLOSES_CITATION = re.compile(rf"{GAP}*[)\];,]")


@dataclass(frozen=True)
class Span:
    """Chapters and verses as read; ``start_verse``/``end_verse`` None means whole chapters.

    ``following`` is "f" or "ff" ("8:28f", "121:1ff"), to be resolved against the
    chapter's length. ``end_book`` differs from ``book`` in a range across books.
    """

    book: Book
    start_chapter: int
    start_verse: int | None
    end_chapter: int
    end_verse: int | None
    end_book: Book
    following: str = ""


@dataclass(frozen=True)
class Reference:
    """A reference as read: where it is, the name it follows, its span (None: no such book)."""

    start: int
    end: int
    name: BookName
    span: Span | None


def read_references(text: str, prose: bool) -> list[Reference]:
    """Every reference to a known (or numberless: "Timothy 3:16") book in ``text``, in order.

    ``prose`` applies the guards for answers (see the grammar in eval_sets/README.md);
    expected-reference lists are read without them.
    """
    names = book_names(text)
    name_starts = {name.start: name for name in names}
    found: list[Reference] = []
    position = 0
    for name in names:
        if name.start < position:
            continue
        first = _first_part(text, name, name_starts, prose)
        if first is None:
            continue
        if name.book is None:
            found.append(Reference(name.start, first.end(), name, None))
            position = first.end()
            continue
        span, end = _span(name.book, first, None, False), first.end()
        span, end = _across_books(text, span, end, name_starts)
        found.append(Reference(name.start, end, name, span))
        position = end
        listing = ""  # "verses" or "chapters" once a list has said which it is
        while (more := _CONTINUATION.match(text, position)) is not None:
            if more.start("c1") in name_starts or _not_a_continuation(text, more, prose, listing):
                break
            listing = "verses" if more["verses"] else "chapters" if more["chapters"] else listing
            bare_is_verse = listing == "verses" or (
                not listing and more["link"].lower() != ";" and span.start_verse is not None
            )
            span = _span(name.book, more, span, bare_is_verse)
            found.append(Reference(more.start("c1"), more.end(), name, span))
            position = more.end()
    found += _nth_psalms(text, found)
    return sorted(found, key=lambda reference: reference.start)


def _first_part(text: str, name: BookName, name_starts: dict[int, BookName], prose: bool) -> re.Match[str] | None:
    first = _FIRST.match(text, name.end)
    if first is None or CLOCK_SUFFIX.match(text, first.end()):
        return None
    has_verse = first["v1"] is not None
    colon = has_verse and ":" in first["sep1"]
    if first["c2"] is not None and first.start("c2") in name_starts:
        first = _FIRST.match(text, name.end, first.start("to"))  # "Genesis 1-2 Kings 3": the range is across books
        if first is None:
            return None
    if name.book is None:  # a numbered book's base alone ("Timothy 3:16"), or "3 Corinthians"
        return first if colon and name.capitalised and len(name.key) > 2 and not name.prose_word else None
    if not prose:
        return first
    if name.prose_word:  # "Mark my words", "Is 5 enough?", "Dan 6:30 dinner"
        if not name.title_case or (not colon and not _bracketed(text, name.start, first.end())):
            return None
        return None if colon and _clock_like(name.book, first) else first
    if len(name.key) <= 2 and not name.title_case:  # "ex 3", "PS 2"
        return None
    if not has_verse and not name.capitalised:  # "my job 3 years ago"
        return None
    if not has_verse and first["c2"] is None and _COUNTED.match(text, first.end()):
        return None  # "John 22 years later"
    return first


def _bracketed(text: str, start: int, end: int) -> bool:
    """Whether a reference stands alone in brackets ("(Acts 2)", "[see Job 38–41]"), where
    a chapter alone is a citation even after a name prose could take for a word."""
    return _OPENS_CITATION.search(text, max(0, start - 8), start) is not None and _CLOSES_CITATION.match(text, end) is not None


def _clock_like(book: Book, part: re.Match[str]) -> bool:
    """A prose word before a clock time that is no verse ("Dan 6:30") is a time."""
    if not _CLOCK_TIME.fullmatch(f"{part['c1']}:{part['v1']}"):
        return False
    chapter, verse = int(part["c1"]), int(part["v1"])
    return not (1 <= chapter <= get_number_of_chapters(book) and 1 <= verse <= get_number_of_verses(book, chapter))


def _not_a_continuation(text: str, more: re.Match[str], prose: bool, listing: str) -> bool:
    if CLOCK_SUFFIX.match(text, more.end()):
        return True
    bare = more["v1"] is None and not more["verses"] and not listing
    return prose and bare and _COUNTED.match(text, more.end()) is not None  # "John 3:16, 3 things"


def _across_books(text: str, span: Span, end: int, name_starts: dict[int, BookName]) -> tuple[Span, int]:
    """Extend "Genesis 1" over "–Exodus 2", or "Mark 1:1" over "–Mark 16:20"."""
    dash = _RANGE_TO_BOOK.match(text, end)
    if dash is None or (span.end_chapter, span.end_verse) != (span.start_chapter, span.start_verse):
        return span, end
    other = name_starts.get(dash.end())
    if other is None or other.book is None or not span.book.value <= other.book.value <= Book.REVELATION.value:
        return span, end  # "Exodus 2-Genesis 1", "Genesis 1–Tobit 2": two references
    # After "Genesis 1–" a name is a book even where prose could take it for a word ("Judges 6").
    second = _first_part(text, other, name_starts, prose=False)
    if second is None or second["c2"] is not None:
        return span, end
    last = _span(other.book, second, None, False)
    if span.start_verse is None and last.start_verse is None:  # "Genesis 1–Exodus 2": whole chapters
        return Span(span.book, span.start_chapter, None, last.start_chapter, None, other.book), second.end()
    end_verse = last.start_verse
    if end_verse is None and last.start_chapter <= get_number_of_chapters(other.book):
        end_verse = get_number_of_verses(other.book, last.start_chapter)
    start_verse = 1 if span.start_verse is None else span.start_verse
    return Span(span.book, span.start_chapter, start_verse, last.start_chapter, end_verse, other.book), second.end()


def _span(book: Book, part: re.Match[str], previous: Span | None, bare_is_verse: bool) -> Span:
    """Turn the numbers of one part into chapters and verses, given what came before."""
    c1, c2 = int(part["c1"]), _int_or_none(part["c2"])
    v1, v2 = _int_or_none(part["v1"]), _int_or_none(part["v2"])
    following = (part["ff"] or "").strip(" .").lower()
    if v1 is not None:
        if c2 is None:
            return Span(book, c1, v1, c1, v1, book, following)
        if v2 is None:
            return Span(book, c1, v1, c1, c2, book)
        return Span(book, c1, v1, c2, v2, book)
    one_chapter = get_number_of_chapters(book) == 1
    if bare_is_verse or one_chapter:
        # c1 is a verse in the current chapter (or the only chapter).
        current = 1 if one_chapter and previous is None else (previous.end_chapter if previous else 1)
        if c2 is None:
            return Span(book, current, c1, current, c1, book)
        if v2 is None:
            return Span(book, current, c1, current, c2, book)
        return Span(book, current, c1, c2, v2, book)
    if c2 is None:
        return Span(book, c1, None, c1, None, book)
    if v2 is None:
        return Span(book, c1, None, c2, None, book)
    return Span(book, c1, 1, c2, v2, book)


def _int_or_none(digits: str | None) -> int | None:
    return None if digits is None else int(digits)


def _nth_psalms(text: str, found: list[Reference]) -> list[Reference]:
    """"the 23rd Psalm" is Psalm 23, the whole psalm."""
    references = []
    for match in _NTH_PSALM.finditer(text):
        start = match.start("c1")
        if any(start < other.end and other.start < match.end() for other in found):
            continue
        chapter = int(match["c1"])
        name = BookName(start, match.end(), Book.PSALMS, "psalm", "Psalm", "Psalm", None)
        references.append(Reference(start, match.end(), name, Span(Book.PSALMS, chapter, None, chapter, None, Book.PSALMS)))
    return references
