"""Question sets: read and check a CSV, append a Chat answer to one, and draw a sample.

The CSV is read with the standard ``csv`` module rather than pandas: it gives each record
as the list of cells a spreadsheet shows, so row numbers stay right when a cell holds line
breaks, duplicated header names are seen (pandas renames them ``question.1``), and a row
with more cells than the header can be reported instead of silently shifted. Every reader
of a question set in the app goes through :func:`load_question_set`.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from core.errors import QuestionSetError, QuestionSetProblem, column_letter
from core.scoring.references import Citation, parse_reference_list

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

#: A header without a 'question' column is quoted back this far, so a binary file or a
#: 500,000-column header gives a message a person can read, not megabytes of it.
MAX_SHOWN_COLUMNS = 12
MAX_SHOWN_NAME_CHARS = 40

#: Columns a question set may have (eval_sets/README.md). Others are kept as they are.
QUESTION_SET_COLUMNS = ("id", "question", "expected_references", "context", "category", "notes", "answer")

#: Input columns every results table has, in this order, whether or not the set had them,
#: so results from different sets and runs line up. ``answer`` is a result column.
INPUT_COLUMNS = tuple(column for column in QUESTION_SET_COLUMNS if column != "answer")


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
    problem found (up to :data:`core.errors.MAX_REPORTED_PROBLEMS` shown), never a bare traceback.
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


def append_to_question_set(path: Path, *, question: str, answer: str, notes: str = "", category: str = "from-chat") -> str:
    """Add a doubted answer as an evaluation case; returns the new row's id.

    The answer is kept in the ``answer`` column, so the evaluation scores it as it is.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    new_file = not path.exists() or path.stat().st_size == 0
    existing = 0 if new_file else len(load_question_set(path))
    row_id = f"chat-{existing + 1:03d}"
    with path.open("a", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=QUESTION_SET_COLUMNS)
        if new_file:
            writer.writeheader()
        writer.writerow({"id": row_id, "question": question, "answer": answer, "category": category, "notes": notes})
    return row_id


def sample_questions(path: str | os.PathLike[str], count: int) -> list[str]:
    """``count`` questions spread evenly over a question set CSV (its ``question`` column).

    Evenly spread rather than the first few, because the shipped sets are grouped by
    category and the first four questions would all be about the same thing.
    """
    questions = [row.question for row in load_question_set(path).rows]
    if count < 1 or not questions:
        return []
    if count == 1 or count >= len(questions):
        return questions[:count]
    last = len(questions) - 1
    return [questions[round(i * last / (count - 1))] for i in range(count)]
