"""The local backend against the real embedded model (SmolLM2-135M-Instruct on the CPU)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from model_probe import forward_passes, wait_until_idle

from core.config import Settings
from core.errors import GenerationError, OutputValidationError
from core.generation.backends.local import LocalTransformersBackend, cpu_has_bfloat16, pick_dtype
from core.generation.service import TextGenService

QUESTION = "What does the Bible say about grace?"
SYSTEM = "You are a kind pastoral assistant. Answer briefly and cite Bible verses."


def test_a_real_answer_with_its_figures(fresh_local_service: TextGenService) -> None:
    result = fresh_local_service.chat(QUESTION, system_prompt=SYSTEM, temperature=0, max_new_tokens=40)
    assert len(result.text.split()) >= 5
    assert 0 < result.output_tokens <= 40
    assert result.prompt_tokens > 10
    assert result.finish_reason in {"stop", "length"}
    assert (result.backend, result.model) == ("local", "SmolLM2-135M-Instruct")
    assert result.ttft_ms is not None and 0 < result.ttft_ms < result.duration_ms
    assert result.tokens_per_s > 0 and not result.cached and not result.usage_estimated


def test_generate_returns_text_as_in_the_spec(fresh_local_service: TextGenService) -> None:
    answer = fresh_local_service.generate("What is faith?", max_new_tokens=20, temperature=0)
    assert isinstance(answer, str) and answer.strip()


def test_streaming_yields_pieces_that_add_up_to_the_result(fresh_local_service: TextGenService) -> None:
    updates = list(fresh_local_service.stream_chat(QUESTION, max_new_tokens=30, temperature=0))
    pieces = [u.delta for u in updates if u.delta]
    result = updates[-1].result
    assert result is not None and len(pieces) >= 5
    assert "".join(pieces) == result.text == updates[-1].text


def test_showing_the_parameters_sent_loads_no_model(local_settings: Settings, local_service: TextGenService) -> None:
    """The Tune tab asks at every slider move; before any answer, that must not load the model."""
    cold = TextGenService(local_settings)
    asked = {"temperature": 0.7, "top_k": 40, "max_new_tokens": 1000, "seed": 3}
    shown = cold.sent_parameters(**asked)
    assert not cold.is_loaded("local")
    assert shown == {"max_new_tokens": 400, "do_sample": True, "temperature": 0.7, "top_p": 0.9, "top_k": 40, "repetition_penalty": 1.1, "seed": 3}
    assert local_service.is_loaded("local") and local_service.sent_parameters(**asked) == shown  # what the loaded model gets


def test_a_request_for_1000_tokens_is_clamped_to_400_and_logged(
    fresh_local_service: TextGenService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scribes.textgen")
    result = fresh_local_service.chat(
        "Write the numbers from 1 to 1000, separated by commas.", max_new_tokens=1000, temperature=0, repetition_penalty=1.0
    )
    assert result.requested_max_new_tokens == 1000 and result.params.max_new_tokens == 400
    assert result.output_tokens == 400 and result.finish_reason == "length"
    assert result.validation.hit_token_limit
    assert '"clamped_from": 1000' in caplog.text


def test_an_overlong_prompt_is_truncated_to_fit_and_reported(fresh_local_service: TextGenService) -> None:
    question = "Please read this. " + "The Lord is my shepherd; I shall not want. " * 600 + "What is Psalm 23 about?"
    result = fresh_local_service.chat(question, max_new_tokens=16, temperature=0)
    assert result.truncation is not None
    assert result.truncation.original_tokens > 2048
    assert result.prompt_tokens <= 2048 - 16 == result.truncation.budget_tokens
    assert result.truncation.question_chars_removed > 0


def test_deterministic_requests_hit_the_cache(fresh_local_service: TextGenService) -> None:
    first = fresh_local_service.chat(QUESTION, max_new_tokens=12, temperature=0)
    second = fresh_local_service.chat(QUESTION, max_new_tokens=12, temperature=0)
    sampled = fresh_local_service.chat(QUESTION, max_new_tokens=12, temperature=0.8)  # no seed: never cached
    assert not first.cached and second.cached and not sampled.cached
    assert second.text == first.text
    cache = fresh_local_service.get_model_info()["cache"]
    assert (cache["hits"], cache["misses"]) == (1, 1)


def test_seeded_sampling_is_reproducible_even_when_run_concurrently(local_service: TextGenService) -> None:
    services = [TextGenService(local_service.settings, backends={"local": local_service.backend()}) for _ in range(3)]
    alone = services[0].chat(QUESTION, max_new_tokens=20, temperature=0.9, seed=7).text
    texts: list[str] = []
    threads = [threading.Thread(target=lambda s=s: texts.append(s.chat(QUESTION, max_new_tokens=20, temperature=0.9, seed=7).text)) for s in services[1:]]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert texts == [alone, alone]



def test_closing_a_stream_stops_the_generation(fresh_local_service: TextGenService) -> None:
    backend = fresh_local_service.backend()
    assert isinstance(backend, LocalTransformersBackend)
    before = backend.usage().output_tokens
    with forward_passes(backend.model) as passes:
        stream: Iterator[str] = fresh_local_service.stream("Tell me about the book of Psalms.", max_new_tokens=400, temperature=0.5)
        for index, _ in enumerate(stream):
            if index == 3:
                break
        stream.close()  # what Gradio does when the Stop button is pressed or the tab is closed
        assert wait_until_idle(backend), "generation kept running after its reader left"
    assert passes[0] < 20, f"{passes[0]} tokens generated for a reader that left after 4"
    assert backend.usage().output_tokens == before  # no answer was completed


class _OutOfMemoryOnce:
    """A forward pre-hook that raises CUDA's out-of-memory error the first ``times`` calls."""

    def __init__(self, times: int):
        self.remaining = times

    def __call__(self, module: torch.nn.Module, args: tuple) -> None:
        if self.remaining > 0:
            self.remaining -= 1
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")


