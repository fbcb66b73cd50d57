"""Batch evaluation: load a question set, answer and score every row, summarise, export.

The pieces, in the order a run uses them:

* :func:`load_question_set` reads and checks a CSV question set (see ``eval_sets/README.md``)
  and raises one :class:`QuestionSetError` that lists every problem it found, each with
  the file, the row (as a spreadsheet counts it: the header is row 1) and the column.
* :func:`score_row` scores one answer with :func:`core.scoring.score_answer` and joins
  the generation figures (tokens, latency, finish reason, error) to the row.
* :func:`run_evaluation` answers the rows through the generation service (concurrent
  requests in API mode, batches on the model in local mode), scores them as they finish,
  reports progress, honours a cancel event, and can save finished rows to a CSV as it
  goes so that a killed run can be resumed.
* :func:`results_frame`, :func:`write_results_csv`, :func:`write_results_json`,
  :func:`load_results`, :func:`compare_runs`: the results table and its files.
* :func:`summarize` and :func:`format_summary`: the figures of a whole run.

Scoring never calls generation; :func:`run_evaluation` composes the two. No Gradio here.

The CSV is read with the standard ``csv`` module rather than pandas: it gives each record
as the list of cells a spreadsheet shows, so row numbers stay right when a cell holds line
breaks, duplicated header names are seen (pandas renames them ``question.1``), and a row
with more cells than the header can be reported instead of silently shifted.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd

from core.config import HARD_OUTPUT_TOKEN_LIMIT
from core.errors import ConfigurationError, GenerationError, ModelLoadError, OutputValidationError
from core.generation.params import resolve_params
from core.generation.prompting import DEFAULT_SYSTEM_PROMPT  # the Chat tab's: a run measures what people see there
from core.generation.types import GenerationResult
from core.retrieval import MAX_PASSAGES, Passage, get_retriever
from core.retrieval.quality import first_hit, recall
from core.retrieval.ranking import BM25, EmbeddingReranker, find_passages
from core.scoring.citations import MIN_QUOTE_WORDS, MISQUOTE_SIMILARITY, AnswerScore, score_answer
from core.scoring.references import Citation, parse_reference_list
from core.scoring.repetition import DEGENERATE_REP_N, MIN_WORDS_TO_JUDGE, REP_N

if TYPE_CHECKING:
    from core.generation.service import TextGenService

# --- limits -------------------------------------------------------------------------------

#: Largest question-set file accepted: 5 MB is ~10,000 rows of typical questions with notes,
#: far more than a run can answer in a day on a CPU, and small enough to read into memory.
MAX_FILE_BYTES = 5 * 1024 * 1024

#: Most question rows in one set. 2,000 answers of 400 tokens is a long day of API calls;
#: bigger sets are better split so a failure or a change of settings costs less.
MAX_ROWS = 2000

#: Longest cell, in characters. 20,000 characters (~5,000 tokens) is already longer than
#: the model's whole context window; anything longer is almost always a quote that was
#: opened and never closed, which swallows the rest of the file into one cell.
MAX_CELL_CHARS = 20_000

#: How many problems a :class:`QuestionSetError` message lists; the rest are counted.
MAX_REPORTED_PROBLEMS = 20

#: A header without a 'question' column is quoted back this far, so a binary file or a
#: 500,000-column header gives a message a person can read, not megabytes of it.
MAX_SHOWN_COLUMNS = 12
MAX_SHOWN_NAME_CHARS = 40

#: Columns a question set may have (eval_sets/README.md). Others are kept as they are.
QUESTION_SET_COLUMNS = ("id", "question", "expected_references", "context", "category", "notes", "answer")

#: Input columns every results table has, in this order, whether or not the set had them,
#: so results from different sets and runs line up. ``answer`` is a result column.
INPUT_COLUMNS = ("id", "question", "expected_references", "context", "category", "notes")

#: The columns a results table adds to the input columns, with what each holds.
RESULT_COLUMNS: dict[str, str] = {
    "answer": "The answer that was scored: generated in this run, or given in the set's `answer` column.",
    "answer_source": "`generated` (answered in this run) or `given` (taken from the set's `answer` column, not generated).",
    "valid_citations": "The existing scripture references the answer cites, normalised, each once, in order of appearance, "
    "`; `-joined, e.g. `Ephesians 2:8-9; Romans 6:23`.",
    "nonexistent_citations": "References the answer cites that are not in the Bible (no such book, chapter or verse), "
    "as first written, each once, `; `-joined, e.g. `John 3:99; Hezekiah 3:4`.",
    "nonexistent_count": "How many distinct nonexistent references the answer cites.",
    "citation_precision": "Share of the distinct references cited (nonexistent ones included) that share a verse with an "
    "expected reference (ALCE, Gao et al. 2023). Empty when the row has no expected references or the answer cites nothing.",
    "citation_recall": "Share of the expected references that some citation shares a verse with. "
    "Empty when the row has no expected references.",
    "citation_f1": "2PR/(P+R) of citation precision and recall; 0 when the answer cites nothing. "
    "Empty when the row has no expected references.",
    "grounded_rate": "Share of the existing references cited that are inside the row's context (cited by it, or their "
    "text quoted in it). Empty when the row has no context or the answer cites no existing reference.",
    "misquotes": f"Quotations ({MIN_QUOTE_WORDS}+ words in quotation marks) attributed to a cited verse that match it in neither KJV nor "
    f"ASV (similarity below {MISQUOTE_SIMILARITY}), as `reference (similarity)`, `; `-joined, e.g. `John 3:16 (0.62)`.",
    "distinct_1": "Distinct words / all words (Li et al. 2016); low values mean a repetitive answer.",
    "distinct_2": "Distinct word pairs / all word pairs (Li et al. 2016).",
    "rep_n": f"Share of repeated {REP_N}-grams (rep-{REP_N}, Welleck et al. 2019); 0 for no repetition.",
    "longest_repeat": "Length in words of the longest word sequence that occurs at least twice.",
    "degenerate": f"True when the answer loops: rep-{REP_N} of {DEGENERATE_REP_N} or more over at least "
    f"{MIN_WORDS_TO_JUDGE} words.",
    "output_tokens": "Tokens generated for the answer. Empty for given answers.",
    "within_token_limit": f"True when the answer used at most {HARD_OUTPUT_TOKEN_LIMIT} output tokens. Empty for given answers.",
    "latency_ms": "Time to generate the answer, in milliseconds (rows answered in one local batch share the batch's "
    "time; 0 for an answer from the cache). Empty for given answers.",
    "finish_reason": "`stop` (the model finished) or `length` (cut at the token limit). Empty for given answers.",
    "error": "Why no answer was produced (the generation error's message); empty when the row was answered.",
    "retrieved_references": "The Scripture passages retrieval gave the model (`--ground K`), best first, in pythonbible's normal "
    "form, `; `-joined, e.g. `Philippians 4:5-7; 1 Peter 5:6-8`. Empty when the run was not grounded.",
    "retrieval_hit": "True when some retrieved passage shares a verse with an expected reference. Empty when the run was "
    "not grounded or the row has no expected references.",
}

#: Result columns that results files written before grounding existed lack; read back as empty.
_LATER_RESULT_COLUMNS = ("retrieved_references", "retrieval_hit")

_FLOAT_COLUMNS = frozenset(
    {"citation_precision", "citation_recall", "citation_f1", "grounded_rate", "distinct_1", "distinct_2", "rep_n", "latency_ms"}
)
_INT_COLUMNS = frozenset({"nonexistent_count", "longest_repeat", "output_tokens"})
_BOOL_COLUMNS = frozenset({"degenerate", "within_token_limit", "retrieval_hit"})
_TYPED_COLUMNS = _FLOAT_COLUMNS | _INT_COLUMNS | _BOOL_COLUMNS
#: Metrics are rounded so a results file reads well and survives a round trip unchanged.
_METRIC_DECIMALS = 4

AnswerSource = Literal["generated", "given"]
RunStatus = Literal["running", "finished", "cancelled", "failed"]


# --- question sets ------------------------------------------------------------------------


@dataclass(frozen=True)
class QuestionRow:
    """One question of a set, checked. ``row_number`` is the spreadsheet row (header = 1)."""

    row_number: int
    question: str
    id: str = ""
    expected_references: tuple[Citation, ...] = ()
    expected_text: str = ""  # the expected references as written in the file
    context: str = ""
    category: str = ""
    notes: str = ""
    answer: str | None = None  # a given answer, scored without generating
    extra: tuple[tuple[str, str], ...] = ()  # other columns of the file, in file order

    @property
    def key(self) -> str:
        """What identifies the row across runs: its id, or the question where it has none."""
        return self.id or self.question

    @property
    def context_passages(self) -> list[str]:
        """The context as the service's passages: blank lines separate passages."""
        return [p.strip() for p in re.split(r"\n[ \t]*\n", self.context) if p.strip()]


