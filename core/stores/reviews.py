"""Manual citation reviews: each reviewer rates each citation of an answer, saved as it is made.

Ratings follow ALCE's citation-support scale (Gao et al. 2023): 2 supports, 1 partly
supports, 0 does not support. Reviews belong to an answer (its question and text), not to
a results file, so they survive re-running, re-exporting and re-loading the results.
Every row carries its reviewer: two people never overwrite each other, and their
agreement can be measured (:mod:`core.evaluation.review_stats`).

SQLite, one transaction per write: killing the app mid-save loses at most that one review.
A write carries its time, and an import keeps whichever of two versions of a review is
newer, so merging exports from several machines is order-free and adds no duplicates.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

RATINGS = {2: "supports", 1: "partly supports", 0: "does not support"}

#: Who made the reviews saved before reviews carried a reviewer.
EARLIER_REVIEWER = "(before reviewer names)"

#: Longest reviewer name kept: a name is a label, not a note.
MAX_REVIEWER_CHARS = 80

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS ratings (
        reviewer TEXT NOT NULL,
        answer_key TEXT NOT NULL,
        citation TEXT NOT NULL,
        rating INTEGER NOT NULL CHECK (rating IN (0, 1, 2)),
        updated_at REAL NOT NULL,
        PRIMARY KEY (reviewer, answer_key, citation)
    )""",
    """CREATE TABLE IF NOT EXISTS answer_notes (
        reviewer TEXT NOT NULL,
        answer_key TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        missing_citations TEXT NOT NULL DEFAULT '',
        done INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL,
        PRIMARY KEY (reviewer, answer_key)
    )""",
    """CREATE TABLE IF NOT EXISTS answers (
        answer_key TEXT PRIMARY KEY,
        question_id TEXT NOT NULL DEFAULT '',
        question TEXT NOT NULL DEFAULT ''
    )""",
)

#: Tables of the store before reviewers: moved into the tables above on first open.
_EARLIER_TABLES = {
    "citation_reviews": "INSERT OR IGNORE INTO ratings SELECT ?, answer_key, citation, rating, updated_at FROM citation_reviews",
    "answer_reviews": "INSERT OR IGNORE INTO answer_notes "
    "SELECT ?, answer_key, note, missing_citations, done, updated_at FROM answer_reviews",
}


def millis(timestamp: float) -> int:
    """A review's time to the millisecond: what an export keeps, and so what an import compares."""
    return round(timestamp * 1000)


def answer_key(question: str, answer: str) -> str:
    """A stable id for one answer to one question."""
    return hashlib.sha256(f"{question}\x00{answer}".encode()).hexdigest()[:20]


def clean_reviewer(name: str | None) -> str:
    """The reviewer name as stored: spaces folded; raises ``ValueError`` when there is none."""
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise ValueError("Type your reviewer name first: ratings are kept apart by reviewer.")
    if len(cleaned) > MAX_REVIEWER_CHARS:
        raise ValueError(f"A reviewer name has at most {MAX_REVIEWER_CHARS} characters; this one has {len(cleaned)}.")
    return cleaned


@dataclass(frozen=True)
class AnswerReview:
    """One reviewer's review of one answer."""

    answer_key: str
    ratings: Mapping[str, int] = field(default_factory=dict)  # citation unit -> 0/1/2
    note: str = ""
    missing_citations: str = ""
    done: bool = False


@dataclass(frozen=True)
class Rating:
    """One reviewer's rating of one citation of one answer."""

    reviewer: str
    answer_key: str
    citation: str
    rating: int
    updated_at: float


@dataclass(frozen=True)
class ReviewRecord:
    """One row of an export: a rating (``citation`` set) or an answer's note and mark (``citation`` empty)."""

    reviewer: str
    updated_at: float
    answer_key: str
    question_id: str = ""
    question: str = ""
    citation: str = ""
    rating: int | None = None
    note: str = ""
    missing_citations: str = ""
    reviewed: bool = False


