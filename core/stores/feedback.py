"""Feedback on chat answers (👍/👎) and questions sent to a question set, kept on disk.

SQLite with one transaction per write: a crash or ``kill -9`` mid-save loses at most the
feedback being saved, never what was saved before.
"""

from __future__ import annotations

import csv
import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at REAL NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    liked INTEGER NOT NULL,
    settings TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT ''
)
"""

#: Columns of a question set written from the chat (see eval_sets/README.md).
QUESTION_SET_COLUMNS = ("id", "question", "expected_references", "context", "category", "notes", "answer")


@dataclass(frozen=True)
class Feedback:
    question: str
    answer: str
    liked: bool
    settings: dict[str, object]
    comment: str = ""
    created_at: float = 0.0


class FeedbackStore:
    """Feedback rows in ``data_dir/feedback.sqlite3``; safe to share between threads."""

    def __init__(self, data_dir: Path):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "feedback.sqlite3"
        self._lock = threading.Lock()
        with self._connect() as connection:
            connection.execute(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=10)
        connection.execute("PRAGMA journal_mode=WAL")
        return connection

    def add(self, feedback: Feedback) -> int:
        row = asdict(feedback)
        row["created_at"] = feedback.created_at or time.time()
        row["settings"] = json.dumps(feedback.settings, sort_keys=True)
        row["liked"] = int(feedback.liked)
        with self._lock, self._connect() as connection:
            cursor = connection.execute(
                "INSERT INTO feedback (created_at, question, answer, liked, settings, comment) "
                "VALUES (:created_at, :question, :answer, :liked, :settings, :comment)",
                row,
            )
            return int(cursor.lastrowid or 0)

    def all(self) -> list[Feedback]:
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT question, answer, liked, settings, comment, created_at FROM feedback ORDER BY id"
            ).fetchall()
        return [Feedback(q, a, bool(liked), json.loads(s), c, t) for q, a, liked, s, c, t in rows]


def append_to_question_set(path: Path, *, question: str, answer: str, notes: str = "", category: str = "from-chat") -> str:
    """Add a doubted answer as an evaluation case; returns the new row's id.

    The answer is kept in the ``answer`` column, so the evaluation scores it as it is.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    new_file = not path.exists() or path.stat().st_size == 0
    existing = 0 if new_file else sum(1 for _ in csv.DictReader(path.open(encoding="utf-8")))
    row_id = f"chat-{existing + 1:03d}"
    with path.open("a", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=QUESTION_SET_COLUMNS)
        if new_file:
            writer.writeheader()
        writer.writerow({"id": row_id, "question": question, "answer": answer, "category": category, "notes": notes})
    return row_id
