"""Retrieval over the shipped Bible text: the real index (built once, in SCRIBES_CACHE_DIR), its cache, its passages.

A few tests build an index of their own in a temporary folder, to see the cache being
written, read back, rebuilt when damaged and skipped when it cannot be written; the rest
share the process's retriever over the session's cache.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from core.retrieval import MAX_PASSAGES, IndexSpec, Passage, ScriptureRetriever, get_retriever
from core.retrieval.quality import first_hit, matching_passage, recall, reciprocal_rank
from core.scoring.references import extract_citations, parse_reference_list, verse_text
from ui.common.citations import citations_markdown, passages_markdown

ROOT = Path(__file__).resolve().parent.parent
JOHN_3_16 = 43003016
PHILIPPIANS_4_6 = 50004006


@pytest.fixture(scope="session")
def retriever(cache_dir: Path) -> ScriptureRetriever:
    return get_retriever(cache_dir)


@pytest.mark.parametrize(
    ("question", "verse_id", "k"),
    [
        ("For God so loved the world", JOHN_3_16, 1),
        ("How can I stop being anxious about everything?", PHILIPPIANS_4_6, 10),
    ],
)
def test_the_passage_that_answers_is_found(retriever: ScriptureRetriever, question: str, verse_id: int, k: int) -> None:
    passages = retriever.search(question, k)

    assert any(verse_id in p.verse_ids for p in passages), [p.reference for p in passages]


def test_a_passage_is_a_verse_with_its_neighbours_in_the_normal_form(retriever: ScriptureRetriever) -> None:
    best = retriever.search("For God so loved the world", 1)[0]

    assert best.reference == "John 3:15-17"
    assert best.verse_ids == (43003015, JOHN_3_16, 43003017)
    assert best.text == " ".join(verse_text(v) for v in best.verse_ids)
    assert best.as_context() == f"John 3:15-17 — {best.text}"
    # the reference parses back to the same verses, so results files can be re-read
    assert parse_reference_list(best.reference)[0].verse_ids == best.verse_ids


def test_passages_stay_in_their_chapter_and_never_repeat_a_centre(retriever: ScriptureRetriever) -> None:
    passages = retriever.search("In the beginning God created the heaven and the earth", MAX_PASSAGES)

    assert len(passages) == MAX_PASSAGES
    assert passages[0].reference == "Genesis 1:1-2"  # the first verse has no neighbour before it
    assert [p.score for p in passages] == sorted((p.score for p in passages), reverse=True)
    for passage in passages:
        assert len({v // 1000 for v in passage.verse_ids}) == 1, passage.reference
    centres = [p.verse_ids[len(p.verse_ids) // 2] for p in passages if len(p.verse_ids) == 3]
    assert len(centres) == len(set(centres))


@pytest.mark.parametrize("question", ["xyzzy plugh", "the and of", "   "])
def test_a_question_with_no_indexed_word_finds_nothing(retriever: ScriptureRetriever, question: str) -> None:
    assert retriever.search(question, 5) == ()


@pytest.mark.parametrize("k", [0, MAX_PASSAGES + 1])
def test_a_number_of_passages_out_of_range_is_refused(retriever: ScriptureRetriever, k: int) -> None:
    with pytest.raises(ValueError, match=f"from 1 to {MAX_PASSAGES}, not {k}"):
        retriever.search("grace", k)


def test_the_process_keeps_one_retriever_per_cache(cache_dir: Path, retriever: ScriptureRetriever) -> None:
    assert get_retriever(cache_dir) is retriever


def test_the_index_is_cached_then_loaded_and_a_damaged_cache_is_rebuilt(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spec = IndexSpec(("KJV",), radius=0)  # the smallest index: what is tested is the cache
    built = ScriptureRetriever.open(tmp_path, spec)
    folder = tmp_path / "retrieval" / spec.fingerprint
    files = sorted(p.name for p in folder.iterdir())
    assert "params.index.json" in files and not [p for p in folder.parent.iterdir() if p.name.startswith(".")]
    written = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}

    loaded = ScriptureRetriever.open(tmp_path, spec)
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == written  # read, not built again
    assert [p.reference for p in loaded.search("Jesus wept", 3)] == [p.reference for p in built.search("Jesus wept", 3)]

    (folder / "params.index.json").write_text("{ not json")
    with caplog.at_level(logging.WARNING, logger="scribes.retrieval"):
        rebuilt = ScriptureRetriever.open(tmp_path, spec)
    assert "could not be read" in caplog.text
    assert rebuilt.search("Jesus wept", 1)[0].reference == "John 11:34-36"


def test_a_cache_folder_that_is_a_file_keeps_the_index_in_memory(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "retrieval").write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="scribes.retrieval"):
        retriever = ScriptureRetriever.open(tmp_path, IndexSpec(("KJV",), radius=0))

    assert "kept in memory only" in caplog.text
    assert retriever.search("Jesus wept", 1)[0].reference == "John 11:34-36"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"versions": ("NIV",)}, "Unknown Bible version"), ({"versions": ()}, "Unknown Bible version"), ({"radius": -1}, "radius must be 0 or more")],
)
def test_a_bad_index_spec_is_refused(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IndexSpec(**kwargs)


def test_importing_the_package_loads_no_index_library() -> None:
    code = "import sys, core.retrieval, core.evaluation; print('bm25s' in sys.modules, 'Stemmer' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)

    assert done.stdout.strip() == "False False"


EXPECTED = parse_reference_list("Philippians 4:6-7; 1 Peter 5:7")


@pytest.mark.parametrize(
    ("passages", "rank", "share", "rr"),
    [
        ([(50004005, 50004006, 50004007)], 0, 0.5, 1.0),  # shares a verse with the first expected reference
        ([(43003016,), (60005006, 60005007, 60005008)], 1, 0.5, 0.5),
        ([(43003016,), (50004007,), (60005007,)], 1, 1.0, 0.5),
        ([(43003016,)], None, 0.0, 0.0),
        ([], None, 0.0, 0.0),
    ],
)
def test_hit_recall_and_reciprocal_rank(passages: list[tuple[int, ...]], rank: int | None, share: float, rr: float) -> None:
    assert first_hit(EXPECTED, passages) == rank
    assert recall(EXPECTED, passages) == share
    assert reciprocal_rank(EXPECTED, passages) == rr


def test_recall_without_expected_references_is_undefined() -> None:
    assert recall([], [(43003016,)]) is None and first_hit([], [(43003016,)]) is None


def test_a_passage_is_a_plain_value() -> None:
    passage = Passage("Jude 3-5", (65001003, 65001004, 65001005), "text", 1.5)

    assert passage.as_context() == "Jude 3-5 — text"
    assert parse_reference_list(passage.reference)[0].verse_ids == passage.verse_ids


def test_a_citation_from_the_passages_is_matched_to_its_passage() -> None:
    passages = (Passage("John 3:15-17", (43003015, 43003016, 43003017), "...", 2.0), Passage("Jude 3-5", (65001003, 65001004, 65001005), "...", 1.0))
    cited = {c.text: matching_passage(c, passages) for c in extract_citations("See John 3:16-18, Jude 5 and Romans 3:23, and John 3:99.")}

    assert cited == {"John 3:16-18": passages[0], "Jude 5": passages[1], "Romans 3:23": None, "John 3:99": None}


def test_chat_marks_a_citation_of_a_given_passage_as_from_the_passages(retriever: ScriptureRetriever) -> None:
    passages = retriever.search("For God so loved the world", 3)
    shown = citations_markdown("As John 3:16 says, and Psalm 23:1 too.", passages)
    john, psalm = (line for line in shown.splitlines() if line.startswith("- "))
    assert "John 3:16" in john and "from the passages (John 3:15-17)" in john
    assert "from the passages" not in psalm
    assert "from the passages" not in citations_markdown("As John 3:16 says.")  # not grounded: no mark
    listed = passages_markdown(passages)
    assert listed.startswith("**3 passages given to the model**") and "**John 3:15-17**" in listed
