"""A corpus of bad question-set CSVs: each is refused by name or loaded cleanly, never a traceback.

People upload whatever their spreadsheet or editor saved: Latin-1 and UTF-16 text, Excel
workbooks, a PNG, tab-separated files, a quote opened and never closed, files far over the
limits, cells that a spreadsheet would run as formulas. For each such file the loader must
either give one :class:`QuestionSetError` whose message starts with the file name (and names
the row and column where there is one), or load the questions it holds. Any other
exception is a traceback in front of the user, so it fails these tests.

The hand-written table pins the message fragments a person relies on (the file, "row 2",
"column A (question)", the limits); ``tests/test_evaluation.py`` pins a few whole messages.
Hypothesis then feeds arbitrary bytes and arbitrary CSV text to the loader, and checks that
``neutralize_formula`` (used when results are written) never lets a formula through.
"""

from __future__ import annotations

import codecs
import csv
import io
import random
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import QuestionSetError
from core.evaluation.question_sets import (
    MAX_CELL_CHARS,
    MAX_FILE_BYTES,
    MAX_ROWS,
    QuestionSet,
    is_blank,
    load_question_set,
)
from core.evaluation.scored_rows import score_row
from core.evaluation.table import (
    FORMULA_TRIGGERS,
    load_results,
    neutralize_formula,
    restore_formula,
    results_frame,
    write_results_csv,
)

FILE_NAME = "corpus.csv"
FUZZ_NAME = "fuzz.csv"
ONE_MB = 1024 * 1024
TOO_MANY_ROWS = 100_000
MANY_COLUMNS = 10_000
#: Rows that an unclosed quote swallows into one cell, more than CSV_FIELD_LIMIT characters.
SWALLOWED_ROWS = 10_000
#: The largest field Python's csv module reads by default (csv.field_size_limit()).
CSV_FIELD_LIMIT = 131_072
RANDOM_SEED = 20240
RANDOM_BYTES = 4096
NOT_UTF8 = "the text is not UTF-8"
BAD_QUOTES = "could not be read as CSV"
NO_QUESTION_COLUMN = "there is no 'question' column"
EXCEL = "this is an Excel workbook, not a CSV file"
EMPTY = "the file is empty"
FORMULAS = ('=HYPERLINK("http://x","y")', "+cmd|' /C calc'!A0", "@SUM(1+1)", "-2+3")
TWO_QUESTIONS = ("What is grace?", "Who wept?")
HTML = ("<script>alert('x')</script>", '<b>Who</b> wrote <a href="javascript:alert(1)">Psalm 23</a>?')
#: neutralize_formula's own definition of "just a number" (``\d`` is Unicode-aware, as there).
PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
FUZZ_SETTINGS = settings(max_examples=200, deadline=None, database=None)


@dataclass(frozen=True)
class Refused:
    """The file is refused; its message contains every fragment."""

    fragments: tuple[str, ...]


@dataclass(frozen=True)
class Loads:
    """The file loads with exactly these questions and this many extra columns."""

    questions: tuple[str, ...]
    extra_columns: int = 0


def refused(*fragments: str) -> Refused:
    return Refused(fragments)


def loads(*questions: str, extra_columns: int = 0) -> Loads:
    return Loads(questions, extra_columns)


def _csv(*lines: str, end: str = "\n") -> bytes:
    return "".join(line + end for line in lines).encode("utf-8")


