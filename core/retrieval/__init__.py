"""Grounding: find Bible passages for a question, over the KJV and ASV text the installed packages ship.

Importing this package loads nothing; the index is opened (built and cached the first
time) by :func:`get_retriever`.
"""

from core.retrieval.index import IndexSpec
from core.retrieval.retriever import MAX_PASSAGES, Passage, ScriptureRetriever, get_retriever

__all__ = ["MAX_PASSAGES", "IndexSpec", "Passage", "ScriptureRetriever", "get_retriever"]
