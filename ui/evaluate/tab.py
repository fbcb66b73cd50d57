"""The Evaluate tab: run a question set, see its scores, compare runs, review citations.

Layout and wiring only; every event passes its inputs by name (``inputs_kwargs``).
"""

from __future__ import annotations

import gradio as gr

from core import GenerationParams, get_textgen_service
from core.evaluation.summary import Thresholds
from core.retrieval import MAX_PASSAGES
from ui.common.sampling import SamplingSliders
from ui.evaluate.handlers import (
    OWN_SETTINGS,
    all_rows_for_given_answers,
    cancel_run,
    compare,
    load_earlier,
    question_sets,
    run,
    show_results,
)
from ui.evaluate.review.panel import build_review_panel, remembered_reviewer
from ui.evaluate.views import row_details, summary_markdown


def build_evaluate_tab(sampling: gr.State, mode: gr.State) -> None:
    """``sampling`` holds the Chat/Tune tabs' :class:`GenerationParams`; ``mode`` the visitor's backend."""
    configured = GenerationParams.configured(get_textgen_service().settings)
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
                        own_settings = SamplingSliders.build(configured, names=OWN_SETTINGS, elem_id="evaluate-{name}")
                with gr.Row():
                    run_button = gr.Button("Run", variant="primary", elem_id="evaluate-run")
                    cancel_button = gr.Button("Cancel", variant="stop")
                status = gr.Markdown(elem_id="evaluate-status")
                with gr.Accordion("Pass/fail thresholds", open=False), gr.Row():
                    defaults = Thresholds()
                    limits = {  # by Thresholds field
                        "min_citation_f1": gr.Number(defaults.min_citation_f1, label="Citation F1 at least"),
                        "max_nonexistent_rate": gr.Number(defaults.max_nonexistent_rate, label="Nonexistent citations at most"),
                        "max_degenerate_share": gr.Number(defaults.max_degenerate_share, label="Degenerate answers at most"),
                        "max_error_rate": gr.Number(defaults.max_error_rate, label="Errors at most"),
                        "min_token_limit_compliance": gr.Number(defaults.min_token_limit_compliance, label="Within token limit at least"),
                    }
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

    view_inputs = {"frame": results, "failures_only": failures_only, "search": search, **limits}
    view_outputs = [summary, table, by_category, histogram, csv_download, json_download]
    run_inputs = {
        "set_path": set_path, "upload": upload, "limit": limit, "concurrency": concurrency, "use_tab_settings": use_tab_settings,
        **own_settings.inputs(), "sampling": sampling, "mode": mode, "ground": ground,
    }
    run_button.click(run, outputs=[status, results, table], inputs_kwargs=run_inputs, api_name="evaluate", concurrency_limit=4).then(
        show_results, outputs=view_outputs, inputs_kwargs=view_inputs, api_visibility="private"
    )
    cancel_button.click(cancel_run, None, status, api_visibility="private")
    for control in (failures_only, *limits.values()):
        control.change(show_results, outputs=view_outputs, inputs_kwargs=view_inputs, api_visibility="private")
    search.submit(show_results, outputs=view_outputs, inputs_kwargs=view_inputs, api_visibility="private")
    # reviews change the summary's manual figures: redraw it when the reviewer comes back here
    run_tab.select(lambda frame, **numbers: summary_markdown(frame, Thresholds(**numbers)), outputs=summary,
                   inputs_kwargs={"frame": results, **limits}, api_visibility="private")
    table.select(row_details, results, details, api_visibility="private")
    upload.upload(all_rows_for_given_answers, upload, [limit, status], api_visibility="private")
    load_button.click(load_earlier, earlier, results, api_visibility="private").then(
        show_results, outputs=view_outputs, inputs_kwargs=view_inputs, api_visibility="private"
    )
    compare_button.click(compare, [results, earlier], [compare_headline, changes], api_visibility="private")
