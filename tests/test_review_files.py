"""Reviews out and in: CSV and JSON lines round-trip, merge without duplicates, bad files named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.evaluation.review_files import COLUMNS, read_reviews, write_exports
from core.stores.reviews import ReviewRecord, ReviewStore


def _filled(folder: Path) -> ReviewStore:
    store = ReviewStore(folder)
    store.rate("Ruth", "k1", "John 3:16", 2, question_id="q1", question="What is love?")
    store.rate("Boaz", "k1", "John 3:16", 1, question_id="q1", question="What is love?")
    store.rate("Ruth", "k2", "Psalms 23:1", 0, question_id="q2", question="=HYPERLINK(\"x\")")
    store.annotate("Ruth", "k2", note="+cmd, a note that looks like a formula", missing_citations="Romans 8:28", done=True)
    return store


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_an_export_imports_into_an_empty_store_as_it_was(tmp_path: Path, suffix: str) -> None:
    source = _filled(tmp_path / "a")
    csv_path, jsonl_path = write_exports(source.export(), tmp_path / "out", "reviews")
    path = csv_path if suffix == ".csv" else jsonl_path
    target = ReviewStore(tmp_path / "b")
    counts = target.import_records(read_reviews(path))
    assert (counts.added, counts.updated, counts.unchanged) == (4, 0, 0)
    for reviewer in ("Ruth", "Boaz"):
        for key in ("k1", "k2"):
            assert target.get(reviewer, key) == source.get(reviewer, key)
    def rows(store: ReviewStore) -> list[tuple]:
        return sorted((r.reviewer, r.answer_key, r.question_id, r.question, r.citation, r.rating or -1, r.note, round(r.updated_at, 3)) for r in store.export())

    assert rows(target) == rows(source)  # times included, to the millisecond


def test_the_csv_names_every_column_and_neutralises_formulas(tmp_path: Path) -> None:
    csv_path, jsonl_path = write_exports(_filled(tmp_path).export(), tmp_path / "out", "reviews")
    text = csv_path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == ",".join(COLUMNS)
    assert "'=HYPERLINK" in text and "'+cmd" in text
    rows = [json.loads(line) for line in jsonl_path.read_text(encoding="utf-8").splitlines()]
    assert {"reviewer", "updated_at", "answer_key", "question_id", "citation", "rating", "note"} <= set(rows[0])
    assert rows[0]["updated_at"].endswith("+00:00")


def test_importing_twice_adds_nothing_and_the_newer_review_wins(tmp_path: Path) -> None:
    source = _filled(tmp_path / "a")
    _, jsonl = write_exports(source.export(), tmp_path / "out", "first")
    target = _filled(tmp_path / "b")  # the same people reviewed here too, later
    target.rate("Ruth", "k1", "John 3:16", 0)  # Ruth changed her mind here, after the export
    counts = target.import_records(read_reviews(jsonl))
    assert counts.added == 0 and counts.unchanged == 4
    assert target.get("Ruth", "k1").ratings == {"John 3:16": 0}
    assert target.import_records(read_reviews(jsonl)).unchanged == 4  # again: still no duplicates
    assert len(target.export()) == 4
    # a newer export from elsewhere does replace an older review here
    source.rate("Boaz", "k1", "John 3:16", 2)
    _, newer = write_exports(source.export(), tmp_path / "out", "second")
    assert target.import_records(read_reviews(newer)).updated == 1
    assert target.get("Boaz", "k1").ratings == {"John 3:16": 2}


GOOD_ROW = "Ruth,2026-12-01T09:30:00+00:00,k1,q1,What is love?,John 3:16,2,,,False"


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("a.csv", "reviewer,answer_key\nRuth,k1\n", "a.csv has no column updated_at: it is not a reviews export"),
        ("b.csv", ",".join(COLUMNS) + "\n" + GOOD_ROW + "\n" + GOOD_ROW.replace(",2,", ",5,") + "\n", "b.csv, row 3, column rating: 5 is not a rating"),
        ("c.csv", ",".join(COLUMNS) + "\n" + GOOD_ROW.replace("Ruth", "") + "\n", "c.csv, row 2, column reviewer: is empty"),
        ("d.csv", ",".join(COLUMNS) + "\n" + GOOD_ROW.replace("2026-12-01T09:30:00+00:00", "yesterday") + "\n", "d.csv, row 2, column updated_at: 'yesterday' is not a time"),
        ("h.csv", ",".join(COLUMNS) + "\n" + GOOD_ROW.replace("John 3:16", "") + "\n", "h.csv, row 2, column citation: is empty, but the row has a rating"),
        ("e.jsonl", '{"reviewer": "Ruth"}\nnot json\n', "e.jsonl, line 2: not JSON"),
        ("f.jsonl", "[1, 2]\n", "f.jsonl, line 1: each line must be one review"),
        ("g.jsonl", json.dumps({"reviewer": "Ruth", "updated_at": "2026-12-01T09:30:00+00:00", "answer_key": "k", "citation": "John 3:16"}) + "\n",
         "g.jsonl, line 1, column rating: nothing is not a rating"),
    ],
)
def test_a_bad_reviews_file_is_refused_whole_with_where_and_why(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    store = ReviewStore(tmp_path / "data")
    with pytest.raises(ValueError) as raised:
        store.import_records(read_reviews(path))
    assert message in str(raised.value)
    assert store.export() == []  # nothing half-imported


def test_a_file_that_is_not_text_is_named(tmp_path: Path) -> None:
    path = tmp_path / "reviews.csv"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(ValueError, match="reviews.csv is not UTF-8 text"):
        read_reviews(path)


def test_a_record_keeps_its_reviewer_time_and_rating(tmp_path: Path) -> None:
    record = ReviewRecord("Ruth", 1_800_000_000.123, "k", "q", "Q?", "John 3:16", 1)
    csv_path, jsonl_path = write_exports([record], tmp_path, "one")
    for path in (csv_path, jsonl_path):
        (back,) = read_reviews(path)
        assert (back.reviewer, back.answer_key, back.citation, back.rating) == ("Ruth", "k", "John 3:16", 1)
        assert back.updated_at == pytest.approx(record.updated_at, abs=1e-3)


def test_a_reimported_export_is_never_newer_than_its_source(tmp_path: Path) -> None:
    """Times export rounded down to the millisecond, even just below a millisecond boundary."""
    records = [ReviewRecord("Ruth", 1_800_000_000 + i / 1000 - 2e-7, f"k{i}", citation="John 3:16", rating=2) for i in range(200)]
    store = ReviewStore(tmp_path / "data")
    assert store.import_records(records).added == 200
    _, jsonl = write_exports(store.export(), tmp_path, "again")
    assert store.import_records(read_reviews(jsonl)).updated == 0
