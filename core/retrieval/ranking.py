"""How passages are ranked: BM25 alone, or BM25's re-ranked by an embedding model through the Inference API.

The embedding model is optional (``HF_EMBEDDING_MODEL``).

BM25 picks the candidates from the whole Bible; the embedding model only orders them by
cosine similarity to the question, so one request per question embeds only the question
and those candidates. When the model cannot be reached, or answers with anything but one vector per
text, the BM25 order is kept and :class:`Grounding` says why, so a run reports what its
passages were actually ranked by.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import httpx2
import numpy as np
from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError

from core.config import Settings
from core.retrieval.retriever import MAX_PASSAGES, Passage, ScriptureRetriever, check_passage_count

BM25 = "BM25"


@dataclass(frozen=True)
class Grounding:
    """The passages for one question and how they were ranked."""

    passages: tuple[Passage, ...]
    ranking: str  # "BM25", or "BM25, re-ranked by <model>"
    fallback: str | None = None  # why the embedding model's order is not used; None when it is (or none is set)


class EmbeddingReranker:
    """Orders passages by ``feature_extraction`` similarity to the question; one per configured model."""

    def __init__(self, model: str, *, token: str | None = None, provider: str | None = None, timeout_s: float = 60.0):
        self.model = model
        self._client = InferenceClient(model=model, provider=provider, api_key=token, timeout=timeout_s)  # type: ignore[arg-type]

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddingReranker | None:
        if not settings.embedding_model:
            return None
        return cls(settings.embedding_model, token=settings.token, provider=settings.provider, timeout_s=settings.timeout_s)

    def rerank(self, question: str, candidates: Sequence[Passage], k: int) -> Grounding:
        """The ``k`` candidates most similar to ``question``; BM25's first ``k``, with the reason, if the model fails."""
        if not candidates:
            return Grounding((), f"{BM25}, re-ranked by {self.model}")
        texts = [question, *(p.text for p in candidates)]
        try:
            vectors = np.asarray(self._client.feature_extraction(texts), dtype=np.float32)
        except (OSError, httpx2.HTTPError, ValueError) as error:
            return self._fallback(candidates, k, _what_went_wrong(error))
        if vectors.ndim == 3:  # a model without pooling answers one vector per token
            vectors = vectors.mean(axis=1)
        if vectors.ndim != 2 or len(vectors) != len(texts):
            return self._fallback(candidates, k, f"it answered an array of shape {vectors.shape} for {len(texts)} texts")
        norms = np.linalg.norm(vectors, axis=1)
        if not np.all(np.isfinite(vectors)) or not np.all(norms > 0):
            return self._fallback(candidates, k, "it answered empty or non-finite vectors")
        similarity = (vectors[1:] @ vectors[0]) / (norms[1:] * norms[0])
        order = np.argsort(-similarity, kind="stable")[:k]
        return Grounding(tuple(candidates[i] for i in order), f"{BM25}, re-ranked by {self.model}")

    def _fallback(self, candidates: Sequence[Passage], k: int, why: str) -> Grounding:
        reason = f"The embedding model {self.model} was not used: {why}. The passages are in BM25's order."
        return Grounding(tuple(candidates[:k]), BM25, reason)


def _what_went_wrong(error: Exception) -> str:
    """One line for a person: the status, a timeout or an unreachable host (the library's text runs to paragraphs)."""
    if isinstance(error, HfHubHTTPError) and error.response is not None:
        return f"it answered HTTP {error.response.status_code}"
    if isinstance(error, TimeoutError | httpx2.TimeoutException):
        return "it did not answer in time"
    if isinstance(error, httpx2.TransportError | ConnectionError):
        return f"it could not be reached ({type(error).__name__})"
    return f"it failed ({type(error).__name__})"


def find_passages(question: str, k: int, retriever: ScriptureRetriever, reranker: EmbeddingReranker | None = None) -> Grounding:
    """``k`` passages for ``question``: BM25's, or BM25's best :data:`MAX_PASSAGES` re-ranked by ``reranker``."""
    check_passage_count(k)
    if reranker is None:
        return Grounding(retriever.search(question, k), BM25)
    return reranker.rerank(question, retriever.search(question, MAX_PASSAGES), k)
