"""The Tune tab: developers compare sampling settings side by side, grounded in Scripture or not,
and sweep one of them.

Everything measured here comes from :mod:`core.evaluation.sweep`, so a column's repetition and
citation figures mean the same as the Chat tab's flags and the Evaluate tab's scores.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import gradio as gr
import pandas as pd

from core import GenerationError, GenerationParams, GenerationResult, get_textgen_service
from core.background import Background
from core.config import env_lines
from core.evaluation.question_sets import sample_questions
from core.evaluation.sweep import (
    DEFAULT_SWEEP_RANGES,
    SWEEP_PARAMETERS,
    AnswerFigures,
    SweepPoint,
    iter_compare,
    run_sweep,
    sweep_values,
)
from core.generation.prompting import DEFAULT_SYSTEM_PROMPT
from core.retrieval import MAX_PASSAGES, Passage
from ui.common.citations import misquote_warning
from ui.common.grounding import passages_for, warm_retriever
from ui.common.presets import presets
from ui.common.sampling import SLIDER_PARAMETERS, SamplingSliders, params_from, slider_values
from ui.common.sets import EVAL_SETS, shipped_sets
from ui.common.visitor import service_for

MAX_COLUMNS = 4
COLUMN_NAMES = "ABCD"
DEFAULT_PROMPT = "What does the Bible say about forgiveness? Cite the verses."
#: Small on purpose: a sweep on the CPU answers every question at every value.
DEFAULT_SWEEP_QUESTIONS = 3
DEFAULT_SWEEP_STEPS = 4
#: The presets the columns start with, so a first Compare already shows a contrast.
STARTING_PRESETS = ("Factual", "Balanced", "Creative", "Greedy (deterministic)")


#: Each column's sliders reach the compare and sweep handlers under its own prefix.
COLUMN_PREFIXES = tuple(f"{name.lower()}_" for name in COLUMN_NAMES)


@dataclass(frozen=True)
class _Column:
    """The controls and outputs of one settings column."""

    box: gr.Column
    preset: gr.Dropdown
    sliders: SamplingSliders
    passages: gr.Slider  # Scripture passages the answer is grounded in; 0: not grounded
    answer: gr.Textbox
    figures: gr.Markdown
    sent: gr.Code
    use_in_chat: gr.Button
    export: gr.Button


def column_params(values: Mapping[str, object], seed: float | None, stop: str, prefix: str = "") -> GenerationParams:
    """One column's settings from its sliders (by name), the seed (blank: none) and stop sequences (one per line)."""
    return params_from(values, GenerationParams(), SLIDER_PARAMETERS, prefix=prefix, seed=seed, stop=stop or "")


def preset_values(name: str) -> list[float]:
    """The slider values of a preset, in the sliders' order."""
    return slider_values(presets(get_textgen_service().settings)[name])


def sent_parameters(mode: str | None, seed: float | None, stop: str, oauth_token: gr.OAuthToken | None = None, **sliders: float) -> str:
    """The parameters exactly as the backend will send them, as JSON (never loads a model to say so)."""
    try:
        sent = service_for(oauth_token).sent_parameters(mode=mode, **column_params(sliders, seed, stop).overrides())
    except GenerationError as error:
        return json.dumps({"error": error.message}, indent=2)
    return json.dumps(sent, indent=2, default=str)


def figures_markdown(result: GenerationResult | None, error: GenerationError | None = None, passages: Sequence[Passage] = ()) -> str:
    """A column's figures: tokens, latency, repetition, citations found and nonexistent, the passages it was given."""
    grounded = f"**Grounded in {len(passages)} passages:** " + "; ".join(p.reference for p in passages) if passages else ""
    if error is not None:
        return f"⚠️ {error.message}"
    if result is None:
        return "  \n".join(part for part in ("_Answering…_", grounded) if part)
    f = AnswerFigures.of(result)
    lines = [
        f"**{f.output_tokens} tokens** · {f.latency_ms / 1000:.1f} s · {f.tokens_per_s:.1f} tokens/s · finished: {f.finish_reason}",
        f"**Repetition:** rep-4 {f.rep_n:.2f} · distinct-2 {f.distinct_2:.2f}" + (" · ⚠️ degenerate" if f.degenerate else ""),
        f"**Citations:** {f.citations} found · {len(f.nonexistent)} nonexistent"
        + (f" ({', '.join(f.nonexistent)})" if f.nonexistent else ""),
        *(f"⚠️ {misquote_warning(reference)}" for reference in f.misquoted),
    ]
    if f.flags:
        lines.append("**Flags:** " + ", ".join(f.flags))
    if f.cached:
        lines.append("_From the cache: same prompt, settings and seed as an earlier run._")
    if grounded:
        lines.append(grounded)
    return "  \n".join(lines)