@dataclass(frozen=True)
class ImportCounts:
    added: int
    updated: int
    unchanged: int  # already there, as new or newer


class ReviewStore:
    """Reviews in ``data_dir/reviews.sqlite3``; safe to share between threads and processes."""

    def __init__(self, data_dir: Path):
        data_dir.mkdir(parents=True, exist_ok=True)
        self.path = data_dir / "reviews.sqlite3"
        self._lock = threading.Lock()
        with self._lock, self._connect() as connection:
            for statement in _SCHEMA:
                connection.execute(statement)
            self._move_earlier_tables(connection)

    def _connect(self) -> sqlite3.Connection:
        connection = sqlite3.connect(self.path, timeout=10)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=FULL")
        return connection

    @staticmethod
    def _move_earlier_tables(connection: sqlite3.Connection) -> None:
        present = {name for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        for table, copy in _EARLIER_TABLES.items():
            if table in present:
                connection.execute(copy, (EARLIER_REVIEWER,))
                connection.execute(f"DROP TABLE {table}")

    # --- writing -------------------------------------------------------------------------

    def rate(self, reviewer: str, key: str, citation: str, rating: int, *, question_id: str = "", question: str = "") -> None:
        if isinstance(rating, bool) or rating not in RATINGS:
            raise ValueError(f"A rating must be 2 (supports), 1 (partly supports) or 0 (does not support), not {rating!r}.")
        reviewer = clean_reviewer(reviewer)
        with self._lock, self._connect() as connection:
            self._remember_answer(connection, key, question_id, question)
            connection.execute(
                "INSERT INTO ratings VALUES (?, ?, ?, ?, ?) ON CONFLICT (reviewer, answer_key, citation) "
                "DO UPDATE SET rating = excluded.rating, updated_at = excluded.updated_at",
                (reviewer, key, citation, rating, time.time()),
            )

    def annotate(
        self,
        reviewer: str,
        key: str,
        *,
        note: str | None = None,
        missing_citations: str | None = None,
        done: bool | None = None,
        question_id: str = "",
        question: str = "",
    ) -> None:
        """Set the note, the citations the answer should have had, or the done mark."""
        reviewer = clean_reviewer(reviewer)
        with self._lock, self._connect() as connection:
            self._remember_answer(connection, key, question_id, question)
            current = self._review(connection, reviewer, key)
            connection.execute(
                "INSERT OR REPLACE INTO answer_notes VALUES (?, ?, ?, ?, ?, ?)",
                (
                    reviewer,
                    key,
                    current.note if note is None else note,
                    current.missing_citations if missing_citations is None else missing_citations,
                    int(current.done if done is None else done),
                    time.time(),
                ),
            )

    @staticmethod
    def _remember_answer(connection: sqlite3.Connection, key: str, question_id: str, question: str) -> None:
        """Which question an answer belongs to, so an export can name it."""
        if question_id or question:
            connection.execute(
                "INSERT INTO answers VALUES (?, ?, ?) ON CONFLICT (answer_key) DO UPDATE SET "
                "question_id = excluded.question_id, question = excluded.question",
                (key, question_id, question),
            )

    # --- reading -------------------------------------------------------------------------

    def get(self, reviewer: str, key: str) -> AnswerReview:
        with self._connect() as connection:
            return self._review(connection, reviewer, key)

    @staticmethod
    def _review(connection: sqlite3.Connection, reviewer: str, key: str) -> AnswerReview:
        ratings = dict(
            connection.execute(
                "SELECT citation, rating FROM ratings WHERE reviewer = ? AND answer_key = ?", (reviewer, key)
            ).fetchall()
        )
        row = connection.execute(
            "SELECT note, missing_citations, done FROM answer_notes WHERE reviewer = ? AND answer_key = ?", (reviewer, key)
        ).fetchone()
        note, missing, done = row if row else ("", "", 0)
        return AnswerReview(key, ratings, note, missing, bool(done))

    def many(self, reviewer: str, keys: Iterable[str]) -> dict[str, AnswerReview]:
        with self._connect() as connection:
            return {key: self._review(connection, reviewer, key) for key in keys}

    def ratings(self, keys: Iterable[str] | None = None) -> list[Rating]:
        """Every reviewer's ratings, of these answers (all answers when ``keys`` is None)."""
        with self._connect() as connection:
            rows = connection.execute(
                "SELECT reviewer, answer_key, citation, rating, updated_at FROM ratings ORDER BY answer_key, citation, reviewer"
            ).fetchall()
        wanted = None if keys is None else set(keys)
        return [Rating(*row) for row in rows if wanted is None or row[1] in wanted]

    def reviewers(self) -> list[str]:
        with self._connect() as connection:
            rows = connection.execute("SELECT reviewer FROM ratings UNION SELECT reviewer FROM answer_notes ORDER BY 1")
            return [name for (name,) in rows]

    # --- out and in ----------------------------------------------------------------------

    def export(self, keys: Iterable[str] | None = None) -> list[ReviewRecord]:
        """Every review of these answers (all when ``keys`` is None) as flat records, oldest first."""
        wanted = None if keys is None else set(keys)
        with self._connect() as connection:
            questions = {key: (qid, q) for key, qid, q in connection.execute("SELECT answer_key, question_id, question FROM answers")}
            ratings = connection.execute("SELECT reviewer, answer_key, citation, rating, updated_at FROM ratings").fetchall()
            notes = connection.execute(
                "SELECT reviewer, answer_key, note, missing_citations, done, updated_at FROM answer_notes"
            ).fetchall()
        records = [
            ReviewRecord(reviewer, updated_at, key, *questions.get(key, ("", "")), citation=citation, rating=rating)
            for reviewer, key, citation, rating, updated_at in ratings
        ] + [
            ReviewRecord(reviewer, updated_at, key, *questions.get(key, ("", "")), note=note, missing_citations=missing, reviewed=bool(done))
            for reviewer, key, note, missing, done, updated_at in notes
        ]
        return sorted(
            (record for record in records if wanted is None or record.answer_key in wanted),
            key=lambda r: (r.updated_at, r.reviewer, r.answer_key, r.citation),
        )

    def import_records(self, records: Iterable[ReviewRecord]) -> ImportCounts:
        """Merge exported records: a review already here stays unless the record is newer."""
        added = updated = unchanged = 0
        with self._lock, self._connect() as connection:
            for record in records:
                self._remember_answer(connection, record.answer_key, record.question_id, record.question)
                if record.citation:
                    where = (record.reviewer, record.answer_key, record.citation)
                    current = connection.execute(
                        "SELECT updated_at FROM ratings WHERE reviewer = ? AND answer_key = ? AND citation = ?", where
                    ).fetchone()
                    values = (*where, record.rating, record.updated_at)
                    statement = "INSERT OR REPLACE INTO ratings VALUES (?, ?, ?, ?, ?)"
                else:
                    where = (record.reviewer, record.answer_key)
                    current = connection.execute(
                        "SELECT updated_at FROM answer_notes WHERE reviewer = ? AND answer_key = ?", where
                    ).fetchone()
                    values = (*where, record.note, record.missing_citations, int(record.reviewed), record.updated_at)
                    statement = "INSERT OR REPLACE INTO answer_notes VALUES (?, ?, ?, ?, ?, ?)"
                if current is not None and millis(current[0]) >= millis(record.updated_at):
                    unchanged += 1
                    continue
                connection.execute(statement, values)
                added += current is None
                updated += current is not None
        return ImportCounts(added, updated, unchanged)


@cache
def review_store(data_dir: Path) -> ReviewStore:
    """The process's one review store for a data folder: opened (folder, tables, migration) once, not at every event."""
    return ReviewStore(data_dir)