@dataclass(frozen=True)
class QuestionSet:
    name: str
    rows: tuple[QuestionRow, ...]
    extra_columns: tuple[str, ...] = ()  # columns beyond QUESTION_SET_COLUMNS, in file order

    def __len__(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class QuestionSetProblem:
    """One thing wrong with a question-set file. ``row``/``column`` are None for the whole file."""

    message: str
    row: int | None = None
    column: int | None = None  # 0-based position in the file
    column_name: str | None = None

    @property
    def location(self) -> str:
        parts = []
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.column is not None:
            parts.append(f"column {column_letter(self.column)}" + (f" ({self.column_name})" if self.column_name else ""))
        return ", ".join(parts)


class QuestionSetError(ValueError):
    """A question-set file that cannot be used; ``problems`` lists everything found wrong."""

    def __init__(self, file_name: str, problems: Sequence[QuestionSetProblem]):
        self.file_name = file_name
        self.problems = tuple(sorted(problems, key=lambda p: (p.row or 0, p.column or 0)))
        super().__init__(_describe_problems(file_name, self.problems))


class ResultsFileError(ValueError):
    """A results file that cannot be read back (missing columns, not a results file)."""


def _describe_problems(file_name: str, problems: Sequence[QuestionSetProblem]) -> str:
    def line(problem: QuestionSetProblem) -> str:
        return f"{problem.location}: {problem.message}" if problem.location else problem.message

    if len(problems) == 1:
        only = problems[0]
        return f"{file_name}, {line(only)}" if only.location else f"{file_name}: {only.message}"
    shown = problems[:MAX_REPORTED_PROBLEMS]
    lines = [f"{file_name} has {len(problems)} problems; fix them and load the file again:"]
    lines += [f"- {line(p)}" for p in shown]
    if len(problems) > len(shown):
        lines.append(f"- and {len(problems) - len(shown)} more.")
    return "\n".join(lines)


def column_letter(index: int) -> str:
    """The spreadsheet name of a 0-based column: 0 -> A, 25 -> Z, 26 -> AA."""
    letters = ""
    index += 1
    while index:
        index, remainder = divmod(index - 1, 26)
        letters = chr(ord("A") + remainder) + letters
    return letters


def normalize_column_name(name: str) -> str:
    """``" Expected References "`` -> ``expected_references``: trimmed, lower case, ``_`` for spaces and dashes."""
    return re.sub(r"[\s\-]+", "_", name.replace("\ufeff", "").strip().casefold())


_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0"  # legacy .xls
_SAVE_AS_UTF8 = "Save the file as 'CSV UTF-8' (in Excel: File > Save As > CSV UTF-8) and load it again."
_UNCLOSED_QUOTE_HINT = "If it should be shorter, look for a double quote that is opened and never closed."
_UNDECODABLE = re.compile("[\udc80-\udcff]")


def load_question_set(source: str | os.PathLike[str] | bytes, *, name: str | None = None) -> QuestionSet:
    """Read and check a question-set CSV (a path, or the file's bytes as uploaded).

    ``name`` is the file name to use in messages (default: the path's file name, or
    "the uploaded file" for bytes). Raises :class:`QuestionSetError` listing every
    problem found (up to :data:`MAX_REPORTED_PROBLEMS` shown), never a bare traceback.
    Header names are case-insensitive and trimmed; blank rows and columns with no header
    name are skipped; columns other than :data:`QUESTION_SET_COLUMNS` are kept as extras.
    """
    if isinstance(source, bytes | bytearray):
        file_name = name or "the uploaded file"
        data = bytes(source)
    else:
        path = Path(source)
        file_name = name or path.name
        data = _read_file(path, file_name)

    if len(data) > MAX_FILE_BYTES:
        raise QuestionSetError(file_name, [_too_large(len(data))])
    if data.startswith((_ZIP_MAGIC, _OLE_MAGIC)):
        raise QuestionSetError(file_name, [_file_problem(
            "this is an Excel workbook, not a CSV file. In Excel use File > Save As > CSV UTF-8 and load that file."
        )])
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise QuestionSetError(file_name, [_file_problem(f"the file is UTF-16 text, not UTF-8. {_SAVE_AS_UTF8}")])
    text = data.removeprefix(codecs.BOM_UTF8).decode("utf-8", errors="surrogateescape")
    if not text.strip():
        raise QuestionSetError(file_name, [_file_problem(
            "the file is empty. It needs a header row naming a 'question' column, then one question per row."
        )])
    return _parse_question_set(text, file_name)


def _read_file(path: Path, file_name: str) -> bytes:
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise QuestionSetError(file_name, [_file_problem("this is a folder, not a CSV file.")])
        if size > MAX_FILE_BYTES:  # refuse before reading a huge file into memory
            raise QuestionSetError(file_name, [_too_large(size)])
        return path.read_bytes()
    except FileNotFoundError:
        raise QuestionSetError(file_name, [_file_problem(f"there is no such file ({path}).")]) from None
    except OSError as error:
        raise QuestionSetError(file_name, [_file_problem(f"the file could not be read ({error.strerror or error}).")]) from error


def _file_problem(message: str) -> QuestionSetProblem:
    return QuestionSetProblem(message)


def _too_large(size: int) -> QuestionSetProblem:
    return _file_problem(
        f"the file is {size / 2**20:.1f} MB, over the {MAX_FILE_BYTES / 2**20:g} MB limit. Split it into smaller sets."
    )


def _parse_question_set(text: str, file_name: str) -> QuestionSet:
    problems: list[QuestionSetProblem] = []
    records = _read_records(text, problems)
    header_index = next((i for i, (_, cells) in enumerate(records) if any(c.strip() for c in cells)), None)
    if header_index is None:
        raise QuestionSetError(file_name, problems or [_file_problem("the file is empty.")])
    header_row, header = records[header_index]
    columns = _read_header(header_row, header, problems)
    if "question" not in columns:
        named = [repr(normalize_column_name(c)[:MAX_SHOWN_NAME_CHARS]) for c in header if c.strip()]
        found = ", ".join(named[:MAX_SHOWN_COLUMNS]) + (f" and {len(named) - MAX_SHOWN_COLUMNS:,} more" if len(named) > MAX_SHOWN_COLUMNS else "")
        hint = " The file seems to be separated by tabs; save it as CSV (comma-separated)." if "\t" in "".join(header) else ""
        problems.append(QuestionSetProblem(
            f"there is no 'question' column; the columns found are {found or 'none'}. "
            f"Row {header_row} must be the header, with a column named 'question'.{hint}",
            row=header_row,
        ))
        raise QuestionSetError(file_name, problems)

    rows: list[QuestionRow] = []
    seen_ids: dict[str, int] = {}
    data_rows = 0
    for row_number, cells in records[header_index + 1:]:
        if not any(cell.strip() for cell in cells):
            continue
        data_rows += 1
        row = _read_row(row_number, cells, header, columns, problems, seen_ids)
        if row is not None:
            rows.append(row)
    if data_rows == 0 and not problems:
        problems.append(_file_problem(
            "the file has a header row but no questions. Add one question per row below the header."
        ))
    if data_rows > MAX_ROWS:
        problems.append(_file_problem(
            f"the file has {data_rows:,} questions; the limit is {MAX_ROWS:,}. Split it into smaller sets."
        ))
    if problems:
        raise QuestionSetError(file_name, problems)
    extra = tuple(name for name in columns if name not in QUESTION_SET_COLUMNS)
    return QuestionSet(name=file_name, rows=tuple(rows), extra_columns=extra)


def _read_records(text: str, problems: list[QuestionSetProblem]) -> list[tuple[int, list[str]]]:
    """Every CSV record with its spreadsheet row number; stops at the first unreadable one."""
    records: list[tuple[int, list[str]]] = []
    # The csv module refuses cells over 131,072 characters before MAX_CELL_CHARS could name
    # the cell; a whole file is a bound that keeps our own, clearer message in charge.
    csv.field_size_limit(max(csv.field_size_limit(), MAX_FILE_BYTES))
    # strict: a quote opened and never closed is an error at the end, not a silent giant cell.
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return records
        except csv.Error as error:
            problems.append(QuestionSetProblem(
                f"this row could not be read as CSV ({error}). Check its double quotes: a quote that opens a cell "
                'must close it, and a quote inside a quoted cell is written twice ("").',
                row=len(records) + 1,
            ))
            return records
        records.append((len(records) + 1, cells))


def _read_header(row: int, header: list[str], problems: list[QuestionSetProblem]) -> dict[str, int]:
    """Normalised column name -> position. Unnamed columns are left out."""
    columns: dict[str, int] = {}
    for index, raw in enumerate(header):
        if _cell_problem(raw, row, index, None, problems):
            continue
        name = normalize_column_name(raw)
        if not name:
            continue
        if name in columns:
            problems.append(QuestionSetProblem(
                f"the column name {raw.strip()!r} is already used by column {column_letter(columns[name])}; "
                "rename or remove one of the two.",
                row=row, column=index, column_name=name,
            ))
            continue
        columns[name] = index
    return columns


def _cell_problem(cell: str, row: int, column: int, name: str | None, problems: list[QuestionSetProblem]) -> bool:
    """Record what makes a cell unreadable (bad bytes, NUL, too long); True if anything did."""
    found = _UNDECODABLE.search(cell)
    if found:
        raw = cell[found.start()].encode("utf-8", errors="surrogateescape")
        before = cell[max(0, found.start() - 20): found.start()].strip()
        where = f" after {before!r}" if before else " at the start of the cell"
        problems.append(QuestionSetProblem(
            f"the text is not UTF-8 (byte 0x{raw[0]:02X}{where}). {_SAVE_AS_UTF8}",
            row=row, column=column, column_name=name,
        ))
        return True
    if "\x00" in cell:
        problems.append(QuestionSetProblem(
            "the cell contains a NUL byte, which a CSV file never has; the file may be damaged or not a CSV file.",
            row=row, column=column, column_name=name,
        ))
        return True
    if len(cell) > MAX_CELL_CHARS:
        problems.append(QuestionSetProblem(
            f"the cell has {len(cell):,} characters; the limit is {MAX_CELL_CHARS:,}. {_UNCLOSED_QUOTE_HINT}",
            row=row, column=column, column_name=name,
        ))
        return True
    return False


#: Characters that take no space (zero-width space and joiners, word joiner, BOM): a
#: question made only of these looks empty to the person who wrote it, and is.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))


def is_blank(text: str) -> bool:
    """No visible character: only spaces, line breaks and zero-width characters."""
    return not text.translate(_INVISIBLE).strip()


def _read_row(
    row_number: int,
    cells: list[str],
    header: list[str],
    columns: dict[str, int],
    problems: list[QuestionSetProblem],
    seen_ids: dict[str, int],
) -> QuestionRow | None:
    """One data record as a :class:`QuestionRow`, or None after recording its problems."""
    if len(cells) > len(header):  # its cells are shifted: checking them would only add noise
        problems.append(QuestionSetProblem(
            f"this row has {len(cells)} cells but the header has {len(header)} columns. "
            "A cell that contains a comma must be wrapped in double quotes.",
            row=row_number, column=len(header),
        ))
        return None
    before = len(problems)
    values: dict[str, str] = {}
    for name, index in columns.items():
        cell = cells[index] if index < len(cells) else ""
        if not _cell_problem(cell, row_number, index, name, problems):
            values[name] = cell.strip()

    question = values.get("question")
    if question is not None and is_blank(question):
        problems.append(QuestionSetProblem(
            "the question is empty. Write a question or delete the row.",
            row=row_number, column=columns["question"], column_name="question",
        ))
    expected: list[Citation] = []
    expected_text = values.get("expected_references", "")
    if expected_text:
        try:
            expected = parse_reference_list(expected_text)
        except ValueError as error:
            message = str(error)
            problems.append(QuestionSetProblem(
                message[:1].lower() + message[1:],
                row=row_number, column=columns["expected_references"], column_name="expected_references",
            ))
    row_id = values.get("id", "")
    if row_id:
        if row_id in seen_ids:
            problems.append(QuestionSetProblem(
                f"the id {row_id!r} is already used on row {seen_ids[row_id]}; each id must be unique.",
                row=row_number, column=columns["id"], column_name="id",
            ))
        else:
            seen_ids[row_id] = row_number
    if len(problems) > before:
        return None
    return QuestionRow(
        row_number=row_number,
        question=values["question"],
        id=row_id,
        expected_references=tuple(expected),
        expected_text=expected_text,
        context=values.get("context", ""),
        category=values.get("category", ""),
        notes=values.get("notes", ""),
        answer=values.get("answer") or None,
        extra=tuple((name, value) for name, value in values.items() if name not in QUESTION_SET_COLUMNS),
    )


# --- scoring a row ------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredRow:
    """A question, its answer, the answer's scores and how it was produced.

    ``score`` is None when no answer was produced (``error`` says why). A strict-validation
    failure keeps its answer, so that row has both a score and an error.
    """

    row: QuestionRow
    answer: str
    answer_source: AnswerSource
    score: AnswerScore | None
    output_tokens: int | None = None
    latency_ms: float | None = None
    finish_reason: str | None = None
    error: str | None = None
    retrieved: tuple[Passage, ...] | None = None  # None: the run was not grounded

    @property
    def key(self) -> str:
        return self.row.key

    @property
    def retrieval_hit(self) -> bool | None:
        """Whether a retrieved passage hits an expected reference; None when ungrounded or nothing is expected."""
        if self.retrieved is None or not self.row.expected_references:
            return None
        return first_hit(self.row.expected_references, [p.verse_ids for p in self.retrieved]) is not None

    @property
    def within_token_limit(self) -> bool | None:
        """True when the answer kept to the hard output limit; None for given answers."""
        return None if self.output_tokens is None else self.output_tokens <= HARD_OUTPUT_TOKEN_LIMIT


def score_row(
    row: QuestionRow,
    result_or_answer: GenerationResult | GenerationError | str,
    *,
    retrieved: tuple[Passage, ...] | None = None,
) -> ScoredRow:
    """Score a generated result, a failed generation, or a given answer (a string) for ``row``.

    ``retrieved``: the passages the answer was grounded in, kept with the row.
    """
    return replace(_score_any(row, result_or_answer), retrieved=retrieved)


def _score_any(row: QuestionRow, result_or_answer: GenerationResult | GenerationError | str) -> ScoredRow:
    if isinstance(result_or_answer, str):
        return ScoredRow(row, result_or_answer, "given", _score(row, result_or_answer))
    if isinstance(result_or_answer, GenerationResult):
        return _scored_result(row, result_or_answer)
    if isinstance(result_or_answer, OutputValidationError) and isinstance(result_or_answer.result, GenerationResult):
        return _scored_result(row, result_or_answer.result, error=result_or_answer.message)
    partial = getattr(result_or_answer, "partial_text", "")
    return ScoredRow(row, partial, "generated", None, error=result_or_answer.message or type(result_or_answer).__name__)


def _scored_result(row: QuestionRow, result: GenerationResult, *, error: str | None = None) -> ScoredRow:
    return ScoredRow(
        row,
        result.text,
        "generated",
        _score(row, result.text),
        output_tokens=result.output_tokens,
        latency_ms=result.duration_ms,
        finish_reason=result.finish_reason,
        error=error,
    )


def _score(row: QuestionRow, answer: str) -> AnswerScore:
    return score_answer(answer, expected=row.expected_references, context=row.context)


# --- the runner ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Progress:
    """Where a run stands, after each row (given answers, API mode) or batch (local mode)."""

    done: int
    total: int
    errors: int
    elapsed_s: float
    eta_s: float | None  # None until a first answer was generated
    finished: tuple[ScoredRow, ...] = ()  # the rows finished since the last report

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


@dataclass
class EvaluationRun:
    """A run's rows, appended as they finish, and how it went.

    ``rows`` are in the order they finished; :func:`results_frame` puts them in the set's
    order. ``resumed`` counts rows taken over from an earlier results file.
    """

    question_set: QuestionSet
    params: dict[str, object]
    system_prompt: str | None
    mode: str
    total: int
    ground: int = 0  # passages retrieved per question; 0: not grounded
    ranking: str = ""  # what the passages were ranked by ("BM25", "BM25, re-ranked by <model>"); "" when not grounded
    ranking_note: str | None = None  # why a configured embedding model was not used
    rows: list[ScoredRow] = field(default_factory=list)
    status: RunStatus = "running"
    error: str | None = None
    resumed: int = 0
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    @property
    def errors(self) -> int:
        return sum(1 for row in self.rows if row.error)

    @property
    def duration_s(self) -> float:
        return (self.finished_at or time.time()) - self.started_at


class EvaluationFailed(RuntimeError):
    """A run stopped by an unexpected failure; ``run`` keeps every row finished before it."""

    def __init__(self, message: str, run: EvaluationRun):
        super().__init__(message)
        self.run = run


class EvaluationInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run; ``run`` keeps every row finished before it."""

    def __init__(self, run: EvaluationRun):
        super().__init__("The evaluation was interrupted.")
        self.run = run


#: Errors that no other row would escape: stop the run rather than record them on every row.
_RUN_LEVEL_ERRORS = (ConfigurationError, ModelLoadError)


def run_evaluation(
    question_set: QuestionSet,
    *,
    service: TextGenService,
    params: Mapping[str, object] | None = None,
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
    mode: str | None = None,
    concurrency: int = 4,
    batch_size: int = 8,
    limit: int | None = None,
    ground: int = 0,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume_from: str | os.PathLike[str] | None = None,
) -> EvaluationRun:
    """Answer and score the first ``limit`` rows (all by default) of a question set.

    Rows with a given answer are scored without generating. The others are answered by
    ``service``: in API mode by up to ``concurrency`` requests at once, in local mode in
    batches of ``batch_size`` on the model. A row whose generation fails records the
    error's message and the run goes on.

    ``cancel``: once set, no new work starts; the requests or the local batch already
    running finish and are kept with the rows done before, and the run is marked
    ``cancelled``. ``checkpoint``: a results CSV written as rows finish, so a
    killed run loses at most the rows in flight. ``resume_from``: an earlier results
    file; its answered rows (same id, or same question where there is no id) are
    re-scored from their saved answers instead of generated again, rows that failed are
    tried again. It may be the same file as ``checkpoint``.

    ``ground``: retrieve this many Scripture passages for each question
    (:mod:`core.retrieval`) and give them to the model after the row's own context; they
    are the first thing cut when the prompt must shrink to fit. 0 (the default) retrieves
    nothing. Rows with a given answer are retrieved for too, so a set of saved answers
    still measures retrieval.

    Raises ``ValueError`` (a bad count), :class:`~core.errors.InvalidRequestError` (a bad
    parameter) before any work; :class:`EvaluationFailed` or :class:`EvaluationInterrupted`
    (Ctrl-C), both carrying the run so far, when the run stops part-way.
    """
    params = {k: v for k, v in dict(params or {}).items() if v is not None}
    _check_counts(concurrency=concurrency, batch_size=batch_size, limit=limit)
    _check_ground(ground)
    resolve_params(service.settings, params)  # a bad parameter fails here, not on every row
    chosen_mode = mode or service.settings.mode
    rows = question_set.rows[:limit] if limit is not None else question_set.rows
    run = EvaluationRun(question_set, params, system_prompt, chosen_mode, total=len(rows), ground=ground)
    passages = _retrieve(rows, service, run)

    previous = _resumable_rows(resume_from, rows) if resume_from is not None else {}
    restored = [
        replace(_restore_row(row, previous[row.key]), retrieved=passages.get(row.key))
        for row in rows
        if row.key in previous and row.answer is None
    ]
    run.rows.extend(restored)
    run.resumed = len(restored)
    done_keys = {r.key for r in restored}
    given = [row for row in rows if row.answer is not None]
    to_generate = [row for row in rows if row.answer is None and row.key not in done_keys]
    if to_generate and chosen_mode not in service.available_modes:
        raise ConfigurationError(
            f"{chosen_mode.upper()} mode is not available here (available: {', '.join(service.available_modes)}). "
            "API mode needs HF_TOKEN or HF_BASE_URL."
        )

    writer = _CheckpointWriter(Path(checkpoint), _columns_of(question_set), run.rows) if checkpoint else None
    tracker = _Tracker(run, on_progress, writer, generation_total=len(to_generate))
    stop = cancel or threading.Event()
    try:
        if restored:  # so that a caller collecting ``Progress.finished`` has every row
            tracker.report(restored)
        for row in given:
            if stop.is_set():
                break
            tracker.add([score_row(row, row.answer or "", retrieved=passages.get(row.key))], generated=False)
        if not stop.is_set():
            if chosen_mode == "local":
                _generate_in_batches(to_generate, run, service, tracker, stop, batch_size, passages)
            else:
                _generate_concurrently(to_generate, run, service, tracker, stop, concurrency, passages)
        run.status = "cancelled" if stop.is_set() and len(run.rows) < run.total else "finished"
    except KeyboardInterrupt as error:
        run.status, run.error = "cancelled", "Interrupted (Ctrl-C)."
        raise EvaluationInterrupted(run) from error
    except Exception as error:
        run.status = "failed"
        run.error = error.message if isinstance(error, GenerationError) else f"{type(error).__name__}: {error}"
        raise EvaluationFailed(
            f"The evaluation stopped after {len(run.rows)} of {run.total} rows: {run.error}", run
        ) from error
    finally:
        run.finished_at = time.time()
        if writer is not None:
            writer.close()
    return run


def _check_ground(ground: int) -> None:
    if isinstance(ground, bool) or not isinstance(ground, int) or not 0 <= ground <= MAX_PASSAGES:
        raise ValueError(f"ground (passages per question) must be a whole number from 0 (off) to {MAX_PASSAGES}, not {ground!r}.")


def _retrieve(rows: Sequence[QuestionRow], service: TextGenService, run: EvaluationRun) -> dict[str, tuple[Passage, ...]]:
    """The passages for each row's question, by row key; none when the run is not grounded.

    With ``HF_EMBEDDING_MODEL`` set, BM25's passages are re-ranked by that model; after its
    first failure the rest of the run keeps BM25's order instead of waiting on it again,
    and ``run.ranking_note`` says so.
    """
    if not run.ground:
        return {}
    retriever = get_retriever(service.settings.cache_dir)
    reranker = EmbeddingReranker.from_settings(service.settings)
    passages: dict[str, tuple[Passage, ...]] = {}
    run.ranking = BM25
    for number, row in enumerate(rows, 1):
        grounding = find_passages(row.question, run.ground, retriever, reranker)
        passages[row.key] = grounding.passages
        if grounding.fallback is not None:
            run.ranking_note = f"{grounding.fallback} (from question {number} of {len(rows)} on)"
            reranker = None
        elif reranker is not None:
            run.ranking = grounding.ranking
    return passages


def _context_of(passages: Mapping[str, tuple[Passage, ...]], row: QuestionRow) -> list[str]:
    return [passage.as_context() for passage in passages.get(row.key, ())]


def _check_counts(**counts: int | None) -> None:
    for name, value in counts.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}.")


class _Tracker:
    """Adds finished rows to the run and the checkpoint, and reports progress."""

    def __init__(
        self,
        run: EvaluationRun,
        on_progress: Callable[[Progress], None] | None,
        writer: _CheckpointWriter | None,
        *,
        generation_total: int,
    ):
        self.run, self.on_progress, self.writer = run, on_progress, writer
        self.generation_total = generation_total
        self.generated = 0
        self.started = time.monotonic()
        self.generation_started: float | None = None

    def generation_starting(self) -> None:
        if self.generation_started is None:
            self.generation_started = time.monotonic()

    def add(self, scored: list[ScoredRow], *, generated: bool) -> None:
        self.run.rows.extend(scored)
        if self.writer is not None:
            self.writer.append(scored)
        if generated:
            self.generated += len(scored)
        self.report(scored)

    def report(self, finished: Sequence[ScoredRow]) -> None:
        if self.on_progress is not None:
            self.on_progress(self._progress(tuple(finished)))

    def _progress(self, finished: tuple[ScoredRow, ...]) -> Progress:
        now = time.monotonic()
        eta = None
        if self.generated and self.generation_started is not None:
            per_row = (now - self.generation_started) / self.generated
            eta = per_row * (self.generation_total - self.generated)
        elif self.generation_total == 0:
            eta = 0.0
        return Progress(
            done=len(self.run.rows),
            total=self.run.total,
            errors=self.run.errors,
            elapsed_s=now - self.started,
            eta_s=eta,
            finished=finished,
        )


def _generate_in_batches(
    rows: list[QuestionRow],
    run: EvaluationRun,
    service: TextGenService,
    tracker: _Tracker,
    stop: threading.Event,
    batch_size: int,
    passages: Mapping[str, tuple[Passage, ...]],
) -> None:
    """Local mode: one ``chat_batch`` call per ``batch_size`` rows, in the calling thread."""
    for start in range(0, len(rows), batch_size):
        if stop.is_set():
            return
        chunk = rows[start:start + batch_size]
        tracker.generation_starting()
        try:
            results: Sequence[GenerationResult | GenerationError] = service.chat_batch(
                [row.question for row in chunk],
                system_prompt=run.system_prompt,
                contexts=[row.context_passages for row in chunk],
                retrieved=[_context_of(passages, row) for row in chunk],
                mode=run.mode,  # type: ignore[arg-type]
                **run.params,
            )
        except _RUN_LEVEL_ERRORS:
            raise
        except GenerationError as error:
            results = [error] * len(chunk)
        tracker.add(
            [score_row(row, result, retrieved=passages.get(row.key)) for row, result in zip(chunk, results, strict=True)],
            generated=True,
        )


def _generate_concurrently(
    rows: list[QuestionRow],
    run: EvaluationRun,
    service: TextGenService,
    tracker: _Tracker,
    stop: threading.Event,
    concurrency: int,
    passages: Mapping[str, tuple[Passage, ...]],
) -> None:
    """API mode: at most ``concurrency`` requests in flight; results are scored here, in the caller's thread."""

    def answer(row: QuestionRow) -> GenerationResult | GenerationError:
        try:
            return service.chat(
                row.question,
                system_prompt=run.system_prompt,
                context=row.context_passages,
                retrieved=_context_of(passages, row),
                mode=run.mode,  # type: ignore[arg-type]
                **run.params,
            )
        except _RUN_LEVEL_ERRORS:
            raise
        except GenerationError as error:
            return error

    pending: Iterator[QuestionRow] = iter(rows)
    in_flight: dict[Future[GenerationResult | GenerationError], QuestionRow] = {}
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="evaluation")
    try:
        tracker.generation_starting()
        while True:
            while len(in_flight) < concurrency and not stop.is_set():
                row = next(pending, None)
                if row is None:
                    break
                in_flight[pool.submit(answer, row)] = row
            if not in_flight:
                return
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                row = in_flight.pop(future)
                tracker.add([score_row(row, future.result(), retrieved=passages.get(row.key))], generated=True)
    finally:
        # Only reached with requests in flight on Ctrl-C or a crash: do not wait for them.
        pool.shutdown(wait=False, cancel_futures=True)


