"""Assemble the chat sent to a model, and make it fit the context window.

The system prompt carries the optional context passages: the ones a person gave first,
then the ones retrieval found (:mod:`core.retrieval`). When the whole prompt is longer
than ``context_window - max_new_tokens``, retrieved passages go first (last first: they
are ranked, so the weakest goes), then the oldest history, then the given context passages
(last first), and only then the middle of the question itself; the system prompt and the
question are always kept. What was cut is reported, never silent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from core.errors import InvalidRequestError
from core.generation.params import ChatMessage
from core.generation.types import TruncationReport

TokenCounter = Callable[[list[ChatMessage]], int]

#: The pastoral-assistant instructions used by the Chat tab, the Tune tab and the evaluation
#: runner unless a person writes their own.
DEFAULT_SYSTEM_PROMPT = (
    "You are a warm, careful pastoral assistant. Answer questions about the Bible and the "
    "Christian life in plain words. Support what you say with Bible verses, cited by book, "
    "chapter and verse (for example John 3:16), and quote them accurately. If the Bible does "
    "not address something, or a verse or book does not exist, say so rather than inventing one. "
    "For matters of health, safety or crisis, gently encourage the person to seek help from a "
    "pastor, doctor or counsellor."
)

_ELISION = " […] "
_MAX_QUESTION_CUTS = 8


@dataclass(frozen=True)
class PromptParts:
    """A chat split into the pieces truncation treats differently."""

    system_prompt: str | None
    context: tuple[str, ...]
    history: tuple[ChatMessage, ...]
    question: str
    retrieved: tuple[str, ...] = ()  # found for the question, best first; the first to be cut

    @classmethod
    def from_messages(
        cls,
        messages: Sequence[ChatMessage],
        *,
        system_prompt: str | None,
        context: Sequence[str],
        retrieved: Sequence[str] = (),
    ) -> PromptParts:
        if not messages or messages[-1].role != "user":
            raise InvalidRequestError("The conversation must end with a question from the user.")
        if not messages[-1].content.strip():
            raise InvalidRequestError("The question is empty. Type a question and try again.")
        system = [m.content for m in messages if m.role == "system"]
        history = tuple(m for m in messages[:-1] if m.role != "system")
        prompt = system_prompt if system_prompt is not None else ("\n\n".join(system) or None)
        return cls(prompt, _passages(context), history, messages[-1].content, _passages(retrieved))

    def to_messages(self) -> list[ChatMessage]:
        system = self.system_prompt or ""
        passages = (*self.context, *self.retrieved)
        if passages:
            numbered = "\n\n".join(f"[{i}] {passage}" for i, passage in enumerate(passages, 1))
            system = f"{system}\n\nBase your answer on these passages:\n{numbered}".strip()
        head = [ChatMessage("system", system)] if system else []
        return [*head, *self.history, ChatMessage("user", self.question)]


def _passages(texts: Sequence[str]) -> tuple[str, ...]:
    return tuple(p.strip() for p in texts if p and p.strip())


def fit_prompt(parts: PromptParts, count_tokens: TokenCounter, budget: int) -> tuple[list[ChatMessage], TruncationReport | None]:
    """Cut ``parts`` until it fits ``budget`` tokens; return the messages and what was cut."""
    original = total = count_tokens(parts.to_messages())
    if total <= budget:
        return parts.to_messages(), None
    history, context, question = list(parts.history), list(parts.context), parts.question
    retrieved = list(parts.retrieved)
    dropped_history = dropped_context = dropped_retrieved = 0

    def fitted() -> PromptParts:
        return PromptParts(parts.system_prompt, tuple(context), tuple(history), question, tuple(retrieved))

    def measure() -> int:
        return count_tokens(fitted().to_messages())

    while retrieved and total > budget:
        retrieved.pop()
        dropped_retrieved += 1
        total = measure()
    while history and total > budget:
        history.pop(0)
        dropped_history += 1
        if history and history[0].role == "assistant":  # keep user/assistant turns paired
            history.pop(0)
            dropped_history += 1
        total = measure()
    while context and total > budget:
        context.pop()
        dropped_context += 1
        total = measure()
    for _ in range(_MAX_QUESTION_CUTS):
        if total <= budget:
            break
        question = _cut_middle(question, chars_per_token=len(question) / max(total, 1), excess_tokens=total - budget)
        total = measure()
    if total > budget:
        raise InvalidRequestError(
            f"The system prompt alone is longer than the model's context window allows ({budget} tokens). Shorten it."
        )
    report = TruncationReport(
        budget_tokens=budget,
        original_tokens=original,
        final_tokens=total,
        dropped_history_messages=dropped_history,
        dropped_context_passages=dropped_context,
        dropped_retrieved_passages=dropped_retrieved,
        question_chars_removed=len(parts.question) - len(question.replace(_ELISION, "")),
    )
    return fitted().to_messages(), report


def _cut_middle(text: str, *, chars_per_token: float, excess_tokens: int) -> str:
    """Remove enough characters from the middle of ``text``; the start and the end often hold the actual question."""
    remove = int(excess_tokens * max(chars_per_token, 1.0) * 1.1) + 16
    keep = max(len(text) - remove, 0)
    if keep == 0:
        return ""
    head, tail = text[: keep // 2], text[len(text) - (keep - keep // 2) :]
    if _ELISION in text:  # an earlier cut: widen the gap instead of adding another marker
        head, tail = head.split(_ELISION)[0], tail.split(_ELISION)[-1]
    return f"{head}{_ELISION}{tail}"
