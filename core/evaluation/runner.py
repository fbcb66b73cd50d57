"""The runner: answer a set's rows through the generation service and score them as they finish.

Concurrent requests in API mode, batches on the model in local mode; progress after each
row or batch, a cancel event honoured, and finished rows saved as it goes (see
:mod:`core.evaluation.checkpoints`) so that a killed run can be resumed.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from core.errors import ConfigurationError, EvaluationFailed, EvaluationInterrupted, GenerationError, ModelLoadError
from core.evaluation.checkpoints import CheckpointWriter, restore_row, resumable_rows
from core.evaluation.question_sets import QuestionRow, QuestionSet
from core.evaluation.scored_rows import ScoredRow, score_row
from core.evaluation.table import results_columns
from core.generation.params import resolve_params
from core.generation.prompting import DEFAULT_SYSTEM_PROMPT  # the Chat tab's: a run measures what people see there
from core.generation.types import GenerationResult
from core.retrieval import MAX_PASSAGES, Passage, get_retriever
from core.retrieval.ranking import BM25, EmbeddingReranker, find_passages

if TYPE_CHECKING:
    from core.generation.service import TextGenService

@dataclass(frozen=True)
class Progress:
    """Where a run stands, after each row (given answers, API mode) or batch (local mode)."""

    done: int
    total: int
    errors: int
    elapsed_s: float
    eta_s: float | None  # None until a first answer was generated
    finished: tuple[ScoredRow, ...] = ()  # the rows finished since the last report

    @property
    def fraction(self) -> float:
        return self.done / self.total if self.total else 1.0


RunStatus = Literal["running", "finished", "cancelled", "failed"]


@dataclass
class EvaluationRun:
    """A run's rows, appended as they finish, and how it went.

    ``rows`` are in the order they finished; :func:`results_frame` puts them in the set's
    order. ``resumed`` counts rows taken over from an earlier results file.
    """

    question_set: QuestionSet
    params: dict[str, object]
    system_prompt: str | None
    mode: str
    total: int
    ground: int = 0  # passages retrieved per question; 0: not grounded
    ranking: str = ""  # what the passages were ranked by ("BM25", "BM25, re-ranked by <model>"); "" when not grounded
    ranking_note: str | None = None  # why a configured embedding model was not used
    rows: list[ScoredRow] = field(default_factory=list)
    status: RunStatus = "running"
    error: str | None = None
    resumed: int = 0
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    @property
    def errors(self) -> int:
        return sum(1 for row in self.rows if row.error)

    @property
    def duration_s(self) -> float:
        return (self.finished_at or time.time()) - self.started_at


#: Errors that no other row would escape: stop the run rather than record them on every row.
_RUN_LEVEL_ERRORS = (ConfigurationError, ModelLoadError)


def run_evaluation(
    question_set: QuestionSet,
    *,
    service: TextGenService,
    params: Mapping[str, object] | None = None,
    system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
    mode: str | None = None,
    concurrency: int = 4,
    batch_size: int = 8,
    limit: int | None = None,
    ground: int = 0,
    on_progress: Callable[[Progress], None] | None = None,
    cancel: threading.Event | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    resume_from: str | os.PathLike[str] | None = None,
) -> EvaluationRun:
    """Answer and score the first ``limit`` rows (all by default) of a question set.

    Rows with a given answer are scored without generating. The others are answered by
    ``service``: in API mode by up to ``concurrency`` requests at once, in local mode in
    batches of ``batch_size`` on the model. A row whose generation fails records the
    error's message and the run goes on.

    ``cancel``: once set, no new work starts; the requests or the local batch already
    running finish and are kept with the rows done before, and the run is marked
    ``cancelled``. ``checkpoint``: a results CSV written as rows finish, so a
    killed run loses at most the rows in flight. ``resume_from``: an earlier results
    file; its answered rows (same id, or same question where there is no id) are
    re-scored from their saved answers instead of generated again, rows that failed are
    tried again. It may be the same file as ``checkpoint``.

    ``ground``: retrieve this many Scripture passages for each question
    (:mod:`core.retrieval`) and give them to the model after the row's own context; they
    are the first thing cut when the prompt must shrink to fit. 0 (the default) retrieves
    nothing. Rows with a given answer are retrieved for too, so a set of saved answers
    still measures retrieval.

    Raises ``ValueError`` (a bad count), :class:`~core.errors.InvalidRequestError` (a bad
    parameter) before any work; :class:`EvaluationFailed` or :class:`EvaluationInterrupted`
    (Ctrl-C), both carrying the run so far, when the run stops part-way.
    """
    params = {k: v for k, v in dict(params or {}).items() if v is not None}
    _check_counts(concurrency=concurrency, batch_size=batch_size, limit=limit)
    _check_ground(ground)
    resolve_params(service.settings, params)  # a bad parameter fails here, not on every row
    chosen_mode = mode or service.settings.mode
    rows = question_set.rows[:limit] if limit is not None else question_set.rows
    run = EvaluationRun(question_set, params, system_prompt, chosen_mode, total=len(rows), ground=ground)
    passages = _retrieve(rows, service, run)

    previous = resumable_rows(resume_from, rows) if resume_from is not None else {}
    restored = [
        replace(restore_row(row, previous[row.key]), retrieved=passages.get(row.key))
        for row in rows
        if row.key in previous and row.answer is None
    ]
    run.rows.extend(restored)
    run.resumed = len(restored)
    done_keys = {r.key for r in restored}
    given = [row for row in rows if row.answer is not None]
    to_generate = [row for row in rows if row.answer is None and row.key not in done_keys]
    if to_generate and chosen_mode not in service.available_modes:
        raise ConfigurationError(
            f"{chosen_mode.upper()} mode is not available here (available: {', '.join(service.available_modes)}). "
            "API mode needs HF_TOKEN or HF_BASE_URL."
        )

    writer = CheckpointWriter(Path(checkpoint), results_columns(question_set), run.rows) if checkpoint else None
    tracker = _Tracker(run, on_progress, writer, generation_total=len(to_generate))
    stop = cancel or threading.Event()
    try:
        if restored:  # so that a caller collecting ``Progress.finished`` has every row
            tracker.report(restored)
        for row in given:
            if stop.is_set():
                break
            tracker.add([score_row(row, row.answer or "", retrieved=passages.get(row.key))], generated=False)
        if not stop.is_set():
            if chosen_mode == "local":
                _generate_in_batches(to_generate, run, service, tracker, stop, batch_size, passages)
            else:
                _generate_concurrently(to_generate, run, service, tracker, stop, concurrency, passages)
        run.status = "cancelled" if stop.is_set() and len(run.rows) < run.total else "finished"
    except KeyboardInterrupt as error:
        run.status, run.error = "cancelled", "Interrupted (Ctrl-C)."
        raise EvaluationInterrupted(run) from error
    except Exception as error:
        run.status = "failed"
        run.error = error.message if isinstance(error, GenerationError) else f"{type(error).__name__}: {error}"
        raise EvaluationFailed(
            f"The evaluation stopped after {len(run.rows)} of {run.total} rows: {run.error}", run
        ) from error
    finally:
        run.finished_at = time.time()
        if writer is not None:
            writer.close()
    return run


def _check_ground(ground: int) -> None:
    if isinstance(ground, bool) or not isinstance(ground, int) or not 0 <= ground <= MAX_PASSAGES:
        raise ValueError(f"ground (passages per question) must be a whole number from 0 (off) to {MAX_PASSAGES}, not {ground!r}.")


def _retrieve(rows: Sequence[QuestionRow], service: TextGenService, run: EvaluationRun) -> dict[str, tuple[Passage, ...]]:
    """The passages for each row's question, by row key; none when the run is not grounded.

    With ``HF_EMBEDDING_MODEL`` set, BM25's passages are re-ranked by that model; after its
    first failure the rest of the run keeps BM25's order instead of waiting on it again,
    and ``run.ranking_note`` says so.
    """
    if not run.ground:
        return {}
    retriever = get_retriever(service.settings.cache_dir)
    reranker = EmbeddingReranker.from_settings(service.settings)
    passages: dict[str, tuple[Passage, ...]] = {}
    run.ranking = BM25
    for number, row in enumerate(rows, 1):
        grounding = find_passages(row.question, run.ground, retriever, reranker)
        passages[row.key] = grounding.passages
        if grounding.fallback is not None:
            run.ranking_note = f"{grounding.fallback} (from question {number} of {len(rows)} on)"
            reranker = None
        elif reranker is not None:
            run.ranking = grounding.ranking
    return passages


def _context_of(passages: Mapping[str, tuple[Passage, ...]], row: QuestionRow) -> list[str]:
    return [passage.as_context() for passage in passages.get(row.key, ())]


def _check_counts(**counts: int | None) -> None:
    for name, value in counts.items():
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ValueError(f"{name} must be a whole number of at least 1, not {value!r}.")


class _Tracker:
    """Adds finished rows to the run and the checkpoint, and reports progress."""

    def __init__(
        self,
        run: EvaluationRun,
        on_progress: Callable[[Progress], None] | None,
        writer: CheckpointWriter | None,
        *,
        generation_total: int,
    ):
        self.run, self.on_progress, self.writer = run, on_progress, writer
        self.generation_total = generation_total
        self.generated = 0
        self.started = time.monotonic()
        self.generation_started: float | None = None

    def generation_starting(self) -> None:
        if self.generation_started is None:
            self.generation_started = time.monotonic()

    def add(self, scored: list[ScoredRow], *, generated: bool) -> None:
        self.run.rows.extend(scored)
        if self.writer is not None:
            self.writer.append(scored)
        if generated:
            self.generated += len(scored)
        self.report(scored)

    def report(self, finished: Sequence[ScoredRow]) -> None:
        if self.on_progress is not None:
            self.on_progress(self._progress(tuple(finished)))

    def _progress(self, finished: tuple[ScoredRow, ...]) -> Progress:
        now = time.monotonic()
        eta = None
        if self.generated and self.generation_started is not None:
            per_row = (now - self.generation_started) / self.generated
            eta = per_row * (self.generation_total - self.generated)
        elif self.generation_total == 0:
            eta = 0.0
        return Progress(
            done=len(self.run.rows),
            total=self.run.total,
            errors=self.run.errors,
            elapsed_s=now - self.started,
            eta_s=eta,
            finished=finished,
        )


def _generate_in_batches(
    rows: list[QuestionRow],
    run: EvaluationRun,
    service: TextGenService,
    tracker: _Tracker,
    stop: threading.Event,
    batch_size: int,
    passages: Mapping[str, tuple[Passage, ...]],
) -> None:
    """Local mode: one ``chat_batch`` call per ``batch_size`` rows, in the calling thread."""
    for start in range(0, len(rows), batch_size):
        if stop.is_set():
            return
        chunk = rows[start:start + batch_size]
        tracker.generation_starting()
        try:
            results: Sequence[GenerationResult | GenerationError] = service.chat_batch(
                [row.question for row in chunk],
                system_prompt=run.system_prompt,
                contexts=[row.context_passages for row in chunk],
                retrieved=[_context_of(passages, row) for row in chunk],
                mode=run.mode,  # type: ignore[arg-type]
                **run.params,
            )
        except _RUN_LEVEL_ERRORS:
            raise
        except GenerationError as error:
            results = [error] * len(chunk)
        tracker.add(
            [score_row(row, result, retrieved=passages.get(row.key)) for row, result in zip(chunk, results, strict=True)],
            generated=True,
        )


def _generate_concurrently(
    rows: list[QuestionRow],
    run: EvaluationRun,
    service: TextGenService,
    tracker: _Tracker,
    stop: threading.Event,
    concurrency: int,
    passages: Mapping[str, tuple[Passage, ...]],
) -> None:
    """API mode: at most ``concurrency`` requests in flight; results are scored here, in the caller's thread."""

    def answer(row: QuestionRow) -> GenerationResult | GenerationError:
        try:
            return service.chat(
                row.question,
                system_prompt=run.system_prompt,
                context=row.context_passages,
                retrieved=_context_of(passages, row),
                mode=run.mode,  # type: ignore[arg-type]
                **run.params,
            )
        except _RUN_LEVEL_ERRORS:
            raise
        except GenerationError as error:
            return error

    pending: Iterator[QuestionRow] = iter(rows)
    in_flight: dict[Future[GenerationResult | GenerationError], QuestionRow] = {}
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="evaluation")
    try:
        tracker.generation_starting()
        while True:
            while len(in_flight) < concurrency and not stop.is_set():
                row = next(pending, None)
                if row is None:
                    break
                in_flight[pool.submit(answer, row)] = row
            if not in_flight:
                return
            finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in finished:
                row = in_flight.pop(future)
                tracker.add([score_row(row, future.result(), retrieved=passages.get(row.key))], generated=True)
    finally:
        # Only reached with requests in flight on Ctrl-C or a crash: do not wait for them.
        pool.shutdown(wait=False, cancel_futures=True)