def _quoted(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"'


def _formula_rows() -> list[str]:
    return [f"f{i},{_quoted(formula)},{_quoted(formula)}" for i, formula in enumerate(FORMULAS)]


def _numbered_questions(count: int) -> tuple[str, ...]:
    return tuple(f"Question {i}?" for i in range(count))


def _questions_file(count: int) -> bytes:
    return _csv("question", *_numbered_questions(count))


def _file_of_exactly(size: int) -> bytes:
    """A valid set of MAX_ROWS questions, padded in a notes column to exactly ``size`` bytes."""
    header = b"question,notes\n"
    lines = [question.encode() + b"," for question in _numbered_questions(MAX_ROWS)]
    padding = size - len(header) - sum(len(line) + 1 for line in lines)
    share, rest = divmod(padding, MAX_ROWS)
    body = b"".join(line + b"x" * (share + (i < rest)) + b"\n" for i, line in enumerate(lines))
    return header + body


def _many_columns(count: int) -> bytes:
    return _csv(",".join(["Question", *(f"extra {i}" for i in range(count))]), ",".join(["What?", *["v"] * count]))


PNG_HEADER = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"
XLSX_HEADER = b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00" + b"[Content_Types].xml" + bytes(64)
XLS_HEADER = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(64)

CORPUS = [
    pytest.param(b"", refused(EMPTY), id="empty-file"),
    pytest.param(b"  \t \n\n \r\n\t", refused(EMPTY), id="only-whitespace"),
    pytest.param(_csv("id,question,expected_references"), refused("header row but no questions"), id="header-only"),
    pytest.param(
        codecs.BOM_UTF8 + _csv("Question", end="\r\n"),
        refused("header row but no questions"),
        id="bom-header-only-crlf",
    ),
    pytest.param(
        _csv("question", "   ", "\t"), refused("header row but no questions"), id="header-then-blank-rows"
    ),
    pytest.param(
        _csv("id,prompt,Category", "q1,What is grace?,grace"),
        refused("row 1:", NO_QUESTION_COLUMN, "'id', 'prompt', 'category'"),
        id="no-question-column",
    ),
    pytest.param(
        _csv("Question,notes,QUESTION ", "What is grace?,,Again?"),
        refused("row 1, column C (question)", "already used by column A"),
        id="duplicated-question-column",
    ),
    pytest.param(
        _csv("id,question,notes,Notes", "q1,What is grace?,a,b"),
        refused("row 1, column D (notes)", "already used by column C"),
        id="duplicated-other-column",
    ),
    pytest.param(_file_of_exactly(MAX_FILE_BYTES), loads(*_numbered_questions(MAX_ROWS)), id="exactly-5-MB"),
    pytest.param(
        _file_of_exactly(MAX_FILE_BYTES + 1),
        refused("the file is 5.0 MB, over the 5 MB limit"),
        id="one-byte-over-5-MB",
    ),
    pytest.param(_questions_file(MAX_ROWS), loads(*_numbered_questions(MAX_ROWS)), id="exactly-max-rows"),
    pytest.param(
        _questions_file(TOO_MANY_ROWS),
        refused(f"the file has {TOO_MANY_ROWS:,} questions; the limit is {MAX_ROWS:,}"),
        id="100000-rows",
    ),
    pytest.param(
        _csv("question,notes", "Was Jesus born in a café?,").decode().encode("latin-1"),
        refused("row 2, column A (question)", NOT_UTF8, "byte 0xE9 after 'Jesus born in a caf'", "CSV UTF-8"),
        id="latin-1",
    ),
    pytest.param(
        _csv("question,notes", "What is grace?,\u201cgift\u201d").decode().encode("cp1252"),
        refused("row 2, column B (notes)", NOT_UTF8, "byte 0x93 at the start of the cell"),
        id="windows-1252-curly-quotes",
    ),
    pytest.param(
        _csv("question", "What is grace?").decode().encode("utf-16"),
        refused("the file is UTF-16 text, not UTF-8", "CSV UTF-8"),
        id="utf-16-le-with-bom",
    ),
    pytest.param(
        codecs.BOM_UTF16_BE + _csv("question", "What is grace?").decode().encode("utf-16-be"),
        refused("the file is UTF-16 text, not UTF-8"),
        id="utf-16-be-with-bom",
    ),
    pytest.param(
        _csv("question", "What is grace?").decode().encode("utf-16-le"),
        refused("row 1, column A", "NUL byte", NO_QUESTION_COLUMN),
        id="utf-16-without-bom",
    ),
    pytest.param(
        _csv("id,question", "q1,What is\x00 grace?", "q2,\x00\x00\x00"),
        refused("row 2, column B (question)", "row 3, column B (question)", "NUL byte"),
        id="nul-bytes",
    ),
    pytest.param(
        _csv("question", "x" * MAX_CELL_CHARS), loads("x" * MAX_CELL_CHARS), id="cell-exactly-at-limit"
    ),
    pytest.param(
        _csv("question", "x" * CSV_FIELD_LIMIT),
        refused(
            "row 2, column A (question)",
            f"the cell has {CSV_FIELD_LIMIT:,} characters; the limit is {MAX_CELL_CHARS:,}",
        ),
        id="cell-at-csv-field-limit",
    ),
    pytest.param(
        _csv("question,id", "\u200b\u2060,1"), refused("row 2, column A (question)", "the question is empty"), id="invisible-question"
    ),
    pytest.param(
        _csv("question", "x" * ONE_MB),
        refused("row 2, column A (question)", f"the limit is {MAX_CELL_CHARS:,}"),
        id="1-MB-cell",
    ),
    pytest.param(
        _csv("id,question", 'q1,"What is grace?', "q2,What is faith?", "q3,Who wept?"),
        refused("row 2:", BAD_QUOTES, "unexpected end of data", "double quote"),
        id="unclosed-quote-swallows-the-file",
    ),
    pytest.param(
        _csv("id,question", 'q1,"What is grace?', *(f"q{i},Question {i}?" for i in range(SWALLOWED_ROWS))),
        refused("row 2:", BAD_QUOTES, "double quote"),
        id="unclosed-quote-swallows-a-big-file",
    ),
    pytest.param(b'"', refused("row 1:", BAD_QUOTES), id="lone-quote"),
    pytest.param(
        _csv("question", '"What is grace?" he asked'), refused("row 2:", BAD_QUOTES), id="text-after-closing-quote"
    ),
    pytest.param(
        _csv("question", 'Who said "It is finished"?'),
        loads('Who said "It is finished"?'),
        id="quote-inside-plain-cell",
    ),
    pytest.param(
        _csv("id,question,notes", *_formula_rows()),
        loads(*FORMULAS),
        id="formulas-in-cells",
    ),
    pytest.param(_csv("question", *(_quoted(cell) for cell in HTML)), loads(*HTML), id="html-and-script-tags"),
    pytest.param(_csv("question", *TWO_QUESTIONS, end="\r\n"), loads(*TWO_QUESTIONS), id="crlf"),
    pytest.param(_csv("question", *TWO_QUESTIONS, end="\r"), loads(*TWO_QUESTIONS), id="lone-cr"),
    pytest.param(b"question\r\nA?\nB?\rC?\r\n", loads("A?", "B?", "C?"), id="mixed-line-endings"),
    pytest.param(
        codecs.BOM_UTF8 + _csv("ID,QuEsTiOn,Expected References,CATEGORY", "q1,What is grace?,Ephesians 2:8-9,Grace"),
        loads("What is grace?"),
        id="bom-and-mixed-case-headers",
    ),
    pytest.param(
        random.Random(RANDOM_SEED).randbytes(RANDOM_BYTES), refused("row 1, column A", NOT_UTF8), id="random-bytes"
    ),
    pytest.param(PNG_HEADER, refused("row 1, column A", NOT_UTF8, "byte 0x89"), id="png"),
    pytest.param(b"\x1f\x8b\x08\x00" + bytes(64), refused("row 1, column A", NOT_UTF8, "byte 0x8B"), id="gzip"),
    pytest.param(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", refused(NO_QUESTION_COLUMN), id="pdf"),
    pytest.param(XLSX_HEADER, refused(EXCEL, "Save As > CSV UTF-8"), id="xlsx-zip-magic"),
    pytest.param(XLS_HEADER, refused(EXCEL), id="legacy-xls"),
    pytest.param(b'[{"question": "What is grace?"}]', refused("row 1:", NO_QUESTION_COLUMN), id="json"),
    pytest.param(
        _csv("id\tquestion", "q1\tWhat is grace?"), refused("row 1:", NO_QUESTION_COLUMN, "'id_question'", "separated by tabs"), id="tabs"
    ),
    pytest.param(
        _csv("id;question", "q1;What is grace?"),
        refused("row 1:", NO_QUESTION_COLUMN, "'id;question'"),
        id="semicolons",
    ),
    pytest.param(_csv(",question, ,", "1,What is grace?,x,y"), loads("What is grace?"), id="empty-column-names"),
    pytest.param(_many_columns(MANY_COLUMNS), loads("What?", extra_columns=MANY_COLUMNS), id="10000-columns"),
    pytest.param(
        _csv("question", "What is grace?, really"),
        refused("row 2, column B", "2 cells but the header has 1"),
        id="more-cells-than-header",
    ),
    pytest.param(_csv("id,question,notes", "q1,What is grace?"), loads("What is grace?"), id="fewer-cells-than-header"),
    pytest.param(_csv("", "", "question", "What is grace?"), loads("What is grace?"), id="blank-lines-before-header"),
    pytest.param(
        _csv("question," + "x" * (MAX_CELL_CHARS + 1), "What is grace?,"),
        refused("row 1, column B", f"the limit is {MAX_CELL_CHARS:,}"),
        id="header-name-too-long",
    ),
]


def _load(source: bytes | Path, name: str | None = None) -> QuestionSet | QuestionSetError:
    try:
        return load_question_set(source, name=name)
    except QuestionSetError as error:
        return error


@pytest.mark.parametrize(("data", "outcome"), CORPUS)
def test_bad_csv_is_refused_by_name_or_loaded_cleanly(tmp_path: Path, data: bytes, outcome: Refused | Loads) -> None:
    path = tmp_path / FILE_NAME
    path.write_bytes(data)
    uploaded, from_disk = _load(data, name=FILE_NAME), _load(path)

    if isinstance(outcome, Refused):
        assert isinstance(uploaded, QuestionSetError), f"loaded {len(uploaded)} rows; expected a refusal"
        message = str(uploaded)
        assert message.startswith(FILE_NAME) and uploaded.file_name == FILE_NAME
        assert [fragment for fragment in outcome.fragments if fragment not in message] == [], message
        assert isinstance(from_disk, QuestionSetError) and str(from_disk) == message
    else:
        assert isinstance(uploaded, QuestionSet), f"refused: {uploaded}"
        assert tuple(row.question for row in uploaded.rows) == outcome.questions
        assert len(uploaded.extra_columns) == outcome.extra_columns
        assert from_disk == uploaded


def test_formula_cells_are_neutralised_in_the_results_csv_and_numbers_stay_numbers(tmp_path: Path) -> None:
    question_set = load_question_set(_csv("id,question,notes", *_formula_rows(), "n,-2,-2"), name=FILE_NAME)
    frame = results_frame(score_row(row, row.question) for row in question_set.rows)
    frame["latency_ms"] = -2.0
    path = write_results_csv(frame, tmp_path / "results.csv")

    header, *records = csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"), newline=""))
    written = [dict(zip(header, record, strict=True)) for record in records]
    for record, formula in zip(written[: len(FORMULAS)], FORMULAS, strict=True):
        assert (record["question"], record["notes"], record["answer"]) == ("'" + formula,) * 3
    assert (written[-1]["question"], written[-1]["notes"], written[-1]["answer"], written[-1]["latency_ms"]) == (
        "-2", "-2", "-2", "-2.0",
    )
    risky = [cell for record in written for cell in record.values() if cell.startswith(FORMULA_TRIGGERS)]
    assert all(PLAIN_NUMBER.fullmatch(cell) for cell in risky), risky
    pd.testing.assert_frame_equal(load_results(path), frame)


# --- generated inputs ---------------------------------------------------------------------

TRICKY_PIECES = (
    '"', '""', ",", "\n", "\r", "\r\n", "\x00", "\t", ";", " ", "\ufeff", "\u2028", "\x85",
    "question", "Question", "=1+1", "-2", "@SUM(1)", "John 3:16", "Hezekiah 3:4", "Psalm 151", "Jude 1:0",
)
COLUMN_NAMES = ("question", "QUESTION", " Question ", "id", "expected_references", "Expected References", "context",
                "category", "notes", "answer", "", " ")
FILE_PREFIXES = (
    b"", codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, b"PK\x03\x04", b"question\n", b"question,notes\r\n"
)
LINE_ENDS = ("\n", "\r\n", "\r")

any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
cell_text = st.lists(st.one_of(any_text, st.sampled_from(TRICKY_PIECES)), max_size=4).map("".join)
header_row = st.lists(st.one_of(st.sampled_from(COLUMN_NAMES), cell_text), max_size=6)
csv_rows = st.lists(st.lists(cell_text, max_size=7), max_size=8)
arbitrary_bytes = st.tuples(st.sampled_from(FILE_PREFIXES), st.binary(max_size=2048)).map(b"".join)


@st.composite
def text_built_csvs(draw: st.DrawFn) -> bytes:
    """A header and rows of arbitrary cells, written by csv.writer or joined by bare commas."""
    rows = [draw(header_row), *draw(csv_rows)]
    line_end = draw(st.sampled_from(LINE_ENDS))
    if draw(st.booleans()):
        buffer = io.StringIO(newline="")
        csv.writer(buffer, lineterminator=line_end).writerows(rows)
        text = buffer.getvalue()
    else:
        text = "".join(",".join(row) + line_end for row in rows)
    return (codecs.BOM_UTF8 if draw(st.booleans()) else b"") + text.encode("utf-8")


def _assert_loaded_or_refused_by_name(data: bytes) -> None:
    try:
        question_set = load_question_set(data, name=FUZZ_NAME)
    except QuestionSetError as error:
        assert str(error).startswith(FUZZ_NAME), str(error)
        assert error.problems
        return
    assert 1 <= len(question_set) <= MAX_ROWS
    for row in question_set.rows:
        assert isinstance(row.question, str) and row.question and row.question == row.question.strip()


@FUZZ_SETTINGS
@given(arbitrary_bytes)
def test_arbitrary_bytes_are_loaded_or_refused_by_name(data: bytes) -> None:
    _assert_loaded_or_refused_by_name(data)


@FUZZ_SETTINGS
@given(text_built_csvs())
def test_arbitrary_csv_text_is_loaded_or_refused_by_name(data: bytes) -> None:
    _assert_loaded_or_refused_by_name(data)


readable_cell = cell_text.filter(lambda cell: "\x00" not in cell)
question_cell = readable_cell.filter(lambda cell: not is_blank(cell))


@FUZZ_SETTINGS
@given(st.lists(st.tuples(question_cell, readable_cell), min_size=1, max_size=8), st.sampled_from(LINE_ENDS))
def test_well_quoted_csvs_load_exactly_what_was_written(rows: list[tuple[str, str]], line_end: str) -> None:
    buffer = io.StringIO(newline="")
    quoting = csv.QUOTE_MINIMAL if line_end == "\r\n" else csv.QUOTE_ALL
    csv.writer(buffer, lineterminator=line_end, quoting=quoting).writerows([("Question", "Notes"), *rows])

    question_set = load_question_set(buffer.getvalue().encode("utf-8"), name=FUZZ_NAME)

    assert [(row.question, row.notes) for row in question_set.rows] == [(q.strip(), n.strip()) for q, n in rows]


formula_like_text = st.one_of(
    any_text,
    cell_text,
    st.tuples(st.sampled_from((*FORMULA_TRIGGERS, "'", "''")), any_text).map("".join),
    st.from_regex(PLAIN_NUMBER, fullmatch=True),
)


@FUZZ_SETTINGS
@given(formula_like_text)
def test_neutralised_cells_never_start_a_formula_and_restore_exactly(text: str) -> None:
    written = neutralize_formula(text)

    assert written in (text, "'" + text)
    assert restore_formula(written) == text
    if written.startswith(FORMULA_TRIGGERS):
        assert written == text and PLAIN_NUMBER.fullmatch(text), repr(text)
