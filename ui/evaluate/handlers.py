"""The Evaluate tab's handlers: run a set, show its results, load and compare results files.

Inputs arrive by name (see :func:`ui.evaluate.tab.build_evaluate_tab`); the thresholds as
the fields of :class:`~core.evaluation.summary.Thresholds`, the sliders as
:class:`~ui.common.sampling.SamplingSliders` names.
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import gradio as gr
import pandas as pd

from core import GenerationParams, get_textgen_service
from core.background import Background
from core.errors import EvaluationFailed, QuestionSetError, ResultsFileError
from core.evaluation.question_sets import load_question_set
from core.evaluation.runner import EvaluationRun, Progress, run_evaluation
from core.evaluation.scored_rows import ScoredRow
from core.evaluation.summary import Thresholds
from core.evaluation.table import compare_runs, load_results, results_frame, write_results_csv, write_results_json
from ui.common.sampling import params_from
from ui.common.sets import shipped_sets
from ui.common.visitor import service_for
from ui.evaluate.views import plots, summary_markdown, table_view

#: The sliders of the tab's own settings (used when "Use the settings from the Chat/Tune tabs" is off).
OWN_SETTINGS = ("temperature", "top_p", "repetition_penalty", "max_new_tokens")

# The cancel flag of each browser session's running evaluation, removed when the run ends.
_cancel_flags: dict[str, threading.Event] = {}


def question_sets() -> list[tuple[str, str]]:
    """Shipped sets, then sets made from the chat, as (label, path) choices."""
    made = get_textgen_service().settings.data_dir / "question_sets"
    shipped = shipped_sets()
    saved = [(f"{p.stem.replace('_', ' ')} (saved)", str(p)) for p in sorted(made.glob("*.csv"))] if made.is_dir() else []
    return shipped + saved


def _progress_text(progress: Progress) -> str:
    eta = f" · about {progress.eta_s:.0f} s left" if progress.eta_s is not None else ""
    return f"{progress.done} of {progress.total} done · {progress.errors} errors{eta}"


def run(
    set_path: str | None,
    upload: str | None,
    limit: float | None,
    concurrency: float,
    use_tab_settings: bool,
    sampling: GenerationParams,
    mode: str | None,
    ground: float | None,
    request: gr.Request,
    oauth_token: gr.OAuthToken | None = None,
    progress: gr.Progress = gr.Progress(),  # noqa: B008 (how Gradio asks for a progress bar)
    **sliders: float,
) -> Iterator[tuple[str, pd.DataFrame | None, pd.DataFrame]]:
    """Run a set in a worker thread and report as rows finish; Cancel keeps finished rows.

    ``sampling`` is the Chat/Tune tabs' settings; ``sliders`` the tab's own (:data:`OWN_SETTINGS`).
    """
    source = upload or set_path
    if not source:
        raise gr.Error("Pick a question set or upload a CSV file first.", print_exception=False)
    if not upload and set_path not in {path for _, path in question_sets()}:
        raise gr.Error("That question set is not one of the sets listed here.", print_exception=False)
    try:
        question_set = load_question_set(source, name=Path(source).name)
    except QuestionSetError as error:
        raise gr.Error(str(error), print_exception=False) from error
    own = params_from(sliders, GenerationParams.configured(get_textgen_service().settings), OWN_SETTINGS)
    params = (sampling if use_tab_settings else own).overrides()
    def work(emit: Callable[[Progress], None], cancel: threading.Event) -> EvaluationRun:
        return run_evaluation(
            question_set, service=service_for(oauth_token), params=params, mode=mode, concurrency=int(concurrency),
            limit=int(limit) if limit else None, on_progress=emit, cancel=cancel, ground=int(ground or 0),
        )

    session = request.session_hash or ""
    running = Background(work, name="evaluation-run")
    _cancel_flags[session] = running.cancel
    finished: list[ScoredRow] = []
    progress(0, desc="Starting…")
    try:
        for update in running:
            finished.extend(update.finished)
            progress(update.fraction, desc=_progress_text(update))
            frame = results_frame(finished)
            yield _progress_text(update), frame, table_view(frame, False, "", Thresholds())
    except EvaluationFailed as error:
        frame = results_frame(error.run)
        yield f"⚠️ {error}", frame, table_view(frame, False, "", Thresholds())
        return
    except Exception as error:  # noqa: BLE001 (a setting or model that stops the run before its first row)
        raise gr.Error(f"The run could not start: {getattr(error, 'message', error)}", print_exception=False) from error
    finally:
        if _cancel_flags.get(session) is running.cancel:
            del _cancel_flags[session]
    done = running.results[0]
    verb = "Cancelled" if done.status == "cancelled" else "Finished"
    frame = results_frame(done)
    yield f"{verb}: {len(done.rows)} of {done.total} rows in {done.duration_s:.0f} s.", frame, table_view(frame, False, "", Thresholds())


def all_rows_for_given_answers(path: str | None) -> tuple[object, str]:
    """An uploaded set with its answers is scored whole: scoring costs no generation.

    Leaves the limit alone for a set that has questions to answer, or that cannot be read
    (Run will say why).
    """
    try:
        question_set = load_question_set(path, name=Path(path).name) if path else None
    except QuestionSetError:
        return gr.skip(), ""
    if question_set is None or not question_set.rows or any(not row.answer for row in question_set.rows):
        return gr.skip(), ""
    return None, f"{len(question_set.rows)} questions with their answers: all of them will be scored."


def cancel_run(request: gr.Request) -> str:
    flag = _cancel_flags.get(request.session_hash or "")
    if flag is not None:
        flag.set()
    return "Cancelling: rows in progress finish, the rest are skipped…"


def show_results(frame: pd.DataFrame | None, failures_only: bool, search: str, **limits: float):
    """Everything that depends on the results: summary, table, plots, downloads.

    ``limits`` are the thresholds, by their :class:`Thresholds` field names.
    """
    thresholds = Thresholds(**limits)
    by_category, histogram = plots(frame)
    downloads = (None, None)
    if frame is not None and not frame.empty:
        folder = Path(tempfile.mkdtemp(prefix="results-"))
        downloads = (str(write_results_csv(frame, folder / "results.csv")), str(write_results_json(frame, folder / "results.json")))
    return (
        summary_markdown(frame, thresholds),
        table_view(frame, failures_only, search, thresholds),
        by_category,
        histogram,
        gr.DownloadButton(value=downloads[0], interactive=downloads[0] is not None),
        gr.DownloadButton(value=downloads[1], interactive=downloads[1] is not None),
    )


def load_earlier(path: str | None) -> pd.DataFrame | None:
    if not path:
        return None
    try:
        return load_results(path)
    except (ResultsFileError, ValueError, OSError) as error:
        raise gr.Error(f"{Path(path).name} could not be read as a results file: {error}", print_exception=False) from error


def compare(current: pd.DataFrame | None, earlier_path: str | None) -> tuple[str, pd.DataFrame]:
    """Which questions got better or worse from an earlier results file to the current results."""
    if current is None or current.empty or not earlier_path:
        raise gr.Error("Run or load a set first, then choose an earlier results file to compare with.", print_exception=False)
    changes = compare_runs(load_earlier(earlier_path), current)
    counts = changes["citation_f1_change"].value_counts()
    headline = f"Citation F1: {counts.get('better', 0)} better · {counts.get('worse', 0)} worse · {counts.get('same', 0)} same"
    return headline, changes
