"""Batch evaluation: question-set checks, scoring rows, the runner, results files, summary.

The bad-CSV table gives each broken file as bytes with the exact message a person gets:
the file, the row as a spreadsheet counts it (header = row 1), the column and what to do.
The runner tests answer rows that carry their own answers (no model), a real unreachable
endpoint for failures, and the real embedded model for cancel and resume in local mode.
"""

from __future__ import annotations

import codecs
import csv
import json
import logging
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import huggingface_hub.constants
import pandas as pd
import pytest

from core.config import Settings
from core.errors import (
    MAX_REPORTED_PROBLEMS,
    ConfigurationError,
    EndpointUnreachableError,
    EvaluationFailed,
    GenerationError,
    InvalidRequestError,
    OutputValidationError,
    QuestionSetError,
    ResultsFileError,
    column_letter,
)
from core.evaluation.question_sets import (
    INPUT_COLUMNS,
    MAX_CELL_CHARS,
    MAX_FILE_BYTES,
    MAX_ROWS,
    QuestionRow,
    load_question_set,
)
from core.evaluation.runner import Progress, run_evaluation
from core.evaluation.scored_rows import score_row
from core.evaluation.summary import format_summary, summarize
from core.evaluation.table import (
    RESULT_COLUMNS,
    compare_runs,
    load_results,
    neutralize_formula,
    restore_formula,
    results_frame,
    write_results_csv,
    write_results_json,
)
from core.generation.params import HARD_OUTPUT_TOKEN_LIMIT, GenerationParams
from core.generation.service import TextGenService
from core.generation.types import GenerationResult, ValidationReport
from core.retrieval import get_retriever
from core.scoring.citations import score_answer
from core.scoring.references import parse_reference_list
from core.scoring.repetition import repetition_stats

sys.path.insert(0, str(Path(__file__).parent))  # the tests folder is not a package
from fault_server import refused_port

EVAL_SETS = Path(__file__).resolve().parent.parent / "eval_sets"
HEADER = b"id,question,expected_references,context,category,notes\n"
SAVE_AS = "Save the file as 'CSV UTF-8' (in Excel: File > Save As > CSV UTF-8) and load it again."


def _rows(count: int) -> bytes:
    return b"".join(b"q-%d,Question %d?,,,,\n" % (i, i) for i in range(count))


