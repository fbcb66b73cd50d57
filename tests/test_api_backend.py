"""The API backend against a real OpenAI-compatible server (`transformers serve`) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest

from core.generation.service import TextGenService
from core.generation.types import GenerationResult

QUESTION = "What does the Bible say about grace?"


def test_an_answer_with_usage_counts_from_the_server(api_service: TextGenService) -> None:
    result = api_service.chat(QUESTION, system_prompt="Answer briefly.", max_new_tokens=24, temperature=0)
    assert result.backend == "api" and result.text.strip()
    assert result.output_tokens == 24 and result.finish_reason == "length"
    assert result.prompt_tokens > 10 and not result.usage_estimated
    assert result.ttft_ms is not None and result.ttft_ms < result.duration_ms


def test_streaming_pieces_add_up_and_usage_accumulates(api_service: TextGenService) -> None:
    updates = list(api_service.stream_chat(QUESTION, max_new_tokens=16, temperature=0))
    pieces = [u.delta for u in updates if u.delta]
    result = updates[-1].result
    assert result is not None and len(pieces) >= 4 and "".join(pieces) == result.text
    api_service.chat("Who was Moses?", max_new_tokens=8, temperature=0)
    usage = api_service.get_model_info()["usage"]
    assert usage["requests"] == 2
    assert usage["output_tokens"] == 16 + 8
    assert usage["prompt_tokens"] == result.prompt_tokens + api_service.chat("Who was Moses?", max_new_tokens=8, temperature=0).prompt_tokens


def test_a_request_for_1000_tokens_sends_at_most_400(api_service: TextGenService, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="scribes.textgen")
    assert api_service.sent_parameters(max_new_tokens=1000)["max_tokens"] == 400
    result = api_service.chat("Write the numbers from 1 to 1000, separated by commas.", max_new_tokens=1000, temperature=0)
    assert result.params.max_new_tokens == 400 and result.requested_max_new_tokens == 1000
    assert result.output_tokens <= 400
    assert '"clamped_from": 1000' in caplog.text


def test_an_endpoint_that_refuses_extra_fields_gets_openai_fields_only(api_service: TextGenService) -> None:
    # transformers serve answers 422 to repetition_penalty; the backend drops it and goes on
    assert "extra_body" in api_service.sent_parameters()
    result = api_service.chat(QUESTION, max_new_tokens=8, temperature=0)
    assert result.output_tokens == 8 and result.attempts == 1
    assert "extra_body" not in api_service.sent_parameters()


def test_deterministic_api_requests_hit_the_cache(api_service: TextGenService) -> None:
    first = api_service.chat(QUESTION, max_new_tokens=8, temperature=0)
    second = api_service.chat(QUESTION, max_new_tokens=8, temperature=0)
    assert second.cached and second.text == first.text
    assert api_service.get_model_info()["usage"]["requests"] == 1  # the cached one cost nothing


def test_answers_streamed_on_an_event_loop_are_the_answers_streamed_on_threads(api_service: TextGenService) -> None:
    """The Chat tab's path: several answers at once on one loop, sharing its pooled connections, then one more."""
    service = TextGenService(replace(api_service.settings, cache_size=0))
    questions = [QUESTION, "Who was Moses?", "What is faith?"]
    on_threads = [service.chat(q, max_new_tokens=12, temperature=0) for q in questions]

    async def answer(question: str) -> tuple[list[str], GenerationResult | None]:
        pieces, result = [], None
        async for update in service.astream_chat(question, max_new_tokens=12, temperature=0):
            pieces.append(update.delta)
            result = update.result
        return pieces, result

    async def three_at_once_then_one() -> list[tuple[list[str], GenerationResult | None]]:
        together = await asyncio.gather(*(answer(q) for q in questions))
        return [*together, await answer(questions[0])]

    on_a_loop = asyncio.run(three_at_once_then_one())
    for (pieces, result), expected in zip(on_a_loop, [*on_threads, on_threads[0]], strict=True):
        assert result is not None and result.text == expected.text and "".join(pieces) == result.text
        assert (result.output_tokens, result.finish_reason, result.usage_estimated) == (12, "length", False)
    assert service.get_model_info()["usage"]["requests"] == 2 * len(questions) + 1
