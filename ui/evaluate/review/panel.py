"""The "Review citations" panel: each reviewer rates, one answer at a time, each citation it makes.

Built so that nothing is lost at any typing speed. The panel is a fixed set of components
whose values change from answer to answer (no ``gr.render``: an event from a redrawn
panel reaches a handler that no longer exists). The answer on screen, and the citation in
each card, travel with every rating in the hidden ``#review-view`` box, so a rating made
just before a step still lands on the answer it was made on. Every rating, note and
"reviewed" mark is written to the one :class:`core.reviews.ReviewStore` as it is made,
under the reviewer's name: the signed-in Hugging Face user on a Space, else a name typed
once and remembered in the browser. Review events run one at a time, in the order they
were sent. Model output is only ever shown as plain text.
"""

from __future__ import annotations

import itertools
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from core import get_textgen_service
from core.evaluation.review_files import read_reviews, write_exports
from core.evaluation.review_items import ReviewCitation, ReviewItem, answer_list, review_item
from core.evaluation.review_stats import disagreements
from core.stores.reviews import RATINGS, AnswerReview, ReviewStore, clean_reviewer
from ui.common.citations import escape_markdown
from ui.evaluate.review.figures import figures_markdown

#: How each automatic class reads to a reviewer.
CLASS_LABELS: dict[str, str] = {
    "expected": "✅ expected reference",
    "in_context": "✅ inside the question's context",
    "unsupported": "❔ neither expected nor in the context",
    "nonexistent": "⚠️ does not exist",
}

#: The rating radio's options, best first: the keyboard's 2/1/0 pick them by position.
RATING_CHOICES: list[tuple[str, int]] = [(f"{value} · {label}", value) for value, label in sorted(RATINGS.items(), reverse=True)]

#: Citation cards on the panel: an answer with more distinct citations shows the first ones and says so.
CARDS = 16

#: Which answers the steps visit.
ALL, NOT_REVIEWED, DISAGREE = "All answers", "Not yet reviewed by me", "Where reviewers disagree"

#: Where export files are written before the browser downloads them.
EXPORT_FOLDER = Path(tempfile.gettempdir()) / "scribes-review-exports"

REVIEW_KEYBOARD_JS = (Path(__file__).with_name("keyboard.js")).read_text(encoding="utf-8")

KEYBOARD_HELP = (
    "<p class='review-keys'>Keys: <kbd>j</kbd>/<kbd>→</kbd> next answer · <kbd>k</kbd>/<kbd>←</kbd> previous · "
    "<kbd>2</kbd> supports · <kbd>1</kbd> partly supports · <kbd>0</kbd> does not support "
    "(rates the highlighted citation, then moves on) · <kbd>Tab</kbd> moves between controls. "
    "Every change is saved at once; keys typed while the next answer loads apply to it.</p>"
)