BAD_CSVS = [
    pytest.param(b"", "set.csv: the file is empty. It needs a header row naming a 'question' column, then one question per row.", id="empty"),
    pytest.param(b"\r\n  \n", "set.csv: the file is empty. It needs a header row naming a 'question' column, then one question per row.", id="blank-lines"),
    pytest.param(HEADER, "set.csv: the file has a header row but no questions. Add one question per row below the header.", id="header-only"),
    pytest.param(
        b"id,prompt,Category\nq1,What is grace?,grace\n",
        "set.csv, row 1: there is no 'question' column; the columns found are 'id', 'prompt', 'category'. "
        "Row 1 must be the header, with a column named 'question'.",
        id="no-question-column",
    ),
    pytest.param(
        b"id,question,notes,Question \nq1,What is grace?,,Again?\n",
        "set.csv, row 1, column D (question): the column name 'Question' is already used by column B; rename or remove one of the two.",
        id="duplicated-column",
    ),
    pytest.param(
        HEADER + b"q1,What is grace?,,,,\nq2,What is faith?,,,,\nq1,Who wept?,,,,\n",
        "set.csv, row 4, column A (id): the id 'q1' is already used on row 2; each id must be unique.",
        id="duplicated-id",
    ),
    pytest.param(
        HEADER + b"q1,What is grace?,,,,\nq2,  ,John 3:16,,,\n",
        "set.csv, row 3, column B (question): the question is empty. Write a question or delete the row.",
        id="empty-question",
    ),
    pytest.param(
        HEADER + b"q1,Which verse?,John 3:99,,,\n",
        "set.csv, row 2, column C (expected_references): the expected reference 'John 3:99' in 'John 3:99' does not exist: "
        "verse 99 is past the end of John 3, which has 36 verses.",
        id="nonexistent-reference",
    ),
    pytest.param(
        HEADER + b"q1,Which book?,Romans 3:23; Hezekiah 3:4,,,\n",
        "set.csv, row 2, column C (expected_references): the expected reference 'Hezekiah 3:4' in 'Romans 3:23; Hezekiah 3:4' "
        "does not exist: there is no book called Hezekiah in the Bible.",
        id="unknown-book",
    ),
    pytest.param(
        HEADER + b"q1,What is grace?,Ephesians 2:8 and the rest,,,\n",
        "set.csv, row 2, column C (expected_references): could not read 'and the rest' in the expected references "
        "'Ephesians 2:8 and the rest' as a scripture reference; write references like 'John 3:16' separated by ';'.",
        id="unreadable-reference",
    ),
    pytest.param(
        HEADER + "q1,Was Jesus born in a caf\u00e9?,,,,\n".encode("latin-1"),
        f"set.csv, row 2, column B (question): the text is not UTF-8 (byte 0xE9 after 'Jesus born in a caf'). {SAVE_AS}",
        id="not-utf8",
    ),
    pytest.param(
        "question\nhi\n".encode("utf-16"),
        f"set.csv: the file is UTF-16 text, not UTF-8. {SAVE_AS}",
        id="utf16",
    ),
    pytest.param(
        b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 40,
        "set.csv: this is an Excel workbook, not a CSV file. In Excel use File > Save As > CSV UTF-8 and load that file.",
        id="xlsx",
    ),
    pytest.param(
        HEADER + b"q1,What is\x00 grace?,,,,\n",
        "set.csv, row 2, column B (question): the cell contains a NUL byte, which a CSV file never has; "
        "the file may be damaged or not a CSV file.",
        id="nul-byte",
    ),
    pytest.param(
        HEADER + b"q1,What is grace?,,,," + b"x" * (MAX_CELL_CHARS + 1) + b"\n",
        f"set.csv, row 2, column F (notes): the cell has {MAX_CELL_CHARS + 1:,} characters; the limit is {MAX_CELL_CHARS:,}. "
        "If it should be shorter, look for a double quote that is opened and never closed.",
        id="cell-too-long",
    ),
    pytest.param(
        HEADER + b"q1,What is grace, really?,,,,\n",
        "set.csv, row 2, column G: this row has 7 cells but the header has 6 columns. "
        "A cell that contains a comma must be wrapped in double quotes.",
        id="unquoted-comma",
    ),
    pytest.param(
        HEADER + b'q1,"What is grace?,,,,\nq2,What is faith?,,,,\n',
        "set.csv, row 2: this row could not be read as CSV (unexpected end of data). Check its double quotes: "
        'a quote that opens a cell must close it, and a quote inside a quoted cell is written twice ("").',
        id="unclosed-quote",
    ),
    pytest.param(
        HEADER + _rows(MAX_ROWS + 1),
        f"set.csv: the file has {MAX_ROWS + 1:,} questions; the limit is {MAX_ROWS:,}. Split it into smaller sets.",
        id="too-many-rows",
    ),
    pytest.param(
        HEADER + b"q1,What is grace?,,,," + b"x" * MAX_FILE_BYTES + b"\n",
        "set.csv: the file is 5.0 MB, over the 5 MB limit. Split it into smaller sets.",
        id="file-too-large",
    ),
    pytest.param(
        # A multi-line cell is one spreadsheet row: the problems below are on rows 3 and 4.
        HEADER + b'q1,"What is grace?\nAnd mercy?",,,,\nq1,,,,,\nq3,Where?,Genesis 51:1,,,\n',
        "set.csv has 3 problems; fix them and load the file again:\n"
        "- row 3, column A (id): the id 'q1' is already used on row 2; each id must be unique.\n"
        "- row 3, column B (question): the question is empty. Write a question or delete the row.\n"
        "- row 4, column C (expected_references): the expected reference 'Genesis 51:1' in 'Genesis 51:1' does not exist: "
        "chapter 51 is past the end of Genesis, which has 50 chapters.",
        id="several-problems-at-once",
    ),
]