# --- checkpoints and resuming -------------------------------------------------------------


def _columns_of(question_set: QuestionSet) -> list[str]:
    extras = [c for c in question_set.extra_columns if c not in RESULT_COLUMNS and c not in INPUT_COLUMNS]
    return [*INPUT_COLUMNS, *extras, *RESULT_COLUMNS]


class _CheckpointWriter:
    """A results CSV that grows as rows finish, flushed to disk after each addition.

    The rows already known (resumed ones) are written to a temporary file that then
    replaces ``path``, so the earlier results survive even if the run is killed at once.
    New rows go out in one write each time, so a kill leaves whole rows behind.
    """

    def __init__(self, path: Path, columns: list[str], initial: Iterable[ScoredRow]):
        self.columns = columns
        _atomic_write(path, lambda handle: handle.write(self._render(initial, header=True)))
        self._handle = path.open("a", encoding="utf-8-sig", newline="")

    def _render(self, rows: Iterable[ScoredRow], *, header: bool = False) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if header:
            writer.writerow(self.columns)
        for row in rows:
            record = _result_record(row)
            writer.writerow([_csv_cell(record.get(column, ""), text=column not in _TYPED_COLUMNS) for column in self.columns])
        return buffer.getvalue()

    def append(self, rows: list[ScoredRow]) -> None:
        self._handle.write(self._render(rows))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def _resumable_rows(path: str | os.PathLike[str], rows: Sequence[QuestionRow]) -> dict[str, dict[str, object]]:
    """Saved records by key, for the rows that were answered without an error. A missing file resumes nothing."""
    if not Path(path).exists():
        return {}
    frame = load_results(path)
    wanted = {row.key for row in rows}
    records: dict[str, dict[str, object]] = {}
    for record in frame.to_dict("records"):
        key = str(record.get("id") or "") or str(record.get("question") or "")
        if key in wanted and not record.get("error") and record.get("answer_source") == "generated":
            records[key] = record
    return records


