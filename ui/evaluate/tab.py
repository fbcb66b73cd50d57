"""The Evaluate tab: run a question set, see its scores, compare runs, review citations."""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import gradio as gr
import pandas as pd

from core import get_textgen_service
from core.background import Background
from core.errors import EvaluationFailed, QuestionSetError, ResultsFileError
from core.evaluation.question_sets import load_question_set
from core.evaluation.runner import EvaluationRun, Progress, run_evaluation
from core.evaluation.scored_rows import ScoredRow
from core.evaluation.summary import Thresholds, check_thresholds, summarize
from core.evaluation.table import compare_runs, load_results, results_frame, write_results_csv, write_results_json
from core.retrieval import MAX_PASSAGES
from ui.common.presets import Sampling
from ui.common.sets import shipped_sets
from ui.common.visitor import service_for
from ui.evaluate.review.figures import figures_markdown
from ui.evaluate.review.panel import build_review_panel, remembered_reviewer, review_store

#: The table shows these, compactly; selecting a row shows all of it, and the downloads carry every column.
TABLE_COLUMNS = ["#", "id", "question", "answer", "citations", "citation_f1", "flags"]
#: Characters of the question and of the answer shown in a table cell.
QUESTION_CHARS, ANSWER_CHARS = 80, 120


def _short(text: object, limit: int) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _flags(row: pd.Series) -> str:
    """What needs a look in a row, in a few words."""
    flags = []
    def value(column: str) -> object:
        cell = row.get(column)
        return None if cell is None or pd.isna(cell) else cell  # a failed row has NA in its score columns

    if value("error"):
        flags.append("error")
    if value("nonexistent_count"):
        flags.append(f"{int(value('nonexistent_count'))} nonexistent")  # type: ignore[call-overload]
    if value("misquotes"):
        flags.append("misquote")
    if value("degenerate") is True:
        flags.append("loops")
    if value("within_token_limit") is False:
        flags.append("over token limit")
    return ", ".join(flags)


def compact_rows(view: pd.DataFrame) -> pd.DataFrame:
    """The table's compact columns for these result rows; "#" is the row's place in the results, from 1."""
    citations = view["valid_citations"].fillna("")
    nonexistent = view["nonexistent_citations"].fillna("")
    joined = [
        "; ".join(part for part in (valid, f"⚠️ {missing}" if missing else "") if part) for valid, missing in zip(citations, nonexistent)
    ]
    return pd.DataFrame(
        {
            "#": view.index + 1,
            "id": view["id"].fillna(""),
            "question": view["question"].map(lambda q: _short(q, QUESTION_CHARS)),
            "answer": view["answer"].map(lambda a: _short(a, ANSWER_CHARS)),
            "citations": joined,
            "citation_f1": view["citation_f1"].astype("Float64").round(2),
            "flags": view.apply(_flags, axis=1) if len(view) else pd.Series(dtype=str),
        },
        index=view.index,
    )


def row_details(event: gr.SelectData, frame: pd.DataFrame | None) -> pd.DataFrame:
    """Every column of the row selected in the table, one per line.

    Found by the row's "#", not by its place on screen: the table may be sorted, or its
    search box edited since it was filtered.
    """
    number = (event.row_value or [None])[0]
    if frame is None or number is None or not 1 <= int(number) <= len(frame):
        return pd.DataFrame(columns=["column", "value"])
    record = frame.reset_index(drop=True).iloc[int(number) - 1]
    return pd.DataFrame({"column": record.index, "value": ["" if pd.isna(v) else str(v) for v in record.to_numpy()]})


# One cancel flag per browser session: a run stops when its own person presses Cancel.
_cancel_flags: dict[str, threading.Event] = {}