def compare(
    count: float, prompt: str, system_prompt: str, seed: float | None, stop: str, mode: str | None,
    oauth_token: gr.OAuthToken | None = None, **sliders: float,
) -> Iterator[list[str]]:
    """Answer the prompt under the first ``count`` columns' settings; stream every column.

    ``sliders`` are every column's, under :data:`COLUMN_PREFIXES`, with its number of
    Scripture passages (``a_passages``; 0: not grounded), found for the prompt as Chat
    finds them. Gradio fills ``oauth_token`` in by its type.
    """
    if not prompt or not prompt.strip():
        raise gr.Error("Type a prompt to compare the settings on.", print_exception=False)
    count = int(count)
    settings = [column_params(sliders, seed, stop, COLUMN_PREFIXES[i]).overrides() for i in range(count)]
    passages = [passages_for(prompt, sliders.get(f"{COLUMN_PREFIXES[i]}passages")) for i in range(count)]
    answers = [""] * MAX_COLUMNS
    figures = ["_Waiting…_" if i < count else "" for i in range(MAX_COLUMNS)]
    yield answers + figures
    try:
        for update in iter_compare(
            service_for(oauth_token), prompt, settings, system_prompt=system_prompt or None, mode=mode,
            retrieved=[[p.as_context() for p in found] for found in passages],
        ):
            answers[update.index] = update.text
            figures[update.index] = figures_markdown(update.result, update.error, passages[update.index])
            yield answers + figures
    except GenerationError as error:  # a bad setting, found before any column ran
        raise gr.Error(error.message, print_exception=False) from error


def use_in_chat(seed: float | None, stop: str, **sliders: float) -> tuple[GenerationParams, gr.Tabs]:
    """Make a column's settings the Chat tab's (for this browser session) and go there."""
    sampling = column_params(sliders, seed, stop)
    gr.Info(f"The Chat tab now answers with: {sampling.describe()}.")
    return sampling, gr.Tabs(selected="chat")


def export_env(seed: float | None, stop: str, **sliders: float) -> str:
    """The ``.env`` lines that make a column's settings the app's defaults."""
    sampling = column_params(sliders, seed, stop)
    lines = ["# Paste into .env or the Space's variables: these become the defaults.", *env_lines(sampling.overrides())]
    per_request = {"top_k": sampling.top_k, "seed": sampling.seed, "stop": list(sampling.stop) or None}
    kept = {k: v for k, v in per_request.items() if v is not None}
    if kept:
        lines.append(f"# Per request only (no variable sets them): {json.dumps(kept)}")
    return "\n".join(lines)


