"""Feedback and review stores: what people save stays saved, across processes and restarts."""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from core.feedback import Feedback, FeedbackStore, append_to_question_set
from core.reviews import ReviewStore, answer_key, manual_citation_accuracy

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


def test_reviews_update_in_place_and_give_manual_accuracy(tmp_path: Path) -> None:
    store = ReviewStore(tmp_path)
    key = answer_key("What is grace?", "Ephesians 2:8 and John 3:16.")
    store.rate(key, "Ephesians 2:8", 2)
    store.rate(key, "John 3:16", 0)
    store.rate(key, "John 3:16", 1)  # changed mind
    store.annotate(key, note="fine", missing_citations="Romans 3:24")
    store.annotate(key, done=True)
    review = store.get(key)
    assert dict(review.ratings) == {"Ephesians 2:8": 2, "John 3:16": 1}
    assert (review.note, review.missing_citations, review.done) == ("fine", "Romans 3:24", True)
    assert manual_citation_accuracy([review]) == pytest.approx(0.75)
    assert manual_citation_accuracy([store.get("unknown")]) is None


def test_a_bad_rating_is_refused_plainly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"2 \(supports\), 1 \(partly supports\) or 0"):
        ReviewStore(tmp_path).rate("k", "John 3:16", 3)


def test_reviews_export_and_import_into_another_store(tmp_path: Path) -> None:
    source = ReviewStore(tmp_path / "a")
    source.rate("k1", "John 3:16", 2)
    source.annotate("k2", note="no citations at all", done=True)
    exported = source.export(["k1", "k2", "k3"])
    assert len(exported) == 2
    target = ReviewStore(tmp_path / "b")
    assert target.import_rows(exported) == 2
    assert dict(target.get("k1").ratings) == {"John 3:16": 2} and target.get("k2").note == "no citations at all"


def test_a_review_saved_by_one_process_is_there_for_the_next(tmp_path: Path) -> None:
    write = "from pathlib import Path; from core.reviews import ReviewStore; ReviewStore(Path(r'%s')).rate('k', 'Psalms 23', 1)" % tmp_path
    subprocess.run([sys.executable, "-c", write], cwd=REPO, check=True, timeout=60)
    assert dict(ReviewStore(tmp_path).get("k").ratings) == {"Psalms 23": 1}


def test_killing_a_writer_mid_run_loses_nothing_already_saved(tmp_path: Path) -> None:
    writer = (
        "import sys; from pathlib import Path; from core.reviews import ReviewStore\n"
        "store = ReviewStore(Path(r'%s'))\n"
        "i = 0\n"
        "while True:\n"
        "    store.rate(f'k{i}', 'John 3:16', i %% 3); print(i, flush=True); i += 1\n"
    ) % tmp_path
    process = subprocess.Popen([sys.executable, "-c", writer], cwd=REPO, stdout=subprocess.PIPE, text=True)
    confirmed = [int(process.stdout.readline()) for _ in range(50)]  # type: ignore[union-attr]
    process.kill()  # SIGKILL, in the middle of whatever write comes next
    process.wait(timeout=10)
    store = ReviewStore(tmp_path)
    assert all(store.get(f"k{i}").ratings == {"John 3:16": i % 3} for i in confirmed)
