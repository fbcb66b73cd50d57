"""Scripture references in AI answers: find them, check they exist, fetch their text.

Citation scoring needs three things pythonbible does not give directly:

* **Where** each reference is in the answer (character offsets, the text as written).
  ``pythonbible.get_references`` returns normalised references only, after rewriting
  roman numerals, so offsets are lost.
* **Nonexistent references.** pythonbible silently drops "John 3:99", "Jude 2:1" and
  "Psalm 151", and never sees "Hezekiah 3:4". An answer that invents a verse is exactly
  what the scoring has to catch, so these come back as citations with ``exists=False``
  and a reason a reader can check.
* **Book inheritance across ";"** ("Rom 3:23; 6:23"), which pythonbible's pattern stops at.

So this module scans with its own small grammar for chapters and verses, but takes the
book names (pythonbible's per-book regular expressions), chapter and verse counts, verse
ids, formatting and verse text from pythonbible. The grammar:

* ``BOOK CH``, ``BOOK CH:V`` (or ``CH.V``), ``BOOK CH:V-V``, ``BOOK CH:V-CH:V``,
  ``BOOK CH-CH``; dashes may be "-", "–" or "—". In a one-chapter book (Jude, Obadiah,
  Philemon, 2 and 3 John) a bare number is a verse, as pythonbible reads it.
* Continuations after "," or ";" inherit the book: "John 3:16, 18" (after "," a bare
  number is a verse when the previous reference named verses) and "Rom 3:23; 6:23"
  (after ";" a bare number is a chapter). A number that starts a new book ("1 John")
  is never taken as a continuation.
* Guards against ordinary prose: a book written in lower case ("john 3:16") counts only
  with a verse, so "my job 3 years ago" is not Job 3; a chapter followed by a counting
  word (:data:`COUNTING_WORDS`: "Mark 10 times", "John 22 years later") is a count; a
  reference followed by "am"/"pm" is a time; in answers (not in expected-reference lists) a bare continuation number
  followed by a word ("John 3:16, 3 things") is not a verse.
* The 66 books of the Protestant canon exist. pythonbible also knows the Apocrypha
  (Tobit, Sirach, 1-2 Maccabees, ...) but the KJV and ASV texts here do not contain it,
  so those citations come back as nonexistent with a reason that says so. Psalm 151 is
  nonexistent for the same reason.

Unknown books (the bounded rule, see :data:`NOT_BOOK_WORDS`): a run of capitalised words
directly followed by ``CH:V`` with a colon, where the words are

    [ordinal ] Word [of [the] Word]        e.g. "Hezekiah", "2 Hezekiah", "Gospel of Thomas"

("ordinal" is 1-3, I-III, 1st-3rd or First-Third; "Word" is a capital then lower-case
letters), is a citation of a book that is not in the Bible when (a) it does not overlap a
known reference, (b) no word of it is in :data:`NOT_BOOK_WORDS` (times, dates, ratios,
document parts, sentence-starting function words), (c) it is not followed by am/pm and
(d) the word before it is not a time preposition ("at", "by", "until", ...). Lower-case
words ("at 3:30"), chapter-only numbers ("Windows 10") and all-capital acronyms are never
flagged. A name followed by a clock time ("Pastor Jim 10:30") still is: that is the cost
of catching "Hezekiah 3:4" in an answer with no other context.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pythonbible import (
    Book,
    NormalizedReference,
    Version,
    convert_reference_to_verse_ids,
    format_scripture_references,
    get_number_of_chapters,
    get_number_of_verses,
    get_verse_text,
    is_valid_verse_id,
)

# CPython's own regex parser, read only, to see which characters a book name starts with
# (see _book_name_alternation). Python 3.11 moved it; 3.10 has the old names.
try:
    from re import _constants as sre_constants
    from re import _parser as sre_parser
except ImportError:  # Python 3.10
    import sre_constants  # type: ignore[no-redef]
    import sre_parse as sre_parser  # type: ignore[no-redef]

#: The last book of the 66-book canon; pythonbible numbers the Apocrypha after it.
LAST_CANON_BOOK = Book.REVELATION.value

#: Bible texts available offline, by the abbreviation the app shows.
VERSIONS: dict[str, Version] = {"KJV": Version.KING_JAMES, "ASV": Version.AMERICAN_STANDARD}

#: A citation's text is cut to this many characters: a screenful, about 6-8 verses.
#: Whole-chapter citations (Psalm 119 has 176 verses) would otherwise flood the UI.
MAX_CITATION_TEXT_CHARS = 1000

#: Abbreviations in common use that pythonbible 0.15.5 does not recognise. The short
#: ones must be written with a capital ("Mt 5:3"), so "ex 3:4" or "mk 2:1" in prose
#: are left alone; "Revelations" is a frequent misspelling and matches in any case.
EXTRA_ABBREVIATIONS: dict[str, Book] = {
    "Gn": Book.GENESIS,
    "Ex": Book.EXODUS,
    "Dt": Book.DEUTERONOMY,
    "Mt": Book.MATTHEW,
    "Mk": Book.MARK,
    "Lk": Book.LUKE,
    "Rm": Book.ROMANS,
    "Rv": Book.REVELATION,
}
_CASE_INSENSITIVE_ALIASES: dict[str, Book] = {"revelations": Book.REVELATION}

#: Capitalised words that precede "N:NN" without naming a book: times, dates, ratios,
#: scores, parts of documents, and words that start sentences. Kept lower case.
NOT_BOOK_WORDS: frozenset[str] = frozenset(
    """
    a about after also an and approx approximately around at before begins between but by
    chapel chapter chapters church circa class doors during each every final fig figure for from game
    hour hours if in is it its line lines lap mass match meeting midnight minute minutes
    morning afternoon evening night noon now of on or page pages part ratio read round
    scale score scored section see service services session since start starts step
    sunrise sunset table that the then this time times timestamp to today tomorrow tonight
    until till track verse verses version vol volume was we worship yesterday odds
    monday tuesday wednesday thursday friday saturday sunday
    january february march april may june july august september october november december
    jan feb mar apr jun jul aug sep sept oct nov dec
    """.split()
)

#: Words that, right after "Name N", make the number a count, not a chapter: "Mark 10
#: times", "John 22 years later" (which would otherwise be a made-up John 22).
COUNTING_WORDS: frozenset[str] = frozenset(
    """
    year years month months week weeks day days hour hours minute minutes time times
    people men women children sons daughters brothers sisters disciples apostles
    thing things way ways reason reasons point points step steps mile miles percent
    """.split()
)

#: Words that, right before "Word N:NN", mean the number is a time ("at Church 10:30").
_TIME_PREPOSITIONS: frozenset[str] = frozenset(
    "at by from until till around about before after between since to".split()
)


@dataclass(frozen=True)
class Citation:
    """One scripture reference as an answer (or an expected-reference list) wrote it.

    ``text`` is exactly ``answer[start:end]``; for a continuation ("Rom 3:23; 6:23") it is
    the continuation alone ("6:23"), with the inherited book in ``normalized``.
    ``normalized`` is pythonbible's form ("Ephesians 2:8-9", "1 John 4:8"; whole chapters
    as "Psalms 23"), ``None`` when the reference does not exist. ``book`` is the
    canonical book title whenever the book is known, even if the verse is not ("John"
    for "John 3:99"). ``verse_ids`` are pythonbible verse ids (book*10^6 + chapter*10^3
    + verse), empty when the reference does not exist; ``reason`` says why it does not.
    """

    text: str
    start: int
    end: int
    exists: bool
    normalized: str | None = None
    verse_ids: tuple[int, ...] = ()
    reason: str | None = None
    book: str | None = None


# --- the grammar -------------------------------------------------------------------------

def _first_characters(pattern: str) -> frozenset[str] | None:
    """Upper-case characters a match of ``pattern`` can begin with; None when unsure.

    Read from CPython's own parse of the pattern. Only literals, character sets, groups,
    alternations, repeats and zero-width assertions are understood; anything else
    answers None, and the caller then falls back to the plain alternation.
    """
    chars, _ = _first_of(list(sre_parser.parse(pattern)))
    return None if chars is None else frozenset(char.upper() for char in chars)


def _first_of(items: list[tuple[Any, Any]]) -> tuple[set[str] | None, bool]:
    """(first characters or None, whether the sequence can match the empty string)."""
    found: set[str] = set()
    for op, arg in items:
        if op in (sre_constants.AT, sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            continue
        if op is sre_constants.LITERAL:
            return found | {chr(arg)}, False
        if op is sre_constants.IN:
            for set_op, set_arg in arg:
                if set_op is sre_constants.LITERAL:
                    found.add(chr(set_arg))
                elif set_op is sre_constants.RANGE:
                    found.update(chr(code) for code in range(set_arg[0], set_arg[1] + 1))
                else:
                    return None, False
            return found, False
        if op is sre_constants.SUBPATTERN:
            chars, nullable = _first_of(list(arg[-1]))
        elif op is sre_constants.BRANCH:
            chars, nullable = set(), False
            for alternative in arg[1]:
                alternative_chars, alternative_nullable = _first_of(list(alternative))
                if alternative_chars is None:
                    return None, False
                chars |= alternative_chars
                nullable = nullable or alternative_nullable
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT):
            low, _, repeated = arg
            chars, nullable = _first_of(list(repeated))
            nullable = nullable or low == 0
        else:
            return None, False
        if chars is None:
            return None, False
        found |= chars
        if not nullable:
            return found, False
    return found, True


def _book_name_alternation() -> tuple[str, dict[str, Book]]:
    """pythonbible's book patterns as one alternation, and its group name for each book.

    Tried in pythonbible's order, so the same book wins where two could match. Each
    book is tried only after a look at the first character (it is grouped under every
    character it can start with): five times faster than trying all 72 patterns at
    every word, which matters when scoring 10,000 answers.
    """
    books_by_group: dict[str, Book] = {}
    starts = {book: _first_characters(book.regular_expression) for book in Book}
    if any(chars is None for chars in starts.values()):
        alternatives = []
        for book in Book:
            books_by_group[f"b{book.value}"] = book
            alternatives.append(f"(?P<b{book.value}>{book.regular_expression})")
    else:
        alternatives = []
        for char in sorted(frozenset().union(*starts.values())):
            named = []
            for book in Book:
                if char in starts[book]:  # type: ignore[operator]
                    group = f"b{book.value}_{ord(char)}"
                    books_by_group[group] = book
                    named.append(f"(?P<{group}>{book.regular_expression})")
            alternatives.append(f"(?=[{re.escape(char)}])(?:{'|'.join(named)})")
    return "|".join([*alternatives, f"(?P<alias>{_ALIAS_PATTERN})"]), books_by_group


def _numbered_books() -> dict[str, tuple[str, ...]]:
    """{"timothy": ("1 Timothy", "2 Timothy"), ...} for books that need a number."""
    numbered: dict[str, tuple[str, ...]] = {}
    for book in Book:
        if book.value <= LAST_CANON_BOOK and book.title[0].isdigit():
            base = book.title.split(" ", 1)[1].lower()
            numbered[base] = (*numbered.get(base, ()), book.title)
    return numbered


_ALIAS_PATTERN = "(?-i:{})|{}".format(
    "|".join(EXTRA_ABBREVIATIONS), "|".join(_CASE_INSENSITIVE_ALIASES)
)
_BOOK_NAME, _BOOKS_BY_GROUP = _book_name_alternation()
_ANY_BOOK = "|".join(
    [f"(?:{book.regular_expression})" for book in Book] + [f"(?:{_ALIAS_PATTERN})"]
)

_GAP = r"[ \t\u00a0]"
_DASH = rf"{_GAP}*[-\u2010\u2011\u2012\u2013\u2014]{_GAP}*"
_NUMBER = r"\d{1,3}(?!\d)"
_CHAPTER_VERSE_SEPARATOR = rf"(?::{_GAP}?|\.)(?=\d)"
#: A number that begins a new book reference ("1 John 4:8") is not a verse or chapter.
_NOT_A_NEW_BOOK = rf"(?!\b(?:{_ANY_BOOK})\b\.?{_GAP}*\d)"
_PART = (
    rf"(?P<c1>{_NUMBER})(?:{_CHAPTER_VERSE_SEPARATOR}(?P<v1>{_NUMBER}))?"
    rf"(?:{_DASH}{_NOT_A_NEW_BOOK}(?P<c2>{_NUMBER})(?:{_CHAPTER_VERSE_SEPARATOR}(?P<v2>{_NUMBER}))?)?"
)

#: How far back from a chapter number a book name can start. pythonbible's longest
#: names ("First Epistle of Paul the Apostle to the Corinthians", 53 characters, 9 words)
#: fit both limits.
_LONGEST_BOOK_NAME = 72
_MOST_BOOK_WORDS = 9
_NUMBER_AFTER_WORD = re.compile(rf"(?P<word>\b[A-Za-z]+\.*){_GAP}*(?=\d)")
_BOOK_BEFORE_NUMBER = re.compile(rf"\b(?=\w)(?:{_BOOK_NAME})\b\.?{_GAP}*(?=\d)", re.IGNORECASE)
_ANY_BOOK_NAME = re.compile(rf"(?:{_ANY_BOOK})\.*", re.IGNORECASE)
_WORDS_IN_BOOK_PATTERNS: frozenset[str] = frozenset(
    word.lower() for book in Book for word in re.findall(r"[A-Za-z]{3,}", book.regular_expression)
)
_ORDINAL_PREFIX = re.compile(
    r"^(?:[1-3](?:st|nd|rd)?\s*|(?:I{1,3}|First|Second|Third)\s+)", re.IGNORECASE
)
_FIRST_PART = re.compile(_PART, re.IGNORECASE)
# No line breaks after the separator: "(John 3:16),\n2. Next point" is a numbered list.
_CONTINUATION = re.compile(rf"{_GAP}*(?P<sep>[,;]){_GAP}*{_NOT_A_NEW_BOOK}{_PART}", re.IGNORECASE)
_CLOCK_SUFFIX = re.compile(r"\s*(?:[ap]\.?m\b\.?)", re.IGNORECASE)
_COUNTED = re.compile(rf"{_GAP}+(?:{'|'.join(sorted(COUNTING_WORDS))})\b", re.IGNORECASE)
_WORD_AFTER = re.compile(r"[ \t]+(?!(?:and|or)\b)[A-Za-z]")

_ORDINAL = r"(?:[1-3]|I{1,3}|1st|2nd|3rd|First|Second|Third)"
_CAPITALISED = r"[A-Z][a-z]+"
_UNKNOWN_BOOK = re.compile(
    rf"(?<![\w.])(?P<name>(?:{_ORDINAL}{_GAP}+)?{_CAPITALISED}"
    rf"(?:{_GAP}+of(?:{_GAP}+the)?{_GAP}+{_CAPITALISED})?)"
    rf"{_GAP}+(?P<c1>{_NUMBER}):(?P<v1>{_NUMBER})(?:{_DASH}\d{{1,3}}(?::\d{{1,3}})?(?!\d))?"
)
_CAPITALISED_WORD = re.compile(_CAPITALISED)
_BOOK_OF = re.compile(rf"^Book{_GAP}+of{_GAP}+(?:the{_GAP}+)?")
_LAST_WORD = re.compile(r"([A-Za-z]+)\W*$")
_LOOKBEHIND_CHARS = 30
#: "Timothy 3:16" names no book, but the reader should hear which ones it might mean.
_NUMBERED_BOOKS = _numbered_books()

_NO_BRACKETS = str.maketrans("", "", "[]")
_LIST_FILLER = re.compile(r"[\s,;]*")


@dataclass(frozen=True)
class _Span:
    """A parsed reference; ``start_verse``/``end_verse`` None means whole chapters."""

    book: Book
    start_chapter: int
    start_verse: int | None
    end_chapter: int
    end_verse: int | None


# --- extraction ---------------------------------------------------------------------------


def extract_citations(text: str) -> list[Citation]:
    """Every scripture reference cited in ``text``, in order, existing or not.

    Notations: "John 3:16", "Jn 3:16", "1 Cor 13:4-7", "II Timothy 3:16", "1st Peter 5:7",
    "Ps. 23" (whole chapter), "Genesis 1:1-2:3", "John 3:16, 18", "Rom 3:23; 6:23",
    "john 3:16". See the module docstring for the grammar and the unknown-book rule.
    """
    return list(_extract(text, True))


def parse_reference_list(text: str) -> list[Citation]:
    """Read an eval set's expected references ("Ephesians 2:8; Rom 6:23"), any notation.

    Blank text gives ``[]``. Raises ``ValueError`` naming the text when a part is not a
    scripture reference or cites one that does not exist, so a bad CSV row is found
    when the set is loaded rather than silently scoring zero.
    """
    if not text.strip():
        return []
    citations = _extract(text, False)
    for citation in citations:
        if not citation.exists:
            raise ValueError(
                f"The expected reference {citation.text!r} in {text!r} does not exist: "
                f"{citation.reason}."
            )
    position = 0
    for citation in (*citations, None):
        gap_end = len(text) if citation is None else citation.start
        gap = text[position:gap_end]
        if _LIST_FILLER.fullmatch(gap) is None:
            raise ValueError(
                f"Could not read {gap.strip(' ,;')!r} in the expected references {text!r} as a "
                "scripture reference; write references like 'John 3:16' separated by ';'."
            )
        if citation is not None:
            position = citation.end
    return list(citations)


def parse_reference(text: str) -> Citation:
    """Read exactly one existing reference ("Eph 2:8-9"); ``ValueError`` otherwise."""
    citations = parse_reference_list(text)
    if len(citations) != 1:
        raise ValueError(
            f"Expected one scripture reference in {text!r}, found {len(citations)}."
        )
    return citations[0]


@lru_cache(maxsize=4096)
def _extract(text: str, prose: bool) -> tuple[Citation, ...]:
    # Cached because an evaluation run scores the same answer for several metrics.
    citations: list[Citation] = []
    position = 0
    for match in _book_names_before_numbers(text):
        if match.start() < position:
            continue
        book = _book_of(match)
        first = _FIRST_PART.match(text, match.end())
        if first is None:
            continue
        if prose and first["v1"] is None and _is_lower_case(match.group()):
            continue
        if _CLOCK_SUFFIX.match(text, first.end()):
            continue
        if first["v1"] is None and first["c2"] is None and _COUNTED.match(text, first.end()):
            continue
        span = _span_of(book, first, chapter=None, bare_is_verse=False)
        citations.append(_citation(text, match.start(), first.end(), book, span))
        position = first.end()
        while (more := _CONTINUATION.match(text, position)) is not None:
            if more["v1"] is None and prose and _WORD_AFTER.match(text, more.end()):
                break
            if _CLOCK_SUFFIX.match(text, more.end()):
                break
            bare_is_verse = more["sep"] == "," and span.start_verse is not None
            span = _span_of(book, more, chapter=span.end_chapter, bare_is_verse=bare_is_verse)
            citations.append(_citation(text, more.start("c1"), more.end(), book, span))
            position = more.end()
    citations.extend(_unknown_book_citations(text, citations))
    return tuple(sorted(citations, key=lambda citation: citation.start))


def _book_names_before_numbers(text: str) -> Iterator[re.Match[str]]:
    """Book names directly followed by a number, left to right.

    Running the book alternation over a whole 150-word answer cost ~1.6 ms; running it
    only over the few words before a number that could end a book name (and dispatching
    on the first character, see :func:`_book_name_alternation`) brings a whole
    extraction to ~0.15 ms. A name starts at most :data:`_MOST_BOOK_WORDS` words back.
    """
    searched_to = 0
    for number in _NUMBER_AFTER_WORD.finditer(text):
        if not _could_end_book_name(number["word"]):
            continue
        number_start = number.end()
        window_start = max(searched_to, _start_of_words_before(text, number_start))
        for match in _BOOK_BEFORE_NUMBER.finditer(text, window_start, number_start + 1):
            if match.end() == number_start:
                yield match
                searched_to = number_start
                break


@lru_cache(maxsize=65536)
def _could_end_book_name(word: str) -> bool:
    """Cheap filter: can a book name end with this word? ("at" in "at 3:30" cannot.)

    True for a name or abbreviation on its own or after "1"/"2"/"3" ("John", "Cor."),
    and for any word spelled out in pythonbible's patterns, which covers the last words
    of multi-word names ("Song of Solomon", "Acts of the Apostles"). A false True only
    costs a closer look.
    """
    probes = (word, f"1 {word}", f"2 {word}", f"3 {word}")
    return word.lower().rstrip(".") in _WORDS_IN_BOOK_PATTERNS or any(
        _ANY_BOOK_NAME.fullmatch(probe) for probe in probes
    )


def _start_of_words_before(text: str, end: int) -> int:
    floor = max(0, end - _LONGEST_BOOK_NAME)
    start = end - 1  # skip the space between the name and the number
    for _ in range(_MOST_BOOK_WORDS):
        space = text.rfind(" ", floor, start)
        if space < 0:
            return floor
        start = space
    return start


def _book_of(match: re.Match[str]) -> Book:
    alias = match["alias"]
    if alias is not None:
        return EXTRA_ABBREVIATIONS.get(alias) or _CASE_INSENSITIVE_ALIASES[alias.lower()]
    # The book's named group wraps its pattern, so it is the last group to close.
    return _BOOKS_BY_GROUP[match.lastgroup]  # type: ignore[index]


def _is_lower_case(book_text: str) -> bool:
    """Whether the book's name (after any "1", "1st", "II", "First") starts in lower case."""
    name = _ORDINAL_PREFIX.sub("", book_text, count=1)
    return name[:1].islower()


