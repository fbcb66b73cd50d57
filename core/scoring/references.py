"""Scripture references in AI answers: find them, check they exist, fetch their text.

Citation scoring needs three things pythonbible does not give directly:

* **Where** each reference is in the answer (character offsets, the text as written).
  ``pythonbible.get_references`` returns normalised references only, so offsets are lost.
* **Nonexistent references.** pythonbible silently drops "John 3:99", "Jude 2:1" and
  "Psalm 151", and never sees "Hezekiah 3:4". An answer that invents a verse is exactly
  what the scoring has to catch, so these come back as citations with ``exists=False``
  and a reason a reader can check; a range that runs past the end keeps the verses that
  exist and reports the overrun apart (see :class:`Citation`).
* **The notations people write**: "1Cor 13:4", "IJohn 4:8", the SBL and Chicago
  abbreviations, "Ps 121:1ff", "John 3:16 thru 18", "Genesis 1–Exodus 2", "the 23rd
  Psalm", while "Mark my words" and "Is 5 enough?" stay prose.

Book names are looked up in :mod:`core.scoring.book_names`, the numbers after them are read by
:mod:`core.scoring.reference_grammar`; chapter and verse counts, verse ids, formatting and verse
text come from pythonbible. The grammar, each ambiguity and how it is decided, and the
rule for unknown books ("Hezekiah 3:4") are written down in one place: "How references
are read" in ``eval_sets/README.md``. The 66 books of the Protestant canon exist;
pythonbible also knows some of the Apocrypha (Tobit, Sirach, ...), which the KJV and ASV
texts here do not contain, so those citations are nonexistent with a reason that says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import lru_cache

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

from core.scoring.book_names import GAP, is_book_name
from core.scoring.reference_grammar import CLOCK_SUFFIX, Reference, Span, read_references

#: The last book of the 66-book canon; pythonbible numbers the Apocrypha after it.
LAST_CANON_BOOK = Book.REVELATION.value

#: Bible texts available offline, by the abbreviation the app shows.
VERSIONS: dict[str, Version] = {"KJV": Version.KING_JAMES, "ASV": Version.AMERICAN_STANDARD}

#: A citation's text is cut to this many characters: a screenful, about 6-8 verses.
#: Whole-chapter citations (Psalm 119 has 176 verses) would otherwise flood the UI.
MAX_CITATION_TEXT_CHARS = 1000

#: Capitalised words that precede "N:NN" without naming a book: times, dates, ratios,
#: scores, parts of documents, and words that start sentences. Kept lower case.
NOT_BOOK_WORDS: frozenset[str] = frozenset(
    ["a", "about", "after", "also", "an", "and", "approx", "approximately", "around", "at", "before", "begins", "between", "but", "by", "chapel", "chapter", "chapters", "church", "circa", "class", "doors", "during", "each", "every", "final", "fig", "figure", "for", "from", "game", "hour", "hours", "if", "in", "is", "it", "its", "line", "lines", "lap", "mass", "match", "meeting", "midnight", "minute", "minutes", "morning", "afternoon", "evening", "night", "noon", "now", "of", "on", "or", "page", "pages", "part", "ratio", "read", "round", "scale", "score", "scored", "section", "see", "service", "services", "session", "since", "start", "starts", "step", "sunrise", "sunset", "table", "that", "the", "then", "this", "time", "times", "timestamp", "to", "today", "tomorrow", "tonight", "until", "till", "track", "verse", "verses", "version", "vol", "volume", "was", "we", "worship", "yesterday", "odds", "open", "opens", "closes", "revision", "release", "build", "update", "patch", "episode", "season", "level", "stage", "grade", "room", "gate", "platform", "flight", "scene", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday", "january", "february", "march", "april", "may", "june", "july", "august", "september", "october", "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec"]
)

#: Words that, right before "Word N:NN", mean the number is a time or a score
#: ("at Church 10:30", "beat Chelsea 2:1").
_TIME_PREPOSITIONS: frozenset[str] = frozenset(
    ["at", "by", "from", "until", "till", "around", "about", "before", "after", "between", "since", "to", "beat", "beats", "won", "lost", "drew", "vs", "versus", "against"]
)


@dataclass(frozen=True)
class Citation:
    """One scripture reference as an answer (or an expected-reference list) wrote it.

    ``text`` is exactly ``answer[start:end]``; for a continuation ("Rom 3:23; 6:23") it is
    the continuation alone ("6:23"), with the inherited book in ``normalized``.
    ``normalized`` is pythonbible's form ("Ephesians 2:8-9", "1 John 4:8"; whole chapters
    as "Psalms 23"), ``None`` when the reference does not exist. ``label`` is the same
    form for what was cited whether it exists or not ("John 3:99"), ``None`` when the
    book is unknown. ``book`` is the canonical book title whenever the book is known, even
    if the verse is not ("John" for "John 3:99"). ``verse_ids`` are pythonbible verse ids
    (book*10^6 + chapter*10^3 + verse), empty when the reference does not exist;
    ``reason`` says why it does not.

    A range that runs past the end ("Psalm 23:1-9") gives two citations with the same
    text and offsets: the verses that exist ("Psalms 23:1-6") and, with ``overrun`` set,
    the part that does not (label "Psalms 23:7-9", its own reason). Both are counted, so
    the made-up part weighs in the nonexistent figures and the real verses are not lost.
    """

    text: str
    start: int
    end: int
    exists: bool
    normalized: str | None = None
    verse_ids: tuple[int, ...] = ()
    reason: str | None = None
    book: str | None = None
    label: str | None = None
    overrun: bool = False


_ORDINAL = r"(?:[1-3]|I{1,3}|1st|2nd|3rd|First|Second|Third)"
_CAPITALISED = r"[A-Z][a-z]+"
_NUMBER = r"\d{1,3}(?!\d)"
_DASH = rf"{GAP}*[-\u2010\u2011\u2012\u2013\u2014]{GAP}*"
_UNKNOWN_BOOK = re.compile(
    rf"(?<![\w.])(?P<name>(?:{_ORDINAL}{GAP}+)?{_CAPITALISED}"
    rf"(?:{GAP}+of(?:{GAP}+the)?{GAP}+{_CAPITALISED})?)"
    rf"{GAP}+(?P<c1>{_NUMBER}):(?P<v1>{_NUMBER})(?:{_DASH}\d{{1,3}}(?::\d{{1,3}})?(?!\d))?"
)
_CHAPTER_COLON = re.compile(r"(?<!\d)\d{1,3}:\d")
#: How far before "N:N" an unknown book's name can start ("Third Gospel of Thomas").
_UNKNOWN_NAME_CHARS = 48
_CAPITALISED_WORD = re.compile(_CAPITALISED)
_BOOK_OF = re.compile(rf"^Book{GAP}+of{GAP}+(?:the{GAP}+)?")
_LAST_WORD = re.compile(r"([A-Za-z]+)\W*$")
_LOOKBEHIND_CHARS = 30

_NO_BRACKETS = str.maketrans("", "", "[]")
_LIST_FILLER = re.compile(r"[\s,;]*")


# --- extraction ---------------------------------------------------------------------------


def extract_citations(text: str) -> list[Citation]:
    """Every scripture reference cited in ``text``, in order, existing or not.

    Notations: "John 3:16", "Jn 3:16", "1Cor 13:4-7", "II Timothy 3:16", "First Peter 5:7",
    "Ps. 23" (whole chapter), "Genesis 1:1-2:3", "John 3:16, 18", "Rom 3:23; 6:23",
    "Ps 121:1ff", "the 23rd Psalm". See "How references are read" in eval_sets/README.md
    for the grammar, its ambiguities and the unknown-book rule.
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
    for reference in read_references(text, prose):
        citations += _citations(text, reference)
    citations.extend(_unknown_book_citations(text, citations))
    return tuple(sorted(citations, key=lambda citation: citation.start))