def _restore_row(row: QuestionRow, record: Mapping[str, object]) -> ScoredRow:
    """A saved answer, re-scored (scoring is pure and fast), with its saved generation figures."""
    answer = str(record.get("answer") or "")
    tokens, latency, reason = record.get("output_tokens"), record.get("latency_ms"), record.get("finish_reason")
    return ScoredRow(
        row,
        answer,
        "generated",
        _score(row, answer),
        output_tokens=None if _is_missing(tokens) else int(tokens),  # type: ignore[call-overload]
        latency_ms=None if _is_missing(latency) else float(latency),  # type: ignore[arg-type]
        finish_reason=None if _is_missing(reason) or reason == "" else str(reason),
    )


def _is_missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


# --- the results table --------------------------------------------------------------------


def _result_record(scored: ScoredRow) -> dict[str, object]:
    """One results-table row: the input columns, then :data:`RESULT_COLUMNS`."""
    row, score = scored.row, scored.score
    record: dict[str, object] = {
        "id": row.id,
        "question": row.question,
        "expected_references": row.expected_text,
        "context": row.context,
        "category": row.category,
        "notes": row.notes,
        **{name: value for name, value in row.extra if name not in RESULT_COLUMNS and name not in INPUT_COLUMNS},
        "answer": scored.answer,
        "answer_source": scored.answer_source,
        "output_tokens": scored.output_tokens,
        "within_token_limit": scored.within_token_limit,
        "latency_ms": None if scored.latency_ms is None else round(scored.latency_ms, 1),
        "finish_reason": scored.finish_reason or "",
        "error": scored.error or "",
        "retrieved_references": "" if scored.retrieved is None else "; ".join(p.reference for p in scored.retrieved),
        "retrieval_hit": scored.retrieval_hit,
    }
    if score is not None:
        repetition = score.repetition
        record.update(
            valid_citations="; ".join(score.valid_citations),
            nonexistent_citations="; ".join(score.nonexistent_citations),
            nonexistent_count=len(score.nonexistent_citations),
            citation_precision=_rounded(score.citation_precision),
            citation_recall=_rounded(score.citation_recall),
            citation_f1=_rounded(score.citation_f1),
            grounded_rate=_rounded(score.grounded_rate),
            misquotes="; ".join(f"{m.reference} ({m.similarity:.2f})" for m in score.misquotes),
            distinct_1=_rounded(repetition.distinct_1),
            distinct_2=_rounded(repetition.distinct_2),
            rep_n=_rounded(repetition.rep_n),
            longest_repeat=repetition.longest_repeat,
            degenerate=bool(score.degenerate),
        )
    return record


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), _METRIC_DECIMALS)


