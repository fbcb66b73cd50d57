"""Scripture references: extraction from answers, existence, expected lists, text, overlap.

The main table is hand-labelled: each answer with the exact references a careful reader
would mark, as ``(normalized form, True)`` for a real reference or ``(as written, False)``
for one that does not exist.
"""

from __future__ import annotations

import random
import re

import pytest
from pythonbible import Book

from core.scoring.references import (
    MAX_CITATION_TEXT_CHARS,
    Citation,
    citation_text,
    extract_citations,
    parse_reference,
    parse_reference_list,
    verse_id_set,
    verse_overlap,
    verse_text,
)

ANSWERS = [
    # notations
    ("God's love is shown in John 3:16.", [("John 3:16", True)]),
    ("As Jn 3:16 says, God gave his Son.", [("John 3:16", True)]),
    ("Love is patient (1 Cor 13:4-7).", [("1 Corinthians 13:4-7", True)]),
    ("God is love, says 1 John 4:8.", [("1 John 4:8", True)]),
    ("First John 4:8 says it plainly.", [("1 John 4:8", True)]),
    ("Read Ps. 23 when you are afraid.", [("Psalms 23", True)]),
    ("The shepherd psalm, Psalm 23:1-3, comforts us.", [("Psalms 23:1-3", True)]),
    ("Song of Solomon 2:4 speaks of his banner of love.", [("Song of Songs 2:4", True)]),
    ("All have sinned (Rom 3:23; 6:23).", [("Romans 3:23", True), ("Romans 6:23", True)]),
    ("Creation is told in Genesis 1:1-2:3.", [("Genesis 1:1-2:3", True)]),
    ("In the beginning (Gen 1:1 – 2:3) God rested.", [("Genesis 1:1-2:3", True)]),
    ("See John 3:16, 18.", [("John 3:16", True), ("John 3:18", True)]),
    ("Believe (John 3:16, 18) and live.", [("John 3:16", True), ("John 3:18", True)]),
    ("II Timothy 3:16 says all scripture is inspired.", [("2 Timothy 3:16", True)]),
    ("Cast your cares on him (1st Peter 5:7).", [("1 Peter 5:7", True)]),
    ("Saved by grace, Eph. 2:8-9.", [("Ephesians 2:8-9", True)]),
    ("everyone knows john 3:16 by heart", [("John 3:16", True)]),
    ("John 3.16 in British notation", [("John 3:16", True)]),
    ("The Sermon on the Mount fills Matthew 5-7.", [("Matthew 5-7", True)]),
    ("1 Corinthians 13 is the love chapter.", [("1 Corinthians 13", True)]),
    ("Jude 3 urges us to contend for the faith.", [("Jude 3", True)]),
    ("Obadiah 1-4 speaks of Edom.", [("Obadiah 1-4", True)]),
    ("III John 1:4 and I Cor 13:13", [("3 John 4", True), ("1 Corinthians 13:13", True)]),
    ("Read Psalm 23; 24.", [("Psalms 23", True), ("Psalms 24", True)]),
    ("Paul lists them in Romans 8:28, 38-39.", [("Romans 8:28", True), ("Romans 8:38-39", True)]),
    (
        "Isaiah 53:5, 12; Matthew 8:17",
        [("Isaiah 53:5", True), ("Isaiah 53:12", True), ("Matthew 8:17", True)],
    ),
    ("Psalm 119:176 ends the longest psalm.", [("Psalms 119:176", True)]),
    ("Revelations 21:4 promises no more tears.", [("Revelation 21:4", True)]),
    ("Blessed are the poor (Mt 5:3).", [("Matthew 5:3", True)]),
    (
        "Pray without ceasing (1 Thess 5:17) and rejoice (Phil. 4:4).",
        [("1 Thessalonians 5:17", True), ("Philippians 4:4", True)],
    ),
    ("The Gospel of John 3:16 is famous.", [("John 3:16", True)]),
    # "1 John" is not John, and a new book is not a continuation
    ("John 3:16 and 1 John 4:8 both speak of love.", [("John 3:16", True), ("1 John 4:8", True)]),
    ("Compare John 3:16; 1 John 4:9.", [("John 3:16", True), ("1 John 4:9", True)]),
    ("Matthew 28:19-20; Acts 1:8", [("Matthew 28:19-20", True), ("Acts 1:8", True)]),
    # nonexistent: verse past the end, chapter past the end, backwards, zero
    ("Jesus said this in John 3:99.", [("John 3:99", False)]),
    ("Jude 2:1 warns of false teachers.", [("Jude 2:1", False)]),
    ("David wrote Psalm 151 after beating Goliath.", [("Psalm 151", False)]),
    ("Jude 30 is quoted often.", [("Jude 30", False)]),
    # a range past the end: the verses that exist, and the overrun reported apart
    ("Genesis 1:1-50 covers creation.", [("Genesis 1:1-31", True), ("Genesis 1:1-50", False)]),
    ("John 3:18-16 is backwards.", [("John 3:18-16", False)]),
    ("Zero chapter: Psalm 0.", [("Psalm 0", False)]),
    ("John 3:0 is not a verse.", [("John 3:0", False)]),
    ("See John 3:16, 99.", [("John 3:16", True), ("99", False)]),
    # nonexistent books
    ("As Hezekiah 3:4 says, God helps those who help themselves.", [("Hezekiah 3:4", False)]),
    ("2 Hezekiah 1:1 is often quoted.", [("2 Hezekiah 1:1", False)]),
    ("The Gospel of Thomas 1:1 is not scripture.", [("Gospel of Thomas 1:1", False)]),
    ("Timothy 3:16 is misquoted.", [("Timothy 3:16", False)]),
    ("Tobit 1:1 is in the Apocrypha.", [("Tobit 1:1", False)]),
    ("Enoch 1:9 is quoted by Jude 14.", [("Enoch 1:9", False), ("Jude 14", True)]),
    # no references; times, ratios and ordinary numbers are not flagged
    ("Grace is a gift, not a wage.", []),
    ("Prayer meeting starts at 3:30 pm on Sunday.", []),
    ("At 3:30 we sang hymns.", []),
    ("The ratio was 3:1 in favour.", []),
    ("Service at Church 10:30, doors open Sunday 9:45.", []),
    ("Mark 3:30 pm is when we meet.", []),
    ("I started my job 3 years ago and mark 2 weeks off.", []),
    ("Mark 10 times a day we pray; John 22 years later wrote.", []),
    ("Psalm 23 says the Lord is my shepherd.", [("Psalms 23", True)]),
    ("(John 3:16),\n2. Next we look at grace.", [("John 3:16", True)]),
]