def _citations(text: str, reference: Reference) -> list[Citation]:
    """The citation a reference makes; two when a range runs past the end (see Citation)."""
    start, end = reference.start, reference.end
    written = text[start:end]
    name, span = reference.name, reference.span
    if span is None:
        titles = " and ".join(book.title for book in name.choices)
        if name.ordinal is None:
            reason = f"{name.written} needs a number: there are {titles}"
        else:
            verb = "is" if len(name.choices) == 1 else "are"
            reason = f"there is no {name.written} in the Bible (there {verb} {titles})"
        return [Citation(written, start, end, False, reason=reason)]
    title = span.book.title
    span = _with_following(span)
    reason = _why_nonexistent(span, written)
    if reason is not None:
        return [Citation(written, start, end, False, None, (), reason, title, _label(span))]
    existing, overrun, overrun_reason = _split_overrun(span)
    normalized, verse_ids = _normalize(existing)
    found = [Citation(written, start, end, True, normalized, verse_ids, None, title, normalized)]
    if overrun is not None:
        found.append(Citation(written, start, end, False, None, (), overrun_reason, title, _label(overrun), True))
    return found


def _with_following(span: Span) -> Span:
    """Resolve "f" (and the next verse) and "ff" (to the chapter's end) once the verse exists."""
    if not span.following:
        return span
    if not _verse_exists(span.book, span.start_chapter, span.start_verse or 0):
        return replace(span, following="")
    last = get_number_of_verses(span.book, span.start_chapter)
    end = last if span.following == "ff" else min(last, (span.start_verse or 0) + 1)
    return replace(span, end_verse=end, following="")