def results_frame(run: EvaluationRun | Iterable[ScoredRow]) -> pd.DataFrame:
    """The results table: input columns, then :data:`RESULT_COLUMNS`, one row per scored row, in the set's order.

    Numbers are floats (NaN where a metric does not apply), counts nullable integers,
    flags nullable booleans; everything else is text ("" where empty).
    """
    if isinstance(run, EvaluationRun):
        scored, columns = list(run.rows), _columns_of(run.question_set)
    else:
        scored = list(run)
        extras = dict.fromkeys(name for s in scored for name, _ in s.row.extra)
        columns = _columns_of(QuestionSet("", (), tuple(extras)))
    scored.sort(key=lambda s: s.row.row_number)
    frame = pd.DataFrame([_result_record(s) for s in scored], columns=columns)
    return _typed(frame)



def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Give the result columns their types; text columns get "" for missing values."""
    frame = frame.copy()
    for column in frame.columns:
        if column in _FLOAT_COLUMNS:
            frame[column] = pd.to_numeric(frame[column].map(_blank_to_none), errors="coerce").astype("float64")
        elif column in _INT_COLUMNS:
            frame[column] = pd.to_numeric(frame[column].map(_blank_to_none), errors="coerce").astype("Int64")
        elif column in _BOOL_COLUMNS:
            frame[column] = frame[column].map(_to_bool).astype("boolean")
        else:
            frame[column] = frame[column].map(lambda v: "" if _is_missing(v) else str(v)).astype(object)
    return frame


def _blank_to_none(value: object) -> object:
    return None if _is_missing(value) or value == "" else value


_TRUE_TEXT = {"true", "1", "yes"}
_FALSE_TEXT = {"false", "0", "no"}


def _to_bool(value: object) -> object:
    if _is_missing(value):
        return pd.NA
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE_TEXT:
        return True
    if text in _FALSE_TEXT:
        return False
    return pd.NA


#: First characters that make a spreadsheet run a cell as a formula (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)  # "-٣" is no number to a spreadsheet


def neutralize_formula(text: str) -> str:
    """Prefix a single quote to a text cell a spreadsheet would run as a formula.

    ``=HYPERLINK(...)``, ``+cmd``, ``@SUM(...)`` and ``-2+3`` get a ``'``; so does a cell
    that already starts with quotes before such a character, so :func:`restore_formula`
    can undo exactly this. Text that is just a number ("-3", "+1.5") is left alone: a
    spreadsheet reads it as that number and runs nothing.
    """
    if _PLAIN_NUMBER.fullmatch(text):
        return text
    if text.lstrip("'").startswith(FORMULA_TRIGGERS) and (text.startswith(FORMULA_TRIGGERS) or text.startswith("'")):
        return "'" + text
    return text


def restore_formula(text: str) -> str:
    """Undo :func:`neutralize_formula` on a cell read back from a results CSV."""
    if text.startswith("'") and text.lstrip("'").startswith(FORMULA_TRIGGERS):
        return text[1:]
    return text


def _csv_cell(value: object, *, text: bool) -> str:
    if _is_missing(value):
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if not text:
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            return repr(value)
        return str(value)
    return neutralize_formula(str(value))


def write_results_csv(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a results table as UTF-8 CSV (with a BOM, so Excel reads the accents right).

    Text cells a spreadsheet would run as formulas are neutralised (see
    :func:`neutralize_formula`); numbers in numeric columns, negative ones included, are
    written as numbers. The file is replaced in one step, never left half-written.
    """
    numeric = {c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])}

    def write(handle: io.TextIOBase) -> None:
        writer = csv.writer(handle)
        writer.writerow([str(c) for c in frame.columns])
        for values in frame.itertuples(index=False, name=None):
            writer.writerow([_csv_cell(v, text=c not in numeric) for c, v in zip(frame.columns, values)])

    return _atomic_write(Path(path), write)