def labels(citations: list[Citation]) -> list[tuple[str, bool]]:
    return [(c.normalized if c.exists else c.text, c.exists) for c in citations]  # type: ignore[misc]


@pytest.mark.parametrize("answer, expected", ANSWERS, ids=[a for a, _ in ANSWERS])
def test_extract_citations_finds_exactly_the_labelled_references(answer, expected):
    assert labels(extract_citations(answer)) == expected


@pytest.mark.parametrize("answer", [a for a, _ in ANSWERS])
def test_citation_text_and_offsets_are_as_written(answer):
    for citation in extract_citations(answer):
        assert answer[citation.start : citation.end] == citation.text
        assert citation.exists == bool(citation.verse_ids) == (citation.reason is None)


@pytest.mark.parametrize(
    "answer, expected",
    [
        ("In John 3:16, 3 things stand out.", ["John 3:16"]),
        # Read as a verse list this would flag a made-up Psalm 117:5 (117 has 2 verses).
        ("In Psalm 117:2, 5 reasons to praise appear.", ["Psalms 117:2"]),
        ("Psalm 23 and 5 other psalms", ["Psalms 23"]),
        # Any other word after the number leaves it a verse or chapter of the list.
        ("See John 3:16, 18 on belief.", ["John 3:16", "John 3:18"]),
        ("Read Psalm 23; 24 together.", ["Psalms 23", "Psalms 24"]),
    ],
)
def test_bare_number_followed_by_a_counting_word_is_prose_not_a_verse(answer, expected):
    assert [c.normalized for c in extract_citations(answer)] == expected


