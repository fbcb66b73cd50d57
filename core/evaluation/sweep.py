"""Tuning experiments: one prompt under several settings, and one setting swept over a range.

The Tune tab is built on these; they only call :class:`~core.generation.service.TextGenService` and
score what comes back with :mod:`core.scoring.repetition` and :mod:`core.scoring.citations`, so the figures a
developer tunes by mean the same as the Chat tab's flags and the evaluation's scores.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

from core.background import Background, Work
from core.config import Mode
from core.errors import GenerationError, InvalidRequestError, StreamInterruptedError
from core.generation.params import resolve_params
from core.generation.service import TextGenService
from core.generation.types import GenerationResult
from core.scoring.citations import score_answer
from core.scoring.repetition import is_degenerate

#: The settings a sweep can vary. ``seed`` and ``stop`` are not on a scale, so they are not here.
SWEEP_PARAMETERS: tuple[str, ...] = ("temperature", "top_p", "repetition_penalty", "top_k", "max_new_tokens")

#: Settings that only take whole numbers; a sweep rounds its values for them.
WHOLE_NUMBER_PARAMETERS = frozenset({"top_k", "max_new_tokens"})

#: Ranges a sweep starts from when a person picks the setting: wide enough to show where
#: the small model starts to loop or to drift, narrow enough to stay within what people use.
DEFAULT_SWEEP_RANGES: dict[str, tuple[float, float]] = {
    "temperature": (0.0, 1.5),
    "top_p": (0.5, 1.0),
    "repetition_penalty": (1.0, 1.5),
    "top_k": (0, 100),
    "max_new_tokens": (32, 256),
}


# --- figures of one answer ----------------------------------------------------------------


@dataclass(frozen=True)
class AnswerFigures:
    """What the Tune tab shows under an answer; one answer's share of a sweep point.

    Citations are counted once per citation unit (:func:`core.scoring.citations.citation_unit`:
    "John 3:16" cited three times is one, so is "Jn 3:99" next to "John 3:99"), so an
    answer stuck in a loop is not credited for repeating the same verse, and the figures
    are the ones Chat, Evaluate and Review give the same answer. ``nonexistent`` and
    ``misquoted`` name the references as :func:`core.scoring.citations.score_answer` does.
    """

    output_tokens: int
    latency_ms: float
    tokens_per_s: float
    rep_n: float
    distinct_2: float
    degenerate: bool
    citations: int
    nonexistent: tuple[str, ...]
    finish_reason: str
    flags: tuple[str, ...]
    cached: bool
    misquoted: tuple[str, ...] = ()  # references whose quoted words are not in the verse

    @classmethod
    def of(cls, result: GenerationResult) -> AnswerFigures:
        # validation.repetition is core.scoring.repetition.repetition_stats(result.text), already computed
        stats = result.validation.repetition
        score = score_answer(result.text)
        return cls(
            output_tokens=result.output_tokens,
            latency_ms=result.duration_ms,
            tokens_per_s=result.tokens_per_s,
            rep_n=stats.rep_n,
            distinct_2=stats.distinct_2,
            degenerate=is_degenerate(stats),
            citations=len(score.valid_citations) + len(score.nonexistent_citations),
            nonexistent=score.nonexistent_citations,
            finish_reason=result.finish_reason,
            flags=result.validation.flags,
            cached=result.cached,
            misquoted=tuple(dict.fromkeys(m.reference for m in score.misquotes)),
        )


# --- compare: one prompt, several settings --------------------------------------------------


@dataclass(frozen=True)
class CompareUpdate:
    """The answer of column ``index`` so far; ``result`` or ``error`` is set once it is done."""

    index: int
    text: str
    result: GenerationResult | None = None
    error: GenerationError | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None


def iter_compare(
    service: TextGenService,
    prompt: str,
    settings: Sequence[Mapping[str, object]],
    *,
    system_prompt: str | None = None,
    mode: Mode | None = None,
    retrieved: Sequence[Sequence[str]] = (),
) -> Iterator[CompareUpdate]:
    """Answer ``prompt`` once per entry of ``settings``, streaming every column's text.

    ``retrieved[i]``, when given, is the Scripture passages column ``i`` is grounded in
    (``Passage.as_context()``; empty: not grounded), so one prompt can be compared with
    and without passages under the same seed. The local model runs one generation at a time anyway, so its columns run one after
    another and each streams in turn; API columns wait on the network, so they run at
    once, one thread each, and their updates interleave. A column that fails yields a
    final update with its :class:`GenerationError` (and any partial text); the others go
    on. Closing the iterator stops the generations still running.
    """
    passages = [tuple(retrieved[i]) if i < len(retrieved) else () for i in range(len(settings))]
    if (mode or service.settings.mode) == "local":
        for index, params in enumerate(settings):
            yield from _stream_column(service, index, prompt, params, system_prompt, mode, passages[index])
        return

    def answer(index: int, params: Mapping[str, object]) -> Work[CompareUpdate, None]:
        def work(emit: Callable[[CompareUpdate], None], cancel: threading.Event) -> None:
            column = _stream_column(service, index, prompt, params, system_prompt, mode, passages[index])
            try:
                for update in column:
                    if cancel.is_set():
                        break
                    emit(update)
            finally:
                column.close()  # stops the backend's stream when this column was abandoned

        return work

    yield from Background(*(answer(i, p) for i, p in enumerate(settings)), name="compare")


def _stream_column(
    service: TextGenService, index: int, prompt: str, params: Mapping[str, object], system_prompt: str | None, mode: Mode | None,
    retrieved: Sequence[str],
) -> Iterator[CompareUpdate]:
    text = ""
    stream = service.stream_chat(prompt, system_prompt=system_prompt, mode=mode, retrieved=retrieved, **params)
    try:
        for update in stream:
            text = update.text
            yield CompareUpdate(index, text, result=update.result)
    except StreamInterruptedError as error:
        yield CompareUpdate(index, error.partial_text or text, error=error)
    except GenerationError as error:
        yield CompareUpdate(index, text, error=error)
    finally:
        stream.close()  # a closed column stops its generation at the next token


def run_compare(
    service: TextGenService, prompt: str, settings: Sequence[Mapping[str, object]], **options: Any
) -> list[GenerationResult | GenerationError]:
    """:func:`iter_compare` (with the same options) run to its end: one result or error per entry of ``settings``."""
    finals: dict[int, GenerationResult | GenerationError] = {}
    for update in iter_compare(service, prompt, settings, **options):
        if update.done:
            finals[update.index] = update.result or update.error  # type: ignore[assignment]
    return [finals[i] for i in range(len(settings))]


# --- sweep: one setting over a range ------------------------------------------------------


@dataclass(frozen=True)
class SweepPoint:
    """The answers to every sampled question at one value of the swept setting.

    Means are over the answers that came back (``answers``); they are ``None`` when every
    question failed. ``mean_latency_ms`` leaves out answers served from the cache, and in
    local mode it is the time of the whole batch, which every answer in it waited for.
    """

    value: float
    answers: int
    errors: int
    mean_rep_n: float | None
    mean_distinct_2: float | None
    mean_output_tokens: float | None
    citations_per_answer: float | None
    nonexistent_per_answer: float | None
    degenerate_share: float | None
    mean_latency_ms: float | None
    first_error: str | None = None

    @classmethod
    def of(cls, value: float, outcomes: Sequence[GenerationResult | GenerationError]) -> SweepPoint:
        figures = [AnswerFigures.of(o) for o in outcomes if isinstance(o, GenerationResult)]
        errors = [o for o in outcomes if isinstance(o, GenerationError)]
        latencies = [f.latency_ms for f in figures if not f.cached]

        def mean(values: list[float]) -> float | None:
            return fmean(values) if values else None

        return cls(
            value=value,
            answers=len(figures),
            errors=len(errors),
            mean_rep_n=mean([f.rep_n for f in figures]),
            mean_distinct_2=mean([f.distinct_2 for f in figures]),
            mean_output_tokens=mean([f.output_tokens for f in figures]),
            citations_per_answer=mean([f.citations for f in figures]),
            nonexistent_per_answer=mean([len(f.nonexistent) for f in figures]),
            degenerate_share=mean([float(f.degenerate) for f in figures]),
            mean_latency_ms=mean(latencies),
            first_error=errors[0].message if errors else None,
        )


def sweep_values(parameter: str, start: float, stop: float, steps: int) -> list[float]:
    """``steps`` evenly spaced values from ``start`` to ``stop``, both included.

    Whole-number settings are rounded, and values that round to the same number are kept
    once, so "top_k from 0 to 3 in 8 steps" gives 0, 1, 2, 3 rather than repeats.
    """
    _check_parameter(parameter)
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise InvalidRequestError(f"The number of values must be a whole number of at least 1, not {steps!r}.")
    steps = int(steps)
    raw = [start] if steps == 1 else [start + (stop - start) * i / (steps - 1) for i in range(steps)]
    if parameter in WHOLE_NUMBER_PARAMETERS:
        return list(dict.fromkeys(float(round(v)) for v in raw))
    return [round(v, 6) for v in raw]


def sweep_params(parameter: str, value: float, base_params: Mapping[str, object]) -> dict[str, object]:
    """``base_params`` with ``parameter`` set to ``value``; top_k 0 means "off", as in the UI."""
    _check_parameter(parameter)
    params = dict(base_params)
    if parameter == "top_k":
        params["top_k"] = int(round(value)) or None
    elif parameter in WHOLE_NUMBER_PARAMETERS:
        params[parameter] = int(round(value))
    else:
        params[parameter] = float(value)
    return params


def run_sweep(
    service: TextGenService,
    questions: Sequence[str],
    parameter: str,
    values: Sequence[float],
    base_params: Mapping[str, object],
    *,
    mode: Mode | None = None,
    system_prompt: str | None = None,
    on_progress: Callable[[int, int, SweepPoint], None] | None = None,
    cancel: threading.Event | None = None,
) -> list[SweepPoint]:
    """Answer every question at every value of ``parameter``; one :class:`SweepPoint` per value.

    Each value is one ``chat_batch`` call (its questions decode together on the local model).
    Every value is checked before the first generation, so an out-of-range value fails at
    once rather than after minutes of work. ``on_progress(done, total, point)`` is called
    after each value; once ``cancel`` is set no new value starts and the points so far are
    returned. A question that fails counts in ``errors``; the sweep goes on.

    Raises :class:`InvalidRequestError` for an unknown setting, no questions, no values or
    a value out of range.
    """
    _check_parameter(parameter)
    questions = [q for q in questions if q and q.strip()]
    if not questions:
        raise InvalidRequestError("A sweep needs at least one question.")
    if not values:
        raise InvalidRequestError("A sweep needs at least one value to try.")
    per_value = [sweep_params(parameter, value, base_params) for value in values]
    for params in per_value:
        resolve_params(service.settings, params)
    points: list[SweepPoint] = []
    for value, params in zip(values, per_value, strict=True):
        if cancel is not None and cancel.is_set():
            break
        outcomes = service.chat_batch(questions, system_prompt=system_prompt, mode=mode, **params)
        points.append(SweepPoint.of(value, outcomes))
        if on_progress is not None:
            on_progress(len(points), len(per_value), points[-1])
    return points


def _check_parameter(parameter: str) -> None:
    if parameter not in SWEEP_PARAMETERS:
        raise InvalidRequestError(f"Cannot sweep {parameter!r}. Choose one of: {', '.join(SWEEP_PARAMETERS)}.")