@pytest.mark.parametrize(("content", "message"), BAD_CSVS)
def test_bad_question_sets_are_refused_with_a_plain_message(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "set.csv"
    path.write_bytes(content)

    with pytest.raises(QuestionSetError) as caught:
        load_question_set(path)

    assert str(caught.value) == message
    assert isinstance(caught.value, ValueError)
    assert caught.value.file_name == "set.csv"


def test_the_file_size_is_checked_before_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:
        handle.truncate(MAX_FILE_BYTES * 3)  # sparse: no 15 MB written, and none read

    with pytest.raises(QuestionSetError, match=r"^huge.csv: the file is 15.0 MB, over the 5 MB limit\. Split it into smaller sets\.$"):
        load_question_set(path)


def test_a_missing_file_and_a_folder_are_named(tmp_path: Path) -> None:
    with pytest.raises(QuestionSetError, match=r"^nowhere.csv: there is no such file"):
        load_question_set(tmp_path / "nowhere.csv")
    folder = tmp_path / "folder.csv"
    folder.mkdir()
    with pytest.raises(QuestionSetError, match=r"^folder.csv: this is a folder, not a CSV file\.$"):
        load_question_set(folder)


def test_problems_beyond_the_reported_number_are_counted() -> None:
    content = HEADER + b"".join(b"q%d,,,,,\n" % i for i in range(MAX_REPORTED_PROBLEMS + 5))

    with pytest.raises(QuestionSetError) as caught:
        load_question_set(content, name="upload.csv")

    lines = str(caught.value).splitlines()
    assert lines[0] == f"upload.csv has {MAX_REPORTED_PROBLEMS + 5} problems; fix them and load the file again:"
    assert lines[1] == "- row 2, column B (question): the question is empty. Write a question or delete the row."
    assert lines[-1] == "- and 5 more."
    assert len(lines) == MAX_REPORTED_PROBLEMS + 2
    assert len(caught.value.problems) == MAX_REPORTED_PROBLEMS + 5


def test_bytes_without_a_name_are_called_the_uploaded_file() -> None:
    with pytest.raises(QuestionSetError, match=r"^the uploaded file: the file is empty\."):
        load_question_set(b"")


def test_bom_mixed_case_headers_crlf_and_extra_columns_are_read(tmp_path: Path) -> None:
    content = (
        codecs.BOM_UTF8
        + b" ID ,QUESTION, Expected References ,Context,category,Reviewer\r\n"
        + b'g1,"  What is grace?  ","Eph 2:8-9; Rom 6:23",,grace,ann\r\n'
        + b"\r\n"  # a blank row: skipped, but it still counts as a row
        + "g2,\"Is it \u201cfree\u201d?\nReally?\",,\"Passage one.\n\nPassage two.\",,bob\r\n".encode()
    )
    path = tmp_path / "excel.csv"
    path.write_bytes(content)

    question_set = load_question_set(path)

    first, second = question_set.rows
    assert question_set.name == "excel.csv"
    assert question_set.extra_columns == ("reviewer",)
    assert (first.row_number, first.id, first.question, first.category) == (2, "g1", "What is grace?", "grace")
    assert [c.normalized for c in first.expected_references] == ["Ephesians 2:8-9", "Romans 6:23"]
    assert first.expected_text == "Eph 2:8-9; Rom 6:23"
    assert first.extra == (("reviewer", "ann"),)
    assert first.answer is None
    assert (second.row_number, second.question) == (4, "Is it \u201cfree\u201d?\nReally?")
    assert second.context_passages == ["Passage one.", "Passage two."]


def test_an_answer_column_gives_answers_and_empty_cells_are_generated() -> None:
    question_set = load_question_set(
        b"question,Answer\nWhat is grace?,Grace is God's favour (Ephesians 2:8).\nWhat is faith?,\n", name="a.csv"
    )

    assert [row.answer for row in question_set.rows] == ["Grace is God's favour (Ephesians 2:8).", None]
    assert [row.key for row in question_set.rows] == ["What is grace?", "What is faith?"]


def test_the_shipped_sets_load() -> None:
    sizes = {path.name: len(load_question_set(path)) for path in sorted(EVAL_SETS.glob("*.csv"))}

    assert sizes == {"adversarial.csv": 27, "bible_knowledge.csv": 30, "core_doctrine.csv": 28, "pastoral_care.csv": 26}


@pytest.mark.parametrize(("index", "letter"), [(0, "A"), (25, "Z"), (26, "AA"), (27, "AB"), (701, "ZZ"), (702, "AAA")])
def test_column_letters_count_like_a_spreadsheet(index: int, letter: str) -> None:
    assert column_letter(index) == letter


# --- scoring rows -------------------------------------------------------------------------

GRACE = QuestionRow(
    row_number=2,
    question="Are we saved by grace or by works?",
    id="grace-1",
    expected_references=tuple(parse_reference_list("Ephesians 2:8-9; Romans 6:23")),
    expected_text="Ephesians 2:8-9; Romans 6:23",
    category="grace",
)
GRACE_ANSWER = (
    "We are saved by grace through faith, not by works (Ephesians 2:8-9). "
    "The gift of God is eternal life (Romans 6:23). Hezekiah 3:4 says the same."
)


def _result(text: str, *, output_tokens: int, finish_reason: str = "stop") -> GenerationResult:
    """A finished generation as the service returns it."""
    return GenerationResult(
        text=text,
        prompt_tokens=50,
        output_tokens=output_tokens,
        finish_reason=finish_reason,
        duration_ms=1234.5,
        ttft_ms=100.0,
        backend="local",
        model="SmolLM2-135M-Instruct",
        params=GenerationParams(),
        validation=ValidationReport(
            too_short=False, repetitive=False, hit_token_limit=finish_reason == "length", repetition=repetition_stats(text)
        ),
    )


def test_a_given_answer_is_scored_without_generation_figures() -> None:
    scored = score_row(GRACE, GRACE_ANSWER)

    assert (scored.answer, scored.answer_source, scored.error) == (GRACE_ANSWER, "given", None)
    assert scored.score == score_answer(GRACE_ANSWER, expected=GRACE.expected_references, context="")
    assert (scored.output_tokens, scored.within_token_limit, scored.latency_ms, scored.finish_reason) == (None, None, None, None)
    record = results_frame([scored]).iloc[0]
    assert record["valid_citations"] == "Ephesians 2:8-9; Romans 6:23"
    assert record["nonexistent_citations"] == "Hezekiah 3:4"
    assert record["nonexistent_count"] == 1
    assert record["citation_recall"] == 1.0
    assert record["answer_source"] == "given"
    assert pd.isna(record["output_tokens"]) and pd.isna(record["within_token_limit"]) and pd.isna(record["latency_ms"])


@pytest.mark.parametrize(("tokens", "within"), [(HARD_OUTPUT_TOKEN_LIMIT, True), (HARD_OUTPUT_TOKEN_LIMIT + 1, False)])
def test_a_generated_answer_carries_its_figures(tokens: int, within: bool) -> None:
    scored = score_row(GRACE, _result(GRACE_ANSWER, output_tokens=tokens, finish_reason="length"))

    assert scored.answer_source == "generated"
    assert (scored.output_tokens, scored.within_token_limit, scored.latency_ms, scored.finish_reason) == (tokens, within, 1234.5, "length")
    assert scored.score is not None and scored.score.valid_citations


def test_a_failed_generation_records_its_message_and_no_scores() -> None:
    scored = score_row(GRACE, EndpointUnreachableError("Could not reach the endpoint."))

    assert (scored.answer, scored.score, scored.error) == ("", None, "Could not reach the endpoint.")
    record = results_frame([scored]).iloc[0]
    assert record["error"] == "Could not reach the endpoint."
    assert record["valid_citations"] == "" and pd.isna(record["citation_f1"]) and pd.isna(record["degenerate"])


def test_an_answer_refused_by_strict_validation_is_scored_and_keeps_the_error() -> None:
    result = _result("Grace grace grace.", output_tokens=4)
    scored = score_row(GRACE, OutputValidationError("The answer failed validation (too_short).", result=result))

    assert scored.answer == "Grace grace grace."
    assert scored.score is not None
    assert scored.error == "The answer failed validation (too_short)."


# --- the runner ---------------------------------------------------------------------------

GIVEN_SET = (
    b"id,question,expected_references,answer\n"
    b'g1,Are we saved by grace?,Ephesians 2:8-9,"Yes: by grace through faith (Ephesians 2:8-9)."\n'
    b"g2,Who wept?,John 11:35,Jesus wept (John 11:35).\n"
    b"g3,What is Hezekiah 3:4?,,There is no book of Hezekiah; Hezekiah 3:4 does not exist.\n"
    b"g4,What is love?,1 Corinthians 13:4-7,Love is patient and kind (1 Corinthians 13:4).\n"
    b"g5,What is faith?,Hebrews 11:1,Faith is the substance of things hoped for (Hebrews 11:1).\n"
)


@pytest.fixture
def offline_settings(tmp_path: Path) -> Settings:
    """Local mode; tests using it answer from the set only, so no model is loaded."""
    return Settings(use_api=False, cache_dir=tmp_path / "cache")


def test_rows_with_answers_are_scored_without_generating(offline_settings: Settings, tmp_path: Path) -> None:
    service = TextGenService(offline_settings)
    question_set = load_question_set(GIVEN_SET, name="given.csv")
    reports: list[Progress] = []

    run = run_evaluation(question_set, service=service, on_progress=reports.append, checkpoint=tmp_path / "ck.csv")

    assert run.status == "finished"
    assert [row.key for row in run.rows] == ["g1", "g2", "g3", "g4", "g5"]
    assert all(row.answer_source == "given" for row in run.rows)
    assert not service.is_loaded()
    assert [(p.done, p.total, p.errors) for p in reports] == [(i, 5, 0) for i in range(1, 6)]
    assert reports[-1].eta_s == 0.0 and reports[-1].fraction == 1.0
    frame = results_frame(run)
    assert list(frame.columns) == [*INPUT_COLUMNS, *RESULT_COLUMNS]
    pd.testing.assert_frame_equal(load_results(tmp_path / "ck.csv"), frame)


def test_limit_takes_the_first_rows(offline_settings: Settings) -> None:
    run = run_evaluation(load_question_set(GIVEN_SET, name="given.csv"), service=TextGenService(offline_settings), limit=2)

    assert (run.total, [row.key for row in run.rows]) == (2, ["g1", "g2"])


def test_cancel_stops_new_work_and_keeps_finished_rows(offline_settings: Settings) -> None:
    cancel = threading.Event()

    def stop_after_two(progress: Progress) -> None:
        if progress.done == 2:
            cancel.set()

    run = run_evaluation(
        load_question_set(GIVEN_SET, name="given.csv"), service=TextGenService(offline_settings), on_progress=stop_after_two, cancel=cancel
    )

    assert run.status == "cancelled"
    assert [row.key for row in run.rows] == ["g1", "g2"]
    assert len(results_frame(run)) == 2


def test_a_crash_keeps_the_finished_rows_in_the_run_and_the_checkpoint(offline_settings: Settings, tmp_path: Path) -> None:
    def crash_on_third(progress: Progress) -> None:
        if progress.done == 3:
            raise OSError("disk full")

    with pytest.raises(EvaluationFailed) as caught:
        run_evaluation(
            load_question_set(GIVEN_SET, name="given.csv"),
            service=TextGenService(offline_settings),
            on_progress=crash_on_third,
            checkpoint=tmp_path / "ck.csv",
        )

    run = caught.value.run
    assert str(caught.value) == "The evaluation stopped after 3 of 5 rows: OSError: disk full"
    assert (run.status, run.error, len(run.rows)) == ("failed", "OSError: disk full", 3)
    assert list(load_results(tmp_path / "ck.csv")["id"]) == ["g1", "g2", "g3"]


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"params": {"temperature": 5.0}}, InvalidRequestError, "temperature=5.0 is out of range. Allowed: from 0 to 2."),
        ({"params": {"max_new_tokens": 0}}, InvalidRequestError, "max_new_tokens=0 is out of range. Allowed: from 1 to 400."),
        ({"concurrency": 0}, ValueError, "concurrency must be a whole number of at least 1, not 0."),
        ({"batch_size": 0}, ValueError, "batch_size must be a whole number of at least 1, not 0."),
        ({"limit": -1}, ValueError, "limit must be a whole number of at least 1, not -1."),
        ({"ground": -1}, ValueError, "ground (passages per question) must be a whole number from 0 (off) to 20, not -1."),
        ({"ground": 21}, ValueError, "ground (passages per question) must be a whole number from 0 (off) to 20, not 21."),
        ({"ground": True}, ValueError, "ground (passages per question) must be a whole number from 0 (off) to 20, not True."),
    ],
)
def test_bad_settings_are_refused_before_any_work(offline_settings: Settings, tmp_path: Path, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error) as caught:
        run_evaluation(load_question_set(GIVEN_SET, name="given.csv"), service=TextGenService(offline_settings), checkpoint=tmp_path / "ck.csv", **kwargs)

    assert str(caught.value) == message
    assert not (tmp_path / "ck.csv").exists()


