"""Answer scoring: citation classes, precision/recall/F1, grounding, misquotes, repetition.

The main table is hand-labelled: each answer with its expected references and context,
every citation as written with the class a careful reader gives it, and precision,
recall and F1 worked out by hand on the deduplicated citations (arithmetic in the
comment of each row: P = cited units overlapping an expected reference / cited units,
R = expected references overlapped / expected references).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from fault_server import FaultServer, Ok

from core.config import Settings
from core.evaluation.cli import main
from core.evaluation.review_items import review_citations
from core.evaluation.summary import summarize
from core.evaluation.sweep import AnswerFigures
from core.evaluation.table import load_results
from core.generation.service import TextGenService
from core.scoring.citations import AnswerScore, classify_citation, in_context, score_answer
from core.scoring.quotes import MISQUOTE_SIMILARITY, QUOTE_NEAR_CHARS, Misquote, find_quotes, quote_similarity
from core.scoring.references import citation_text, extract_citations, parse_reference, parse_reference_list
from core.scoring.repetition import is_degenerate, repetition_stats
from ui.common.citations import answer_citations, citations_markdown

E, N, C, U = "expected", "nonexistent", "in_context", "unsupported"

# (answer, expected references, context, [(citation as written, class)], P, R, F1)
TABLE = [
    # --- notations ---------------------------------------------------------------------
    pytest.param(
        "God so loved the world (John 3:16).", "John 3:16", "",
        [("John 3:16", E)], 1.0, 1.0, 1.0, id="full-name",
    ),  # P 1/1, R 1/1, F1 1
    pytest.param(
        "As Jn 3:16 says, God gave his Son.", "John 3:16", "",
        [("Jn 3:16", E)], 1.0, 1.0, 1.0, id="abbreviation",
    ),  # P 1/1, R 1/1
    pytest.param(
        "Love is patient (1 Cor 13:4-7).", "1 Corinthians 13:4", "",
        [("1 Cor 13:4-7", E)], 1.0, 1.0, 1.0, id="numbered-book-range",
    ),  # 13:4-7 shares 13:4: P 1/1, R 1/1
    pytest.param(
        "God is love (1 John 4:8).", "1 John 4:8", "",
        [("1 John 4:8", E)], 1.0, 1.0, 1.0, id="1-john",
    ),  # P 1/1, R 1/1
    pytest.param(
        "God is love (John 4:8).", "1 John 4:8", "",
        [("John 4:8", U)], 0.0, 0.0, 0.0, id="john-is-not-1-john",
    ),  # the Gospel, not the letter: P 0/1, R 0/1, F1 0
    pytest.param(
        "Read Ps. 23 when you are afraid.", "Psalm 23:1", "",
        [("Ps. 23", E)], 1.0, 1.0, 1.0, id="chapter-abbreviation-with-dot",
    ),  # the whole chapter contains 23:1: P 1/1, R 1/1
    pytest.param(
        "Psalm 23 is the shepherd psalm.", "Psalm 23:4", "",
        [("Psalm 23", E)], 1.0, 1.0, 1.0, id="chapter-only",
    ),  # P 1/1, R 1/1
    pytest.param(
        "1 Corinthians 13 is the love chapter.", "1 Corinthians 13:13", "",
        [("1 Corinthians 13", E)], 1.0, 1.0, 1.0, id="numbered-chapter-only",
    ),  # P 1/1, R 1/1
    pytest.param(
        "His banner over me was love (Song of Solomon 2:4).", "Song of Songs 2:4", "",
        [("Song of Solomon 2:4", E)], 1.0, 1.0, 1.0, id="song-of-solomon",
    ),  # two names, one book: P 1/1, R 1/1
    pytest.param(
        "All have sinned, and sin pays death (Rom 3:23; 6:23).", "Romans 3:23; Romans 6:23", "",
        [("Rom 3:23", E), ("6:23", E)], 1.0, 1.0, 1.0, id="semicolon-continuation",
    ),  # P 2/2, R 2/2
    pytest.param(
        "All have sinned, and sin pays death (Rom 3:23; 6:23).", "Romans 6:23", "",
        [("Rom 3:23", U), ("6:23", E)], 0.5, 1.0, 2 / 3, id="semicolon-continuation-half-expected",
    ),  # P 1/2, R 1/1, F1 2(0.5)(1)/1.5 = 2/3
    pytest.param(
        "See John 3:16, 18.", "John 3:18", "",
        [("John 3:16", U), ("18", E)], 0.5, 1.0, 2 / 3, id="comma-continuation",
    ),  # P 1/2, R 1/1, F1 2/3
    pytest.param(
        "Saved by grace, Eph. 2:8-9.", "Ephesians 2:8", "",
        [("Eph. 2:8-9", E)], 1.0, 1.0, 1.0, id="range-covers-expected-verse",
    ),  # P 1/1, R 1/1
    pytest.param(
        "Eph 2:9 says it is not of works.", "Ephesians 2:8-10", "",
        [("Eph 2:9", E)], 1.0, 1.0, 1.0, id="verse-inside-expected-range",
    ),  # P 1/1, R 1/1
    pytest.param(
        "Creation is told in Genesis 1:1-2:3.", "Genesis 2:2", "",
        [("Genesis 1:1-2:3", E)], 1.0, 1.0, 1.0, id="cross-chapter-range",
    ),  # P 1/1, R 1/1
    pytest.param(
        "The Sermon on the Mount fills Matthew 5-7.", "Matthew 6:9-13", "",
        [("Matthew 5-7", E)], 1.0, 1.0, 1.0, id="chapter-range",
    ),  # P 1/1, R 1/1
    pytest.param(
        "Read Psalm 23; 24.", "Psalm 24:1", "",
        [("Psalm 23", U), ("24", E)], 0.5, 1.0, 2 / 3, id="chapter-continuation",
    ),  # P 1/2, R 1/1, F1 2/3
    pytest.param(
        "II Timothy 3:16 says all scripture is inspired.", "2 Timothy 3:16-17", "",
        [("II Timothy 3:16", E)], 1.0, 1.0, 1.0, id="roman-numeral",
    ),  # P 1/1, R 1/1
    pytest.param(
        "1st Peter 5:7: cast your cares on him.", "1 Peter 5:7", "",
        [("1st Peter 5:7", E)], 1.0, 1.0, 1.0, id="ordinal",
    ),  # P 1/1, R 1/1
    pytest.param(
        "everyone knows john 3:16 by heart", "John 3:16", "",
        [("john 3:16", E)], 1.0, 1.0, 1.0, id="lower-case",
    ),  # P 1/1, R 1/1
    pytest.param(
        "John 3.16 in British notation.", "John 3:16", "",
        [("John 3.16", E)], 1.0, 1.0, 1.0, id="dot-separator",
    ),  # P 1/1, R 1/1
    pytest.param(
        "Jude 3 urges us to contend for the faith.", "Jude 1:3", "",
        [("Jude 3", E)], 1.0, 1.0, 1.0, id="one-chapter-book",
    ),  # P 1/1, R 1/1
    # --- nonexistent references ----------------------------------------------------------
    pytest.param(
        "Jesus said this in John 3:99.", "John 3:16", "",
        [("John 3:99", N)], 0.0, 0.0, 0.0, id="verse-past-the-end",
    ),  # P 0/1, R 0/1, F1 0
    pytest.param(
        "Jude 2:1 warns us about false teachers.", "Jude 3", "",
        [("Jude 2:1", N)], 0.0, 0.0, 0.0, id="chapter-past-the-end",
    ),  # P 0/1, R 0/1
    pytest.param(
        "Psalm 151 praises David.", "Psalm 23", "",
        [("Psalm 151", N)], 0.0, 0.0, 0.0, id="psalm-151",
    ),  # P 0/1, R 0/1
    pytest.param(
        "Hezekiah 3:4 says God helps those who help themselves.", "Proverbs 3:5", "",
        [("Hezekiah 3:4", N)], 0.0, 0.0, 0.0, id="no-such-book",
    ),  # P 0/1, R 0/1
    pytest.param(
        "Tobit 4:15 gives the golden rule in negative form.", "Matthew 7:12", "",
        [("Tobit 4:15", N)], 0.0, 0.0, 0.0, id="apocrypha",
    ),  # P 0/1, R 0/1
    pytest.param(
        "We are saved by grace (Ephesians 2:8-9). The gift of God is eternal life (Romans 6:23). "
        "Hezekiah 3:4 says the same.",
        "Ephesians 2:8-9; Romans 6:23", "",
        [("Ephesians 2:8-9", E), ("Romans 6:23", E), ("Hezekiah 3:4", N)], 2 / 3, 1.0, 0.8,
        id="nonexistent-counts-against-precision",
    ),  # P 2/3, R 2/2, F1 2(2/3)(1)/(5/3) = 0.8
    pytest.param(
        "Isaiah 53:5 and Isaiah 53:99 and Matthew 8:17.", "Isaiah 53:5", "",
        [("Isaiah 53:5", E), ("Isaiah 53:99", N), ("Matthew 8:17", U)], 1 / 3, 1.0, 0.5,
        id="one-of-each",
    ),  # P 1/3, R 1/1, F1 2(1/3)(1)/(4/3) = 0.5
    # --- no citations, no expected references ----------------------------------------------
    pytest.param(
        "God loves you and wants you to trust him.", "John 3:16", "",
        [], None, 0.0, 0.0, id="cites-nothing",
    ),  # P 0/0 undefined -> None, R 0/1, F1 0 (missed everything)
    pytest.param(
        "Pray without ceasing, friends.", "", "",
        [], None, None, None, id="nothing-either-way",
    ),  # no expected references: all None
    pytest.param(
        "See John 3:16.", "", "",
        [("John 3:16", U)], None, None, None, id="no-expected-references",
    ),  # no expected references: all None
    # --- deduplication and overlap ------------------------------------------------------------
    pytest.param(
        "John 3:16 is key. Jn 3:16 again, and John 3:16 once more.", "John 3:16; Romans 5:8", "",
        [("John 3:16", E), ("Jn 3:16", E), ("John 3:16", E)], 1.0, 0.5, 2 / 3, id="repeated-citation",
    ),  # one unit (John 3:16): P 1/1, R 1/2, F1 2(1)(0.5)/1.5 = 2/3
    pytest.param(
        "John 3:99 and Jn 3:99 say it. So does Romans 5:8.", "Romans 5:8", "",
        [("John 3:99", N), ("Jn 3:99", N), ("Romans 5:8", E)], 0.5, 1.0, 2 / 3, id="repeated-nonexistent",
    ),  # units John 3:99, Romans 5:8: P 1/2, R 1/1, F1 2/3
    pytest.param(
        "1 John 4:8 and John 4:8 differ.", "1 John 4:8", "",
        [("1 John 4:8", E), ("John 4:8", U)], 0.5, 1.0, 2 / 3, id="letter-and-gospel",
    ),  # P 1/2, R 1/1, F1 2/3
    pytest.param(
        "John 3:16 and John 3:16-17 both teach it.", "John 3:17", "",
        [("John 3:16", U), ("John 3:16-17", E)], 0.5, 1.0, 2 / 3, id="overlapping-units-are-distinct",
    ),  # two units (different verses): P 1/2, R 1/1, F1 2/3
    pytest.param(
        "Ephesians 2:8-10 sums it up.", "Ephesians 2:8; Ephesians 2:10", "",
        [("Ephesians 2:8-10", E)], 1.0, 1.0, 1.0, id="one-citation-recalls-two",
    ),  # P 1/1, R 2/2
    pytest.param(
        "John 3:16.", "John 3:16; Jn 3:16", "",
        [("John 3:16", E)], 1.0, 1.0, 1.0, id="expected-deduplicated",
    ),  # expected units: John 3:16 once: P 1/1, R 1/1
    pytest.param(
        "Trust in the LORD (Proverbs 3:5).", "Proverbs 3:5-6; Jeremiah 29:11; Romans 8:28", "",
        [("Proverbs 3:5", E)], 1.0, 1 / 3, 0.5, id="partial-recall",
    ),  # P 1/1, R 1/3, F1 2(1)(1/3)/(4/3) = 0.5
    pytest.param(
        "Rom 8:28 and Jer 29:11 and Isa 41:10 and Phil 4:13.", "Romans 8:28; Jeremiah 29:11", "",
        [("Rom 8:28", E), ("Jer 29:11", E), ("Isa 41:10", U), ("Phil 4:13", U)], 0.5, 1.0, 2 / 3,
        id="extra-citations",
    ),  # P 2/4, R 2/2, F1 2/3
    # --- context -------------------------------------------------------------------------------
    pytest.param(
        "The LORD is my shepherd (Psalm 23:1).", "", "Psalm 23:1-3 speaks of God's care.",
        [("Psalm 23:1", C)], None, None, None, id="context-cites-it",
    ),  # no expected references: all None
    pytest.param(
        "Jesus wept (John 11:35) shows his compassion.", "John 3:16",
        "At the tomb of Lazarus: Jesus wept. The Jews said he loved him.",
        [("John 11:35", C)], 0.0, 0.0, 0.0, id="context-quotes-its-text",
    ),  # in context, not expected: P 0/1, R 0/1
    pytest.param(
        "Jehovah is my shepherd (Psalm 23:1).", "", "Jehovah is my shepherd; I shall not want.",
        [("Psalm 23:1", C)], None, None, None, id="context-quotes-asv-text",
    ),  # ASV wording, no expected references
    pytest.param(
        "The LORD is my shepherd (Psalm 23:1).", "Psalm 23", "Psalm 23:1",
        [("Psalm 23:1", E)], 1.0, 1.0, 1.0, id="expected-before-context",
    ),  # expected wins over in_context: P 1/1, R 1/1
    pytest.param(
        "Psalm 23:1 comforts, and so does Isaiah 41:10.", "Isaiah 41:10", "Read Psalm 23 together.",
        [("Psalm 23:1", C), ("Isaiah 41:10", E)], 0.5, 1.0, 2 / 3, id="context-and-expected",
    ),  # in_context does not count for precision: P 1/2, R 1/1, F1 2/3
    pytest.param(
        "John 3:99 says so.", "", "John 3:99 and John 3:16",
        [("John 3:99", N)], None, None, None, id="nonexistent-before-context",
    ),  # nonexistent wins; the context's John 3:99 has no verses anyway
    pytest.param(
        "Romans 8:28 promises good.", "", "The Lord works all things together.",
        [("Romans 8:28", U)], None, None, None, id="context-without-it",
    ),  # neither cited nor quoted by the context
]


@pytest.mark.parametrize(
    ("answer", "expected", "context", "classes", "precision", "recall", "f1"), TABLE
)
def test_hand_labelled_answers(
    answer: str,
    expected: str,
    context: str,
    classes: list[tuple[str, str]],
    precision: float | None,
    recall: float | None,
    f1: float | None,
) -> None:
    score = score_answer(answer, expected=parse_reference_list(expected), context=context)

    assert [(s.citation.text, s.classification) for s in score.citations] == classes
    assert score.citation_precision == _approx(precision)
    assert score.citation_recall == _approx(recall)
    assert score.citation_f1 == _approx(f1)


def _approx(value: float | None) -> object:
    return None if value is None else pytest.approx(value, abs=1e-12)


def test_the_table_is_big_enough() -> None:
    assert len(TABLE) >= 40


# --- the other fields ---------------------------------------------------------------------------


def test_lists_and_rates_use_deduplicated_units() -> None:
    answer = "John 3:16, Jn 3:16 and John 3:99. Jn 3:99 again, Hezekiah 3:4 and Romans 5:8."
    score = score_answer(answer, expected=parse_reference_list("Romans 5:8"))

    assert len(score.citations) == 6
    assert score.valid_citations == ("John 3:16", "Romans 5:8")
    assert score.nonexistent_citations == ("John 3:99", "Hezekiah 3:4")  # first spelling
    assert score.nonexistent_rate == pytest.approx(2 / 4)  # units: John 3:16, John 3:99, Hezekiah 3:4, Romans 5:8
    assert score.citation_precision == pytest.approx(1 / 4)
    assert score.missed_references == ()


def test_grounded_rate_counts_valid_citations_inside_the_context() -> None:
    answer = "Psalm 23:1 comforts. Isaiah 41:10 strengthens. John 3:99 confuses."
    score = score_answer(answer, expected=parse_reference_list("Isaiah 41:10"), context="Read Psalm 23 together.")

    # valid units: Psalm 23:1 (in the context), Isaiah 41:10 (not): 1/2
    assert score.grounded_rate == pytest.approx(1 / 2)
    assert score.nonexistent_rate == pytest.approx(1 / 3)
    assert score.supported_rate == pytest.approx(2 / 3)  # expected or in context, of all 3 units


def test_grounded_rate_includes_expected_citations_found_in_the_context() -> None:
    score = score_answer(
        "The LORD is my shepherd (Psalm 23:1).", expected=parse_reference_list("Psalm 23"), context="Psalm 23"
    )

    assert score.citations[0].classification == "expected"
    assert score.grounded_rate == 1.0


@pytest.mark.parametrize(
    ("answer", "context"),
    [
        pytest.param("The LORD is my shepherd (Psalm 23:1).", "", id="no-context"),
        pytest.param("The LORD is my shepherd (Psalm 23:1).", "  \n ", id="blank-context"),
        pytest.param("John 3:99 says so.", "John 3:16", id="no-valid-citation"),
        pytest.param("No references here.", "Psalm 23", id="no-citation"),
    ],
)
def test_grounded_rate_is_undefined(answer: str, context: str) -> None:
    assert score_answer(answer, context=context).grounded_rate is None


def test_rates_are_undefined_without_citations() -> None:
    score = score_answer("Trust him.", expected=parse_reference_list("Proverbs 3:5"))

    assert (score.nonexistent_rate, score.supported_rate, score.grounded_rate) == (None, None, None)
    assert score.missed_references == ("Proverbs 3:5",)


def test_a_nonexistent_expected_reference_is_refused() -> None:
    made_up = extract_citations("John 3:99")[0]
    with pytest.raises(ValueError, match="John 3:99"):
        score_answer("John 3:16", expected=[made_up])


@pytest.mark.parametrize(
    ("answer", "reference", "sentence"),
    [
        pytest.param("Read Ps. 23 today. Then pray.", "Ps. 23", "Read Ps. 23 today.", id="book-abbreviation"),
        pytest.param("First point.\nSee e.g. John 3:16 here. Next.", "John 3:16", "See e.g. John 3:16 here.", id="e-g"),
        pytest.param(
            'He said "Love is kind. It is patient." (1 Cor 13:4). Amen.',
            "1 Cor 13:4",
            'He said "Love is kind. It is patient." (1 Cor 13:4).',
            id="period-inside-quote",
        ),
        pytest.param("- Grace: Eph 2:8\n- Life: Rom 6:23", "Rom 6:23", "- Life: Rom 6:23", id="list-lines"),
    ],
)
def test_each_citation_keeps_its_sentence(answer: str, reference: str, sentence: str) -> None:
    scored = {s.citation.text: s.sentence for s in score_answer(answer).citations}
    assert scored[reference] == sentence


def test_classify_and_in_context_work_on_their_own() -> None:
    psalm = parse_reference("Psalm 23:1")
    assert in_context(psalm, "The LORD is my shepherd; I shall not want.")
    assert not in_context(psalm, "The LORD is my shepherd.")  # a part of the verse is not its text
    assert classify_citation(psalm, [parse_reference("Psalm 23")], "Psalm 23:1") == "expected"
    assert classify_citation(psalm, [], "") == "unsupported"


# --- misquotes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "checked"),
    [
        pytest.param(
            'Jesus said, "For God so loved the world, that he gave his only begotten Son" (John 3:16).',
            1, id="exact-kjv",
        ),
        pytest.param("“Jehovah is my shepherd; I shall not want” (Psalm 23:1).", 1, id="exact-asv"),
        pytest.param(
            "“that whosoever believeth on him should not perish” (John 3:16)", 1, id="asv-part-of-verse"
        ),
        pytest.param("Paul wrote “Charity suffereth long, and is kind” (1 Cor 13:4-7).", 1, id="part-of-range"),
        pytest.param(
            "“For God so loved the world … that whosoever believeth in him should not perish” (John 3:16)",
            1, id="ellipsis",
        ),
        pytest.param(
            "Jesus said ‘Suffer little children, and forbid them not, to come unto me’ (Matthew 19:14).",
            1, id="single-curly-quotes",
        ),
        pytest.param("‘The earth is the LORD’s, and the fulness thereof’ (Psalm 24:1).", 1, id="apostrophe-inside"),
        pytest.param(
            "John 3:16 says:\n“For God so loved the world, that he gave his only begotten Son.”",
            1, id="citation-on-the-line-before",
        ),
        pytest.param(
            "“For God so loved the world, that he gave his only begotten Son.” John 3:16 shows it.",
            1, id="citation-right-after",
        ),
        pytest.param(
            "“For God so loved the world, that he gave his only begotten Son” (Romans 5:8; John 3:16).",
            1, id="best-of-two-citations",
        ),
        pytest.param("“God helps those who help themselves,” my grandmother said.", 0, id="no-citation"),
        pytest.param("“God helps those who help themselves” (Hezekiah 3:4).", 0, id="next-to-nonexistent"),
        pytest.param("“God is love” (1 John 4:8).", 0, id="too-short"),
        pytest.param('"Read John 3:16 every single day," he said.', 0, id="quote-cites-itself"),
        pytest.param(
            "“God helps those who help themselves,” my grandmother said. " + "She was wise. " * 12
            + "Read John 3:16.",
            0, id="citation-too-far",
        ),
    ],
)
def test_faithful_quotes_are_not_misquotes(answer: str, checked: int) -> None:
    score = score_answer(answer)

    assert score.quotes_checked == checked
    assert score.misquotes == ()


def test_far_means_past_the_documented_distance() -> None:
    far = "“God helps those who help themselves,” my grandmother said. " + "She was wise. " * 12
    assert len(far) - len(far.split("”")[0]) - 1 > QUOTE_NEAR_CHARS


def test_a_garbled_quote_is_a_misquote() -> None:
    score = score_answer("“For God so hated the world that he took away his only Son” (John 3:16).")

    # Quote: for god so hated the world that he took away his only son (13 words). KJV and
    # ASV both match "for god so | the world that he | his only | son" = 10 words over
    # the 13 passage words from "for" to "son": 2*10 / (13 + 13) = 20/26.
    assert score.quotes_checked == 1
    assert score.misquotes == (
        Misquote("John 3:16", "For God so hated the world that he took away his only Son", pytest.approx(20 / 26), "KJV"),
    )
    assert score.misquotes[0].similarity < MISQUOTE_SIMILARITY


def test_an_invented_saying_next_to_a_real_verse_is_a_misquote() -> None:
    score = score_answer("The Bible says “God helps those who help themselves” (Proverbs 3:5).")

    (misquote,) = score.misquotes
    assert (misquote.reference, misquote.quoted) == ("Proverbs 3:5", "God helps those who help themselves")
    assert misquote.similarity < 0.5


@pytest.mark.parametrize(
    ("quoted", "reference", "version", "similarity"),
    [
        # exact words of the verse, punctuation and case ignored
        ("for god so loved the world that he gave his only begotten son", "John 3:16", "KJV", 1.0),
        # ASV's "on him" against KJV's "in him": 12 quote words, 11 matched ("that whosoever
        # believeth" + "him ... everlasting life") over the 12 KJV words "that ... life": 22/24
        ("that whosoever believeth on him should not perish, but have everlasting life", "John 3:16", "KJV", 22 / 24),
        # NIV against KJV: 14 quote words; "for god so loved the world that he gave his" (10)
        # + "only" + "son" = 12 matched, over the 13 KJV words from "for" to "son": 24/27
        ("For God so loved the world that he gave his one and only Son", "John 3:16", "KJV", 24 / 27),
        # ASV "love suffereth long, and is kind" against "love is patient love is kind":
        # "love" + "is kind" = 3 of 6 quote words matched over those 6 ASV words: 6/12
        ("Love is patient, love is kind", "1 Corinthians 13:4", "ASV", 6 / 12),
        # nothing in common
        ("blessed are the peacemakers today", "John 11:35", "KJV", 0.0),
    ],
)
def test_quote_similarity_by_hand(quoted: str, reference: str, version: str, similarity: float) -> None:
    passage = citation_text(parse_reference(reference), version)
    assert quote_similarity(quoted, passage) == pytest.approx(similarity)


def test_quotes_are_found_in_every_quotation_style() -> None:
    text = (
        "He said \"one two three four\", “five six seven eight” and ‘God’s nine ten eleven’; “too short”; "
        "Psalm 24:10, which says 'Forgive us our enemies, God's way', and the disciples' feet were 'washed'."
    )
    assert [q.text for q in find_quotes(text)] == [
        "one two three four", "five six seven eight", "God’s nine ten eleven", "Forgive us our enemies, God's way",
    ]


# --- repetition -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "God is love (1 John 4:8).",
        "We are saved by grace through faith (Ephesians 2:8-9), not by works, so that no one may boast.",
        "The Lord is good. " * 20,
    ],
)
def test_repetition_is_the_generators_measure(answer: str) -> None:
    score = score_answer(answer)

    assert score.repetition == repetition_stats(answer)
    assert score.degenerate == is_degenerate(repetition_stats(answer))


def test_a_loop_is_degenerate() -> None:
    loop = "Pray and trust the Lord (Psalm 23:1). " * 15
    score = score_answer(loop, expected=parse_reference_list("Psalm 23:1"))

    assert score.degenerate is True
    assert score.repetition.rep_n > 0.3
    assert score.valid_citations == ("Psalms 23:1",)  # fifteen citations, one unit
    assert score.citation_precision == 1.0


def test_a_fluent_answer_is_not_degenerate() -> None:
    answer = (
        "Grace is God's favour that we do not earn. Paul tells the Ephesians that salvation is a gift "
        "received through faith (Ephesians 2:8-9), and Romans 6:23 contrasts the wages of sin with it."
    )
    assert score_answer(answer).degenerate is False


# --- shape and speed ------------------------------------------------------------------------------


def test_scores_are_frozen_values() -> None:
    score = score_answer("John 3:16")
    assert isinstance(score, AnswerScore)
    with pytest.raises(AttributeError):
        score.citation_f1 = 1.0  # type: ignore[misc]
    assert score == score_answer("John 3:16")


def test_a_batch_of_long_answers_gets_every_misquote() -> None:
    # 1,000 long answers (~130 words of varied prose, 7 citations, one nonexistent, one a
    # whole chapter checked against the context) and a quote, half of them garbled. How
    # fast they score is benchmarks/bench_scoring.py's business, not a test's.
    quote = "“For God so loved the world, that he gave his only begotten Son”"
    garbled = "“For God so hated the world that he took away his only Son”"
    vocabulary = ["grace", "faith", "hope", "love", "mercy", "the", "of", "and", "to", "in", "God", "Lord", "Christ", "church", "prayer", "we", "our", "is", "are", "his", "people", "believe", "salvation", "peace", "sin", "forgiveness", "heart", "life", "truth", "light", "shepherd", "kingdom", "word", "spirit", "cross", "rest", "joy", "trust", "call", "follow", "serve", "give", "receive", "walk"]
    answers = []
    for i in range(1000):
        prose = " ".join(random.Random(i).choices(vocabulary, k=110))
        answers.append(
            f"Answer {i}. {prose}. {quote if i % 2 else garbled} (John 3:16). "
            f"See Rom 3:23; 6:23 and Eph. 2:8-9, 1 John 4:8, Hezekiah 3:4. Psalm {i % 7 + 20} helps."
        )
    expected = parse_reference_list("Ephesians 2:8; Romans 6:23")
    scores = [score_answer(answer, expected=expected, context="Psalm 23:1") for answer in answers]
    assert sum(len(score.misquotes) for score in scores) == 500
    assert all(len(score.nonexistent_citations) == 1 for score in scores)


# --- one citation count everywhere ------------------------------------------------------------

#: Two spellings of one made-up verse, two of one real verse, and a range past the end:
#: two existing units (John 3:16, Psalms 23:1-6) and two nonexistent ones (John 3:99 and
#: the overrun Psalms 23:7-9).
VARIANTS = (
    "Jesus said it in Jn 3:99, and John 3:99 says it again. John 3:16 and Jn 3:16 are one verse; "
    "Psalm 23:1-9 runs past the end of the psalm."
)


def test_one_answer_gets_the_same_citation_counts_in_every_tab_and_the_cli(tmp_path: Path) -> None:
    expected_valid, expected_nonexistent = ("John 3:16", "Psalms 23:1-6"), ("Jn 3:99", "Psalms 23:7-9")
    score = score_answer(VARIANTS)
    assert (score.valid_citations, score.nonexistent_citations) == (expected_valid, expected_nonexistent)
    assert score.nonexistent_rate == 0.5

    chat, _ = answer_citations(VARIANTS)  # Chat lists these, one line each
    assert [c.normalized for c in chat if c.exists] == list(expected_valid)
    assert len([c for c in chat if not c.exists]) == 2
    assert citations_markdown(VARIANTS).count("\n- ") == 4

    with FaultServer() as server:  # Tune scores a generated result
        server.script([], then=Ok(VARIANTS))
        settings = Settings(base_url=server.base_url, model="test-model", token="hf_FAKE_TOKEN_units_0123456789",
                            cache_dir=tmp_path, data_dir=tmp_path / "data", retry_backoff_s=0.01)
        result = TextGenService(settings).chat("Where is it written?", max_new_tokens=64)
    assert result.text == VARIANTS
    figures = AnswerFigures.of(result)
    assert (figures.citations, figures.nonexistent) == (4, expected_nonexistent)

    question_set = tmp_path / "set.csv"  # Evaluate and the CLI score a given answer
    question_set.write_text(f'id,question,expected_references,answer\nq1,Where?,John 3:16,"{VARIANTS}"\n')
    assert main([str(question_set), "--output", str(tmp_path / "out.csv")], service=TextGenService(settings)) == 0
    row = load_results(tmp_path / "out.csv").iloc[0]
    assert (row["valid_citations"], row["nonexistent_count"]) == ("; ".join(expected_valid), 2)
    summary = summarize(load_results(tmp_path / "out.csv"))
    assert (summary.citations, summary.nonexistent_citations) == (4, 2)

    reviewed, problem = review_citations(VARIANTS)  # the Review panel, one entry per unit
    assert problem is None
    assert (len(reviewed), len([c for c in reviewed if c.normalized is None])) == (4, 2)


@pytest.mark.parametrize(
    "answer, reference, real_words",
    [
        ("Read Psalm 24:10, which says 'Forgive us our enemies, as we forgive them.'", "Psalms 24:10", "Who is this King of glory?"),
        # a whole one-chapter book, which pythonbible names without numbers ("Obadiah")
        ('Obadiah 1-21 says "the day of the Lord is a dance party for all".', "Obadiah", "The vision of Obadiah."),
    ],
)
def test_chat_shows_a_misquote_next_to_the_real_text(answer: str, reference: str, real_words: str) -> None:
    shown = citations_markdown(answer)
    warning = f"The words quoted for {reference} are not in that verse."
    assert warning in shown
    assert real_words in shown.split(warning, 1)[1]