#: Review events share one queue slot: each runs after the one sent before it.
_REVIEW_EVENTS = {"api_visibility": "private", "show_progress": "hidden", "concurrency_id": "review", "concurrency_limit": 1}
# Tokens go on rising across restarts, so a page left open never sees a view it already had.
_tokens = itertools.count(time.time_ns() // 1_000_000)


@cache
def review_store(data_dir: Path) -> ReviewStore:
    """The one store of this process for a data folder."""
    return ReviewStore(data_dir)


def _store() -> ReviewStore:
    return review_store(get_textgen_service().settings.data_dir)


def reviewer_of(typed: str | None, profile: gr.OAuthProfile | None) -> str | None:
    """Who is reviewing: the signed-in Hugging Face user, else the typed name; None before either."""
    if profile is not None:
        return clean_reviewer(profile.username)
    try:
        return clean_reviewer(typed)
    except ValueError:
        return None


# --- what the screen shows ---------------------------------------------------------------------


@dataclass(frozen=True)
class View:
    """What ``#review-view`` holds: the answer on screen and the citation of each card."""

    token: int  # new at every redraw, so the keyboard can tell the next answer is on screen
    key: str | None
    row_id: str = ""
    question: str = ""
    units: tuple[str | None, ...] = ()  # per card: its citation unit, None when there is nothing to rate
    done: bool = False  # as the "Mark reviewed" button shows it

    def dumps(self) -> str:
        return json.dumps(
            {"token": self.token, "key": self.key, "row_id": self.row_id, "question": self.question, "units": self.units, "done": self.done}
        )

    @classmethod
    def loads(cls, text: str | None) -> View:
        try:
            data = json.loads(text or "")
            return cls(int(data["token"]), data["key"], str(data["row_id"]), str(data["question"]), tuple(data["units"]), bool(data["done"]))
        except (ValueError, KeyError, TypeError):
            return cls(0, None)


def status_line(index: int, total: int, row_id: str, done: bool) -> str:
    """"Answer 3 of 12 · id q3 · not reviewed by you yet"."""
    parts = [f"### Answer {index + 1} of {total}"]
    if row_id:
        parts.append(f"id {escape_markdown(row_id)}")
    parts.append("✔️ reviewed by you" if done else "not reviewed by you yet")
    return " · ".join(parts)


def progress_markdown(reviewer: str | None, keys: Sequence[str], reviews: dict[str, AnswerReview]) -> str:
    if reviewer is None:
        return "**Type your reviewer name above to start rating.** Ratings are kept apart by reviewer."
    reviewed = sum(reviews[key].done for key in keys)
    rated = sum(len(reviews[key].ratings) for key in keys)
    return f"**{escape_markdown(reviewer)}: reviewed {reviewed} of {len(keys)} answers** · {rated} citations rated"


def card_markdown(number: int, citation: ReviewCitation, others: dict[str, int] | None) -> str:
    """One citation as a reviewer reads it; ``others``: other reviewers' ratings, when shown."""
    written = " / ".join(f"“{escape_markdown(text)}”" for text in citation.written)
    sentences = "\n".join(f"> {escape_markdown(sentence)}" for sentence in citation.sentences)
    if not citation.needs_rating:
        return (
            f"**{number}. {written}** · {CLASS_LABELS['nonexistent']} ({escape_markdown(citation.reason or 'unknown')}). "
            f"Flagged automatically: no rating needed.\n\n{sentences}"
        )
    heading = f"**{number}. {citation.normalized}** · {CLASS_LABELS[citation.classification]}"
    if citation.written != (citation.normalized,):
        heading += f" · written {written}"
    lines = [heading, "", sentences, "", f"**KJV:** {escape_markdown(citation.kjv)}", "", f"**ASV:** {escape_markdown(citation.asv)}"]
    if others:
        lines += ["", "**Other reviewers:** " + " · ".join(f"{escape_markdown(name)} {rating}" for name, rating in sorted(others.items()))]
    return "\n".join(lines)


@dataclass(frozen=True)
class Card:
    group: gr.Group
    text: gr.Markdown
    rating: gr.Radio


@dataclass(frozen=True)
class Panel:
    """The panel's components, by name."""

    results: gr.State
    reviewer: gr.Textbox
    remembered: gr.BrowserState
    answers: gr.Dropdown
    view: gr.Textbox
    drawn: gr.State  # the answer key last drawn on this page: where steps start from
    progress: gr.Markdown
    status: gr.Markdown
    question: gr.Textbox
    expected: gr.Textbox
    answer: gr.Textbox
    count: gr.Markdown
    cards: tuple[Card, ...]
    missing: gr.Textbox
    notes: gr.Textbox
    mark: gr.Button
    figures: gr.Markdown

    def outputs(self) -> list[Any]:
        shown = [self.reviewer, self.remembered, self.drawn, self.view, self.progress, self.status, self.question, self.expected, self.answer, self.count]
        shown += [self.missing, self.notes, self.mark, self.figures]
        return shown + [part for card in self.cards for part in (card.group, card.text, card.rating)]


def _empty(panel: Panel, reviewer: str | None, message: str) -> dict[Any, Any]:
    token = next(_tokens)
    screen: dict[Any, Any] = {
        panel.drawn: None,
        panel.view: View(token, None).dumps(),
        panel.progress: progress_markdown(reviewer, [], {}),
        panel.status: message,
        panel.question: "",
        panel.expected: "",
        panel.answer: "",
        panel.count: "",
        panel.missing: gr.Textbox(value="", interactive=False),
        panel.notes: gr.Textbox(value="", interactive=False),
        panel.mark: gr.Button(interactive=False),
        panel.figures: "",
    }
    for card in panel.cards:
        screen.update({card.group: gr.Group(visible=False), card.text: "", card.rating: gr.Radio(value=None)})
    return screen


def render(
    panel: Panel, frame: pd.DataFrame | None, reviewer: str | None, key: str | None, answers_shown: str, *, new_reviewer: bool = False
) -> dict[Any, Any]:
    """Everything the panel shows for answer ``key`` (the first answer when unknown).

    Whether the cards and notes take input is sent only when the reviewer may have changed
    (``new_reviewer``): Gradio draws a text box anew when it is sent, and a reviewer who
    clicked into the notes while the next answer was loading would lose the focus, and
    their typing would reach the review keys.
    """
    answers = answer_list(frame)
    if not answers:
        return _empty(panel, reviewer, "_No answers to review yet: run a question set, or load a results file, in the tabs beside this one._")
    assert frame is not None
    keys = [k for k, _ in answers]
    index = keys.index(key) if key in keys else 0
    item = review_item(frame, answers[index][1])
    store = _store()
    reviews = store.many(reviewer, keys) if reviewer else {k: AnswerReview(k) for k in keys}
    review = reviews[item.key]
    all_ratings = store.ratings([item.key]) if answers_shown == DISAGREE else []
    view = View(next(_tokens), item.key, item.row_id, item.question, tuple(_card_units(item)), review.done)
    expected = item.expected_references or "(none)"
    if item.expected_problem:
        expected += f"  (could not be read: {item.expected_problem})"
    count = (
        f"**Citations in this answer: {len(item.citations)}**"
        if item.citations
        else "_This answer cites no Bible reference. Note any it should have cited below._"
    )
    if len(item.citations) > CARDS:
        count += f" (the first {CARDS} are shown here; the others are in the results downloads)"
    writable = {"interactive": reviewer is not None} if new_reviewer or reviewer is None else {}
    screen: dict[Any, Any] = {
        panel.drawn: item.key,
        panel.view: view.dumps(),
        panel.progress: progress_markdown(reviewer, keys, reviews),
        panel.status: status_line(index, len(answers), item.row_id, review.done),
        panel.question: item.question,
        panel.expected: expected,
        panel.answer: item.answer,
        panel.count: count,
        panel.missing: gr.Textbox(value=review.missing_citations, **writable),
        panel.notes: gr.Textbox(value=review.note, **writable),
        panel.mark: gr.Button(
            "Mark not reviewed" if review.done else "Mark reviewed",
            variant="secondary" if review.done else "primary",
            interactive=reviewer is not None,
        ),
        panel.figures: figures_markdown(frame, store),
    }
    for number, card in enumerate(panel.cards, start=1):
        citation = item.citations[number - 1] if number <= len(item.citations) else None
        if citation is None:
            screen.update({card.group: gr.Group(visible=False), card.text: "", card.rating: gr.Radio(value=None, visible=False, **writable)})
            continue
        others = {r.reviewer: r.rating for r in all_ratings if r.citation == citation.unit and r.reviewer != reviewer}
        screen[card.group] = gr.Group(visible=True, elem_classes=["review-citation"] + ([] if citation.needs_rating else ["review-flagged"]))
        screen[card.text] = card_markdown(number, citation, others)
        screen[card.rating] = gr.Radio(
            value=review.ratings.get(citation.unit) if citation.needs_rating else None,
            visible=citation.needs_rating,
            **writable,
            label=f"Does {citation.normalized} support the sentence? (keys 2 / 1 / 0)",
        )
    return screen


def _card_units(item: ReviewItem) -> list[str | None]:
    units: list[str | None] = [c.unit if c.needs_rating else None for c in item.citations[:CARDS]]
    return units + [None] * (CARDS - len(units))


# --- stepping ------------------------------------------------------------------------------------


def _visited(frame: pd.DataFrame | None, reviewer: str | None, answers_shown: str) -> list[str]:
    """The answers the steps visit under the filter, in table order."""
    keys = [k for k, _ in answer_list(frame)]
    if answers_shown == NOT_REVIEWED and reviewer:
        reviews = _store().many(reviewer, keys)
        return [k for k in keys if not reviews[k].done]
    if answers_shown == DISAGREE:
        split = {key for key, _ in disagreements(_store().ratings(keys))}
        return [k for k in keys if k in split]
    return keys


def step_from(keys: Sequence[str], visited: Sequence[str], current: str | None, step: int) -> str | None:
    """The visited answer after (step 1) or before (step -1) ``current`` in table order; None when there is none."""
    position = keys.index(current) if current in keys else -1
    chosen = set(visited)
    ordered = range(position + 1, len(keys)) if step > 0 else range(position - 1, -1, -1)
    return next((keys[i] for i in ordered if keys[i] in chosen), None)


def _step(frame: pd.DataFrame | None, reviewer: str | None, current: str | None, step: int, answers_shown: str) -> str | None:
    keys = [k for k, _ in answer_list(frame)]
    found = step_from(keys, _visited(frame, reviewer, answers_shown), current, step)
    if found is None and keys:
        where = "after" if step > 0 else "before"
        gr.Info(f"No answer {where} this one." if answers_shown == ALL else f"No answer {where} this one is in “{answers_shown}”.")
    return found or current


@dataclass(frozen=True)
class Screen:
    """What an event knows of the page that sent it."""

    frame: pd.DataFrame | None
    reviewer: str | None
    view: View
    answers_shown: str
    drawn: str | None  # the answer last drawn on the page: the view may still be on its way to it

    @property
    def start(self) -> str | None:
        """Where a step or a redraw starts: the answer last drawn."""
        return self.drawn if self.drawn is not None else self.view.key

    @classmethod
    def of(cls, profile: gr.OAuthProfile | None, frame, typed, remembered, view_text, answers_shown, drawn) -> Screen:
        """The reviewer is the name in the box, as for ratings; the remembered name only fills an empty box (on new results)."""
        return cls(frame, reviewer_of(typed, profile), View.loads(view_text), answers_shown, drawn)


def _keep_shown(screen: Screen, shown: Sequence[int | None]) -> None:
    """Save the ratings the page shows for the answer it is leaving that the store lacks.

    A step is sent with the cards' ratings, because the rating events sent just before it
    may reach the server after it; a rating already stored is never overwritten here (the
    rating's own event carries the latest one).
    """
    reviewer, view = screen.reviewer, screen.view
    if reviewer is None or view.key is None:
        return
    stored = _store().get(reviewer, view.key).ratings
    for unit, value in zip(view.units, shown):
        if unit is not None and value is not None and unit not in stored:
            _store().rate(reviewer, view.key, unit, int(value), question_id=view.row_id, question=view.question)


# --- handlers: each saves at once and returns what the screen shows next --------------------------
#
# Handlers that redraw take (profile, results, typed name, remembered name, view, filter,
# answer last drawn) first, and start from the answer last drawn, not from the view they
# were sent from: a redraw sent just before a step must not take the reviewer back to the
# answer they stepped away from, and a second click on Next steps on from the first.


@dataclass(frozen=True)
class ReviewHandlers:
    panel: Panel

    def _unchanged(self) -> dict[Any, Any]:
        return {self.panel.drawn: gr.skip()}  # a dict with no change (an empty one reads as no outputs)

    def _render(self, screen: Screen, key: str | None, *, new_reviewer: bool = False) -> dict[Any, Any]:
        return render(self.panel, screen.frame, screen.reviewer, key, screen.answers_shown, new_reviewer=new_reviewer)

    def results_changed(self, profile: gr.OAuthProfile | None, *where_and_shown):
        """New results: always redrawn, on the answer shown if it is still there.

        A run's last results can arrive after the reviewer has started rating: the ratings
        on screen are kept first, so the redraw never shows a card unrated that was rated.
        """
        frame, typed, remembered, *rest = where_and_shown[:_WHERE]
        screen = Screen.of(profile, frame, typed or remembered, remembered, *rest)
        if typed and typed == remembered:  # a confirmed name: the one the ratings on screen were made under
            _keep_shown(screen, where_and_shown[_WHERE:])
        drawn = self._render(screen, screen.start, new_reviewer=True)
        if screen.reviewer is not None and not typed:  # the name this browser remembers (a typed name is never overwritten)
            drawn[self.panel.reviewer] = gr.Textbox(value=screen.reviewer)
        if profile is not None:  # on a Space: the signed-in user reviews under their Hugging Face name
            drawn[self.panel.reviewer] = gr.Textbox(value=profile.username, interactive=False, label="Reviewer (signed in with Hugging Face)")
        return drawn

    def reviewer_changed(self, profile: gr.OAuthProfile | None, *where):
        """A new name is remembered in this browser and the answer redrawn with that reviewer's reviews."""
        screen = Screen.of(profile, *where)
        typed, remembered = where[1], where[2]
        if (typed or "") == (remembered or ""):
            return self._unchanged()
        return {**self._render(screen, screen.start, new_reviewer=True), self.panel.remembered: typed}

    def step(self, step: int):
        def handler(profile: gr.OAuthProfile | None, *where_and_shown):
            screen = Screen.of(profile, *where_and_shown[:_WHERE])
            _keep_shown(screen, where_and_shown[_WHERE:])
            return self._render(screen, _step(screen.frame, screen.reviewer, screen.start, step, screen.answers_shown))

        return handler

    def jump(self, profile: gr.OAuthProfile | None, *where_number_and_shown):
        screen = Screen.of(profile, *where_number_and_shown[:_WHERE])
        number, shown = where_number_and_shown[_WHERE], where_number_and_shown[_WHERE + 1 :]
        _keep_shown(screen, shown)
        keys = [k for k, _ in answer_list(screen.frame)]
        key = screen.start
        if keys and number is not None:
            if not 1 <= number <= len(keys):
                raise gr.Error(f"There are {len(keys)} answers; pick a number from 1 to {len(keys)}.", print_exception=False)
            key = keys[int(number) - 1]
        return self._render(screen, key)

    def filter_changed(self, profile: gr.OAuthProfile | None, *where_and_shown):
        """Switching to a filter goes to the first answer it keeps from here on, else from the top."""
        screen = Screen.of(profile, *where_and_shown[:_WHERE])
        _keep_shown(screen, where_and_shown[_WHERE:])
        key = screen.start
        visited = _visited(screen.frame, screen.reviewer, screen.answers_shown)
        if screen.answers_shown != ALL and key not in visited:
            keys = [k for k, _ in answer_list(screen.frame)]
            key = step_from(keys, visited, key, 1) or (visited[0] if visited else key)
            if not visited and keys:
                gr.Info(f"No answer is in “{screen.answers_shown}”.")
        return self._render(screen, key)

    def toggle_reviewed(self, profile: gr.OAuthProfile | None, *where_and_shown):
        """Mark the answer reviewed and go on to the next one the filter keeps; or take the mark back and stay."""
        screen = Screen.of(profile, *where_and_shown[:_WHERE])
        _keep_shown(screen, where_and_shown[_WHERE:])
        reviewer, view = screen.reviewer, screen.view  # the mark is for the answer the reviewer sees
        key = screen.start
        if reviewer is not None and view.key is not None:
            done = not view.done  # what the button offered: "Mark reviewed" marks, even if another tab marked it first
            _store().annotate(reviewer, view.key, done=done, question_id=view.row_id, question=view.question)
            if done:
                key = _step(screen.frame, reviewer, view.key, 1, screen.answers_shown)
        return self._render(screen, key)

    def import_file(self, profile: gr.OAuthProfile | None, *where_and_path):
        screen, path = Screen.of(profile, *where_and_path[:_WHERE]), where_and_path[_WHERE]
        if not path:
            return self._unchanged()
        try:
            counts = _store().import_records(read_reviews(path))
        except ValueError as error:
            raise gr.Error(str(error), print_exception=False) from error
        gr.Info(f"Imported: {counts.added} new, {counts.updated} newer than here, {counts.unchanged} already here.")
        return self._render(screen, screen.start)

    @staticmethod
    def rate(slot: int):
        def handler(frame, typed, view_text, value, profile: gr.OAuthProfile | None = None):
            reviewer, view = reviewer_of(typed, profile), View.loads(view_text)
            unit = view.units[slot] if slot < len(view.units) else None
            if reviewer is None:  # the cards take no input without a name; this is a click that raced the redraw
                raise gr.Error("That rating was NOT saved: type your reviewer name first.", print_exception=False)
            if view.key is None or unit is None or value is None:
                return gr.skip()
            try:
                _store().rate(reviewer, view.key, unit, int(value), question_id=view.row_id, question=view.question)
            except (ValueError, OSError) as error:
                raise gr.Error(f"Your rating of {unit} was NOT saved ({error}). Rate it again.", print_exception=False) from error
            keys = [k for k, _ in answer_list(frame)]
            return progress_markdown(reviewer, keys, _store().many(reviewer, keys))

        return handler

    @staticmethod
    def annotate(field: str):
        def handler(typed, view_text, text, profile: gr.OAuthProfile | None = None) -> None:
            reviewer, view = reviewer_of(typed, profile), View.loads(view_text)
            if reviewer is None:
                raise gr.Error(f"Your {field.replace('_', ' ')} were NOT saved: type your reviewer name first.", print_exception=False)
            if view.key is None:
                return
            try:
                _store().annotate(reviewer, view.key, **{field: text}, question_id=view.row_id, question=view.question)
            except (ValueError, OSError) as error:
                raise gr.Error(f"Your {field.replace('_', ' ')} were NOT saved ({error}).", print_exception=False) from error

        return handler

    @staticmethod
    def export(frame: pd.DataFrame | None) -> list[str]:
        """The reviews of the answers in the results (every review when there are none), as CSV and JSON lines."""
        records = _store().export([k for k, _ in answer_list(frame)] or None)
        if not records:
            raise gr.Error("There are no reviews to export yet.", print_exception=False)
        folder = Path(tempfile.mkdtemp(prefix="reviews-", dir=_export_folder()))
        return [str(path) for path in write_exports(records, folder, "reviews")]


#: How many inputs every redrawing handler takes after the profile (see :meth:`Screen.of`).
_WHERE = 6


def _export_folder() -> Path:
    EXPORT_FOLDER.mkdir(parents=True, exist_ok=True)
    return EXPORT_FOLDER


# --- the panel ------------------------------------------------------------------------------------


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

    panel = Panel(results, reviewer, remembered, answers, view, gr.State(None), progress, status, question, expected, answer, count, cards,
                  missing, notes, mark, figures)
    handlers = ReviewHandlers(panel)
    screen = panel.outputs()
    where = [results, reviewer, remembered, view, answers, panel.drawn]  # see Screen.of

    gr.on([reviewer.submit, reviewer.blur], handlers.reviewer_changed, where, screen, trigger_mode="always_last", **_REVIEW_EVENTS)
    shown = [card.rating for card in cards]  # a step carries the ratings on screen (see _keep_shown)
    results.change(handlers.results_changed, [*where, *shown], screen, **_REVIEW_EVENTS)
    previous_button.click(handlers.step(-1), [*where, *shown], screen, **_REVIEW_EVENTS)
    next_button.click(handlers.step(1), [*where, *shown], screen, **_REVIEW_EVENTS)
    jump_to.submit(handlers.jump, [*where, jump_to, *shown], screen, **_REVIEW_EVENTS)
    answers.input(handlers.filter_changed, [*where, *shown], screen, **_REVIEW_EVENTS)
    mark.click(handlers.toggle_reviewed, [*where, *shown], screen, **_REVIEW_EVENTS)
    for slot, card in enumerate(cards):
        # "multiple": each rating is sent at once with the view it was made on, never merged into a later one
        card.rating.input(handlers.rate(slot), [results, reviewer, view, card.rating], progress, trigger_mode="multiple", **_REVIEW_EVENTS)
    missing.input(handlers.annotate("missing_citations"), [reviewer, view, missing], None, trigger_mode="multiple", **_REVIEW_EVENTS)
    notes.input(handlers.annotate("note"), [reviewer, view, notes], None, trigger_mode="multiple", **_REVIEW_EVENTS)
    export_button.click(handlers.export, results, exported, api_visibility="private")
    upload.upload(handlers.import_file, [*where, upload], screen, **_REVIEW_EVENTS)