def test_api_mode_without_an_endpoint_is_refused(offline_settings: Settings) -> None:
    question_set = load_question_set(b"question\nWhat is grace?\n", name="q.csv")

    with pytest.raises(ConfigurationError, match="API mode is not available here"):
        run_evaluation(question_set, service=TextGenService(offline_settings), mode="api")


@pytest.fixture
def unreachable_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[TextGenService]:
    """API mode against a port on 127.0.0.1 that refuses every connection, tried once."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # conftest sets it; we only reach 127.0.0.1
    with refused_port() as port:
        yield TextGenService(Settings(use_api=True, base_url=f"http://127.0.0.1:{port}/v1", retry_attempts=1, timeout_s=5))


def test_failing_rows_record_their_error_and_the_run_goes_on(unreachable_service: TextGenService) -> None:
    question_set = load_question_set(
        b"id,question,answer\nf1,What is grace?,\ng1,Who wept?,Jesus wept (John 11:35).\nf2,What is faith?,\nf3,What is hope?,\n",
        name="mixed.csv",
    )
    with pytest.raises(GenerationError) as direct:
        unreachable_service.chat("What is grace?")

    run = run_evaluation(question_set, service=unreachable_service, concurrency=2)

    assert run.status == "finished"
    frame = results_frame(run)
    assert list(frame["id"]) == ["f1", "g1", "f2", "f3"]
    assert list(frame["error"]) == [direct.value.message, "", direct.value.message, direct.value.message]
    assert "Could not reach the endpoint" in direct.value.message
    assert list(frame["answer_source"]) == ["generated", "given", "generated", "generated"]
    assert frame.loc[1, "valid_citations"] == "John 11:35"
    summary = summarize(frame)
    assert (summary.rows, summary.answered, summary.errors, summary.error_rate) == (4, 1, 3, 0.75)


LOCAL_SET = b"id,question\nl1,Where was Jesus born?\nl2,Who wrote most of the Psalms?\nl3,What is grace?\n"
LOCAL_PARAMS = {"max_new_tokens": 8, "temperature": 0.0}


def test_local_mode_cancel_then_resume_continues_where_it_stopped(fresh_local_service: TextGenService, tmp_path: Path) -> None:
    question_set = load_question_set(LOCAL_SET, name="local.csv")
    checkpoint = tmp_path / "results.csv"
    cancel = threading.Event()

    first = run_evaluation(
        question_set, service=fresh_local_service, params=LOCAL_PARAMS, batch_size=1,
        on_progress=lambda progress: cancel.set(), cancel=cancel, checkpoint=checkpoint,
    )

    assert (first.status, [row.key for row in first.rows]) == ("cancelled", ["l1"])
    saved = load_results(checkpoint)
    assert list(saved["id"]) == ["l1"]
    assert saved.loc[0, "answer_source"] == "generated" and 1 <= saved.loc[0, "output_tokens"] <= 8

    reports: list[int] = []
    second = run_evaluation(
        question_set, service=fresh_local_service, params=LOCAL_PARAMS, batch_size=8,
        on_progress=lambda progress: reports.append(len(progress.finished)), checkpoint=checkpoint, resume_from=checkpoint,
    )

    assert (second.status, second.resumed) == ("finished", 1)
    assert reports == [1, 2]  # the resumed row, then l2 and l3 in one batch
    frame = results_frame(second)
    assert list(frame["id"]) == ["l1", "l2", "l3"]
    assert frame.loc[0, "answer"] == saved.loc[0, "answer"]
    assert frame.loc[0, "output_tokens"] == saved.loc[0, "output_tokens"]
    assert frame["within_token_limit"].all() and (frame["error"] == "").all()
    pd.testing.assert_frame_equal(load_results(checkpoint).sort_values("id", ignore_index=True), frame)


# --- results files ------------------------------------------------------------------------

FORMULAS = [
    ('=HYPERLINK("http://evil.example","Click")', '\'=HYPERLINK("http://evil.example","Click")'),
    ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
    ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
    ("-2+3", "'-2+3"),
    ("\t=1+1", "'\t=1+1"),
    ("\r=1+1", "'\r=1+1"),
    ("'=already quoted", "''=already quoted"),
    ("-3", "-3"),
    ("+1.5", "+1.5"),
    ("'just a quote", "'just a quote"),
    ("Grace = favour", "Grace = favour"),
    ("", ""),
]


@pytest.mark.parametrize(("text", "written"), FORMULAS)
def test_formulas_are_neutralised_and_restored_exactly(text: str, written: str) -> None:
    assert neutralize_formula(text) == written
    assert restore_formula(written) == text


def test_results_csv_neutralises_formulas_keeps_numbers_and_round_trips(offline_settings: Settings, tmp_path: Path) -> None:
    content = (
        "id,question,notes,answer\n"
        '"=HYPERLINK(""http://evil.example"",""Click"")",What is grace?,+cmd,"@SUM(A1:A9)"\n'
        "n2,-2+3,café ✝,Jesus wept (John 11:35).\n"
    ).encode()
    run = run_evaluation(load_question_set(content, name="formulas.csv"), service=TextGenService(offline_settings))
    frame = results_frame(run)
    frame.loc[1, "latency_ms"] = -5.5  # a negative number in a numeric column stays a number
    path = write_results_csv(frame, tmp_path / "results.csv")

    raw = path.read_bytes()
    assert raw.startswith(codecs.BOM_UTF8)
    header, first, second = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    cells = [dict(zip(header, first)), dict(zip(header, second))]
    assert cells[0]["id"] == '\'=HYPERLINK("http://evil.example","Click")'
    assert (cells[0]["notes"], cells[0]["answer"]) == ("'+cmd", "'@SUM(A1:A9)")
    assert (cells[1]["question"], cells[1]["notes"], cells[1]["latency_ms"]) == ("'-2+3", "café ✝", "-5.5")
    assert all(not value.startswith(("=", "+", "-", "@")) for row in cells for key, value in row.items() if key != "latency_ms")
    pd.testing.assert_frame_equal(load_results(path), frame)


def test_results_json_round_trips_with_run_and_summary(offline_settings: Settings, tmp_path: Path) -> None:
    run = run_evaluation(load_question_set(GIVEN_SET, name="given.csv"), service=TextGenService(offline_settings), params={"seed": 7})
    frame = results_frame(run)
    path = write_results_json(frame, tmp_path / "results.json", summary=summarize(frame), run=run)

    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["run"]["question_set"] == "given.csv" and payload["run"]["params"] == {"seed": 7}
    assert payload["summary"]["rows"] == 5 and payload["summary"]["manual_citation_accuracy"] is None
    assert payload["rows"][0]["output_tokens"] is None and payload["rows"][0]["degenerate"] is False
    pd.testing.assert_frame_equal(load_results(path), frame)


def test_a_file_that_is_not_a_results_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "set.csv"
    path.write_bytes(HEADER + b"q1,What is grace?,,,,\n")

    with pytest.raises(ResultsFileError, match=r"^set.csv is not a results file of this app: it lacks the column\(s\) answer, answer_source, "):
        load_results(path)


def _frame(offline_settings: Settings, rows: bytes) -> pd.DataFrame:
    question_set = load_question_set(b"id,question,expected_references,answer\n" + rows, name="run.csv")
    return results_frame(run_evaluation(question_set, service=TextGenService(offline_settings)))


def test_compare_runs_shows_per_question_changes(offline_settings: Settings) -> None:
    loop = "grace is a gift " * 20
    before = _frame(
        offline_settings,
        b"a,What is grace?,Ephesians 2:8-9,Grace is a gift (Romans 6:23).\n"
        b"b,Who wept?,John 11:35,Jesus wept (John 11:35).\n"
        + f"c,What is love?,1 John 4:8,God is love (1 John 4:8; Hezekiah 3:4). {loop}\n".encode()
        + b"d,Dropped?,,Yes.\n",
    )
    after = _frame(
        offline_settings,
        b"a,What is grace?,Ephesians 2:8-9,Saved by grace (Ephesians 2:8-9).\n"
        b"b,Who wept?,John 11:35,Jesus wept (Luke 19:41; John 3:99).\n"
        b"c,What is love?,1 John 4:8,God is love (1 John 4:8).\n"
        b"e,New?,,Yes.\n",
    )

    table = compare_runs(before, after).set_index("id")

    assert list(table["present"]) == ["both", "both", "both", "a only", "b only"]
    assert (table.loc["a", "citation_f1_a"], table.loc["a", "citation_f1_b"], table.loc["a", "citation_f1_change"]) == (0.0, 1.0, "better")
    assert table.loc["b", "citation_f1_change"] == "worse" and table.loc["b", "citation_f1_delta"] < 0
    assert (table.loc["b", "nonexistent_count_delta"], table.loc["b", "nonexistent_count_change"]) == (1, "worse")
    assert (table.loc["c", "nonexistent_count_delta"], table.loc["c", "nonexistent_count_change"]) == (-1, "better")
    assert (table.loc["c", "degenerate_a"], table.loc["c", "degenerate_b"], table.loc["c", "degenerate_change"]) == (True, False, "better")
    assert table.loc["a", "degenerate_change"] == "same"
    assert table.loc["d", "degenerate_change"] == table.loc["e", "citation_f1_change"] == "n/a"


def test_compare_runs_joins_on_the_question_when_ids_are_missing(offline_settings: Settings) -> None:
    a = _frame(offline_settings, b",Who wept?,John 11:35,Jesus wept (John 11:35).\n")
    b = _frame(offline_settings, b",Who wept?,John 11:35,Jesus wept.\n")

    table = compare_runs(a, b)

    assert (list(table["question"]), list(table["present"])) == (["Who wept?"], ["both"])
    assert table.loc[0, "citation_f1_change"] in ("worse", "n/a")


# --- summary ------------------------------------------------------------------------------


def test_summary_figures_follow_their_definitions(offline_settings: Settings) -> None:
    question_set = load_question_set(GIVEN_SET, name="given.csv")
    run = run_evaluation(question_set, service=TextGenService(offline_settings))
    frame = results_frame(run)

    summary = summarize(frame)

    scores = [row.score for row in run.rows]
    units = [len(score.valid_citations) + len(score.nonexistent_citations) for score in scores]
    right = sum((score.supported_rate or 0.0) * count for score, count in zip(scores, units))
    assert (summary.rows, summary.answered, summary.given, summary.generated, summary.errors) == (5, 5, 5, 0, 0)
    assert summary.citations == sum(units) == 5
    assert summary.nonexistent_citations == sum(len(s.nonexistent_citations) for s in scores) == 1
    assert summary.nonexistent_rate == pytest.approx(1 / 5, abs=1e-4)
    assert summary.automatic_citation_accuracy == pytest.approx(right / sum(units), abs=1e-4) == 4 / 5
    assert summary.mean_citation_recall == pytest.approx(frame["citation_recall"].mean(), abs=1e-4)
    assert summary.manual_citation_accuracy is None
    assert (summary.latency_p50_ms, summary.token_limit_compliance) == (None, None)
    text = format_summary(summary, title="given.csv")
    assert text.splitlines()[0] == "given.csv"
    assert "Rows           5: 5 answered (0 generated, 5 given), 0 errors (0.0%)" in text
    assert "Manual review  not reviewed yet" in text


def test_summary_of_an_empty_table_has_no_figures() -> None:
    summary = summarize(results_frame([]))

    assert (summary.rows, summary.citations, summary.error_rate, summary.mean_citation_f1, summary.automatic_citation_accuracy) == (0, 0, None, None, None)
    assert "Rows           0" in format_summary(summary)


def test_every_results_column_is_documented() -> None:
    documented = (Path(__file__).resolve().parent.parent / "eval_sets" / "README.md").read_text(encoding="utf-8")
    assert [c for c in RESULT_COLUMNS if f"| `{c}` |" not in documented] == []


# --- grounding ----------------------------------------------------------------------------


@pytest.fixture
def grounding_settings(cache_dir: Path) -> Settings:
    """Local mode over the session's cache, where the retrieval index is built once."""
    return Settings(use_api=False, cache_dir=cache_dir)