def _span_of(book: Book, part: re.Match[str], *, chapter: int | None, bare_is_verse: bool) -> _Span:
    """Turn the numbers of one part into chapters and verses, given what came before."""
    c1, c2 = int(part["c1"]), _int_or_none(part["c2"])
    v1, v2 = _int_or_none(part["v1"]), _int_or_none(part["v2"])
    if v1 is not None:
        if c2 is None:
            return _Span(book, c1, v1, c1, v1)
        if v2 is None:
            return _Span(book, c1, v1, c1, c2)
        return _Span(book, c1, v1, c2, v2)
    one_chapter = get_number_of_chapters(book) == 1
    if bare_is_verse or one_chapter:
        # c1 is a verse in the current chapter (or the only chapter).
        current = 1 if one_chapter and chapter is None else (chapter or 1)
        if c2 is None:
            return _Span(book, current, c1, current, c1)
        if v2 is None:
            return _Span(book, current, c1, current, c2)
        return _Span(book, current, c1, c2, v2)
    if c2 is None:
        return _Span(book, c1, None, c1, None)
    if v2 is None:
        return _Span(book, c1, None, c2, None)
    return _Span(book, c1, 1, c2, v2)


def _int_or_none(digits: str | None) -> int | None:
    return None if digits is None else int(digits)