def _verse_exists(book: Book, chapter: int, verse: int) -> bool:
    return 1 <= chapter <= get_number_of_chapters(book) and 1 <= verse <= get_number_of_verses(book, chapter)


def _why_nonexistent(span: Span, written: str) -> str | None:
    """Why the start of the span does not exist, or the range is backwards; None if it starts."""
    book = span.book
    if book.value > LAST_CANON_BOOK:
        return (
            f"{book.title} is in the Apocrypha, not in the 66-book Bible of the KJV and ASV"
        )
    chapters = get_number_of_chapters(book)
    chapter, verse = span.start_chapter, span.start_verse
    if chapter < 1:
        return f"there is no chapter 0 in {book.title}"
    if chapter > chapters:
        plural = "chapter" if chapters == 1 else "chapters"
        return f"chapter {chapter} is past the end of {book.title}, which has {chapters} {plural}"
    place = book.title if chapters == 1 else f"{book.title} {chapter}"
    if verse is not None and verse < 1:
        return f"there is no verse 0 in {place}"
    verses = get_number_of_verses(book, chapter)
    if verse is not None and verse > verses:
        return f"verse {verse} is past the end of {place}, which has {verses} verses"
    if span.end_chapter < 1 or (span.end_verse is not None and span.end_verse < 1):
        return f"the range {written} ends at a chapter or verse 0"
    start = (span.book.value, span.start_chapter, span.start_verse or 0)
    if start > (span.end_book.value, span.end_chapter, span.end_verse or 999):
        return f"the range {written} ends before it starts"
    return None


def _split_overrun(span: Span) -> tuple[Span, Span | None, str | None]:
    """(the part that exists, the part past the end or None, why that part does not exist)."""
    book = span.end_book
    chapters = get_number_of_chapters(book)
    if span.end_chapter > chapters:
        verse_level = span.end_verse is not None
        last = get_number_of_verses(book, chapters) if verse_level else None
        existing = replace(span, end_chapter=chapters, end_verse=last)
        overrun = Span(book, chapters + 1, 1 if verse_level else None, span.end_chapter, span.end_verse, book)
        which = _numbers_text("chapter", chapters + 1, span.end_chapter)
        plural = "chapter" if chapters == 1 else "chapters"
        return existing, overrun, f"{which} past the end of {book.title}, which has {chapters} {plural}"
    verses = get_number_of_verses(book, span.end_chapter)
    if span.end_verse is not None and span.end_verse > verses:
        existing = replace(span, end_verse=verses)
        overrun = Span(book, span.end_chapter, verses + 1, span.end_chapter, span.end_verse, book)
        place = book.title if chapters == 1 else f"{book.title} {span.end_chapter}"
        which = _numbers_text("verse", verses + 1, span.end_verse)
        return existing, overrun, f"{which} past the end of {place}, which has {verses} verses"
    return span, None, None


