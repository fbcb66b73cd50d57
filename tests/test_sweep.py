"""Compare and sweep (core.evaluation.sweep) on the real embedded model and a real OpenAI-compatible server."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import pytest
from model_probe import forward_passes, wait_until_idle

from core import GenerationError, GenerationResult, InvalidRequestError
from core.config import Settings, env_lines
from core.evaluation.question_sets import sample_questions
from core.evaluation.sweep import (
    AnswerFigures,
    iter_compare,
    run_compare,
    run_sweep,
    sweep_params,
    sweep_values,
)
from core.generation.backends.local import LocalTransformersBackend
from core.generation.service import TextGenService

EVAL_SETS = Path(__file__).resolve().parent.parent / "eval_sets"
SHORT = {"max_new_tokens": 16}


@pytest.mark.parametrize(
    ("parameter", "start", "stop", "steps", "expected"),
    [
        ("temperature", 0.0, 1.0, 5, [0.0, 0.25, 0.5, 0.75, 1.0]),
        ("top_k", 0, 3, 8, [0.0, 1.0, 2.0, 3.0]),  # whole numbers: repeats kept once
        ("max_new_tokens", 32, 32, 1, [32.0]),
        ("repetition_penalty", 1.0, 1.3, 4, [1.0, 1.1, 1.2, 1.3]),
    ],
)
def test_sweep_values(parameter: str, start: float, stop: float, steps: int, expected: list[float]) -> None:
    assert sweep_values(parameter, start, stop, steps) == expected


@pytest.mark.parametrize(("parameter", "steps"), [("seed", 3), ("temperature", 0), ("temperature", 2.5)])
def test_sweep_values_refuses_what_cannot_be_swept(parameter: str, steps: float) -> None:
    with pytest.raises(InvalidRequestError):
        sweep_values(parameter, 0, 1, steps)  # type: ignore[arg-type]


def test_top_k_zero_means_off() -> None:
    assert sweep_params("top_k", 0, {"temperature": 0.7})["top_k"] is None
    assert sweep_params("top_k", 39.6, {})["top_k"] == 40


def test_sample_questions_are_spread_over_the_set() -> None:
    path = EVAL_SETS / "core_doctrine.csv"
    every = sample_questions(path, 1000)
    picked = sample_questions(path, 3)
    assert picked[0] == every[0] and picked[-1] == every[-1]  # first and last, not the first three
    assert len(set(picked)) == 3 and picked[1] in every[1:-1]


def test_compare_gives_one_answer_per_setting_and_the_same_seed_the_same_text(fresh_local_service: TextGenService) -> None:
    settings = [
        {**SHORT, "temperature": 0.9, "seed": 7},
        {**SHORT, "temperature": 0.0},
        {**SHORT, "temperature": 0.9, "seed": 7, "repetition_penalty": 1.0},
    ]
    results = run_compare(fresh_local_service, "What is faith?", settings)
    assert len(results) == 3 and all(isinstance(r, GenerationResult) for r in results)
    assert [r.params.temperature for r in results] == [0.9, 0.0, 0.9]  # type: ignore[union-attr]
    again = run_compare(TextGenService(fresh_local_service.settings, backends={"local": fresh_local_service.backend()}), "What is faith?", settings[:1])
    assert again[0].text == results[0].text  # type: ignore[union-attr]


def test_a_bad_column_fails_alone(fresh_local_service: TextGenService) -> None:
    results = run_compare(fresh_local_service, "What is hope?", [{**SHORT, "temperature": 0}, {**SHORT, "top_p": 5}])
    assert isinstance(results[0], GenerationResult)
    assert isinstance(results[1], GenerationError) and "top_p=5" in results[1].message


def test_closing_a_compare_stops_its_generation(fresh_local_service: TextGenService) -> None:
    backend = fresh_local_service.backend()
    assert isinstance(backend, LocalTransformersBackend)
    before = backend.usage().output_tokens
    with forward_passes(backend.model) as passes:
        updates = iter_compare(fresh_local_service, "Tell me about Moses.", [{"max_new_tokens": 300, "temperature": 0}])
        first = next(updates)
        updates.close()  # what Gradio does on Stop: the backend's stopping criterion ends generate()
        assert wait_until_idle(backend), "generation kept running after its compare was closed"
    assert first.index == 0 and not first.done
    assert passes[0] < 20, f"{passes[0]} tokens generated after the compare was closed at its first"
    assert backend.usage().output_tokens == before  # no answer was completed


def test_api_columns_run_at_once(api_service: TextGenService) -> None:
    settings = [{**SHORT, "temperature": 0}, {**SHORT, "temperature": 0, "max_new_tokens": 8}]
    results = run_compare(api_service, "What is love?", settings)
    assert [r.output_tokens <= s["max_new_tokens"] for r, s in zip(results, settings)] == [True, True]  # type: ignore[union-attr]


def test_answer_figures_count_distinct_citations_and_nonexistent_ones(fresh_local_service: TextGenService) -> None:
    result = fresh_local_service.chat("Say hello.", **SHORT, temperature=0)
    cited = replace(result, text="John 3:16 and John 3:16 again, and Hezekiah 4:2 which is not a book.")
    figures = AnswerFigures.of(cited)
    assert figures.citations == 2
    assert figures.nonexistent == ("Hezekiah 4:2",)


def test_sweep_reports_each_value_and_can_be_cancelled(fresh_local_service: TextGenService) -> None:
    seen: list[float] = []
    cancel = threading.Event()

    def progress(done: int, total: int, point) -> None:  # type: ignore[no-untyped-def]
        seen.append(point.value)
        cancel.set()  # after the first value: the rest must not start

    points = run_sweep(
        fresh_local_service, ["What is grace?", "Who was David?"], "temperature", [0.0, 0.5, 1.0], SHORT,
        on_progress=progress, cancel=cancel,
    )
    assert seen == [0.0] and len(points) == 1
    point = points[0]
    assert point.answers == 2 and point.errors == 0
    assert 0 <= point.mean_rep_n <= 1 and point.mean_output_tokens <= 16  # type: ignore[operator]


def test_sweep_checks_every_value_before_generating(fresh_local_service: TextGenService) -> None:
    with pytest.raises(InvalidRequestError, match="temperature=3"):
        run_sweep(fresh_local_service, ["What is grace?"], "temperature", [0.5, 3.0], SHORT)
    assert fresh_local_service.get_model_info()["cache"]["misses"] == 0  # nothing was generated


def test_env_lines_are_the_variables_the_service_reads() -> None:
    lines = env_lines({"temperature": 0.7, "top_p": 0.95, "repetition_penalty": 1.05, "max_new_tokens": 256, "top_k": 40})
    assert lines == [
        "HF_GENERATION_TEMPERATURE=0.7",
        "ASSISTANT_MODEL_TOP_P=0.95",
        "ASSISTANT_MODEL_REPETITION_PENALTY=1.05",
        "ASSISTANT_MAX_OUTPUT_TOKENS=256",
    ]
    settings = Settings.from_env(environ=dict(line.split("=") for line in lines), dotenv_path=None)
    assert (settings.temperature, settings.top_p, settings.max_output_tokens) == (0.7, 0.95, 256)
