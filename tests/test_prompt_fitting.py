"""Prompt assembly and truncation, with a simple word counter standing in for a tokenizer."""

from __future__ import annotations

import pytest

from core.errors import InvalidRequestError
from core.generation.params import ChatMessage
from core.generation.prompting import PromptParts, fit_prompt


def count_words(messages: list[ChatMessage]) -> int:
    return sum(len(m.content.split()) + 3 for m in messages)


def parts(history_turns: int = 0, passages: int = 0, question: str = "What is grace?") -> PromptParts:
    history = []
    for turn in range(history_turns):
        history += [ChatMessage("user", f"old question {turn} " * 5), ChatMessage("assistant", f"old answer {turn} " * 5)]
    context = [f"passage {i} " * 10 for i in range(passages)]
    return PromptParts.from_messages([*history, ChatMessage("user", question)], system_prompt="Be kind.", context=context)


def test_context_goes_into_the_system_prompt_numbered() -> None:
    messages = PromptParts.from_messages([ChatMessage("user", "Q?")], system_prompt="Be kind.", context=["In the beginning", " "]).to_messages()
    assert messages[0] == ChatMessage("system", "Be kind.\n\nBase your answer on these passages:\n[1] In the beginning")
    assert messages[-1] == ChatMessage("user", "Q?")


def test_a_prompt_that_fits_is_untouched() -> None:
    messages, report = fit_prompt(parts(history_turns=1, passages=1), count_words, budget=1000)
    assert report is None and len(messages) == 4


def test_oldest_history_goes_first_in_pairs_then_context() -> None:
    original = parts(history_turns=3, passages=2)
    total = count_words(original.to_messages())
    # room for everything but one history turn (two messages of 13 words + 3 each)
    messages, report = fit_prompt(original, count_words, budget=total - 1)
    assert report is not None
    assert (report.dropped_history_messages, report.dropped_context_passages) == (2, 0)
    assert messages[1].content.startswith("old question 1")
    messages, report = fit_prompt(original, count_words, budget=40)
    assert (report.dropped_history_messages, report.dropped_context_passages) == (6, 1)
    assert messages[0].content.startswith("Be kind.") and messages[-1].content == "What is grace?"


def test_an_overlong_question_loses_its_middle_and_keeps_both_ends() -> None:
    question = "START " + "filler " * 5000 + "what does John 3:16 mean? END"
    messages, report = fit_prompt(parts(question=question), count_words, budget=500)
    asked = messages[-1].content
    assert count_words(messages) <= 500
    assert asked.startswith("START") and asked.endswith("END") and "[…]" in asked
    assert report.question_chars_removed == len(question) - len(asked.replace(" […] ", ""))
    assert "left out" in report.describe()


def test_a_system_prompt_longer_than_the_window_is_refused_plainly() -> None:
    huge = PromptParts.from_messages([ChatMessage("user", "Q?")], system_prompt="word " * 900, context=[])
    with pytest.raises(InvalidRequestError, match="system prompt alone is longer"):
        fit_prompt(huge, count_words, budget=100)


@pytest.mark.parametrize("question", ["", "   \n\t "])
def test_an_empty_question_is_refused(question: str) -> None:
    with pytest.raises(InvalidRequestError, match="The question is empty"):
        PromptParts.from_messages([ChatMessage("user", question)], system_prompt=None, context=[])


def test_retrieved_passages_follow_the_given_context() -> None:
    messages = PromptParts.from_messages(
        [ChatMessage("user", "Q?")], system_prompt="Be kind.", context=["Given passage"], retrieved=["John 3:16 — For God so loved", " "]
    ).to_messages()

    assert messages[0].content == "Be kind.\n\nBase your answer on these passages:\n[1] Given passage\n\n[2] John 3:16 — For God so loved"


def test_retrieved_passages_are_cut_first_weakest_first_then_the_usual_order() -> None:
    history = [ChatMessage("user", "old question " * 5), ChatMessage("assistant", "old answer " * 5)]
    original = PromptParts.from_messages(
        [*history, ChatMessage("user", "What is grace?")],
        system_prompt="Be kind.",
        context=["given " * 10],
        retrieved=[f"found{i} " * 10 for i in range(3)],
    )
    total = count_words(original.to_messages())

    messages, report = fit_prompt(original, count_words, budget=total - 1)
    assert (report.dropped_retrieved_passages, report.dropped_history_messages, report.dropped_context_passages) == (1, 0, 0)
    assert "found1" in messages[0].content and "found2" not in messages[0].content
    assert "1 retrieved Scripture passage(s)" in report.describe()

    messages, report = fit_prompt(original, count_words, budget=total - 35)
    assert (report.dropped_retrieved_passages, report.dropped_history_messages, report.dropped_context_passages) == (3, 2, 0)
    assert "given" in messages[0].content and len(messages) == 2
