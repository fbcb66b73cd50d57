"""Local streams decode in one batch, a stream that arrives joins it, and each still stands alone.

On the embedded model: while one answer decodes, the streams that arrive join its batch at
the next token (counted in forward passes: one per token for the whole batch, plus one to
read the prompts that join, not one per token per stream). Stopping one ends only its own
row; the limits and figures hold per request.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
from model_probe import forward_passes, wait_until_idle

from core import GenerationResult
from core.generation.backends.local import LocalTransformersBackend
from core.generation.service import TextGenService

QUESTIONS = ["Who was Ruth?", "What is faith?", "Who was Moses?", "What is hope?"]
TOKENS = 24


def _occupy(service: TextGenService) -> tuple[threading.Thread, threading.Event]:
    """A first answer that holds the model while the test's streams arrive; set when it has started."""
    started = threading.Event()

    def answer() -> None:
        for _ in service.stream("Tell me about the book of Psalms.", max_new_tokens=40, temperature=0):
            started.set()

    thread = threading.Thread(target=answer)
    thread.start()
    assert started.wait(60)
    return thread, started


def _collect(stream: Iterator, into: list) -> threading.Thread:
    def read() -> None:
        for update in stream:
            if update.result is not None:
                into.append(update.result)

    thread = threading.Thread(target=read)
    thread.start()
    return thread


def test_streams_that_wait_together_decode_in_one_batch(fresh_local_service: TextGenService) -> None:
    backend = fresh_local_service.backend()
    assert isinstance(backend, LocalTransformersBackend)
    results: list[GenerationResult] = []
    with forward_passes(backend.model) as passes:
        occupier, _ = _occupy(fresh_local_service)
        readers = [_collect(fresh_local_service.stream_chat(q, max_new_tokens=TOKENS, temperature=0), results) for q in QUESTIONS]
        occupier.join(120)
        for reader in readers:
            reader.join(120)
    assert len(results) == len(QUESTIONS) and all(r.text.strip() and r.output_tokens <= TOKENS for r in results)
    # 40 passes at most for the first answer, the four join it: at most TOKENS passes for all four
    # and one per prompt read (one by one they would take up to 4 x TOKENS)
    assert passes[0] <= 41 + TOKENS + 4, f"{passes[0]} forward passes: the four streams did not decode together"
    assert {r.params.max_new_tokens for r in results} == {TOKENS}


def test_a_stream_that_arrives_mid_answer_joins_it_and_ends_first(fresh_local_service: TextGenService) -> None:
    """Continuous batching: a short answer asked for while a long one decodes does not wait for it."""
    backend = fresh_local_service.backend()
    assert isinstance(backend, LocalTransformersBackend)
    long_answer: list[GenerationResult] = []
    finished: dict[str, float] = {}
    with forward_passes(backend.model) as passes:
        occupier = _collect(fresh_local_service.stream_chat("Tell me the whole story of King David.", max_new_tokens=160, temperature=0), long_answer)
        while passes[0] < 10:  # the long answer is well under way
            time.sleep(0.01)
        joined_at = passes[0]
        short: list[GenerationResult] = []
        reader = _collect(fresh_local_service.stream_chat("Who was Ruth?", max_new_tokens=12, temperature=0), short)
        reader.join(120)
        finished["short"] = passes[0]
        occupier.join(120)
    assert short and short[0].text.strip() and short[0].output_tokens <= 12
    assert long_answer and long_answer[0].output_tokens > 40, "the long answer ended too soon to show anything"
    # the short answer took its prompt's reading and its 12 tokens inside the long answer's run
    assert finished["short"] - joined_at <= 12 + 4, f"the short answer took {finished['short'] - joined_at} passes"
    assert passes[0] <= long_answer[0].output_tokens + 3, f"{passes[0]} passes for both: the short one did not join"
    assert wait_until_idle(backend)


def test_stopping_one_stream_of_a_batch_leaves_the_others_to_finish(fresh_local_service: TextGenService) -> None:
    backend = fresh_local_service.backend()
    assert isinstance(backend, LocalTransformersBackend)
    occupier, _ = _occupy(fresh_local_service)
    leaving = fresh_local_service.stream_chat("Tell me the whole story of David.", max_new_tokens=200, temperature=0.7)
    results: list[GenerationResult] = []
    staying = [_collect(fresh_local_service.stream_chat(q, max_new_tokens=TOKENS, temperature=0.7), results) for q in QUESTIONS[:2]]
    seen = ""
    for update in leaving:  # the batch starts once the first answer is done
        seen += update.delta
        if len(seen.split()) >= 2:
            break
    leaving.close()  # what Gradio does on Stop or a closed tab
    occupier.join(120)
    for reader in staying:
        reader.join(120)
    assert len(results) == 2 and all(r.text.strip() for r in results)
    assert all(r.finish_reason in ("length", "stop") for r in results)
    assert all(r.output_tokens == TOKENS or r.finish_reason == "stop" for r in results)
    assert wait_until_idle(backend), "the model kept working after the batch ended"


def test_rows_keep_their_own_settings_and_a_seed_runs_alone(fresh_local_service: TextGenService) -> None:
    """Rows of one batch keep their own limits; a seed always runs alone, so its answer never depends on company."""
    fresh_local_service = TextGenService(replace(fresh_local_service.settings, cache_size=0), backends={"local": fresh_local_service.backend()})
    alone = fresh_local_service.chat("What is grace?", max_new_tokens=20, temperature=0.9, seed=11).text
    results: list[GenerationResult] = []
    occupier, _ = _occupy(fresh_local_service)
    readers = [
        _collect(fresh_local_service.stream_chat("What is grace?", max_new_tokens=20, temperature=0.9, seed=11, repetition_penalty=1.1), results),
        _collect(fresh_local_service.stream_chat("Who was Ruth?", max_new_tokens=8, temperature=0), results),
        _collect(fresh_local_service.stream_chat("What is faith?", max_new_tokens=12, temperature=0), results),
    ]
    occupier.join(120)
    for reader in readers:
        reader.join(120)
    by_limit = {r.params.max_new_tokens: r for r in results}
    assert sorted(by_limit) == [8, 12, 20]
    assert by_limit[8].output_tokens <= 8 and by_limit[12].output_tokens <= 12
    assert by_limit[20].text == alone  # the seeded answer, unchanged by the others waiting with it