def question_sets() -> list[tuple[str, str]]:
    """Shipped sets, then sets made from the chat, as (label, path) choices."""
    made = get_textgen_service().settings.data_dir / "question_sets"
    shipped = shipped_sets()
    saved = [(f"{p.stem.replace('_', ' ')} (saved)", str(p)) for p in sorted(made.glob("*.csv"))] if made.is_dir() else []
    return shipped + saved


def summary_markdown(frame: pd.DataFrame | None, limits: Thresholds) -> str:
    """Headline figures and pass/fail against the thresholds, as Markdown."""
    if frame is None or frame.empty:
        return "_No results yet: pick a question set and press Run._"
    s = summarize(frame)

    def pct(value: float | None) -> str:
        return "–" if value is None else f"{value:.1%}"

    def seconds(value: float | None) -> str:
        return "–" if value is None else f"{value / 1000:.1f} s"

    lines = [
        f"**{s.rows} rows** · {s.answered} answered ({s.generated} generated, {s.given} given) · {s.errors} errors  ",
        f"**Citations:** {s.citations} found, {s.nonexistent_citations} nonexistent · automatic accuracy {pct(s.automatic_citation_accuracy)}  ",
        f"**Latency:** p50 {seconds(s.latency_p50_ms)} · p95 {seconds(s.latency_p95_ms)}  ",
        *(
            [f"**Retrieval** over {s.retrieval_rows} grounded rows with expected references: hit rate {pct(s.retrieval_hit_rate)}"
             f" · recall@K {pct(s.retrieval_recall)}"]
            if s.retrieval_rows
            else []
        ),
        "",
        "| Check | Value | Limit | Result |",
        "|---|---|---|---|",
    ]
    for check in check_thresholds(s, limits):
        value = "–" if check.value is None else f"{check.value:.3g}"
        verdict = "n/a" if check.passed is None else ("✅ pass" if check.passed else "❌ fail")
        lines.append(f"| {check.name} | {value} | {check.limit} | {verdict} |")
    reviews = figures_markdown(frame, review_store(get_textgen_service().settings.data_dir))
    return "\n".join(lines) + ("\n\n" + reviews if reviews else "")


def failures(frame: pd.DataFrame, limits: Thresholds) -> pd.Series:
    """Rows a reviewer should look at first: errors, nonexistent citations, loops, low F1."""
    low_f1 = frame["citation_f1"].astype("Float64").fillna(1.0) < limits.min_citation_f1
    return (frame["error"].fillna("") != "") | (frame["nonexistent_count"].fillna(0) > 0) | frame["degenerate"].fillna(False).astype(bool) | low_f1


def filtered_rows(frame: pd.DataFrame | None, failures_only: bool, search: str, limits: Thresholds) -> pd.DataFrame | None:
    """The full result rows the table shows, in its order."""
    if frame is None or frame.empty:
        return None
    frame = frame.reset_index(drop=True)  # the index is the row's place, which "#" shows
    view = frame[failures(frame, limits)] if failures_only else frame
    if search.strip():
        needle = search.strip().lower()
        text = view["question"].str.lower() + " " + view["answer"].fillna("").str.lower() + " " + view["category"].str.lower()
        view = view[text.str.contains(needle, regex=False)]
    return view


def table_view(frame: pd.DataFrame | None, failures_only: bool, search: str, limits: Thresholds) -> pd.DataFrame:
    view = filtered_rows(frame, failures_only, search, limits)
    return pd.DataFrame(columns=TABLE_COLUMNS) if view is None else compact_rows(view)