def _citation(text: str, start: int, end: int, book: Book, span: _Span) -> Citation:
    written = text[start:end]
    reason = _why_nonexistent(span, written)
    if reason is not None:
        return Citation(written, start, end, False, None, (), reason, book.title)
    normalized, verse_ids = _normalize(span)
    return Citation(written, start, end, True, normalized, verse_ids, None, book.title)


def _why_nonexistent(span: _Span, written: str) -> str | None:
    book = span.book
    if book.value > LAST_CANON_BOOK:
        return (
            f"{book.title} is in the Apocrypha, not in the 66-book Bible of the KJV and ASV"
        )
    chapters = get_number_of_chapters(book)
    for chapter in (span.start_chapter, span.end_chapter):
        if chapter < 1:
            return f"there is no chapter 0 in {book.title}"
        if chapter > chapters:
            plural = "chapter" if chapters == 1 else "chapters"
            return f"chapter {chapter} is past the end of {book.title}, which has {chapters} {plural}"
    for chapter, verse in ((span.start_chapter, span.start_verse), (span.end_chapter, span.end_verse)):
        if verse is None:
            continue
        place = book.title if chapters == 1 else f"{book.title} {chapter}"
        if verse < 1:
            return f"there is no verse 0 in {place}"
        verses = get_number_of_verses(book, chapter)
        if verse > verses:
            return f"verse {verse} is past the end of {place}, which has {verses} verses"
    if (span.start_chapter, span.start_verse or 0) > (span.end_chapter, span.end_verse or 999):
        return f"the range {written} ends before it starts"
    return None


