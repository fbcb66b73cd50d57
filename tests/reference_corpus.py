"""The reference-notation corpus: texts with the verses a careful reader would mark.

Shared by ``tests/test_reference_corpus.py`` (the targets) and
``benchmarks/bench_references.py`` (ours against plain pythonbible). Two parts:

* hand-written cases in ``tests/reference_corpus.txt``, one a line:
  ``kind | text | expected`` ("\\n" in a text is a line break; lines starting with "#"
  are comments);
* cases made here from abbreviation lists copied from the style guides (SBL Handbook of
  Style 2nd ed. 8.3.1; Chicago Manual of Style 17th ed. 10.48 traditional and 10.49
  shorter forms) and the common informal forms, each put in front of one verse chosen
  per book.

Expected verses are written by hand in a strict notation of our own, read by
:func:`expected_verses` below, never by the finder under test: items separated by "; ",
each ``Title C:V``, ``Title C:V-V``, ``Title C:V-C:V``, ``Title C``, ``Title C-C``,
``Title C:V-end`` (to the chapter's last verse), or a cross-book ``Title C:V-Title C:V``
/ ``Title C-Title C``, with pythonbible's book titles. An item ``!label`` is a
nonexistent part the finder must report with that label. Every expected verse is checked
against pythonbible's verse tables when the corpus is loaded, so a typo in the data
cannot pass silently.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pythonbible import Book, get_number_of_chapters, get_number_of_verses

CORPUS_FILE = Path(__file__).with_suffix(".txt")

_TITLES = {book.title: book for book in Book if book.value <= Book.REVELATION.value}
_ITEM = re.compile(
    r"(?P<book>(?:[123] )?[A-Z][a-z]+(?: of [A-Z][a-z]+)?) (?P<c1>\d+)(?::(?P<v1>\d+))?"
    r"(?:-(?:(?P<book2>(?:[123] )?[A-Z][a-z]+(?: of [A-Z][a-z]+)?) )?"
    r"(?:(?P<c2>\d+):)?(?P<v2>\d+|end))?"
)


@dataclass(frozen=True)
class Case:
    """One text, the verse ids it cites and the nonexistent parts it must report."""

    kind: str
    text: str
    verses: frozenset[int]
    nonexistent: frozenset[str]


def _verse_id(book: Book, chapter: int, verse: int) -> int:
    if not 1 <= chapter <= get_number_of_chapters(book) or not 1 <= verse <= get_number_of_verses(book, chapter):
        raise ValueError(f"{book.title} {chapter}:{verse} does not exist")
    return book.value * 1_000_000 + chapter * 1_000 + verse


def _range(book: Book, c1: int, v1: int, end_book: Book, c2: int, v2: int) -> set[int]:
    first, last = _verse_id(book, c1, v1), _verse_id(end_book, c2, v2)
    ids = set()
    for b in Book:
        if not book.value <= b.value <= end_book.value:
            continue
        for chapter in range(1, get_number_of_chapters(b) + 1):
            for verse in range(1, get_number_of_verses(b, chapter) + 1):
                verse_id = b.value * 1_000_000 + chapter * 1_000 + verse
                if first <= verse_id <= last:
                    ids.add(verse_id)
    if not ids:
        raise ValueError(f"empty range {book.title} {c1}:{v1} - {end_book.title} {c2}:{v2}")
    return ids


def expected_verses(expected: str) -> tuple[frozenset[int], frozenset[str]]:
    """Read the strict expected notation (see the module docstring)."""
    verses: set[int] = set()
    nonexistent: set[str] = set()
    for item in filter(None, (part.strip() for part in expected.split(";"))):
        if item.startswith("!"):
            nonexistent.add(item[1:])
            continue
        match = _ITEM.fullmatch(item)
        if match is None or match["book"] not in _TITLES or (match["book2"] and match["book2"] not in _TITLES):
            raise ValueError(f"cannot read expected item {item!r}")
        book = _TITLES[match["book"]]
        end_book = _TITLES[match["book2"]] if match["book2"] else book
        c1 = int(match["c1"])
        last_chapter = match["c2"] or (match["v2"] if match["v1"] is None else None) or c1
        for target, chapter in ((book, c1), (end_book, int(last_chapter))):
            if not 1 <= chapter <= get_number_of_chapters(target):
                raise ValueError(f"{target.title} has no chapter {chapter}")
        if match["v1"] is None:  # whole chapters
            c2 = int(match["v2"]) if match["v2"] else c1
            verses |= _range(book, c1, 1, end_book, c2, get_number_of_verses(end_book, c2))
            continue
        v1 = int(match["v1"])
        c2 = int(match["c2"]) if match["c2"] else (c1 if end_book is book else 1)
        if match["v2"] is None:
            v2 = v1
        elif match["v2"] == "end":
            v2 = get_number_of_verses(end_book, c2)
        else:
            v2 = int(match["v2"])
        verses |= _range(book, c1, v1, end_book, c2, v2)
    return frozenset(verses), frozenset(nonexistent)


# --- cases made from the style guides' lists -------------------------------------------------

#: One existing verse per book, in canonical order: (chapter, verse).
_SAMPLE_VERSE = [
    (1, 1), (20, 3), (19, 18), (6, 24), (6, 4), (1, 9), (6, 12), (1, 16), (17, 45), (7, 14),
    (8, 27), (2, 11), (16, 11), (7, 14), (7, 10), (8, 10), (4, 14), (19, 25), (23, 1), (3, 5),
    (3, 1), (2, 4), (53, 5), (29, 11), (3, 22), (36, 26), (6, 22), (6, 6), (2, 28), (5, 24),
    (1, 15), (2, 9), (6, 8), (1, 7), (2, 4), (3, 17), (2, 9), (9, 9), (3, 10), (5, 3),
    (10, 45), (2, 11), (3, 16), (2, 38), (8, 28), (13, 4), (5, 17), (5, 22), (2, 8), (4, 13),
    (3, 23), (5, 17), (3, 3), (2, 5), (3, 16), (2, 11), (1, 6), (11, 1), (1, 5), (5, 7),
    (1, 21), (4, 8), (1, 6), (1, 4), (1, 24), (21, 4),
]

#: SBL Handbook of Style (2nd ed., 8.3.1), Protestant canon, in order; "Pss" and "Qoh"
#: and "Cant" are its alternatives.
SBL = (
    "Gen, Exod, Lev, Num, Deut, Josh, Judg, Ruth, 1 Sam, 2 Sam, 1 Kgs, 2 Kgs, 1 Chr, 2 Chr,"
    "Ezra, Neh, Esth, Job, Ps, Prov, Eccl, Song, Isa, Jer, Lam, Ezek, Dan, Hos, Joel, Amos,"
    "Obad, Jonah, Mic, Nah, Hab, Zeph, Hag, Zech, Mal, Matt, Mark, Luke, John, Acts, Rom,"
    "1 Cor, 2 Cor, Gal, Eph, Phil, Col, 1 Thess, 2 Thess, 1 Tim, 2 Tim, Titus, Phlm, Heb, Jas,"
    "1 Pet, 2 Pet, 1 John, 2 John, 3 John, Jude, Rev"
)
SBL_ALTERNATIVES = {"Pss": 19, "Qoh": 21, "Cant": 22}
#: Chicago Manual of Style (17th ed.), 10.48: traditional abbreviations.
CHICAGO_TRADITIONAL = (
    "Gen., Exod., Lev., Num., Deut., Josh., Judg., Ruth, 1 Sam., 2 Sam., 1 Kings, 2 Kings,"
    "1 Chron., 2 Chron., Ezra, Neh., Esther, Job, Ps., Prov., Eccles., Song of Sol., Isa.,"
    "Jer., Lam., Ezek., Dan., Hosea, Joel, Amos, Obad., Jon., Mic., Nah., Hab., Zeph., Hag.,"
    "Zech., Mal., Matt., Mark, Luke, John, Acts, Rom., 1 Cor., 2 Cor., Gal., Eph., Phil.,"
    "Col., 1 Thess., 2 Thess., 1 Tim., 2 Tim., Titus, Philem., Heb., James, 1 Pet., 2 Pet.,"
    "1 John, 2 John, 3 John, Jude, Rev."
)
#: Chicago Manual of Style (17th ed.), 10.49: shorter abbreviations.
CHICAGO_SHORTER = (
    "Gn, Ex, Lv, Nm, Dt, Jo, Jgs, Ru, 1 Sm, 2 Sm, 1 Kgs, 2 Kgs, 1 Chr, 2 Chr, Ezr, Neh, Est,"
    "Jb, Ps, Prv, Eccl, Sg, Is, Jer, Lam, Ez, Dn, Hos, Jl, Am, Ob, Jon, Mi, Na, Hb, Zep, Hg,"
    "Zec, Mal, Mt, Mk, Lk, Jn, Acts, Rom, 1 Cor, 2 Cor, Gal, Eph, Phil, Col, 1 Thes, 2 Thes,"
    "1 Tm, 2 Tm, Ti, Phlm, Heb, Jas, 1 Pt, 2 Pt, 1 Jn, 2 Jn, 3 Jn, Jude, Rv"
)
#: Informal forms seen in sermons, study notes and answers: (name, book number).
INFORMAL = [
    ("Matt", 40), ("Mat", 40), ("Phil", 50), ("Philip", 50), ("Php", 50), ("Rev", 66), ("Prov", 20),
    ("Eccles", 21), ("Song", 22), ("Cant", 22), ("Lu", 42), ("Luk", 42), ("Mrk", 41), ("Jhn", 43),
    ("Joh", 43), ("Rm", 45), ("Ro", 45), ("Psa", 19), ("Psalm", 19), ("Revelations", 66),
    ("Canticles", 22), ("Song of Solomon", 22), ("Deu", 5), ("Exo", 2), ("Jdg", 7), ("Gal.", 48),
    ("Heb.", 58), ("Jas.", 59), ("Apocalypse", 66), ("Qoheleth", 21), ("Acts of the Apostles", 44),
    ("Zeph.", 36), ("Zec.", 38), ("Hag.", 37), ("Col.", 51), ("Tit", 56), ("Philem", 57),
]
#: Numbered books with the base forms used unspaced ("1Cor"), with roman numerals and
#: with ordinals: (book number, base name, short base).
NUMBERED = [
    (9, "Samuel", "Sam"), (10, "Samuel", "Sam"), (11, "Kings", "Kgs"), (12, "Kings", "Kgs"),
    (13, "Chronicles", "Chr"), (14, "Chronicles", "Ch"), (46, "Corinthians", "Cor"),
    (47, "Corinthians", "Cor"), (52, "Thessalonians", "Thess"), (53, "Thessalonians", "Thes"),
    (54, "Timothy", "Tim"), (55, "Timothy", "Tim"), (60, "Peter", "Pet"), (61, "Peter", "Pt"),
    (62, "John", "Jn"), (63, "John", "Jn"), (64, "John", "Jn"),
]
_FRAMES = ["See {}.", "({})", "As {} says, we are not alone.", "{} is read at funerals.", "Paul (or the writer) in {} agrees."]
_ROMAN = {1: "I", 2: "II", 3: "III"}
_ORDINAL = {1: ("1st", "First"), 2: ("2nd", "Second"), 3: ("3rd", "Third")}


def _names(listing: str) -> list[str]:
    return [name.strip() for name in listing.split(",")]


def _made(kind: str, name: str, book_number: int, index: int) -> tuple[str, str, str]:
    book = Book(book_number)
    chapter, verse = _SAMPLE_VERSE[book_number - 1]
    reference = f"{name} {verse}" if get_number_of_chapters(book) == 1 else f"{name} {chapter}:{verse}"
    return kind, _FRAMES[index % len(_FRAMES)].format(reference), f"{book.title} {chapter}:{verse}"


def _generated() -> list[tuple[str, str, str]]:
    rows = []
    for kind, listing in (("sbl", SBL), ("chicago", CHICAGO_TRADITIONAL), ("chicago", CHICAGO_SHORTER)):
        names = _names(listing)
        assert len(names) == 66, (kind, len(names))
        rows += [_made(kind, name, number, number) for number, name in enumerate(names, 1)]
    rows += [_made("sbl", name, number, number) for name, number in SBL_ALTERNATIVES.items()]
    rows += [_made("informal", name, number, index) for index, (name, number) in enumerate(INFORMAL)]
    rows += [_made("title", book.title, book.value, book.value) for book in Book if book.value <= 66]
    for index, (number, base, short) in enumerate(NUMBERED):
        ordinal = int(Book(number).title[0])
        rows.append(_made("numbered-unspaced", f"{ordinal}{short}", number, index))
        rows.append(_made("numbered-unspaced", f"{ordinal}{base}", number, index + 1))
        rows.append(_made("roman", f"{_ROMAN[ordinal]} {base}", number, index + 2))
        rows.append(_made("ordinal", f"{_ORDINAL[ordinal][0]} {base}", number, index + 3))
        rows.append(_made("ordinal", f"{_ORDINAL[ordinal][1]} {base}", number, index + 4))
    return rows


@cache
def load_corpus() -> tuple[Case, ...]:
    """Every case, hand-written first; a text appears once (the first kind that has it)."""
    rows = []
    for number, line in enumerate(CORPUS_FILE.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = [field.strip() for field in line.split("|")]
        if len(fields) not in (2, 3):
            raise ValueError(f"{CORPUS_FILE.name} line {number}: want 'kind | text | expected', got {line!r}")
        rows.append((fields[0], fields[1].replace("\\n", "\n"), fields[2] if len(fields) == 3 else ""))
    cases: dict[str, Case] = {}
    for kind, text, expected in [*rows, *_generated()]:
        if text in cases:
            continue
        try:
            verses, nonexistent = expected_verses(expected)
        except ValueError as error:
            raise ValueError(f"corpus case {text!r}: {error}") from error
        cases[text] = Case(kind, text, verses, nonexistent)
    return tuple(cases.values())


# --- measuring a finder on the corpus --------------------------------------------------------


@dataclass(frozen=True)
class Found:
    """What a finder reported for one text: existing verse ids and nonexistent labels."""

    verses: frozenset[int]
    nonexistent: frozenset[str]


@dataclass
class Tally:
    """Figures over a set of cases."""

    cases: int = 0
    exact: int = 0
    wrongly_nonexistent: int = 0  # nonexistent parts reported where the case expects none
    prose_false_positives: int = 0  # prose cases where anything was reported
    errors: int = 0  # the finder raised

    def add(self, case: Case, found: Found | None) -> None:
        self.cases += 1
        if found is None:
            self.errors += 1
            return
        self.exact += found.verses == case.verses and found.nonexistent == case.nonexistent
        self.wrongly_nonexistent += 0 if case.nonexistent else len(found.nonexistent)
        if case.kind == "prose" and (found.verses or found.nonexistent):
            self.prose_false_positives += 1

    @property
    def exact_share(self) -> float:
        return self.exact / self.cases if self.cases else 0.0


def measure(find, cases: tuple[Case, ...]) -> tuple[Tally, dict[str, Tally], list[tuple[Case, Found | None]]]:  # type: ignore[no-untyped-def]
    """Run ``find(text) -> Found`` on every case: overall figures, figures by kind, the misses."""
    overall, by_kind, misses = Tally(), {}, []
    for case in cases:
        try:
            found = find(case.text)
        except Exception:  # noqa: BLE001 - counting a parser's failures is the point
            found = None
        overall.add(case, found)
        by_kind.setdefault(case.kind, Tally()).add(case, found)
        if found is None or found.verses != case.verses or found.nonexistent != case.nonexistent:
            misses.append((case, found))
    return overall, by_kind, misses
