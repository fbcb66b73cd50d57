"""What the review panel shows for one answer: every component's new value, by component.

The panel is a fixed set of components whose values change from answer to answer (no
``gr.render``: an event from a redrawn panel reaches a handler that no longer exists).
Model output is only ever shown as plain text or escaped Markdown.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from core.evaluation.review_items import ReviewCitation, ReviewItem, answer_list, review_item
from core.stores.reviews import RATINGS, AnswerReview, Rating
from ui.common.citations import escape_markdown
from ui.evaluate.review.figures import figures_markdown
from ui.evaluate.review.view import CARDS, DISAGREE, Drawn, View, store

#: How each automatic class reads to a reviewer.
CLASS_LABELS: dict[str, str] = {
    "expected": "✅ expected reference",
    "in_context": "✅ inside the question's context",
    "unsupported": "❔ neither expected nor in the context",
    "nonexistent": "⚠️ does not exist",
}

#: The rating radio's options, best first: the keyboard's 2/1/0 pick them by position.
RATING_CHOICES: list[tuple[str, int]] = [(f"{value} · {label}", value) for value, label in sorted(RATINGS.items(), reverse=True)]

# Tokens go on rising across restarts, so a page left open never sees a view it already had.
_tokens = itertools.count(time.time_ns() // 1_000_000)


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
    drawn: gr.State  # the Drawn this page was last sent: where steps start from
    recount: gr.State  # changed by every save and redraw that can change the progress line, which is redrawn after it
    progress: gr.Markdown  # written only by that redraw: see ReviewHandlers.progress_line
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
        shown = [self.reviewer, self.remembered, self.drawn, self.view, self.recount, self.status, self.question, self.expected, self.answer, self.count]
        shown += [self.missing, self.notes, self.mark, self.figures]
        return shown + [part for card in self.cards for part in (card.group, card.text, card.rating)]


def _empty(panel: Panel, reviewer: str | None, message: str) -> dict[Any, Any]:
    token = next(_tokens)
    screen: dict[Any, Any] = {
        panel.drawn: Drawn(None, reviewer),
        panel.view: View(token, None, reviewer=reviewer).dumps(),
        panel.recount: time.monotonic(),
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
    panel: Panel, frame: pd.DataFrame | None, reviewer: str | None, key: str | None, answers_shown: str, *,
    drawn: Drawn | None, reload: bool = False,
) -> dict[Any, Any]:
    """What the panel shows for answer ``key`` (the first answer when unknown), after ``drawn``.

    When the page was already sent this answer for this reviewer, the ratings, missing
    citations and notes are left as the page has them (unless ``reload``: reviews were
    imported). This redraw was computed from the store as it was when the event reached
    the queue; a rating or a word typed after the event was sent reaches the store after
    it, so sending the store's values would take them off the screen, and the next key
    would rate a card already rated.

    Whether the cards and notes take input is sent only when the reviewer changed: Gradio
    draws a text box anew when it is sent, and a reviewer who clicked into the notes while
    the next answer was loading would lose the focus, and their typing would reach the
    review keys.
    """
    answers = answer_list(frame)
    if not answers:
        return _empty(panel, reviewer, "_No answers to review yet: run a question set, or load a results file, in the tabs beside this one._")
    assert frame is not None
    keys = [k for k, _ in answers]
    index = keys.index(key) if key in keys else 0
    item = review_item(frame, answers[index][1])
    reviews_here = store()
    reviews = reviews_here.many(reviewer, keys) if reviewer else {k: AnswerReview(k) for k in keys}
    review = reviews[item.key]
    all_ratings = reviews_here.ratings([item.key]) if answers_shown == DISAGREE else []
    view = View(next(_tokens), item.key, item.row_id, item.question, tuple(_card_units(item)), review.done, reviewer)
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
    page = Drawn(item.key, reviewer)
    kept = page == drawn and not reload  # the page's own ratings and notes stay
    sent_writable = drawn is not None and drawn.key is not None and reviewer is not None and drawn.reviewer == reviewer
    writable = {} if sent_writable else {"interactive": reviewer is not None}
    screen: dict[Any, Any] = {
        panel.drawn: page,
        panel.view: view.dumps(),
        panel.recount: time.monotonic(),
        panel.status: status_line(index, len(answers), item.row_id, review.done),
        panel.question: item.question,
        panel.expected: expected,
        panel.answer: item.answer,
        panel.count: count,
        panel.mark: gr.Button(
            "Mark not reviewed" if review.done else "Mark reviewed",
            variant="secondary" if review.done else "primary",
            interactive=reviewer is not None,
        ),
        panel.figures: figures_markdown(frame, reviews_here),
    }
    if not kept:
        screen[panel.missing] = gr.Textbox(value=review.missing_citations, **writable)
        screen[panel.notes] = gr.Textbox(value=review.note, **writable)
    for number, card in enumerate(panel.cards, start=1):
        citation = item.citations[number - 1] if number <= len(item.citations) else None
        if kept:
            if citation is not None:  # other reviewers' ratings may be new
                screen[card.text] = card_markdown(number, citation, _others(all_ratings, citation, reviewer))
            continue
        if citation is None:
            screen.update({card.group: gr.Group(visible=False), card.text: "", card.rating: gr.Radio(value=None, visible=False, **writable)})
            continue
        screen[card.group] = gr.Group(visible=True, elem_classes=["review-citation"] + ([] if citation.needs_rating else ["review-flagged"]))
        screen[card.text] = card_markdown(number, citation, _others(all_ratings, citation, reviewer))
        screen[card.rating] = gr.Radio(
            value=review.ratings.get(citation.unit) if citation.needs_rating else None,
            visible=citation.needs_rating,
            **writable,
            label=f"Does {citation.normalized} support the sentence? (keys 2 / 1 / 0)",
        )
    return screen


def _others(ratings: Sequence[Rating], citation: ReviewCitation, reviewer: str | None) -> dict[str, int]:
    """Other reviewers' ratings of ``citation``, by reviewer."""
    return {r.reviewer: r.rating for r in ratings if r.citation == citation.unit and r.reviewer != reviewer}


def _card_units(item: ReviewItem) -> list[str | None]:
    units: list[str | None] = [c.unit if c.needs_rating else None for c in item.citations[:CARDS]]
    return units + [None] * (CARDS - len(units))