@lru_cache(maxsize=8192)
def _normalize(span: _Span) -> tuple[str, tuple[int, ...]]:
    # Cached: converting walks pythonbible's 36,000-verse tuple with .index().
    reference = NormalizedReference(
        span.book, span.start_chapter, span.start_verse, span.end_chapter, span.end_verse, span.book
    )
    verse_ids = tuple(convert_reference_to_verse_ids(reference))
    if span.start_verse is None:
        # pythonbible writes a whole chapter as "Psalms 23:1-6"; answers and eval sets
        # write "Psalms 23", and so do we.
        chapters = (
            str(span.start_chapter)
            if span.start_chapter == span.end_chapter
            else f"{span.start_chapter}-{span.end_chapter}"
        )
        return f"{span.book.title} {chapters}", verse_ids
    return format_scripture_references([reference]), verse_ids


def _unknown_book_citations(text: str, known: list[Citation]) -> list[Citation]:
    found: list[Citation] = []
    for match in _UNKNOWN_BOOK.finditer(text):
        start, end = match.span()
        name = match["name"]
        if any(start < other.end and other.start < end for other in known):
            continue
        if _ANY_BOOK_NAME.fullmatch(name):
            continue
        if any(word.lower() in NOT_BOOK_WORDS for word in _CAPITALISED_WORD.findall(name)):
            continue
        if _CLOCK_SUFFIX.match(text, end):
            continue
        before = _LAST_WORD.search(text[max(0, start - _LOOKBEHIND_CHARS) : start])
        if before is not None and before.group(1).lower() in _TIME_PREPOSITIONS:
            continue
        reason = f"there is no book called {_BOOK_OF.sub('', name)} in the Bible"
        if (numbered := _NUMBERED_BOOKS.get(name.lower())) is not None:
            reason += f" (there are {' and '.join(numbered)})"
        found.append(Citation(match.group(), start, end, False, reason=reason))
    return found