@pytest.mark.parametrize(("failures", "succeeds"), [(1, True), (5, False)])
def test_cuda_out_of_memory_is_retried_once_then_explained(fresh_local_service: TextGenService, failures: int, succeeds: bool) -> None:
    backend = fresh_local_service.backend()
    assert isinstance(backend, LocalTransformersBackend)
    hook = _OutOfMemoryOnce(failures)
    handle = backend.model.register_forward_pre_hook(hook)
    try:
        if succeeds:
            assert fresh_local_service.chat(QUESTION, max_new_tokens=8, temperature=0).output_tokens > 0
            assert hook.remaining == 0
        else:
            with pytest.raises(GenerationError, match="ran out of GPU memory") as caught:
                fresh_local_service.chat(QUESTION, max_new_tokens=8, temperature=0)
            assert isinstance(caught.value.__cause__, torch.cuda.OutOfMemoryError)
            assert hook.remaining == failures - 2  # the first try and exactly one retry
    finally:
        handle.remove()


def test_a_second_start_loads_the_converted_copy(local_service: TextGenService) -> None:
    backend = LocalTransformersBackend(local_service.settings)
    assert backend.loaded_from.startswith("cache:")
    info = local_service.get_model_info()
    assert (info["initialized"], info["device"], info["context_window"]) == (True, "cpu", 2048)


def test_a_batch_answers_like_single_calls_and_keeps_a_bad_item_in_its_place(fresh_local_service: TextGenService) -> None:
    questions = ["What is grace?", "   ", "Who was Moses?", "Where was Jesus born?"]
    batch = fresh_local_service.chat_batch(questions, max_new_tokens=24, temperature=0)
    assert isinstance(batch[1], GenerationError) and "question is empty" in str(batch[1])
    answers = [r for r in batch if not isinstance(r, GenerationError)]
    assert [r.output_tokens for r in answers] == [24, 24, 24] or all(0 < r.output_tokens <= 24 for r in answers)
    alone = TextGenService(fresh_local_service.settings, backends={"local": fresh_local_service.backend()})
    singles = [alone.chat(q, max_new_tokens=24, temperature=0, repetition_penalty=1.1).text for q in (questions[0], questions[2], questions[3])]
    # padded rows run through other kernel paths, so greedy text may drift after a few words;
    # each answer must still open like its own question's single answer (order kept)
    assert [r.text.split()[:2] for r in answers] == [single.split()[:2] for single in singles]
    one = TextGenService(replace(fresh_local_service.settings, cache_size=0), backends={"local": fresh_local_service.backend()})
    assert one.chat_batch([questions[2]], max_new_tokens=24, temperature=0)[0].text == singles[1]  # a batch of one: exactly
    again = fresh_local_service.chat_batch([questions[0]], max_new_tokens=24, temperature=0)
    assert again[0].cached and again[0].text == answers[0].text


