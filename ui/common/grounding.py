"""Scripture passages for a question, as the Chat and Tune tabs ground their answers."""

from __future__ import annotations

import threading

from core import get_textgen_service
from core.retrieval import Passage, get_retriever

#: Passages a grounded Chat answer is given unless the person picks another number.
DEFAULT_PASSAGES = 5


def passages_for(question: str, count: float | None) -> tuple[Passage, ...]:
    """The ``count`` Bible passages found for the question, best first; none for 0."""
    if not count:
        return ()
    return get_retriever(get_textgen_service().settings.cache_dir).search(question, int(count))


def warm_retriever(ground: bool) -> None:
    """Open the passage index in the background as soon as grounding is switched on, so the
    first grounded answer does not wait for it (building it the first time takes seconds)."""
    if ground:
        threading.Thread(target=get_retriever, args=(get_textgen_service().settings.cache_dir,), name="retriever-warm", daemon=True).start()