def _numbers_text(what: str, first: int, last: int) -> str:
    return f"{what} {first} is" if first == last else f"{what}s {first}-{last} are"


def _label(span: Span) -> str:
    """The normalized spelling of a span, whether it exists or not ("John 3:99", "Jude 26-30")."""
    book, end_book = span.book, span.end_book

    def place(target: Book, chapter: int, verse: int | None) -> str:
        if verse is None:
            return str(chapter)
        one_chapter = target.value <= LAST_CANON_BOOK and get_number_of_chapters(target) == 1
        return str(verse) if one_chapter and chapter == 1 else f"{chapter}:{verse}"

    start = place(book, span.start_chapter, span.start_verse)
    if end_book is not book:
        return f"{book.title} {start}-{end_book.title} {place(end_book, span.end_chapter, span.end_verse)}"
    if (span.end_chapter, span.end_verse) == (span.start_chapter, span.start_verse):
        return f"{book.title} {start}"
    if span.start_verse is None:
        return f"{book.title} {span.start_chapter}-{span.end_chapter}"
    if span.end_chapter == span.start_chapter:
        return f"{book.title} {start}-{span.end_verse}"
    return f"{book.title} {start}-{span.end_chapter}:{span.end_verse}"


@lru_cache(maxsize=8192)
def _normalize(span: Span) -> tuple[str, tuple[int, ...]]:
    # Cached: converting walks pythonbible's 36,000-verse tuple with .index().
    start_verse, end_verse = span.start_verse, span.end_verse
    if span.end_book is not span.book and start_verse is None:
        start_verse, end_verse = 1, get_number_of_verses(span.end_book, span.end_chapter)
    reference = NormalizedReference(
        span.book, span.start_chapter, start_verse, span.end_chapter, end_verse, span.end_book
    )
    verse_ids = tuple(convert_reference_to_verse_ids(reference))
    if span.start_verse is None or span.end_book is not span.book:
        # pythonbible writes a whole chapter as "Psalms 23:1-6" and a range across books
        # as "Genesis - Exodus 2:25"; answers and eval sets write "Psalms 23" and
        # "Genesis 1-Exodus 2", and so do we.
        return _label(span), verse_ids
    return format_scripture_references([reference]), verse_ids


def _unknown_book_candidates(text: str, known: list[Citation]) -> Iterable[re.Match[str]]:
    """Matches of the unknown-book pattern, looked for only just before each "N:N" that no
    known reference has taken."""
    searched_to = 0
    taken = [(citation.start, citation.end) for citation in known]
    for number in _CHAPTER_COLON.finditer(text):
        if any(start <= number.start() < end for start, end in taken):
            continue
        window = max(searched_to, number.start() - _UNKNOWN_NAME_CHARS)
        for match in _UNKNOWN_BOOK.finditer(text, window, min(len(text), number.end() + 12)):
            if match.start("c1") == number.start():
                searched_to = match.end()
                yield match
                break


def _unknown_book_citations(text: str, known: list[Citation]) -> list[Citation]:
    found: list[Citation] = []
    for match in _unknown_book_candidates(text, known):
        start, end = match.span()
        name = match["name"]
        if any(start < other.end and other.start < end for other in known):
            continue
        if is_book_name(name) or is_book_name(_BOOK_OF.sub("", name)):
            continue  # a known name the grammar did not take ("Mark 10:30 pm"): never "no book called"
        if any(word.lower() in NOT_BOOK_WORDS for word in _CAPITALISED_WORD.findall(name)):
            continue
        if CLOCK_SUFFIX.match(text, end):
            continue
        before = _LAST_WORD.search(text[max(0, start - _LOOKBEHIND_CHARS) : start])
        if before is not None and before.group(1).lower() in _TIME_PREPOSITIONS:
            continue
        reason = f"there is no book called {_BOOK_OF.sub('', name)} in the Bible"
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
