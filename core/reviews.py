"""Manual citation reviews: a reviewer rates each citation of an answer, saved as it is made.

Ratings follow ALCE's citation-support scale (Gao et al. 2023): 2 supports, 1 partly
supports, 0 does not support. Reviews belong to an answer (its question and text), not to
a results file, so they survive re-running, re-exporting and re-loading the results.
SQLite, one transaction per write: killing the app mid-save loses at most that one review.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

RATINGS = {2: "supports", 1: "partly supports", 0: "does not support"}

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS citation_reviews (
        answer_key TEXT NOT NULL,
        citation TEXT NOT NULL,
        rating INTEGER NOT NULL CHECK (rating IN (0, 1, 2)),
        updated_at REAL NOT NULL,
        PRIMARY KEY (answer_key, citation)
    )""",
    """CREATE TABLE IF NOT EXISTS answer_reviews (
        answer_key TEXT PRIMARY KEY,
        note TEXT NOT NULL DEFAULT '',
        missing_citations TEXT NOT NULL DEFAULT '',
        done INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL
    )""",
)


def answer_key(question: str, answer: str) -> str:
    """A stable id for one answer to one question."""
    return hashlib.sha256(f"{question}\x00{answer}".encode()).hexdigest()[:20]


@dataclass(frozen=True)
class AnswerReview:
    answer_key: str
    ratings: Mapping[str, int] = field(default_factory=dict)  # normalized citation -> 0/1/2
    note: str = ""
    missing_citations: str = ""
    done: bool = False


class ReviewStore:
    """Reviews in ``data_dir/reviews.sqlite3``; safe to share between threads."""

    def __init__(self, data_dir: Path):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "reviews.sqlite3"
        self._lock = threading.Lock()
        with self._connect() as connection:
            for statement in _SCHEMA:
                connection.execute(statement)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=10)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        return connection

    def rate(self, key: str, citation: str, rating: int) -> None:
        if rating not in RATINGS:
            raise ValueError(f"A rating must be 2 (supports), 1 (partly supports) or 0 (does not support), not {rating!r}.")
        with self._lock, self._connect() as connection:
            connection.execute(
                "INSERT INTO citation_reviews VALUES (?, ?, ?, ?) "
                "ON CONFLICT (answer_key, citation) DO UPDATE SET rating = excluded.rating, updated_at = excluded.updated_at",
                (key, citation, rating, time.time()),
            )

    def annotate(self, key: str, *, note: str | None = None, missing_citations: str | None = None, done: bool | None = None) -> None:
        """Set the note, the citations the answer should have had, or the done mark."""
        current = self.get(key)
        values = (
            key,
            current.note if note is None else note,
            current.missing_citations if missing_citations is None else missing_citations,
            int(current.done if done is None else done),
            time.time(),
        )
        with self._lock, self._connect() as connection:
            connection.execute("INSERT OR REPLACE INTO answer_reviews VALUES (?, ?, ?, ?, ?)", values)

    def get(self, key: str) -> AnswerReview:
        with self._connect() as connection:
            ratings = dict(connection.execute("SELECT citation, rating FROM citation_reviews WHERE answer_key = ?", (key,)).fetchall())
            row = connection.execute("SELECT note, missing_citations, done FROM answer_reviews WHERE answer_key = ?", (key,)).fetchone()
        note, missing, done = row if row else ("", "", 0)
        return AnswerReview(key, ratings, note, missing, bool(done))

    def many(self, keys: Iterable[str]) -> dict[str, AnswerReview]:
        return {key: self.get(key) for key in keys}

    def export(self, keys: Iterable[str]) -> list[dict[str, object]]:
        """Reviews as plain rows, to save beside a results file and import elsewhere."""
        return [
            {"answer_key": r.answer_key, "ratings": dict(r.ratings), "note": r.note, "missing_citations": r.missing_citations, "done": r.done}
            for r in self.many(keys).values()
            if r.ratings or r.note or r.missing_citations or r.done
        ]

    def import_rows(self, rows: Iterable[Mapping[str, object]]) -> int:
        """Load exported reviews; later values win. Returns how many answers were imported."""
        count = 0
        for row in rows:
            key = str(row["answer_key"])
            for citation, rating in dict(row.get("ratings") or {}).items():  # type: ignore[call-overload]
                self.rate(key, str(citation), int(rating))
            self.annotate(key, note=str(row.get("note", "")), missing_citations=str(row.get("missing_citations", "")), done=bool(row.get("done", False)))
            count += 1
        return count


def manual_citation_accuracy(reviews: Iterable[AnswerReview]) -> float | None:
    """Mean support over rated citations, 2 → 1.0, 1 → 0.5, 0 → 0.0; None before any rating."""
    ratings = [rating for review in reviews for rating in review.ratings.values()]
    return sum(ratings) / (2 * len(ratings)) if ratings else None