def test_continuation_keeps_its_own_text_and_offsets():
    found = extract_citations("All have sinned (Rom 3:23; 6:23).")
    assert [(c.text, c.start, c.end, c.book) for c in found] == [
        ("Rom 3:23", 17, 25, "Romans"),
        ("6:23", 27, 31, "Romans"),
    ]


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("John 3:99", "verse 99 is past the end of John 3, which has 36 verses"),
        ("Genesis 1:51-52", "verse 51 is past the end of Genesis 1, which has 31 verses"),
        ("Jude 30", "verse 30 is past the end of Jude, which has 25 verses"),
        ("Jude 2:1", "chapter 2 is past the end of Jude, which has 1 chapter"),
        ("Psalm 151", "chapter 151 is past the end of Psalms, which has 150 chapters"),
        ("Psalm 0", "there is no chapter 0 in Psalms"),
        ("John 3:0", "there is no verse 0 in John 3"),
        ("John 3:18-16", "the range John 3:18-16 ends before it starts"),
        ("Hezekiah 3:4", "there is no book called Hezekiah in the Bible"),
        ("2 Hezekiah 1:1", "there is no book called 2 Hezekiah in the Bible"),
        ("Gospel of Thomas 1:1", "there is no book called Gospel of Thomas in the Bible"),
        ("Book of Jasher 3:4", "there is no book called Jasher in the Bible"),
        ("Timothy 3:16", "Timothy needs a number: there are 1 Timothy and 2 Timothy"),
        ("3 Corinthians 1:1", "there is no 3 Corinthians in the Bible (there are 1 Corinthians and 2 Corinthians)"),
        ("Tobit 1:1", "Tobit is in the Apocrypha, not in the 66-book Bible of the KJV and ASV"),
    ],
)
def test_nonexistent_citations_say_why(answer, reason):
    (citation,) = extract_citations(answer)
    assert (citation.exists, citation.normalized, citation.verse_ids, citation.reason) == (
        False,
        None,
        (),
        reason,
    )


@pytest.mark.parametrize(
    "answer, existing, overrun, reason",
    [
        ("Psalm 23:1-9", "Psalms 23:1-6", "Psalms 23:7-9", "verses 7-9 are past the end of Psalms 23, which has 6 verses"),
        ("Psalm 117:1-3", "Psalms 117:1-2", "Psalms 117:3", "verse 3 is past the end of Psalms 117, which has 2 verses"),
        ("Mark 16:2–17:3", "Mark 16:2-20", "Mark 17:1-3", "chapter 17 is past the end of Mark, which has 16 chapters"),
        ("Genesis 49-52", "Genesis 49-50", "Genesis 51-52", "chapters 51-52 are past the end of Genesis, which has 50 chapters"),
        ("Jude 20-30", "Jude 20-25", "Jude 26-30", "verses 26-30 are past the end of Jude, which has 25 verses"),
    ],
)
def test_a_range_past_the_end_keeps_its_verses_and_reports_the_overrun(answer, existing, overrun, reason):
    real, made_up = extract_citations(answer)
    assert (real.exists, real.normalized, real.text) == (True, existing, answer)
    assert (made_up.exists, made_up.overrun, made_up.label, made_up.reason) == (False, True, overrun, reason)
    assert (made_up.start, made_up.end, made_up.book) == (real.start, real.end, real.book)


@pytest.mark.parametrize(
    "answer, expected",
    [
        # a range never runs into the Apocrypha, nor backwards across books
        ("Genesis 1–Tobit 2", [("Genesis 1", True), ("Tobit 2", False)]),
        ("Exodus 2-Genesis 1", [("Exodus 2", True), ("Genesis 1", True)]),
        ("Genesis 1–Exodus 2", [("Genesis 1-Exodus 2", True)]),
        ("Obadiah 1:1-2:3", [("Obadiah", True), ("Obadiah 1:1-2:3", False)]),
        ("Rom 8 and 0", [("Romans 8", True)]),
        ("Psalm 23:1-0", [("Psalm 23:1-0", False)]),
    ],
)
def test_edges_of_ranges_and_lists(answer, expected):
    assert labels(extract_citations(answer)) == expected