# --- verse text and overlap ----------------------------------------------------------------


def verse_text(verse_id: int, version: str = "KJV") -> str:
    """The text of one verse (pythonbible verse id) in ``version`` ("KJV" or "ASV"), offline.

    ``ValueError`` for an unknown version or an id outside the 66 books.
    """
    bible_version = _version(version)
    if not is_valid_verse_id(verse_id) or verse_id // 1_000_000 > LAST_CANON_BOOK:
        raise ValueError(f"{verse_id} is not the id of a verse in the 66-book Bible.")
    # Both texts bracket the words translators supplied ("The LORD [is] my shepherd",
    # shown in italics in print); plain words read and compare better with answers.
    return get_verse_text(verse_id, bible_version).translate(_NO_BRACKETS).strip()


def citation_text(
    citation: Citation, version: str = "KJV", max_chars: int = MAX_CITATION_TEXT_CHARS
) -> str:
    """The cited verses' text joined by spaces, cut at a word to ``max_chars`` with "…".

    Raises ``ValueError`` for a citation that does not exist (there is no text to show).
    """
    if not citation.exists:
        raise ValueError(f"{citation.text!r} does not exist: {citation.reason}.")
    pieces: list[str] = []
    length = 0
    for verse_id in citation.verse_ids:
        piece = verse_text(verse_id, version)
        pieces.append(piece)
        length += len(piece) + 1
        if length > max_chars:
            break
    joined = " ".join(pieces)
    if len(joined) <= max_chars:
        return joined
    cut = joined[: max_chars - 1].rsplit(" ", 1)[0]
    return cut + "…"


def verse_id_set(citations: Iterable[Citation]) -> frozenset[int]:
    """All verse ids the citations cover; nonexistent citations add none."""
    return frozenset(verse_id for citation in citations for verse_id in citation.verse_ids)


def verse_overlap(cited: Citation, expected: Citation) -> bool:
    """True when the two references share at least one verse.

    Verse-level, so "Eph 2:8-9" matches an expected "Ephesians 2:8", and "Psalm 23"
    (the whole chapter) matches "Psalm 23:1". Nonexistent citations match nothing.
    """
    return not set(cited.verse_ids).isdisjoint(expected.verse_ids)


def _version(version: str) -> Version:
    try:
        return VERSIONS[version.upper()]
    except KeyError:
        raise ValueError(
            f"Unknown Bible version {version!r}; available offline: {', '.join(VERSIONS)}."
        ) from None
