"""Whatever a person types reaches the model safely, or gets a plain message back."""

from __future__ import annotations

import pytest

from core import InvalidRequestError
from core.generation.service import TextGenService

SHORT = {"max_new_tokens": 8, "temperature": 0}


@pytest.mark.parametrize("prompt", ["", "   ", "\n\t \n"], ids=["empty", "spaces", "whitespace"])
def test_an_empty_question_is_refused_plainly(fresh_local_service: TextGenService, prompt: str) -> None:
    with pytest.raises(InvalidRequestError, match="The question is empty"):
        fresh_local_service.chat(prompt, **SHORT)


def test_a_100000_character_question_is_cut_to_fit_and_says_so(fresh_local_service: TextGenService) -> None:
    prompt = "Tell me about grace. " + "And also about mercy and peace. " * 3200
    assert len(prompt) > 100_000
    result = fresh_local_service.chat(prompt, **SHORT)
    assert result.truncation is not None and result.truncation.question_chars_removed > 90_000
    assert "characters from the middle of the question" in result.truncation.describe()
    assert result.prompt_tokens <= fresh_local_service.backend().info().context_window - SHORT["max_new_tokens"]


@pytest.mark.parametrize(
    "prompt",
    [
        "What is grace?\x00\x07\x1b[31m\x7f\u202e",  # NUL, bell, an ANSI colour code, DEL, right-to-left override
        "¿Qué dice la Biblia sobre la gracia?",
        "圣经关于恩典说了什么？",
        "Что Библия говорит о благодати?",
        "What is grace? 🙏✝️",
    ],
    ids=["control-characters", "spanish", "chinese", "russian", "emoji"],
)
def test_any_text_gets_an_answer(fresh_local_service: TextGenService, prompt: str) -> None:
    result = fresh_local_service.chat(prompt, **SHORT)
    assert result.text.strip() and 1 <= result.output_tokens <= SHORT["max_new_tokens"]