def test_any_jumble_of_names_numbers_and_links_reads_without_error():
    tokens = ["John", "Jn", "1", "2", "3", "0", "150", "176", "999", ":", "-", "–", ";", ",", "&", "and", "through", "ff", "f", "a", "ch.", "verse", "vv.", "Gen", "Exodus", "Tobit", "I", "First", "the", "Psalm", "23rd", "Mark", "Is", "Dan", "Jude"]
    tokens.append(" ")
    jumbles = [" ".join(random.Random(seed).choices(tokens, k=1 + seed % 12)) for seed in range(3000)]
    for text in jumbles:
        for citation in extract_citations(text):
            assert text[citation.start : citation.end] == citation.text
            assert citation.exists == bool(citation.verse_ids) == (citation.reason is None)


def test_a_known_abbreviation_is_never_an_unknown_book():
    for answer in ("Jgs 6:12", "Mark 10:30 pm", "Dan 6:30 dinner", "Sg 2:4", "Qoh 3:1", "2 Kgs 2:11"):
        assert not any("no book called" in (c.reason or "") for c in extract_citations(answer)), answer


def test_known_book_keeps_its_title_when_the_verse_does_not_exist():
    (citation,) = extract_citations("John 3:99")
    assert citation.book == "John"
    (unknown,) = extract_citations("Hezekiah 3:4")
    assert unknown.book is None


@pytest.mark.parametrize(
    "reference, verse_ids",
    [
        ("Eph 2:8-9", (49002008, 49002009)),
        ("Psalm 23", tuple(range(19023001, 19023007))),
        ("Genesis 1:31-2:1", (1001031, 1002001)),
        ("Jude 3", (65001003,)),
    ],
)
def test_verse_ids(reference, verse_ids):
    assert parse_reference(reference).verse_ids == verse_ids


@pytest.mark.parametrize("book", [book for book in Book], ids=lambda book: book.name)
def test_every_title_and_pythonbible_abbreviation_names_its_book(book):
    prefix = book.title.split(" ")[0] + " " if book.title[0].isdigit() else ""
    for name in (book.title, *(prefix + abbreviation for abbreviation in book.abbreviations)):
        found = extract_citations(f"see {name} 1:1 today")
        assert [c.book for c in found] == [book.title], name


# --- expected-reference lists ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Ephesians 2:8; Rom 6:23", ["Ephesians 2:8", "Romans 6:23"]),
        ("Rom 3:23; 6:23", ["Romans 3:23", "Romans 6:23"]),
        ("John 3:16, 18", ["John 3:16", "John 3:18"]),
        ("psalm 23", ["Psalms 23"]),
        ("1 Cor 13:4-7;Gal 5:22-23", ["1 Corinthians 13:4-7", "Galatians 5:22-23"]),
        ("", []),
        ("   ", []),
    ],
)
def test_parse_reference_list(text, expected):
    assert [c.normalized for c in parse_reference_list(text)] == expected