def test_a_grounded_run_records_the_passages_and_whether_they_hit(grounding_settings: Settings, tmp_path: Path) -> None:
    question_set = load_question_set(GIVEN_SET, name="given.csv")
    retriever = get_retriever(grounding_settings.cache_dir)

    run = run_evaluation(question_set, service=TextGenService(grounding_settings), ground=3, checkpoint=tmp_path / "ck.csv")

    frame = results_frame(run)
    for row, (_, record) in zip(question_set.rows, frame.iterrows()):
        passages = retriever.search(row.question, 3)
        assert record["retrieved_references"] == "; ".join(p.reference for p in passages)
        expected_hit = None if not row.expected_references else any(
            set(p.verse_ids) & {v for c in row.expected_references for v in c.verse_ids} for p in passages
        )
        assert (None if pd.isna(record["retrieval_hit"]) else bool(record["retrieval_hit"])) == expected_hit, row.question
    assert "John 11:35-37" in frame.loc[1, "retrieved_references"] and frame.loc[1, "retrieval_hit"]  # "Who wept?"
    assert pd.isna(frame.loc[2, "retrieval_hit"])  # no expected references: nothing to hit
    summary = summarize(frame)
    hits = frame["retrieval_hit"].dropna().astype(bool)
    assert (summary.retrieval_rows, summary.retrieval_hit_rate) == (4, pytest.approx(hits.mean(), abs=1e-4))
    assert 0 < summary.retrieval_recall <= summary.retrieval_hit_rate
    assert "Retrieval      hit rate" in format_summary(summary) and "over 4 rows with expected references" in format_summary(summary)
    pd.testing.assert_frame_equal(load_results(tmp_path / "ck.csv"), frame)
    payload = json.loads(write_results_json(frame, tmp_path / "r.json", summary=summary, run=run).read_text(encoding="utf-8"))
    assert payload["run"]["ground"] == 3 and payload["summary"]["retrieval_rows"] == 4