def test_a_chat_asked_during_an_evaluation_batch_joins_it_and_ends_first(fresh_local_service: TextGenService) -> None:
    """An evaluation batch decodes in the same loop: a pastor's chat does not wait for the whole batch."""
    backend = fresh_local_service.backend()
    assert isinstance(backend, LocalTransformersBackend)
    service = TextGenService(replace(fresh_local_service.settings, cache_size=0), backends={"local": backend})
    batch: list[list] = []
    finished: dict[str, int] = {}
    with forward_passes(backend.model) as passes:
        evaluation = threading.Thread(target=lambda: batch.append(service.chat_batch(QUESTIONS[:3], max_new_tokens=120, temperature=0)))
        evaluation.start()
        while passes[0] < 10:  # the batch is well under way
            time.sleep(0.01)
        joined_at = passes[0]
        chat = service.chat("Who was Ruth?", max_new_tokens=12, temperature=0)
        finished["chat"] = passes[0]
        evaluation.join(180)
    assert chat.text.strip() and chat.output_tokens <= 12
    assert len(batch) == 1 and all(isinstance(r, GenerationResult) and r.text.strip() for r in batch[0])
    assert max(r.output_tokens for r in batch[0]) > 40, "the batch ended too soon to show anything"
    assert finished["chat"] - joined_at <= 12 + 4, f"the chat took {finished['chat'] - joined_at} passes: it waited for the batch"
    assert wait_until_idle(backend)


def test_a_seeded_batch_runs_as_one_group_and_repeats_whatever_else_is_running(fresh_local_service: TextGenService) -> None:
    backend = fresh_local_service.backend()
    service = TextGenService(replace(fresh_local_service.settings, cache_size=0), backends={"local": backend})
    settings = {"max_new_tokens": 16, "temperature": 0.9, "seed": 5}
    alone = [r.text for r in service.chat_batch(QUESTIONS, **settings)]
    assert all(alone) and len(set(alone)) == len(QUESTIONS)
    occupier, _ = _occupy(service)
    with forward_passes(backend.model) as passes:
        together = [r.text for r in service.chat_batch(QUESTIONS, **settings)]
    occupier.join(120)
    assert together == alone  # the group waited for the chat's batch to end, then ran as before
    assert passes[0] <= 16 + 1 + 40, f"{passes[0]} forward passes: the group did not decode as one batch"


def test_each_answer_of_a_batch_takes_its_own_time(fresh_local_service: TextGenService) -> None:
    """An answer that ends early is timed to its own end, not to the end of the batch's longest."""
    service = TextGenService(replace(fresh_local_service.settings, cache_size=0), backends={"local": fresh_local_service.backend()})
    started = time.perf_counter()
    short, long_ = service.chat_batch(["Reply with one word: yes or no. Is God good?", "Tell me the whole story of King David."],
                                      max_new_tokens=100, temperature=0)
    wall_ms = (time.perf_counter() - started) * 1000
    assert isinstance(short, GenerationResult) and isinstance(long_, GenerationResult)
    assert short.output_tokens < 20 < long_.output_tokens, (short.text, long_.text)
    assert short.duration_ms < long_.duration_ms / 3, f"{short.duration_ms:.0f} against {long_.duration_ms:.0f} ms"
    assert long_.duration_ms <= wall_ms


def test_answers_read_on_an_event_loop_decode_together_and_a_cancelled_one_ends_alone(fresh_local_service: TextGenService) -> None:
    """The Chat tab reads local answers on Gradio's event loop; Stop there cancels the handler's task."""
    backend = fresh_local_service.backend()
    assert isinstance(backend, LocalTransformersBackend)
    alone = TextGenService(fresh_local_service.settings, backends={"local": backend}).chat(QUESTIONS[0], max_new_tokens=TOKENS, temperature=0)

    async def answer(question: str, tokens: int, words: list[str]) -> GenerationResult | None:
        async for update in fresh_local_service.astream_chat(question, max_new_tokens=tokens, temperature=0):
            words.append(update.delta)
            if update.result is not None:
                return update.result
        return None

    async def three_answers_and_one_stopped() -> tuple[list[GenerationResult | None], list[str]]:
        stopped_words: list[str] = []
        stopped = asyncio.create_task(answer("Tell me the whole story of David.", 200, stopped_words))
        staying = [asyncio.create_task(answer(q, TOKENS, [])) for q in QUESTIONS[:3]]
        while len("".join(stopped_words).split()) < 2:
            await asyncio.sleep(0.01)
        stopped.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stopped
        return list(await asyncio.gather(*staying)), stopped_words

    with forward_passes(backend.model) as passes:
        results, stopped_words = asyncio.run(three_answers_and_one_stopped())
    assert all(r is not None and r.text.strip() and r.output_tokens <= TOKENS for r in results)
    assert results[0] is not None and results[0].text == alone.text  # greedy, batched or alone: the same words here
    # one batch: TOKENS passes for all and one per prompt read; one after another it would be 3 x TOKENS and more
    assert passes[0] <= TOKENS + len(stopped_words) + 6, f"{passes[0]} forward passes: the answers did not decode together"
    assert wait_until_idle(backend), "the model kept decoding the cancelled answer"
