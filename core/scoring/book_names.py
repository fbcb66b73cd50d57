"""How people write the names of the books of the Bible, and where a name stands before a number.

The tables hold every spelling the reference finder (:mod:`core.scoring.references`) accepts: the
full titles, pythonbible's abbreviations, the SBL Handbook of Style list (2nd ed., 8.3.1),
both Chicago Manual of Style lists (17th ed., 10.48 traditional, 10.49 shorter) and the
common informal forms ("Matt", "Philip", "Cant", "Lu"). A name is looked up, not matched
with a pattern per book: the finder takes the word right before each number and asks
this table, which is fast and makes every name's reading explicit.

Keys are lower case, dots dropped, words separated by one space. Numbered books
(1-2 Samuel, 1-3 John, ...) are looked up by their base ("cor", "jn") and need a number
("1", "I", "1st", "First") in front; a base that is also an unnumbered book ("jn" is John,
"ti" is Titus) is that book when no number stands in front.

Two ambiguities are decided here:

* "Jo" is John (pythonbible, and how answers use it), although Chicago's shorter list
  uses it for Joshua; Joshua is "Josh", "Jos" or "Jsh".
* "Phi" is Philemon (pythonbible); Philippians is "Phil", "Php" or "Philip".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from pythonbible import Book

#: Spellings of books that need no number, "|"-separated.
_UNNUMBERED: dict[Book, str] = {
    Book.GENESIS: "genesis|gen|ge|gn",
    Book.EXODUS: "exodus|exod|exo|ex",
    Book.LEVITICUS: "leviticus|lev|le|lv",
    Book.NUMBERS: "numbers|num|nu|nm|nb",
    Book.DEUTERONOMY: "deuteronomy|deut|deu|dt|de",
    Book.JOSHUA: "joshua|josh|jos|jsh",
    Book.JUDGES: "judges|judg|jdg|jdgs|jgs|jg",
    Book.RUTH: "ruth|rth|rut|ru|rt",
    Book.EZRA: "ezra|ezr",
    Book.NEHEMIAH: "nehemiah|neh|ne",
    Book.ESTHER: "esther|esth|est",
    Book.JOB: "job|jb",
    Book.PSALMS: "psalms|psalm|pss|ps|psa|psm|pslm|pslms",
    Book.PROVERBS: "proverbs|prov|pro|prv|pr",
    Book.ECCLESIASTES: "ecclesiastes|eccles|eccle|eccl|ecc|ec|qoh|qoheleth",
    Book.SONG_OF_SONGS: (
        "song of songs|song of solomon|song of sol|song|canticles|canticle of canticles|canticle|cant|sg|sos"
    ),
    Book.ISAIAH: "isaiah|isa|is",
    Book.JEREMIAH: "jeremiah|jer|je|jr",
    Book.LAMENTATIONS: "lamentations|lamentations of jeremiah|lam|la",
    Book.EZEKIEL: "ezekiel|ezek|eze|ezk|ez",
    Book.DANIEL: "daniel|dan|da|dn",
    Book.HOSEA: "hosea|hos|ho",
    Book.JOEL: "joel|joe|jl",
    Book.AMOS: "amos|amo|am",
    Book.OBADIAH: "obadiah|obad|oba|ob",
    Book.JONAH: "jonah|jon|jnh",
    Book.MICAH: "micah|mic|mi",
    Book.NAHUM: "nahum|nah|na",
    Book.HABAKKUK: "habakkuk|hab|hb",
    Book.ZEPHANIAH: "zephaniah|zeph|zep|zp",
    Book.HAGGAI: "haggai|hag|hg",
    Book.ZECHARIAH: "zechariah|zech|zec|zc",
    Book.MALACHI: "malachi|mal|ml",
    Book.MATTHEW: "matthew|matt|mat|mt",
    Book.MARK: "mark|mrk|mar|mk",
    Book.LUKE: "luke|luk|lk|lu",
    Book.JOHN: "john|joh|jhn|jn|jo",
    Book.ACTS: "acts|act|ac|acts of the apostles",
    Book.ROMANS: "romans|rom|ro|rm",
    Book.GALATIANS: "galatians|gal|ga",
    Book.EPHESIANS: "ephesians|ephes|eph",
    Book.PHILIPPIANS: "philippians|phil|php|philip",
    Book.COLOSSIANS: "colossians|col",
    Book.TITUS: "titus|tit|ti",
    Book.PHILEMON: "philemon|philem|phile|phlm|phm|phi",
    Book.HEBREWS: "hebrews|heb",
    Book.JAMES: "james|jas|jm",
    Book.JUDE: "jude|jud|jd",
    Book.REVELATION: "revelation|revelations|rev|re|rv|apocalypse|revelation of jesus christ",
    Book.TOBIT: "tobit|tob|tb",
    Book.WISDOM_OF_SOLOMON: "wisdom of solomon|wisdom|wisd of sol|wisd|wis|ws",
    Book.ECCLESIASTICUS: "ecclesiasticus|sirach|sir|ecclus",
}

#: Bases of numbered books, and which number gives which book.
_NUMBERED: dict[str, dict[int, Book]] = {}
for _base, _books in (
    ("samuel|sam|sa|sm", (Book.SAMUEL_1, Book.SAMUEL_2)),
    ("kings|kgs|kin|ki|kg", (Book.KINGS_1, Book.KINGS_2)),
    ("chronicles|chron|chro|chr|ch", (Book.CHRONICLES_1, Book.CHRONICLES_2)),
    ("corinthians|cor|co", (Book.CORINTHIANS_1, Book.CORINTHIANS_2)),
    ("thessalonians|thess|thes|ths|th", (Book.THESSALONIANS_1, Book.THESSALONIANS_2)),
    ("timothy|tim|tm|ti", (Book.TIMOTHY_1, Book.TIMOTHY_2)),
    ("peter|pet|pe|pt", (Book.PETER_1, Book.PETER_2)),
    ("john|joh|jhn|jn|jo", (Book.JOHN_1, Book.JOHN_2, Book.JOHN_3)),
    ("esdras|esdr|esd|es", (Book.ESDRAS_1,)),
    ("maccabees|macc|mac|ma|m", (Book.MACCABEES_1, Book.MACCABEES_2)),
):
    for _name in _base.split("|"):
        _NUMBERED[_name] = dict(enumerate(_books, 1))

#: Names that are also ordinary English words or first names. They count only when written
#: with a capital and followed by chapter:verse with a colon ("Mark 10:45", never "Mark 10",
#: "mark 10:45" or "Dan 6.5"), a form prose does not take.
PROSE_WORDS: frozenset[str] = frozenset(
    ["is", "am", "job", "acts", "act", "mark", "numbers", "judges", "song", "dan", "phil", "philip", "mar", "col", "gal", "pro", "sir", "wis", "ex", "es", "joe", "jon", "ac", "re", "ho", "da", "je", "ne", "na", "mi", "ru", "ga", "jd", "jm", "le", "nu", "de", "ge", "pr", "la", "lu", "ro", "ma", "co"]
)

_UNNUMBERED_BY_KEY: dict[str, Book] = {
    name: book for book, names in _UNNUMBERED.items() for name in names.split("|")
}
#: The last word of each multi-word name, and the full names that end with it.
_MULTI_WORD: dict[str, tuple[str, ...]] = {}
for _key in sorted(_UNNUMBERED_BY_KEY, key=len, reverse=True):  # the longer of two names ending alike wins
    if " " in _key:
        _last = _key.rsplit(" ", 1)[1]
        _MULTI_WORD[_last] = (*_MULTI_WORD.get(_last, ()), _key)

#: Space inside a reference: blanks and no-break spaces, never a line break.
GAP = "[ \t\u00a0]"
_DIGITS = re.compile(r"\d+")
_GAP_CHARS = " \t\u00a0"
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
#: "Romans ch. 8", "Romans chapter 8": the name stands before the chapter word.
_CHAPTER_WORDS = frozenset({"ch", "chap", "chapter"})
_ORDINAL_BEFORE = re.compile(
    rf"(?:(?<![\w.])(?P<digit>[1-3])(?:st|nd|rd)?|(?<![\w])(?P<roman>(?-i:I{{1,3}}))|(?<![\w])(?P<word>first|second|third))"
    rf"{GAP}*\Z",
    re.IGNORECASE,
)
_ROMAN_JOINED = re.compile(r"(I{1,3})([A-Z][a-z]+)\Z")
_ORDINAL_WORDS = {"first": 1, "second": 2, "third": 3}


@dataclass(frozen=True)
class BookName:
    """A book's name as written before a number.

    ``book`` is None when the name is a numbered book's base with no number, or with a
    number the book does not have ("Timothy", "3 Corinthians"), or a book that has no
    numbers written with one ("2 James"): ``choices`` then lists the books it could mean.
    ``key`` is the looked-up name ("cor", "song of solomon").
    """

    start: int
    end: int  # where the numbers may start (after the name, its dot and spaces)
    book: Book | None
    key: str
    written: str  # the name as written, ordinal included, dot and spaces not
    name: str  # the name without its ordinal, as written ("Cor" in "1Cor")
    ordinal: int | None
    choices: tuple[Book, ...] = ()

    @property
    def capitalised(self) -> bool:
        return self.name[:1].isupper()

    @property
    def prose_word(self) -> bool:
        return self.ordinal is None and self.key in PROSE_WORDS

    @property
    def title_case(self) -> bool:
        """Written "Xx..." (not "XX" nor "xx"): how one- and two-letter names must be written."""
        return self.name[:1].isupper() and self.name[1:] == self.name[1:].lower()


def book_names(text: str) -> list[BookName]:
    """Every book name in ``text`` that is directly followed by a number, left to right.

    Found from the numbers backwards (the word before each run of digits), which reads
    an answer once instead of trying a name at every word.
    """
    names: list[BookName] = []
    for digits in _DIGITS.finditer(text):
        found = _word_before(text, digits.start())
        if found is None:
            continue
        name = _name_at(text, *found)
        if text[found[0] : found[1]].lower() in _CHAPTER_WORDS and (name is None or name.ordinal is None):
            found = _word_before(text, found[0])  # "Romans ch. 8", but "2 Ch 7:14" is Chronicles
            name = None if found is None else _name_at(text, *found)
        if name is not None:
            names.append(name)
    return names


def _word_before(text: str, end: int) -> tuple[int, int, int] | None:
    """(start, end) of the word before ``end`` across spaces and one dot, and ``end`` itself."""
    position = end
    while position and text[position - 1] in _GAP_CHARS:
        position -= 1
    word_end = position - 1 if position and text[position - 1] == "." else position
    start = word_end
    while start and text[start - 1] in _LETTERS:
        start -= 1
    return None if start == word_end else (start, word_end, end)


def is_book_name(name: str) -> bool:
    """Whether ``name`` ("Jgs", "2 Kgs", "Song of Sol.") is a spelling in the tables."""
    key = _key(re.sub(r"^(?:[1-3](?:st|nd|rd)?|I{1,3}|first|second|third)\s*", "", name.strip(), flags=re.IGNORECASE))
    return key in _UNNUMBERED_BY_KEY or key in _NUMBERED


def _key(name: str) -> str:
    return " ".join(name.replace(".", " ").lower().split())


def _name_at(text: str, start: int, word_end: int, end: int) -> BookName | None:
    word = text[start:word_end]
    key = word.lower()
    roman = None
    if key not in _UNNUMBERED_BY_KEY and key not in _NUMBERED and key not in _MULTI_WORD:
        joined = _ROMAN_JOINED.match(word)  # "IJohn", "IICor"
        if joined is None or joined.group(2).lower() not in _NUMBERED:
            return None
        roman, key = len(joined.group(1)), joined.group(2).lower()
    for full in _MULTI_WORD.get(key, ()):
        found = _words_before(text, start, full.split(" ")[:-1])
        if found is not None:
            book = _UNNUMBERED_BY_KEY[full]
            written = text[found : word_end]
            return BookName(found, end, book, full, written, written, None)
    ordinal, ordinal_start = (roman, start) if roman else _ordinal_before(text, start)
    if key in _NUMBERED and (ordinal is not None or key not in _UNNUMBERED_BY_KEY):
        books = _NUMBERED[key]
        written = text[ordinal_start : word_end]
        name = word[roman:] if roman else word
        return BookName(ordinal_start, end, books.get(ordinal or 0), key, written, name, ordinal, tuple(books.values()))
    if key not in _UNNUMBERED_BY_KEY:
        return None
    book = _UNNUMBERED_BY_KEY[key]
    if ordinal is not None and not roman and text[ordinal_start] != "I":  # "2 James": no such book
        return BookName(ordinal_start, end, None, key, text[ordinal_start:word_end], word, ordinal, (book,))
    return BookName(start, end, book, key, word, word, None)


@lru_cache(maxsize=1024)
def _words_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    return re.compile(r"(?<![A-Za-z])" + "".join(rf"{re.escape(w)}\.?{GAP}+" for w in words) + r"\Z", re.IGNORECASE)


def _words_before(text: str, end: int, words: list[str]) -> int | None:
    """Start of ``words`` written right before ``end``, or None."""
    found = _words_pattern(tuple(words)).search(text, max(0, end - 40), end)
    return None if found is None else found.start()


def _ordinal_before(text: str, start: int) -> tuple[int | None, int]:
    found = _ORDINAL_BEFORE.search(text, max(0, start - 12), start)
    if found is None:
        return None, start
    if found["digit"]:
        return int(found["digit"]), found.start()
    if found["roman"]:
        return len(found["roman"]), found.start()
    return _ORDINAL_WORDS[found["word"].lower()], found.start()