@pytest.mark.parametrize(
    "text, message",
    [
        (
            "John 3:16 and stuff",
            "Could not read 'and stuff' in the expected references 'John 3:16 and stuff'",
        ),
        ("nothing here", "Could not read 'nothing here' in the expected references 'nothing here'"),
        (
            "Hezekiah 3:4",
            "'Hezekiah 3:4' in 'Hezekiah 3:4' does not exist: there is no book called Hezekiah",
        ),
        (
            "John 3:99; Rom 1:1",
            "'John 3:99' in 'John 3:99; Rom 1:1' does not exist: verse 99 is past the end of John 3",
        ),
        ("Psalm 151", "'Psalm 151' in 'Psalm 151' does not exist: chapter 151 is past the end"),
    ],
)
def test_parse_reference_list_names_the_bad_text(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_reference_list(text)


def test_parse_reference_reads_one_reference():
    citation = parse_reference("Eph 2:8-9")
    assert (citation.text, citation.normalized, citation.exists) == ("Eph 2:8-9", "Ephesians 2:8-9", True)


@pytest.mark.parametrize(
    "text, message",
    [
        ("John 3:16; Rom 1:1", "Expected one scripture reference in 'John 3:16; Rom 1:1', found 2."),
        ("", "Expected one scripture reference in '', found 0."),
    ],
)
def test_parse_reference_wants_exactly_one(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_reference(text)


# --- verse text -------------------------------------------------------------------------------


def test_verse_text_kjv_and_asv_differ_where_the_translations_do():
    john_3_16 = 43003016
    kjv, asv = verse_text(john_3_16), verse_text(john_3_16, "ASV")
    assert kjv.startswith("For God so loved the world")
    assert kjv.endswith("should not perish, but have everlasting life.")
    assert asv.endswith("should not perish, but have eternal life.")


def test_verse_text_drops_the_brackets_around_supplied_words():
    assert verse_text(19023001) == "The LORD is my shepherd; I shall not want."
    assert verse_text(19023001, "asv") == "Jehovah is my shepherd; I shall not want."


@pytest.mark.parametrize(
    "verse_id, version, message",
    [
        (43003016, "NIV", "Unknown Bible version 'NIV'; available offline: KJV, ASV."),
        (43003099, "KJV", "43003099 is not the id of a verse in the 66-book Bible."),
        (68001001, "KJV", "68001001 is not the id of a verse in the 66-book Bible."),
    ],
)
def test_verse_text_rejects_what_it_cannot_show(verse_id, version, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        verse_text(verse_id, version)


def test_citation_text_joins_verses():
    assert citation_text(parse_reference("Eph 2:8-9")) == (
        "For by grace are ye saved through faith; and that not of yourselves: it is the gift "
        "of God: Not of works, lest any man should boast."
    )


def test_citation_text_is_capped_at_a_word():
    text = citation_text(parse_reference("Psalm 119"))
    assert len(text) <= MAX_CITATION_TEXT_CHARS
    assert text.endswith("…")
    assert text.startswith("Blessed are the undefiled in the way, who walk in the law of the LORD.")


def test_citation_text_refuses_a_nonexistent_citation():
    (citation,) = extract_citations("John 3:99")
    with pytest.raises(ValueError, match=re.escape("'John 3:99' does not exist: verse 99 is past")):
        citation_text(citation)


# --- overlap ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cited, expected, overlaps",
    [
        ("Eph 2:8-9", "Ephesians 2:8", True),
        ("Ephesians 2:8", "Eph 2:8-9", True),
        ("Psalm 23", "Ps 23:1", True),
        ("Genesis 1:1-2:3", "Gen 2:2", True),
        ("Matthew 5-7", "Mt 6:9", True),
        ("John 3:16", "1 John 3:16", False),
        ("Rom 3:23", "Rom 6:23", False),
        ("Psalm 23", "Psalm 24:1", False),
    ],
)
def test_verse_overlap(cited, expected, overlaps):
    assert verse_overlap(parse_reference(cited), parse_reference(expected)) is overlaps


def test_nonexistent_citation_overlaps_nothing():
    (made_up,) = extract_citations("John 3:99")
    assert verse_overlap(made_up, parse_reference("John 3")) is False


def test_verse_id_set_unions_existing_citations():
    found = extract_citations("Rom 3:23; 6:23 and John 3:99")
    assert verse_id_set(found) == frozenset({45003023, 45006023})


# --- long answers --------------------------------------------------------------------------------


def test_long_answers_give_every_citation():
    # How fast extraction runs is benchmarks/bench_scoring.py's business, not a test's.
    filler = "the grace of God is given freely to all who trust in him at 3:30 pm " * 9
    answers = [
        f"{i}. {filler} (John 3:16; Rom 6:23) and Eph. 2:8-9, 1 John 4:8, Hezekiah 3:4."
        for i in range(1000)
    ]
    assert sum(len(extract_citations(answer)) for answer in answers) == 5000