def write_results_json(
    frame: pd.DataFrame, path: str | os.PathLike[str], *, summary: Summary | None = None, run: EvaluationRun | None = None
) -> Path:
    """Write ``{"run": {...}, "summary": {...}, "rows": [...]}``; missing values are ``null``.

    ``run`` adds the set's name, mode, parameters, system prompt, status and timing;
    ``summary`` the figures of :func:`summarize`. :func:`load_results` reads the rows back.
    """
    rows = [{k: _json_value(v) for k, v in record.items()} for record in frame.to_dict("records")]
    payload: dict[str, object] = {}
    if run is not None:
        payload["run"] = {
            "question_set": run.question_set.name,
            "mode": run.mode,
            "params": run.params,
            "ground": run.ground,
            "ranking": run.ranking,
            "ranking_note": run.ranking_note,
            "system_prompt": run.system_prompt,
            "status": run.status,
            "error": run.error,
            "rows": len(run.rows),
            "total": run.total,
            "resumed": run.resumed,
            "started_at": run.started_at,
            "duration_s": round(run.duration_s, 1),
        }
    if summary is not None:
        payload["summary"] = asdict(summary)
    payload["rows"] = rows
    text = json.dumps(payload, ensure_ascii=False, indent=2, allow_nan=False)
    return _atomic_write(Path(path), lambda handle: handle.write(text + "\n"), encoding="utf-8")