def test_strict_validation_raises_with_the_answer_attached(local_service: TextGenService) -> None:
    strict = TextGenService(replace(local_service.settings, strict_validation=True, min_answer_chars=5000), backends={"local": local_service.backend()})
    with pytest.raises(OutputValidationError, match=r"failed validation \(too_short") as caught:
        strict.chat(QUESTION, max_new_tokens=8, temperature=0)
    assert caught.value.result.text and caught.value.result.validation.too_short


def test_one_json_log_line_per_generation_with_its_figures(fresh_local_service: TextGenService, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="scribes.textgen")
    fresh_local_service.chat("What is hope?", max_new_tokens=6, temperature=0)
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.getMessage().startswith('{"event": "generation"')]
    assert len(lines) == 1
    line = lines[0]
    assert {"backend", "model", "duration_ms", "ttft_ms", "prompt_tokens", "output_tokens", "tokens_per_s", "attempts", "outcome"} <= set(line)
    assert (line["outcome"], line["output_tokens"], line["attempts"]) == ("ok", 6, 1)
    assert "prompt" not in line  # prompts are logged only when HF_LOG_PROMPTS asks for it


def test_a_visitor_view_shares_the_one_local_model(local_service: TextGenService) -> None:
    visitor = local_service.for_token("hf_visitor_token_for_local_test")
    assert visitor.backend("local") is local_service.backend("local")  # no second copy of the model
    assert visitor.settings.mode == "local" and visitor.available_modes == ("api", "local")
    assert visitor.get_model_info()["initialized"] is True


def test_auto_precision_is_bfloat16_only_where_the_cpu_runs_it_natively() -> None:
    cpu = torch.device("cpu")
    assert pick_dtype(cpu, "auto") == (torch.bfloat16 if cpu_has_bfloat16() else torch.float32)
    assert pick_dtype(cpu, "float32") == torch.float32 and pick_dtype(cpu, "bfloat16") == torch.bfloat16


def test_float32_can_be_asked_for_and_answers(local_settings: Settings) -> None:
    service = TextGenService(replace(local_settings, local_dtype="float32"))
    result = service.chat("What is grace?", max_new_tokens=8, temperature=0)
    assert dict(service.backend().info().details)["dtype"] == "float32" and result.output_tokens >= 1


CLOSE_AND_EXIT = """
from core import get_textgen_service
stream = get_textgen_service().stream_chat("Tell me about Moses.", max_new_tokens=200, temperature=0)
next(u for u in stream if u.delta)
stream.close()
"""


def test_a_process_that_closes_a_stream_and_exits_ends_cleanly(local_settings: Settings) -> None:
    """Closing waits for the generation to stop: a thread left inside torch aborts the exit."""
    env = {**os.environ, "HF_USE_API": "false", "SCRIBES_CACHE_DIR": str(local_settings.cache_dir)}
    done = subprocess.run(
        [sys.executable, "-c", CLOSE_AND_EXIT], cwd=Path(__file__).resolve().parent.parent, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0 and "terminate called" not in done.stderr, done.stderr[-500:]


def test_a_batch_that_runs_out_of_memory_says_so_for_each_row_and_logs_it(
    fresh_local_service: TextGenService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="scribes.textgen")
    backend = fresh_local_service.backend()
    assert isinstance(backend, LocalTransformersBackend)
    service = TextGenService(replace(fresh_local_service.settings, cache_size=0), backends={"local": backend})
    handle = backend.model.register_forward_pre_hook(_OutOfMemoryOnce(1))
    try:
        failed = service.chat_batch(["What is grace?", "Who was Moses?"], max_new_tokens=8, temperature=0)
    finally:
        handle.remove()
    assert [type(r) for r in failed] == [GenerationError, GenerationError]
    assert all("ran out of GPU memory" in str(r) and "Tried to allocate" not in str(r) for r in failed)
    logged = [json.loads(r.getMessage()) for r in caplog.records if '"event": "generation"' in r.getMessage()]
    assert [entry["outcome"] for entry in logged] == ["error", "error"]
    assert all(not isinstance(r, GenerationError) for r in service.chat_batch(["What is grace?"], max_new_tokens=8, temperature=0))
