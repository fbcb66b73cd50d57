"""Feedback and review stores: what people save stays saved, across processes and restarts."""

from __future__ import annotations

import csv
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from core.evaluation.question_sets import append_to_question_set
from core.stores.feedback import Feedback, FeedbackStore
from core.stores.reviews import EARLIER_REVIEWER, AnswerReview, ReviewStore, answer_key

REPO = Path(__file__).resolve().parent.parent


def test_feedback_is_kept_with_question_answer_and_settings(tmp_path: Path) -> None:
    FeedbackStore(tmp_path).add(Feedback("What is grace?", "Unearned favour (Eph 2:8).", True, {"temperature": 0.2}))
    FeedbackStore(tmp_path).add(Feedback("Who was Moses?", "A prophet.", False, {"temperature": 0.9}, comment="too short"))
    saved = FeedbackStore(tmp_path).all()  # a new store, as after a restart
    assert [(f.question, f.liked, f.settings["temperature"]) for f in saved] == [("What is grace?", True, 0.2), ("Who was Moses?", False, 0.9)]
    assert saved[1].comment == "too short" and saved[0].created_at > 0


def test_doubted_answers_become_rows_of_a_question_set(tmp_path: Path) -> None:
    path = tmp_path / "question_sets" / "from_chat.csv"
    assert append_to_question_set(path, question="What is grace?", answer='He said "=1+1"', notes="misquote") == "chat-001"
    assert append_to_question_set(path, question="Q2", answer="A2") == "chat-002"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [(r["id"], r["question"], r["answer"], r["notes"]) for r in rows] == [
        ("chat-001", "What is grace?", 'He said "=1+1"', "misquote"),
        ("chat-002", "Q2", "A2", ""),
    ]


def test_reviews_update_in_place_per_reviewer(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path)
    key = answer_key("What is grace?", "Ephesians 2:8 and John 3:16.")
    store.rate("Ruth", key, "Ephesians 2:8", 2)
    store.rate("Ruth", key, "John 3:16", 0)
    store.rate("Ruth", key, "John 3:16", 1)  # changed mind
    store.annotate("Ruth", key, note="fine", missing_citations="Romans 3:24")
    store.annotate("Ruth", key, done=True)
    review = store.get("Ruth", key)
    assert dict(review.ratings) == {"Ephesians 2:8": 2, "John 3:16": 1}
    assert (review.note, review.missing_citations, review.done) == ("fine", "Romans 3:24", True)
    assert store.get("Ruth", "unknown") == AnswerReview("unknown")


def test_two_reviewers_never_overwrite_each_other(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path)
    store.rate("Ruth", "k", "John 3:16", 2)
    store.rate("Boaz", "k", "John 3:16", 0)
    store.annotate("Boaz", "k", note="not about love", done=True)
    assert store.get("Ruth", "k") == AnswerReview("k", {"John 3:16": 2})
    assert store.get("Boaz", "k") == AnswerReview("k", {"John 3:16": 0}, "not about love", "", True)
    assert store.reviewers() == ["Boaz", "Ruth"]
    assert sorted((r.reviewer, r.rating) for r in store.ratings(["k"])) == [("Boaz", 0), ("Ruth", 2)]


@pytest.mark.parametrize(
    ("name", "problem"),
    [("", "Type your reviewer name first"), ("   ", "Type your reviewer name first"), ("x" * 81, "at most 80 characters")],
)
def test_a_rating_needs_a_reviewer_name(tmp_path: Path, name: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        ReviewStore(tmp_path).rate(name, "k", "John 3:16", 2)


@pytest.mark.parametrize("rating", [3, -1, True, "2"])
def test_a_bad_rating_is_refused_plainly(tmp_path: Path, rating: object) -> None:
    with pytest.raises(ValueError, match=r"2 \(supports\), 1 \(partly supports\) or 0"):
        ReviewStore(tmp_path).rate("Ruth", "k", "John 3:16", rating)  # type: ignore[arg-type]


def test_reviews_from_before_reviewer_names_are_kept(tmp_path: Path) -> None:
    """A store written by the earlier version (no reviewer column) opens with its reviews intact."""
    with sqlite3.connect(tmp_path / "reviews.sqlite3") as old:
        old.execute("CREATE TABLE citation_reviews (answer_key TEXT, citation TEXT, rating INTEGER, updated_at REAL, PRIMARY KEY (answer_key, citation))")
        old.execute("CREATE TABLE answer_reviews (answer_key TEXT PRIMARY KEY, note TEXT, missing_citations TEXT, done INTEGER, updated_at REAL)")
        old.execute("INSERT INTO citation_reviews VALUES ('k', 'John 3:16', 1, 100.0)")
        old.execute("INSERT INTO answer_reviews VALUES ('k', 'kept', '', 1, 100.0)")
    store = ReviewStore(tmp_path)
    assert store.get(EARLIER_REVIEWER, "k") == AnswerReview("k", {"John 3:16": 1}, "kept", "", True)
    assert ReviewStore(tmp_path).reviewers() == [EARLIER_REVIEWER]  # moved once, not twice


def test_a_review_saved_by_one_process_is_there_for_the_next(tmp_path: Path) -> None:
    write = "from pathlib import Path; from core.stores.reviews import ReviewStore; ReviewStore(Path(r'%s')).rate('Ruth', 'k', 'Psalms 23', 1)" % tmp_path
    subprocess.run([sys.executable, "-c", write], cwd=REPO, check=True, timeout=60)
    assert dict(ReviewStore(tmp_path).get("Ruth", "k").ratings) == {"Psalms 23": 1}


def test_killing_a_writer_mid_run_loses_nothing_already_saved(tmp_path: Path) -> None:
    writer = (
        "import sys; from pathlib import Path; from core.stores.reviews import ReviewStore\n"
        "store = ReviewStore(Path(r'%s'))\n"
        "i = 0\n"
        "while True:\n"
        "    store.rate('Ruth', f'k{i}', 'John 3:16', i %% 3); print(i, flush=True); i += 1\n"
    ) % tmp_path
    process = subprocess.Popen([sys.executable, "-c", writer], cwd=REPO, stdout=subprocess.PIPE, text=True)
    confirmed = [int(process.stdout.readline()) for _ in range(50)]  # type: ignore[union-attr]
    process.kill()  # SIGKILL, in the middle of whatever write comes next
    process.wait(timeout=10)
    store = ReviewStore(tmp_path)
    assert all(store.get("Ruth", f"k{i}").ratings == {"John 3:16": i % 3} for i in confirmed)