def plots(frame: pd.DataFrame | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Citation F1 by category, and how repetitive the answers are (rep-4 histogram)."""
    if frame is None or frame.empty:
        return pd.DataFrame({"category": [], "citation_f1": []}), pd.DataFrame({"rep_n": [], "answers": []})
    by_category = (
        frame.assign(category=frame["category"].replace("", "(none)"), citation_f1=frame["citation_f1"].astype("Float64"))
        .groupby("category", as_index=False)["citation_f1"].mean()
        .fillna(0.0)
    )
    bins = pd.cut(frame["rep_n"].astype("Float64").dropna().astype(float), [-0.01, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0])
    histogram = bins.value_counts(sort=False).rename_axis("rep_n").reset_index(name="answers")
    histogram["rep_n"] = histogram["rep_n"].astype(str)
    return by_category, histogram


def _thresholds(min_f1: float, max_nonexistent: float, max_degenerate: float, max_errors: float, min_compliance: float) -> Thresholds:
    return Thresholds(min_f1, max_nonexistent, max_degenerate, max_errors, min_compliance)


def _progress_text(progress: Progress) -> str:
    eta = f" · about {progress.eta_s:.0f} s left" if progress.eta_s is not None else ""
    return f"{progress.done} of {progress.total} done · {progress.errors} errors{eta}"


def run(
    set_path: str | None,
    upload: str | None,
    limit: float | None,
    concurrency: float,
    use_tab_settings: bool,
    temperature: float,
    top_p: float,
    repetition_penalty: float,
    max_new_tokens: float,
    sampling: Sampling,
    mode: str | None,
    ground: float | None,
    request: gr.Request,
    oauth_token: gr.OAuthToken | None = None,
    progress: gr.Progress = gr.Progress(),
) -> Iterator[tuple[str, pd.DataFrame | None, pd.DataFrame]]:
    """Run a set in a worker thread and report as rows finish; Cancel keeps finished rows."""
    source = upload or set_path
    if not source:
        raise gr.Error("Pick a question set or upload a CSV file first.", print_exception=False)
    if not upload and set_path not in {path for _, path in question_sets()}:
        raise gr.Error("That question set is not one of the sets listed here.", print_exception=False)
    try:
        question_set = load_question_set(source, name=Path(source).name)
    except QuestionSetError as error:
        raise gr.Error(str(error), print_exception=False) from error
    params = sampling.as_params() if use_tab_settings else {
        "temperature": temperature, "top_p": top_p, "repetition_penalty": repetition_penalty, "max_new_tokens": int(max_new_tokens),
    }
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


def show_results(frame: pd.DataFrame | None, failures_only: bool, search: str, *limits: float):
    """Everything that depends on the results: summary, table, plots, downloads."""
    thresholds = _thresholds(*limits)
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


def build_evaluate_tab(sampling: gr.State, mode: gr.State) -> None:
    with gr.Tab("Evaluate", id="evaluate"):
        # inside the Tab: a State placed directly in gr.Tabs shows up as a second tab button
        results = gr.State(None)
        reviewer_name = remembered_reviewer()
        with gr.Tabs():
            with gr.Tab("Run", id="evaluate-run-tab") as run_tab:
                with gr.Row():
                    choices = question_sets()
                    set_path = gr.Dropdown(choices, label="Question set", value=choices[0][1])
                    upload = gr.File(label="…or upload a CSV", file_types=[".csv"], type="filepath", elem_id="evaluate-upload")
                with gr.Row():
                    limit = gr.Number(label="Only the first N questions (blank: all)", value=5, precision=0, minimum=1)
                    concurrency = gr.Number(label="Requests at once (API mode)", value=4, precision=0, minimum=1, maximum=32)
                    ground = gr.Number(label=f"Ground in Scripture: passages per question (0: off, at most {MAX_PASSAGES})", value=0,
                                       precision=0, minimum=0, maximum=MAX_PASSAGES, elem_id="evaluate-ground")
                with gr.Accordion("Settings", open=False):
                    use_tab_settings = gr.Checkbox(True, label="Use the settings from the Chat/Tune tabs")
                    with gr.Row():
                        temperature = gr.Slider(0, 2, value=0.2, step=0.05, label="Temperature")
                        top_p = gr.Slider(0.05, 1, value=0.9, step=0.05, label="Top-p")
                        repetition_penalty = gr.Slider(1, 2, value=1.1, step=0.05, label="Repetition penalty")
                        max_new_tokens = gr.Slider(1, 400, value=400, step=1, label="Max new tokens")
                with gr.Row():
                    run_button = gr.Button("Run", variant="primary", elem_id="evaluate-run")
                    cancel_button = gr.Button("Cancel", variant="stop")
                status = gr.Markdown(elem_id="evaluate-status")
                with gr.Accordion("Pass/fail thresholds", open=False), gr.Row():
                    limits = [
                        gr.Number(0.5, label="Citation F1 at least"),
                        gr.Number(0.05, label="Nonexistent citations at most"),
                        gr.Number(0.05, label="Degenerate answers at most"),
                        gr.Number(0.05, label="Errors at most"),
                        gr.Number(1.0, label="Within token limit at least"),
                    ]
                summary = gr.Markdown(summary_markdown(None, Thresholds()), elem_id="evaluate-summary")
                with gr.Row():
                    failures_only = gr.Checkbox(False, label="Only rows that need a look")
                    search = gr.Textbox(label="Search questions and answers", scale=3)
                table = gr.DataFrame(label="Results (select a row to see all of it; the downloads have every column)", wrap=True,
                                     max_height=480, interactive=False, elem_id="evaluate-table",
                                     column_widths=["4%", "7%", "22%", "32%", "17%", "8%", "10%"])
                details = gr.DataFrame(headers=["column", "value"], label="The selected row", wrap=True, max_height=480,
                                       interactive=False, elem_id="evaluate-row", column_widths=["20%", "80%"])
                with gr.Row():
                    by_category = gr.BarPlot(x="category", y="citation_f1", title="Citation F1 by category", y_lim=[0, 1])
                    histogram = gr.BarPlot(x="rep_n", y="answers", title="Answers by repetition (rep-4)")
                with gr.Row():
                    csv_download = gr.DownloadButton("Download CSV", interactive=False)
                    json_download = gr.DownloadButton("Download JSON", interactive=False)
            with gr.Tab("Load and compare", id="evaluate-compare-tab"):
                earlier = gr.File(label="A results file (CSV or JSON from an earlier run)", file_types=[".csv", ".json"], type="filepath")
                with gr.Row():
                    load_button = gr.Button("Show it as the current results")
                    compare_button = gr.Button("Compare it with the current results")
                compare_headline = gr.Markdown()
                changes = gr.DataFrame(label="Per question: earlier → current", wrap=True, interactive=False)
            with gr.Tab("Review citations", id="evaluate-review-tab"):
                build_review_panel(results, reviewer_name)

    view_inputs = [results, failures_only, search, *limits]
    view_outputs = [summary, table, by_category, histogram, csv_download, json_download]
    run_inputs = [set_path, upload, limit, concurrency, use_tab_settings, temperature, top_p, repetition_penalty, max_new_tokens, sampling, mode, ground]
    run_button.click(run, run_inputs, [status, results, table], api_name="evaluate", concurrency_limit=4).then(
        show_results, view_inputs, view_outputs, api_visibility="private"
    )
    cancel_button.click(cancel_run, None, status, api_visibility="private")
    for control in (failures_only, *limits):
        control.change(show_results, view_inputs, view_outputs, api_visibility="private")
    search.submit(show_results, view_inputs, view_outputs, api_visibility="private")
    # reviews change the summary's manual figures: redraw it when the reviewer comes back here
    run_tab.select(lambda frame, *numbers: summary_markdown(frame, _thresholds(*numbers)), [results, *limits], summary,
                   api_visibility="private")
    table.select(row_details, results, details, api_visibility="private")
    upload.upload(all_rows_for_given_answers, upload, [limit, status], api_visibility="private")
    load_button.click(load_earlier, earlier, results, api_visibility="private").then(show_results, view_inputs, view_outputs, api_visibility="private")
    compare_button.click(compare, [results, earlier], [compare_headline, changes], api_visibility="private")
