"""The "Review citations" panel: its layout and wiring. Each reviewer rates, one answer at a
time, each citation it makes.

Built so that nothing is lost at any typing speed: the components are fixed and only their
values change (:mod:`~ui.evaluate.review.drawing`); every rating travels with the answer it
was made on (:mod:`~ui.evaluate.review.view`) and is written to the process's one review
store as it is made (:mod:`~ui.evaluate.review.handlers`), under the reviewer's name: the
signed-in Hugging Face user on a Space, else a name typed once and remembered in the
browser. Review events run one at a time, in the order they reach the server, which is not
always the order they were sent: what each event is sent with says what it was made on.
The keys are in ``keyboard.js``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gradio as gr

from ui.evaluate.review.drawing import RATING_CHOICES, Card, Panel
from ui.evaluate.review.handlers import ReviewHandlers
from ui.evaluate.review.view import ALL, CARDS, DISAGREE, NOT_REVIEWED, View, card_input

REVIEW_KEYBOARD_JS = (Path(__file__).with_name("keyboard.js")).read_text(encoding="utf-8")

KEYBOARD_HELP = (
    "<p class='review-keys'>Keys: <kbd>j</kbd>/<kbd>→</kbd> next answer · <kbd>k</kbd>/<kbd>←</kbd> previous · "
    "<kbd>2</kbd> supports · <kbd>1</kbd> partly supports · <kbd>0</kbd> does not support "
    "(rates the highlighted citation, then moves on) · <kbd>Tab</kbd> moves between controls. "
    "Every change is saved at once; keys typed while the next answer loads apply to it.</p>"
)

#: Review events share one queue slot: each runs in the order it reached the server.
_REVIEW_EVENTS = {"api_visibility": "private", "show_progress": "hidden", "concurrency_id": "review", "concurrency_limit": 1}

#: Run in the browser as a save is sent: its last input (the stamp) becomes the time it was
#: made. Two saves in flight at once can reach the server in either order (each is its own
#: request); the stamp lets the later one win (see :mod:`~ui.evaluate.review.handlers`).
STAMP_JS = "(...values) => [...values.slice(0, -1), performance.timeOrigin + performance.now()]"


def _card() -> Card:
    with gr.Group(visible=False, elem_classes=["review-citation"]) as group:
        text = gr.Markdown()
        rating = gr.Radio(RATING_CHOICES, value=None, label="Rating (keys 2 / 1 / 0)", elem_classes=["review-rating"])
    return Card(group, text, rating)


def remembered_reviewer() -> gr.BrowserState:
    """The reviewer's name as this browser remembers it.

    Made where the Evaluate tab begins, not in the Review tab: Gradio mounts a tab's
    components when the tab is first shown, and a BrowserState reads the browser's storage
    when mounted, so one inside the Review tab would be empty when the results arrive.
    The secret is fixed because Gradio's default is new at every start, which would forget
    the name at each restart; the name is a label the reviewer typed, not a secret.
    """
    return gr.BrowserState("", storage_key="scribes-reviewer", secret="scribes-reviewer-name")


def screen_inputs(panel: Panel) -> dict[str, Any]:
    """What every redrawing event sends, by the names :meth:`~ui.evaluate.review.view.Screen.of` reads."""
    return {
        "frame": panel.results, "typed": panel.reviewer, "remembered": panel.remembered,
        "view_text": panel.view, "answers_shown": panel.answers, "drawn": panel.drawn,
    }


def build_review_panel(results: gr.State, remembered: gr.BrowserState) -> None:
    """The panel, for ``results`` (a per-session State holding the results DataFrame or None).

    Called inside the Evaluate tab: ``with gr.Tab("Review citations"): build_review_panel(results, remembered)``.
    Needs nothing from app.py: the key bindings come with the panel.
    """
    with gr.Column(elem_id="review-panel"):
        gr.HTML(KEYBOARD_HELP, js_on_load=REVIEW_KEYBOARD_JS, elem_id="review-keys")
        with gr.Row(equal_height=True):
            reviewer = gr.Textbox(label="Reviewer (your name, remembered in this browser)", placeholder="e.g. Ruth",
                                  max_length=80, elem_id="review-reviewer", scale=2)
            answers = gr.Dropdown([ALL, NOT_REVIEWED, DISAGREE], value=ALL, label="Answers to visit", elem_id="review-filter", scale=2)
            jump_to = gr.Number(1, label="Go to answer number (Enter)", precision=0, minimum=1, elem_id="review-jump", scale=1)
        with gr.Row(equal_height=True):
            previous_button = gr.Button("← Previous (k)", elem_id="review-previous", size="md")
            next_button = gr.Button("Next (j) →", elem_id="review-next", size="md")
        view = gr.Textbox(View(0, None).dumps(), visible="hidden", elem_id="review-view")
        redraw = gr.Button(visible="hidden", elem_id="review-redraw")  # clicked by keyboard.js when an older redraw lands last
        progress = gr.Markdown(elem_id="review-progress")
        status = gr.Markdown(elem_id="review-status")
        question = gr.Textbox(label="Question", interactive=False, lines=1, max_lines=6, elem_id="review-question")
        expected = gr.Textbox(label="Expected references", interactive=False, lines=1, max_lines=3)
        answer = gr.Textbox(label="Answer, as the model wrote it", interactive=False, lines=3, max_lines=24, elem_id="review-answer")
        count = gr.Markdown(elem_id="review-count")
        cards = tuple(_card() for _ in range(CARDS))
        with gr.Row():
            missing = gr.Textbox(label="Missing citations: references the answer should have cited", interactive=False,
                                 placeholder="e.g. Romans 6:23; Ephesians 2:8", lines=2, elem_id="review-missing")
            notes = gr.Textbox(label="Notes", lines=2, interactive=False, elem_id="review-notes")
        mark = gr.Button("Mark reviewed", variant="primary", interactive=False, elem_id="review-mark")
        with gr.Accordion("Accuracy and agreement", open=True):
            figures = gr.Markdown(elem_id="review-figures")
        with gr.Accordion("Export and import reviews", open=False):
            export_button = gr.Button("Export reviews (CSV and JSON lines)", elem_id="review-export")
            exported = gr.File(label="Exported reviews", file_count="multiple", interactive=False, elem_id="review-exported")
            upload = gr.File(label="Import reviews exported from this panel (CSV or JSON lines); newer reviews win, nothing is duplicated",
                             file_types=[".csv", ".jsonl", ".json"], type="filepath", elem_id="review-import")

    panel = Panel(results, reviewer, remembered, answers, view, gr.State(None), gr.State(None), progress, status, question, expected, answer,
                  count, cards, missing, notes, mark, figures)
    stamp, saved = gr.Number(None, visible=False), gr.State({})  # a save's time, made by STAMP_JS; the latest applied, by what it saves
    saving = {"js": STAMP_JS, "trigger_mode": "multiple", **_REVIEW_EVENTS}
    handlers = ReviewHandlers(panel)
    screen = panel.outputs()
    where = screen_inputs(panel)
    shown = {**where, **{card_input(slot): card.rating for slot, card in enumerate(cards)}}  # a step carries the ratings on screen

    gr.on([reviewer.submit, reviewer.blur], handlers.reviewer_changed, outputs=screen, inputs_kwargs=where, trigger_mode="always_last",
          **_REVIEW_EVENTS)
    results.change(handlers.results_changed, outputs=screen, inputs_kwargs=shown, **_REVIEW_EVENTS)
    previous_button.click(handlers.step(-1), outputs=screen, inputs_kwargs=shown, **_REVIEW_EVENTS)
    next_button.click(handlers.step(1), outputs=screen, inputs_kwargs=shown, **_REVIEW_EVENTS)
    jump_to.submit(handlers.jump, outputs=screen, inputs_kwargs={**shown, "number": jump_to}, **_REVIEW_EVENTS)
    answers.input(handlers.filter_changed, outputs=screen, inputs_kwargs=shown, **_REVIEW_EVENTS)
    mark.click(handlers.toggle_reviewed, outputs=screen, inputs_kwargs=shown, **_REVIEW_EVENTS)
    redraw.click(handlers.redraw_in_full, outputs=screen, inputs_kwargs=shown, trigger_mode="always_last", **_REVIEW_EVENTS)
    for slot, card in enumerate(cards):
        # "multiple": each rating is sent at once with the view it was made on, never merged into a later one
        card.rating.input(handlers.rate(slot), outputs=[saved, panel.recount], **saving,
                          inputs_kwargs={"typed": reviewer, "view_text": view, "value": card.rating, "saved": saved, "stamp": stamp})
    panel.recount.change(handlers.progress_line, outputs=progress, inputs_kwargs={"frame": results, "drawn": panel.drawn},
                         trigger_mode="always_last", **_REVIEW_EVENTS)
    missing.input(handlers.annotate("missing_citations"), outputs=saved, **saving,
                  inputs_kwargs={"typed": reviewer, "view_text": view, "text": missing, "saved": saved, "stamp": stamp})
    notes.input(handlers.annotate("note"), outputs=saved, **saving,
                inputs_kwargs={"typed": reviewer, "view_text": view, "text": notes, "saved": saved, "stamp": stamp})
    export_button.click(handlers.export, results, exported, api_visibility="private")
    upload.upload(handlers.import_file, outputs=screen, inputs_kwargs={**where, "path": upload}, **_REVIEW_EVENTS)
