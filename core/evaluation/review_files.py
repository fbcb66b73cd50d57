"""Reviews as files: CSV for spreadsheets, JSON lines for tools; both read back for merging.

A file is checked whole before anything is imported, so a bad file imports nothing
rather than half, and the message names the file, the row and the column.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path

from core.errors import ReviewFileError
from core.evaluation.table import neutralize_formula, restore_formula
from core.files import write_file_atomically
from core.stores.reviews import RATINGS, ReviewRecord, clean_reviewer, millis

#: The columns of an export, in order.
COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(ReviewRecord))
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_REQUIRED = ("reviewer", "updated_at", "answer_key")


def _iso(timestamp: float) -> str:
    """The time to the millisecond, the precision at which the store compares reviews' times."""
    return (_EPOCH + timedelta(milliseconds=millis(timestamp))).isoformat(timespec="milliseconds")


def _row(record: ReviewRecord) -> dict[str, object]:
    row = asdict(record)
    row["updated_at"] = _iso(record.updated_at)
    return row


def reviews_jsonl(records: Iterable[ReviewRecord]) -> str:
    return "".join(json.dumps(_row(record), ensure_ascii=False) + "\n" for record in records)


def reviews_csv(records: Iterable[ReviewRecord]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for record in records:
        row = _row(record)
        writer.writerow({k: neutralize_formula(v) if isinstance(v, str) else v for k, v in row.items()})
    return buffer.getvalue()


def read_reviews(path: str | Path) -> list[ReviewRecord]:
    """Records from a CSV or JSON-lines export; raises :class:`~core.errors.ReviewFileError` naming what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as error:
        raise ReviewFileError(f"{path.name} is not UTF-8 text (byte {error.start}): export reviews as CSV or JSON lines.") from error
    if path.suffix.lower() in (".jsonl", ".json"):
        rows = _json_rows(path.name, text)
    else:
        rows = _csv_rows(path.name, text)
    return [_record(path.name, where, row) for where, row in rows]


def _json_rows(name: str, text: str) -> list[tuple[str, dict[str, object]]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise ReviewFileError(f"{name}, line {number}: not JSON ({error.msg}).") from error
        if not isinstance(row, dict):
            raise ReviewFileError(f"{name}, line {number}: each line must be one review, a JSON object.")
        rows.append((f"line {number}", row))
    return rows


def _csv_rows(name: str, text: str) -> list[tuple[str, dict[str, object]]]:
    reader = csv.DictReader(io.StringIO(text))
    missing = [column for column in _REQUIRED if column not in (reader.fieldnames or [])]
    if missing:
        raise ReviewFileError(f"{name} has no column {', '.join(missing)}: it is not a reviews export.")
    rows = []
    for number, row in enumerate(reader, start=2):
        rows.append((f"row {number}", {k: restore_formula(v) if isinstance(v, str) else v for k, v in row.items()}))
    return rows


def _record(name: str, where: str, row: dict[str, object]) -> ReviewRecord:
    def fail(column: str, problem: str) -> ReviewFileError:
        return ReviewFileError(f"{name}, {where}, column {column}: {problem}")

    for column in _REQUIRED:
        if not str(row.get(column) or "").strip():
            raise fail(column, "is empty.")
    try:
        reviewer = clean_reviewer(str(row["reviewer"]))
    except ValueError as error:
        raise fail("reviewer", str(error)) from error
    try:
        when = datetime.fromisoformat(str(row["updated_at"]))
    except ValueError as error:
        raise fail("updated_at", f"{row['updated_at']!r} is not a time like 2026-12-01T09:30:00+00:00.") from error
    updated_at = (when if when.tzinfo else when.replace(tzinfo=timezone.utc)).timestamp()  # exports are UTC
    citation = str(row.get("citation") or "")
    rating = row.get("rating")
    if not citation and str(rating if rating is not None else "").strip():
        raise fail("citation", "is empty, but the row has a rating: a rating belongs to a citation.")
    if citation:
        value = str(rating).strip() if rating is not None else ""
        if value not in {str(r) for r in RATINGS}:
            raise fail("rating", f"{value or 'nothing'} is not a rating: 2 (supports), 1 (partly supports) or 0 (does not support).")
        rating = int(value)
    else:
        rating = None
    return ReviewRecord(
        reviewer=reviewer,
        updated_at=updated_at,
        answer_key=str(row["answer_key"]).strip(),
        question_id=str(row.get("question_id") or ""),
        question=str(row.get("question") or ""),
        citation=citation,
        rating=rating,
        note=str(row.get("note") or ""),
        missing_citations=str(row.get("missing_citations") or ""),
        reviewed=str(row.get("reviewed")).strip().lower() in ("true", "1", "yes"),
    )


def write_exports(records: Sequence[ReviewRecord], folder: Path, stem: str) -> tuple[Path, Path]:
    """``stem.csv`` and ``stem.jsonl`` in ``folder``, each written whole before it appears."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for suffix, text in ((".csv", reviews_csv(records)), (".jsonl", reviews_jsonl(records))):
        path = folder / f"{stem}{suffix}"
        write_file_atomically(path, lambda handle, text=text: handle.write(text))
        paths.append(path)
    return paths[0], paths[1]
