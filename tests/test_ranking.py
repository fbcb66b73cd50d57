"""Re-ranking BM25's passages by an embedding model, against a real HTTP endpoint on 127.0.0.1.

The endpoint (tests/embedding_server.py) embeds texts by their letter counts, so the order
a correct re-ranker gives can be computed here; its bad modes check that a failure keeps
BM25's order and says why.
"""

from __future__ import annotations

from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
from embedding_server import embedding_server, letter_vector
from fault_server import refused_port

from core.config import Settings
from core.evaluation.question_sets import load_question_set
from core.evaluation.runner import run_evaluation
from core.generation.service import TextGenService
from core.retrieval import MAX_PASSAGES, ScriptureRetriever, get_retriever
from core.retrieval.ranking import BM25, EmbeddingReranker, find_passages

QUESTION = "Who wept?"


@pytest.fixture(autouse=True)
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # conftest sets it; we only reach 127.0.0.1


@pytest.fixture(scope="module")
def retriever(cache_dir: Path) -> ScriptureRetriever:
    return get_retriever(cache_dir)


def _cosine(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y)))


@pytest.mark.parametrize("mode", ["ok", "per-token"])
def test_the_passages_come_in_the_embedding_models_order(retriever: ScriptureRetriever, mode: str) -> None:
    candidates = retriever.search(QUESTION, MAX_PASSAGES)
    question = letter_vector(QUESTION)
    expected = sorted(candidates, key=lambda p: -_cosine(question, letter_vector(p.text)))[:5]

    with embedding_server(mode) as server:  # type: ignore[arg-type]
        grounding = find_passages(QUESTION, 5, retriever, EmbeddingReranker(server.url, timeout_s=5))

    assert grounding.passages == tuple(expected) and grounding.passages != candidates[:5]
    assert (grounding.ranking, grounding.fallback) == (f"BM25, re-ranked by {server.url}", None)
    assert server.requests == [{"inputs": [QUESTION, *(p.text for p in candidates)]}]


@pytest.mark.parametrize(
    ("mode", "why"),
    [("status-500", "it answered HTTP 500."), ("one-short", f"it answered an array of shape (20, 27) for {MAX_PASSAGES + 1} texts.")],
)
def test_a_failing_model_keeps_bm25s_order_and_says_why(retriever: ScriptureRetriever, mode: str, why: str) -> None:
    with embedding_server(mode) as server:  # type: ignore[arg-type]
        grounding = find_passages(QUESTION, 5, retriever, EmbeddingReranker(server.url, timeout_s=5))

    assert grounding.passages == retriever.search(QUESTION, 5) and grounding.ranking == BM25
    assert grounding.fallback is not None
    assert grounding.fallback.startswith(f"The embedding model {server.url} was not used: ") and why in grounding.fallback
    assert grounding.fallback.endswith("The passages are in BM25's order.")


def test_an_unreachable_model_keeps_bm25s_order(retriever: ScriptureRetriever) -> None:
    with refused_port() as port:
        grounding = find_passages(QUESTION, 3, retriever, EmbeddingReranker(f"http://127.0.0.1:{port}/embed", timeout_s=5))

    assert grounding.passages == retriever.search(QUESTION, 3) and grounding.ranking == BM25
    assert "was not used: it could not be reached (ConnectError)." in (grounding.fallback or "")


def test_without_a_model_bm25_alone_ranks(retriever: ScriptureRetriever) -> None:
    assert find_passages(QUESTION, 3, retriever) == find_passages(QUESTION, 3, retriever, None)
    assert find_passages(QUESTION, 3, retriever).ranking == BM25
    assert EmbeddingReranker.from_settings(Settings(use_api=False)) is None
    with pytest.raises(ValueError, match="from 1 to 20, not 0"):
        find_passages(QUESTION, 0, retriever, EmbeddingReranker("http://127.0.0.1:9/embed"))


GIVEN = (
    b"id,question,expected_references,answer\n"
    b"g1,Who wept?,John 11:35,Jesus wept (John 11:35).\n"
    b"g2,What is love?,1 Corinthians 13:4-7,Love is patient (1 Corinthians 13:4).\n"
    b"g3,What is faith?,Hebrews 11:1,Faith is the substance of things hoped for (Hebrews 11:1).\n"
)


@pytest.mark.parametrize(("mode", "requests", "reranked"), [("ok", 3, True), ("status-500", 1, False)])
def test_a_grounded_run_reports_what_ranked_its_passages(cache_dir: Path, mode: str, requests: int, reranked: bool) -> None:
    with embedding_server(mode) as server:  # type: ignore[arg-type]
        settings = Settings(use_api=False, cache_dir=cache_dir, embedding_model=server.url, timeout_s=5)
        run = run_evaluation(load_question_set(GIVEN, name="given.csv"), service=TextGenService(settings), ground=2)

    assert len(server.requests) == requests  # after a failure the run does not wait on the model again
    if reranked:
        assert (run.ranking, run.ranking_note) == (f"BM25, re-ranked by {server.url}", None)
    else:
        assert run.ranking == BM25 and (run.ranking_note or "").endswith("(from question 1 of 3 on)")
    assert all(len(row.retrieved or ()) == 2 for row in run.rows)


def test_the_setting_is_read_from_the_environment() -> None:
    assert Settings.from_env({"HF_EMBEDDING_MODEL": " BAAI/bge-small-en-v1.5 "}, dotenv_path=None).embedding_model == "BAAI/bge-small-en-v1.5"
    assert Settings.from_env({}, dotenv_path=None).embedding_model is None