def test_an_ungrounded_run_leaves_the_retrieval_columns_empty(offline_settings: Settings) -> None:
    frame = results_frame(run_evaluation(load_question_set(GIVEN_SET, name="given.csv"), service=TextGenService(offline_settings)))

    assert (frame["retrieved_references"] == "").all() and frame["retrieval_hit"].isna().all()
    summary = summarize(frame)
    assert (summary.retrieval_rows, summary.retrieval_hit_rate, summary.retrieval_recall) == (0, None, None)
    assert "Retrieval" not in format_summary(summary)


def test_a_results_file_from_before_grounding_still_loads(offline_settings: Settings, tmp_path: Path) -> None:
    frame = results_frame(run_evaluation(load_question_set(GIVEN_SET, name="given.csv"), service=TextGenService(offline_settings)))
    write_results_csv(frame.drop(columns=["retrieved_references", "retrieval_hit"]), tmp_path / "old.csv")

    pd.testing.assert_frame_equal(load_results(tmp_path / "old.csv"), frame)


@pytest.mark.slow
def test_retrieved_passages_reach_the_model_after_the_rows_context(
    local_service: TextGenService, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = TextGenService(replace(local_service.settings, log_prompts=True, cache_size=0), backends={"local": local_service.backend()})
    question_set = load_question_set(
        b"id,question,expected_references,context\n"
        b"a1,How can I stop being anxious about everything?,Philippians 4:6-7,Given passage.\n",
        name="anxious.csv",
    )
    with caplog.at_level(logging.INFO, logger="scribes.textgen"):
        run = run_evaluation(question_set, service=service, ground=2, params={"max_new_tokens": 8, "temperature": 0})

    references = results_frame(run).loc[0, "retrieved_references"].split("; ")
    prompts = [json.loads(r.getMessage())["prompt"] for r in caplog.records if r.name == "scribes.textgen"]
    system = prompts[-1][0]["content"]
    assert "[1] Given passage." in system
    assert [system.index(f"] {reference} — ") for reference in references] == sorted(system.index(f"] {r} — ") for r in references)
    assert system.index("[1] Given passage.") < system.index(f"[2] {references[0]} — ") < system.index(f"[3] {references[1]} — ")