def sweep_frames(points: Sequence[SweepPoint], parameter: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Long-format frames for the two plots (repetition, citations) and a table of the points."""
    repetition, citations = [], []
    for p in points:
        for measure, value in (("rep-4", p.mean_rep_n), ("distinct-2", p.mean_distinct_2), ("degenerate share", p.degenerate_share)):
            if value is not None:
                repetition.append({parameter: p.value, "measure": measure, "value": value})
        for measure, value in (("citations per answer", p.citations_per_answer), ("nonexistent per answer", p.nonexistent_per_answer)):
            if value is not None:
                citations.append({parameter: p.value, "measure": measure, "value": value})
    table = pd.DataFrame(
        [
            {
                parameter: p.value, "answers": p.answers, "errors": p.errors, "rep-4": p.mean_rep_n, "distinct-2": p.mean_distinct_2,
                "degenerate share": p.degenerate_share, "citations per answer": p.citations_per_answer,
                "nonexistent per answer": p.nonexistent_per_answer, "mean tokens": p.mean_output_tokens,
                "mean latency ms": p.mean_latency_ms, "first error": p.first_error or "",
            }
            for p in points
        ]
    )
    columns = [parameter, "measure", "value"]
    return pd.DataFrame(repetition, columns=columns), pd.DataFrame(citations, columns=columns), table


def sweep(
    parameter: str, start: float, stop_value: float, steps: float, set_path: str, questions: float,
    system_prompt: str, seed: float | None, stop: str, mode: str | None, oauth_token: gr.OAuthToken | None = None, **sliders: float,
) -> Iterator[tuple[str, gr.LinePlot, gr.LinePlot, pd.DataFrame]]:
    """Answer a sample of a question set at each value of one setting; plot as points arrive.

    The generation runs in a worker thread so that this handler can show each point as it
    comes; closing the handler (Stop, a closed tab) tells the worker to start no new value.
    """
    service = service_for(oauth_token)
    if set_path not in {path for _, path in shipped_sets()}:
        raise gr.Error("That question set is not one of the sets listed here.", print_exception=False)
    try:
        points_to_try = sweep_values(parameter, start, stop_value, int(steps))
        sample = sample_questions(set_path, int(questions))
    except (GenerationError, OSError) as error:
        raise gr.Error(getattr(error, "message", str(error)), print_exception=False) from error
    base = column_params(sliders, seed, stop).overrides()  # Settings A's
    def work(emit: Callable[[SweepPoint], None], cancel: threading.Event) -> None:
        run_sweep(
            service, sample, parameter, points_to_try, base, mode=mode, system_prompt=system_prompt or None,
            on_progress=lambda done, total, point: emit(point), cancel=cancel,
        )

    points: list[SweepPoint] = []
    yield _sweep_outputs(points, parameter, len(points_to_try), len(sample))
    try:
        for point in Background(work, name="tune-sweep"):
            points.append(point)
            yield _sweep_outputs(points, parameter, len(points_to_try), len(sample))
    except GenerationError as error:
        raise gr.Error(error.message, print_exception=False) from error


def _sweep_outputs(points: list[SweepPoint], parameter: str, total: int, questions: int) -> tuple[str, gr.LinePlot, gr.LinePlot, pd.DataFrame]:
    repetition, citations, table = sweep_frames(points, parameter)
    done = len(points) == total
    status = f"{'Done' if done else 'Running'}: {len(points)} of {total} values × {questions} questions."
    return (
        status,
        gr.LinePlot(repetition, x=parameter, y="value", color="measure", x_title=parameter),
        gr.LinePlot(citations, x=parameter, y="value", color="measure", x_title=parameter),
        table,
    )


def _build_column(index: int, sampling: GenerationParams) -> _Column:
    name = COLUMN_NAMES[index]
    named = presets(get_textgen_service().settings)
    with gr.Column(visible=index < 2, min_width=240) as box:
        gr.Markdown(f"### Settings {name}")
        preset = gr.Dropdown(list(named), value=STARTING_PRESETS[index], label="Preset", elem_id=f"tune-preset-{name}")
        start = named[STARTING_PRESETS[index]] if index else sampling
        sliders = SamplingSliders.build(start, elem_id=f"tune-{{name}}-{name}")
        passages = gr.Slider(0, MAX_PASSAGES, value=0, step=1, label="Scripture passages (0: not grounded)", elem_id=f"tune-passages-{name}")
        answer = gr.Textbox(label=f"Answer {name}", lines=10, max_lines=20, interactive=False, elem_id=f"tune-answer-{name}", buttons=["copy"])
        figures = gr.Markdown(elem_id=f"tune-figures-{name}")
        with gr.Accordion("Parameters sent", open=False):
            sent = gr.Code(language="json", interactive=False, elem_id=f"tune-sent-{name}")
        with gr.Row():
            use = gr.Button("Use in Chat", size="sm", elem_id=f"tune-use-{name}")
            export = gr.Button("Export .env", size="sm")
    return _Column(box, preset, sliders, passages, answer, figures, sent, use, export)


def build_tune_tab(sampling: gr.State, mode: gr.State, tabs: gr.Tabs) -> None:
    """``tabs`` lets "Use in Chat" switch to the Chat tab."""
    with gr.Tab("Tune", id="tune"):
        gr.Markdown("Compare the same prompt under several settings with the same seed, with or without Scripture passages, "
                    "or sweep one setting over a range.")
        with gr.Row():
            prompt = gr.Textbox(DEFAULT_PROMPT, label="Prompt", lines=2, scale=3, elem_id="tune-prompt")
            with gr.Column(scale=1, min_width=200):
                seed = gr.Number(42, label="Seed (blank: none)", precision=0, minimum=0, elem_id="tune-seed")
                stop = gr.Textbox(label="Stop sequences (one per line)", lines=1, max_lines=4)
        with gr.Accordion("System prompt", open=False):
            system_prompt = gr.Textbox(DEFAULT_SYSTEM_PROMPT, label="System prompt", lines=3)
        with gr.Tabs():
            with gr.Tab("Compare", id="tune-compare"):
                with gr.Row():
                    count = gr.Radio([2, 3, 4], value=2, label="Settings to compare", elem_id="tune-count")
                    with gr.Column():
                        run_compare = gr.Button("Compare", variant="primary", elem_id="tune-compare-run")
                        stop_compare = gr.Button("Stop", variant="stop")
                with gr.Row(equal_height=False):
                    columns = [_build_column(i, sampling.value) for i in range(MAX_COLUMNS)]
                env_code = gr.Code(label="Settings as .env lines", language="shell", interactive=False, visible=False, elem_id="tune-env")
            with gr.Tab("Sweep", id="tune-sweep"):
                gr.Markdown("Answers a few questions from a set at each value of one setting; the others come from **Settings A**.")
                with gr.Row():
                    parameter = gr.Dropdown(list(SWEEP_PARAMETERS), value="temperature", label="Setting to sweep")
                    start = gr.Number(DEFAULT_SWEEP_RANGES["temperature"][0], label="From")
                    end = gr.Number(DEFAULT_SWEEP_RANGES["temperature"][1], label="To")
                    steps = gr.Number(DEFAULT_SWEEP_STEPS, label="Values", precision=0, minimum=1, maximum=12)
                with gr.Row():
                    question_set = gr.Dropdown(
                        shipped_sets(),
                        value=str(EVAL_SETS / "bible_knowledge.csv"), label="Questions from",
                    )
                    questions = gr.Number(DEFAULT_SWEEP_QUESTIONS, label="Questions", precision=0, minimum=1, maximum=20)
                    with gr.Column():
                        run_sweep_button = gr.Button("Sweep", variant="primary", elem_id="tune-sweep-run")
                        stop_sweep = gr.Button("Stop", variant="stop")
                sweep_status = gr.Markdown(elem_id="tune-sweep-status")
                with gr.Row():
                    repetition_plot = gr.LinePlot(title="Repetition", y_title="mean over answers", y_lim=[0, 1])
                    citation_plot = gr.LinePlot(title="Citations", y_title="per answer")
                sweep_table = gr.DataFrame(label="Per value", interactive=False)

    every_column = {
        name: component
        for column, prefix in zip(columns, COLUMN_PREFIXES)
        for name, component in {**column.sliders.inputs(prefix), f"{prefix}passages": column.passages}.items()
    }
    count.change(lambda n: [gr.Column(visible=i < int(n)) for i in range(MAX_COLUMNS)], count, [c.box for c in columns], api_visibility="private")
    compare_event = run_compare.click(
        compare, outputs=[c.answer for c in columns] + [c.figures for c in columns], api_name="compare", concurrency_limit=8,
        inputs_kwargs={"count": count, "prompt": prompt, "system_prompt": system_prompt, "seed": seed, "stop": stop, "mode": mode, **every_column},
    )
    stop_compare.click(None, cancels=[compare_event])
    for column in columns:
        own = {"seed": seed, "stop": stop, **column.sliders.inputs()}
        column.preset.input(preset_values, column.preset, column.sliders.components, api_visibility="private")
        column.passages.change(warm_retriever, column.passages, None, api_visibility="private", show_progress="hidden")
        gr.on(
            [s.change for s in column.sliders.components] + [seed.change, stop.change, mode.change],
            sent_parameters, outputs=column.sent, inputs_kwargs={"mode": mode, **own},
            api_visibility="private", show_progress="hidden", trigger_mode="always_last",
        )
        column.use_in_chat.click(use_in_chat, outputs=[sampling, tabs], inputs_kwargs=own, api_visibility="private")
        column.export.click(export_env, outputs=env_code, inputs_kwargs=own, api_visibility="private").then(
            lambda: gr.Code(visible=True), None, env_code, api_visibility="private"
        )
    parameter.change(lambda p: DEFAULT_SWEEP_RANGES[p], parameter, [start, end], api_visibility="private")
    sweep_event = run_sweep_button.click(
        sweep, outputs=[sweep_status, repetition_plot, citation_plot, sweep_table], api_name="sweep", concurrency_limit=2,
        inputs_kwargs={
            "parameter": parameter, "start": start, "stop_value": end, "steps": steps, "set_path": question_set, "questions": questions,
            "system_prompt": system_prompt, "seed": seed, "stop": stop, "mode": mode, **columns[0].sliders.inputs(),
        },
    )
    stop_sweep.click(None, cancels=[sweep_event])