def _json_value(value: object) -> object:
    if _is_missing(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()  # type: ignore[union-attr]
    return value


def _atomic_write(path: Path, write: Callable[[io.TextIOBase], object], *, encoding: str = "utf-8-sig") -> Path:
    """Write through a temporary file in the same folder, then replace ``path`` with it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(descriptor, "w", encoding=encoding, newline="") as handle:
            write(handle)  # type: ignore[arg-type]
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a results file written by :func:`write_results_csv` or :func:`write_results_json`.

    Neutralised formulas get their text back and the result columns their types, so the
    frame equals the one that was written. Raises :class:`ResultsFileError` for a file
    that is not a results file.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".json":
            payload = json.loads(path.read_text(encoding="utf-8"))
            records = payload.get("rows") if isinstance(payload, dict) else payload
            if not isinstance(records, list):
                raise ResultsFileError(f"{path.name} is not a results file: it has no list of rows.")
            frame = pd.DataFrame(records)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            for column in frame.columns:
                if column not in _TYPED_COLUMNS:
                    frame[column] = frame[column].map(restore_formula)
    except FileNotFoundError:
        raise ResultsFileError(f"{path.name}: there is no such file ({path}).") from None
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as error:
        if isinstance(error, ResultsFileError):
            raise
        raise ResultsFileError(f"{path.name} could not be read as a results file: {error}") from error
    for column in _LATER_RESULT_COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    missing = [c for c in ("question", *RESULT_COLUMNS) if c not in frame.columns]
    if missing:
        raise ResultsFileError(
            f"{path.name} is not a results file of this app: it lacks the column(s) {', '.join(missing)}."
        )
    for column in INPUT_COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    return _typed(frame)


_CHANGE_COLUMNS = ("citation_f1", "nonexistent_count", "degenerate")


def compare_runs(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Per-question changes from run ``a`` to run ``b``, in ``a``'s order, then rows new in ``b``.

    Rows are matched on ``id`` when every row of both runs has one, otherwise on the
    question text. For each of citation F1 (higher is better), nonexistent citations
    (fewer is better) and degenerate (False is better) the table has the value in
    ``a`` and ``b``, the delta (b - a) and ``better``/``worse``/``same``, or ``n/a``
    where either run has no value. ``present`` says ``both``, ``a only`` or ``b only``.
    """
    use_id = len(a) > 0 and len(b) > 0 and all((frame["id"].astype(str) != "").all() for frame in (a, b))
    key = "id" if use_id else "question"
    keep = ["id", "question", *_CHANGE_COLUMNS]
    left = a[keep].assign(_order_a=range(len(a)))
    right = b[keep].assign(_order_b=range(len(b)))
    merged = left.merge(right, on=key, how="outer", suffixes=("_a", "_b"), indicator="present")
    merged = merged.sort_values(["_order_a", "_order_b"], na_position="last", ignore_index=True)
    other = "question" if key == "id" else "id"
    out = pd.DataFrame({
        key: merged[key].astype(object),
        other: [x if isinstance(x, str) else y for x, y in zip(merged[f"{other}_a"], merged[f"{other}_b"])],
        "present": merged["present"].map({"both": "both", "left_only": "a only", "right_only": "b only"}).astype(object),
    })[["id", "question", "present"]]
    for column, higher_is_better in (("citation_f1", True), ("nonexistent_count", False)):
        before, after = merged[f"{column}_a"].astype("Float64"), merged[f"{column}_b"].astype("Float64")
        delta = after - before
        if column == "citation_f1":
            out[f"{column}_a"], out[f"{column}_b"] = before.astype("float64"), after.astype("float64")
            out[f"{column}_delta"] = delta.round(_METRIC_DECIMALS).astype("float64")
        else:
            out[f"{column}_a"], out[f"{column}_b"] = before.astype("Int64"), after.astype("Int64")
            out[f"{column}_delta"] = delta.astype("Int64")
        out[f"{column}_change"] = [_change(d, higher_is_better) for d in delta]
    before, after = merged["degenerate_a"].astype("boolean"), merged["degenerate_b"].astype("boolean")
    out["degenerate_a"], out["degenerate_b"] = before, after
    out["degenerate_change"] = [
        "n/a" if _is_missing(x) or _is_missing(y) else ("same" if x == y else ("worse" if y else "better"))
        for x, y in zip(before, after)
    ]
    return out


def _change(delta: object, higher_is_better: bool) -> str:
    if _is_missing(delta):
        return "n/a"
    value = float(delta)  # type: ignore[arg-type]
    if abs(value) < 1e-9:
        return "same"
    return "better" if (value > 0) == higher_is_better else "worse"


# --- summary ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """The figures of a whole run (or of any results table).

    Means are over the rows where the metric applies (empty cells are left out), so a
    row without expected references does not pull recall down. Rates are shares (0-1).

    Citations are counted as :mod:`core.scoring.citations` counts them: each distinct reference
    once per answer. ``automatic_citation_accuracy`` is the share of all those citations,
    over all scored answers, that exist *and* are expected for their row or inside its
    context (cited by it or quoted in it): right citations over all citations, with
    nonexistent and unsupported ones counting as wrong. It is the citation-weighted mean
    of the rows' ``supported_rate`` (:class:`core.scoring.AnswerScore`), got by
    re-scoring the saved answers, which is fast and exact because scoring is pure.
    ``manual_citation_accuracy`` comes from reviewers' judgements and is filled in by the
    review module; None here.

    Retrieval figures are over the grounded rows with expected references
    (``retrieval_rows``): ``retrieval_hit_rate`` is the share whose passages hit an
    expected reference, ``retrieval_recall`` the mean share of a row's expected references
    hit (recall@K, K the run's passages per question). None when the run was not grounded.
    """

    rows: int
    answered: int  # rows with an answer and no error
    generated: int  # answered rows whose answer was generated in the run
    given: int  # answered rows whose answer came from the set
    errors: int
    error_rate: float | None
    mean_citation_precision: float | None
    mean_citation_recall: float | None
    mean_citation_f1: float | None
    mean_grounded_rate: float | None
    mean_rep_n: float | None
    mean_distinct_1: float | None
    mean_distinct_2: float | None
    citations: int  # distinct references cited, summed over the scored answers
    nonexistent_citations: int
    nonexistent_rate: float | None  # nonexistent citations / all citations
    degenerate: int
    degenerate_share: float | None  # degenerate answers / scored answers
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    within_token_limit: int
    token_limit_compliance: float | None  # within the limit / generated answers with a token count
    automatic_citation_accuracy: float | None
    manual_citation_accuracy: float | None = None
    retrieval_rows: int = 0
    retrieval_hit_rate: float | None = None
    retrieval_recall: float | None = None


def summarize(frame: pd.DataFrame) -> Summary:
    """Summarise a results table (from :func:`results_frame` or :func:`load_results`)."""
    has_error = frame["error"].astype(str) != ""
    answered = frame[~has_error]
    scored = frame[frame["degenerate"].notna()]
    generated = answered[answered["answer_source"] == "generated"]
    citations, nonexistent, supported = _citation_counts(scored)
    degenerate = int(scored["degenerate"].astype(bool).sum())
    within = generated["within_token_limit"].dropna().astype(bool)
    latencies = generated["latency_ms"].dropna()
    recalls = _retrieval_recalls(frame)
    return Summary(
        rows=len(frame),
        answered=len(answered),
        generated=len(generated),
        given=int((answered["answer_source"] == "given").sum()),
        errors=int(has_error.sum()),
        error_rate=_share(int(has_error.sum()), len(frame)),
        mean_citation_precision=_mean(frame["citation_precision"]),
        mean_citation_recall=_mean(frame["citation_recall"]),
        mean_citation_f1=_mean(frame["citation_f1"]),
        mean_grounded_rate=_mean(frame["grounded_rate"]),
        mean_rep_n=_mean(frame["rep_n"]),
        mean_distinct_1=_mean(frame["distinct_1"]),
        mean_distinct_2=_mean(frame["distinct_2"]),
        citations=citations,
        nonexistent_citations=nonexistent,
        nonexistent_rate=_share(nonexistent, citations),
        degenerate=degenerate,
        degenerate_share=_share(degenerate, len(scored)),
        latency_p50_ms=_percentile(latencies, 0.50),
        latency_p95_ms=_percentile(latencies, 0.95),
        within_token_limit=int(within.sum()),
        token_limit_compliance=_share(int(within.sum()), len(within)),
        automatic_citation_accuracy=_share(supported, citations),
        retrieval_rows=len(recalls),
        retrieval_hit_rate=_share(sum(1 for r in recalls if r > 0), len(recalls)),
        retrieval_recall=_mean(pd.Series(recalls, dtype="float64")),
    )


def _retrieval_recalls(frame: pd.DataFrame) -> list[float]:
    """recall@K of each grounded row with expected references, from the saved reference lists."""
    grounded = frame[frame["retrieval_hit"].notna()]
    recalls = []
    for expected_text, retrieved_text in grounded[["expected_references", "retrieved_references"]].itertuples(index=False):
        try:
            expected, retrieved = parse_reference_list(expected_text), parse_reference_list(retrieved_text)
        except ValueError:  # a hand-edited file: leave the row out, as the citation counts do
            continue
        row_recall = recall(expected, [c.verse_ids for c in retrieved])
        if row_recall is not None:
            recalls.append(row_recall)
    return recalls


def _citation_counts(scored: pd.DataFrame) -> tuple[int, int, int]:
    """(citations, nonexistent ones, right ones) over the scored rows, by re-scoring their answers.

    A row whose expected references no longer parse (a hand-edited results file) is left out.
    """
    citations = nonexistent = supported = 0
    for answer, expected_text, context in scored[["answer", "expected_references", "context"]].itertuples(index=False):
        try:
            expected = parse_reference_list(expected_text)
        except ValueError:
            continue
        score = score_answer(answer, expected=expected, context=context)
        units = len(score.valid_citations) + len(score.nonexistent_citations)
        citations += units
        nonexistent += len(score.nonexistent_citations)
        supported += round((score.supported_rate or 0.0) * units)
    return citations, nonexistent, supported


def _share(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, _METRIC_DECIMALS)


def _mean(values: pd.Series) -> float | None:
    values = values.dropna()
    return None if len(values) == 0 else round(float(values.mean()), _METRIC_DECIMALS)


def _percentile(values: pd.Series, q: float) -> float | None:
    return None if len(values) == 0 else round(float(values.quantile(q)), 1)


def format_summary(summary: Summary, *, title: str | None = None) -> str:
    """The summary as a few aligned lines of plain text, for the command line."""

    def number(value: float | None, digits: int = 2) -> str:
        return "–" if value is None else f"{value:.{digits}f}"

    def percent(value: float | None) -> str:
        return "–" if value is None else f"{value * 100:.1f}%"

    def seconds(value: float | None) -> str:
        return "–" if value is None else f"{value / 1000:.1f} s"

    s = summary
    answered = f"{s.answered} answered ({s.generated} generated, {s.given} given), {s.errors} errors ({percent(s.error_rate)})"
    citations = (
        f"precision {number(s.mean_citation_precision)}  recall {number(s.mean_citation_recall)}  "
        f"F1 {number(s.mean_citation_f1)}  grounded {number(s.mean_grounded_rate)}"
    )
    counts = (
        f"{s.citations} cited, {s.nonexistent_citations} nonexistent ({percent(s.nonexistent_rate)}); "
        f"automatic citation accuracy {percent(s.automatic_citation_accuracy)}"
    )
    repetition = (
        f"rep-4 {number(s.mean_rep_n)}  distinct-1 {number(s.mean_distinct_1)}  "
        f"distinct-2 {number(s.mean_distinct_2)}  degenerate {s.degenerate} ({percent(s.degenerate_share)})"
    )
    limit = (
        f"{s.within_token_limit} of {s.generated} generated answers within {HARD_OUTPUT_TOKEN_LIMIT} tokens "
        f"({percent(s.token_limit_compliance)})"
    )
    manual = "not reviewed yet" if s.manual_citation_accuracy is None else f"citation accuracy {percent(s.manual_citation_accuracy)}"
    retrieval = (
        f"hit rate {percent(s.retrieval_hit_rate)}  recall@K {number(s.retrieval_recall)} "
        f"over {s.retrieval_rows} rows with expected references"
    )
    lines = [
        *([title] if title else []),
        f"Rows           {s.rows}: {answered}",
        f"Citations      {citations}",
        f"               {counts}",
        *([f"Retrieval      {retrieval}"] if s.retrieval_rows else []),
        f"Repetition     {repetition}",
        f"Latency        p50 {seconds(s.latency_p50_ms)}  p95 {seconds(s.latency_p95_ms)}",
        f"Token limit    {limit}",
        f"Manual review  {manual}",
    ]
    return "\n".join(lines)
