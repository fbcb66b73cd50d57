"""Feedback on chat answers (👍/👎), kept on disk.

SQLite with one transaction per write: a crash or ``kill -9`` mid-save loses at most the
feedback being saved, never what was saved before.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import asdict, dataclass
from functools import cache
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


@cache
def feedback_store(data_dir: Path) -> FeedbackStore:
    """The process's one feedback store for a data folder: opened (folder, tables, migration) once, not at every event."""
    return FeedbackStore(data_dir)
