"""Checkpoints: the results CSV that grows as rows finish, and resuming from it."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from core.evaluation.question_sets import QuestionRow
from core.evaluation.scored_rows import ScoredRow, answer_score
from core.evaluation.table import TYPED_COLUMNS, csv_cell, is_missing, load_results, result_record
from core.files import write_file_atomically


class CheckpointWriter:
    """A results CSV that grows as rows finish, flushed to disk after each addition.

    The rows already known (resumed ones) are written to a temporary file that then
    replaces ``path``, so the earlier results survive even if the run is killed at once.
    New rows go out in one write each time, so a kill leaves whole rows behind.
    """

    def __init__(self, path: Path, columns: list[str], initial: Iterable[ScoredRow]):
        self.columns = columns
        write_file_atomically(path, lambda handle: handle.write(self._render(initial, header=True)), encoding="utf-8-sig")
        self._handle = path.open("a", encoding="utf-8-sig", newline="")

    def _render(self, rows: Iterable[ScoredRow], *, header: bool = False) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        if header:
            writer.writerow(self.columns)
        for row in rows:
            record = result_record(row)
            writer.writerow([csv_cell(record.get(column, ""), text=column not in TYPED_COLUMNS) for column in self.columns])
        return buffer.getvalue()

    def append(self, rows: list[ScoredRow]) -> None:
        self._handle.write(self._render(rows))
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        self._handle.close()


def resumable_rows(path: str | os.PathLike[str], rows: Sequence[QuestionRow]) -> dict[str, dict[str, object]]:
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


def restore_row(row: QuestionRow, record: Mapping[str, object]) -> ScoredRow:
    """A saved answer, re-scored (scoring is pure and fast), with its saved generation figures."""
    answer = str(record.get("answer") or "")
    tokens, latency, reason = record.get("output_tokens"), record.get("latency_ms"), record.get("finish_reason")
    return ScoredRow(
        row,
        answer,
        "generated",
        answer_score(row, answer),
        output_tokens=None if is_missing(tokens) else int(tokens),  # type: ignore[call-overload]
        latency_ms=None if is_missing(latency) else float(latency),  # type: ignore[arg-type]
        finish_reason=None if is_missing(reason) or reason == "" else str(reason),
    )
