"""The review panel's handlers: each saves at once and returns what the screen shows next.

Handlers that redraw receive the page's state by name (see
:func:`ui.evaluate.review.panel.screen_inputs`) and start from the answer last drawn, not
from the view they were sent from: a redraw sent just before a step must not take the
reviewer back to the answer they stepped away from, and a second click on Next steps on
from the first.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from core.evaluation.review_files import read_reviews, write_exports
from core.evaluation.review_items import answer_list
from ui.evaluate.review.drawing import Panel, progress_markdown, render
from ui.evaluate.review.stepping import next_answer, step_from, visited_answers
from ui.evaluate.review.view import ALL, Drawn, Screen, View, reviewer_of, store

#: Where export files are written before the browser downloads them.
EXPORT_FOLDER = Path(tempfile.gettempdir()) / "scribes-review-exports"

Handler = Callable[..., Any]
#: What a page's saves last applied: (answer key, citation unit or field) -> the save's stamp.
Saved = dict[tuple[str, str], float]


def _newer(saved: Saved, what: tuple[str, str], stamp: float | None) -> bool:
    """Whether a save made at ``stamp`` (in the browser) is newer than the last one applied to ``what``.

    Each keystroke in the notes is a save of the whole text, and two in flight can reach
    the server in either order; the older one, arriving second, would put the text back
    to what it was a keystroke before. A save without a stamp counts as the newest.
    """
    return stamp is None or stamp > saved.get(what, float("-inf"))


def keep_shown(screen: Screen) -> None:
    """Save the ratings the page shows for the answer it is leaving that the store lacks.

    A step is sent with the cards' ratings, because the rating events sent just before it
    may reach the server after it; a rating already stored is never overwritten here (the
    rating's own event carries the latest one). They are saved for the reviewer whose
    cards they were drawn on, who may no longer be the one reviewing when this arrives.
    """
    view = screen.view
    reviewer = view.reviewer
    if reviewer is None or view.key is None:
        return
    stored = store().get(reviewer, view.key).ratings
    for unit, value in zip(view.units, screen.shown):
        if unit is not None and value is not None and unit not in stored:
            store().rate(reviewer, view.key, unit, int(value), question_id=view.row_id, question=view.question)


def _applied(saved: Saved, what: tuple[str, str], stamp: float | None) -> Saved:
    return saved if stamp is None else {**saved, what: stamp}


@dataclass(frozen=True)
class ReviewHandlers:
    panel: Panel

    def _unchanged(self) -> dict[Any, Any]:
        return {self.panel.drawn: gr.skip()}  # a dict with no change (an empty one reads as no outputs)

    def _render(self, screen: Screen, key: str | None, *, reload: bool = False, full: bool = False) -> dict[Any, Any]:
        """``full``: as if nothing had been drawn, so every part comes again."""
        drawn = None if full else screen.drawn
        return render(self.panel, screen.frame, screen.reviewer, key, screen.answers_shown, drawn=drawn, reload=reload)

    def redraw_in_full(self, profile: gr.OAuthProfile | None = None, **inputs: Any) -> dict[Any, Any]:
        """The answer last drawn, every part of it: the page shows an older redraw that landed after it.

        The ratings, notes and whether they take input all come again; the ratings on screen
        are kept first.
        """
        screen = Screen.of(profile, inputs)
        keep_shown(screen)
        return self._render(screen, screen.start, full=True)

    def results_changed(self, profile: gr.OAuthProfile | None = None, **inputs: Any) -> dict[Any, Any]:
        """New results: always redrawn, on the answer shown if it is still there.

        A run's last results can arrive after the reviewer has started rating: the ratings
        on screen are kept first, so the redraw never shows a card unrated that was rated.
        """
        screen = Screen.of(profile, inputs)
        keep_shown(screen)
        drawn = self._render(screen, screen.start)
        named = screen.drawn is not None and screen.drawn.reviewer is not None
        if screen.reviewer is not None and not inputs["typed"] and not named:  # the name this browser remembers fills an empty box
            drawn[self.panel.reviewer] = gr.Textbox(value=screen.reviewer)
        if profile is not None:  # on a Space: the signed-in user reviews under their Hugging Face name
            drawn[self.panel.reviewer] = gr.Textbox(value=profile.username, interactive=False, label="Reviewer (signed in with Hugging Face)")
        return drawn

    def reviewer_changed(self, profile: gr.OAuthProfile | None = None, **inputs: Any) -> dict[Any, Any]:
        """A new name is remembered in this browser and the answer redrawn with that reviewer's reviews."""
        typed, remembered = inputs["typed"], inputs["remembered"]
        screen = Screen.of(profile, inputs, named=typed or "")
        if (typed or "") == (remembered or ""):
            return self._unchanged()
        return {**self._render(screen, screen.start), self.panel.remembered: typed}

    def step(self, direction: int) -> Handler:
        def handler(profile: gr.OAuthProfile | None = None, **inputs: Any) -> dict[Any, Any]:
            screen = Screen.of(profile, inputs)
            keep_shown(screen)
            return self._render(screen, next_answer(screen.frame, screen.reviewer, screen.start, direction, screen.answers_shown))

        return handler

    def jump(self, profile: gr.OAuthProfile | None = None, *, number: float | None, **inputs: Any) -> dict[Any, Any]:
        screen = Screen.of(profile, inputs)
        keep_shown(screen)
        keys = [k for k, _ in answer_list(screen.frame)]
        key = screen.start
        if keys and number is not None:
            if not 1 <= number <= len(keys):
                raise gr.Error(f"There are {len(keys)} answers; pick a number from 1 to {len(keys)}.", print_exception=False)
            key = keys[int(number) - 1]
        return self._render(screen, key)

    def filter_changed(self, profile: gr.OAuthProfile | None = None, **inputs: Any) -> dict[Any, Any]:
        """Switching to a filter goes to the first answer it keeps from here on, else from the top."""
        screen = Screen.of(profile, inputs)
        keep_shown(screen)
        key = screen.start
        visited = visited_answers(screen.frame, screen.reviewer, screen.answers_shown)
        if screen.answers_shown != ALL and key not in visited:
            keys = [k for k, _ in answer_list(screen.frame)]
            key = step_from(keys, visited, key, 1) or (visited[0] if visited else key)
            if not visited and keys:
                gr.Info(f"No answer is in “{screen.answers_shown}”.")
        return self._render(screen, key)

    def toggle_reviewed(self, profile: gr.OAuthProfile | None = None, **inputs: Any) -> dict[Any, Any]:
        """Mark the answer reviewed and go on to the next one the filter keeps; or take the mark back and stay."""
        screen = Screen.of(profile, inputs)
        keep_shown(screen)
        reviewer, view = screen.reviewer, screen.view  # the mark is for the answer the reviewer sees
        key = screen.start
        if reviewer is not None and view.key is not None:
            done = not view.done  # what the button offered: "Mark reviewed" marks, even if another tab marked it first
            store().annotate(reviewer, view.key, done=done, question_id=view.row_id, question=view.question)
            if done:
                key = next_answer(screen.frame, reviewer, view.key, 1, screen.answers_shown)
        return self._render(screen, key)

    def import_file(self, profile: gr.OAuthProfile | None = None, *, path: str | None, **inputs: Any) -> dict[Any, Any]:
        screen = Screen.of(profile, inputs)
        if not path:
            return self._unchanged()
        try:
            counts = store().import_records(read_reviews(path))
        except ValueError as error:  # a ReviewFileError names the file, line and column
            raise gr.Error(str(error), print_exception=False) from error
        gr.Info(f"Imported: {counts.added} new, {counts.updated} newer than here, {counts.unchanged} already here.")
        return self._render(screen, screen.start, reload=True)

    @staticmethod
    def rate(slot: int) -> Handler:
        """Save one rating; the progress line is redrawn after it (:meth:`progress_line`)."""

        def handler(
            typed: str | None, view_text: str, value: int | None, saved: Saved, stamp: float | None, profile: gr.OAuthProfile | None = None,
        ) -> tuple[object, object]:
            reviewer, view = reviewer_of(typed, profile), View.loads(view_text)
            unit = view.units[slot] if slot < len(view.units) else None
            if reviewer is None:  # the cards take no input without a name; this is a click that raced the redraw
                raise gr.Error("That rating was NOT saved: type your reviewer name first.", print_exception=False)
            if view.key is None or unit is None or value is None or not _newer(saved, (view.key, unit), stamp):
                return gr.skip(), gr.skip()
            try:
                store().rate(reviewer, view.key, unit, int(value), question_id=view.row_id, question=view.question)
            except (ValueError, OSError) as error:
                raise gr.Error(f"Your rating of {unit} was NOT saved ({error}). Rate it again.", print_exception=False) from error
            return _applied(saved, (view.key, unit), stamp), time.monotonic()

        return handler

    @staticmethod
    def progress_line(frame: pd.DataFrame | None, drawn: Drawn | None) -> str:
        """The progress line, as the store has it now, for the reviewer last drawn.

        The one event that writes the line: run after every saved rating and every redraw,
        one at a time and always once more after the last (``trigger_mode="always_last"``).
        Gradio shows an event's outputs in the order the page learns of the events, not the
        order they ran in: when each rating returned its own count, the first one's ("1
        citations rated") could land last and stay on screen for two.
        """
        reviewer = drawn.reviewer if drawn is not None else None
        keys = [k for k, _ in answer_list(frame)]
        return progress_markdown(reviewer, keys, store().many(reviewer, keys) if reviewer else {})

    @staticmethod
    def annotate(field: str) -> Handler:
        def handler(
            typed: str | None, view_text: str, text: str, saved: Saved, stamp: float | None, profile: gr.OAuthProfile | None = None
        ) -> object:
            reviewer, view = reviewer_of(typed, profile), View.loads(view_text)
            if reviewer is None:
                raise gr.Error(f"Your {field.replace('_', ' ')} were NOT saved: type your reviewer name first.", print_exception=False)
            if view.key is None or not _newer(saved, (view.key, field), stamp):
                return gr.skip()
            try:
                store().annotate(reviewer, view.key, **{field: text}, question_id=view.row_id, question=view.question)
            except (ValueError, OSError) as error:
                raise gr.Error(f"Your {field.replace('_', ' ')} were NOT saved ({error}).", print_exception=False) from error
            return _applied(saved, (view.key, field), stamp)

        return handler

    @staticmethod
    def export(frame: pd.DataFrame | None) -> list[str]:
        """The reviews of the answers in the results (every review when there are none), as CSV and JSON lines."""
        records = store().export([k for k, _ in answer_list(frame)] or None)
        if not records:
            raise gr.Error("There are no reviews to export yet.", print_exception=False)
        EXPORT_FOLDER.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="reviews-", dir=EXPORT_FOLDER))
        return [str(path) for path in write_exports(records, folder, "reviews")]
