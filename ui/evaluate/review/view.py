"""What the review panel's events know of the page: the answer on screen and who rates it.

:class:`View` is the small JSON document the hidden ``#review-view`` box holds; every
rating is sent with it, so a rating made just before a step still lands on the answer it
was made on. :class:`Screen` is what a redrawing event was sent with, read by name.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from core import get_textgen_service
from core.stores.reviews import ReviewStore, clean_reviewer, review_store

ALL, NOT_REVIEWED, DISAGREE = "All answers", "Not yet reviewed by me", "Where reviewers disagree"
#: Citation cards on the panel: an answer with more distinct citations shows the first ones and says so.
CARDS = 16


def card_input(slot: int) -> str:
    """The input name of a card's rating, for the events that send the ratings on screen."""
    return f"card_{slot}"


def store() -> ReviewStore:
    """The process's one review store (for the configured data folder)."""
    return review_store(get_textgen_service().settings.data_dir)


def reviewer_of(typed: str | None, profile: gr.OAuthProfile | None) -> str | None:
    """Who is reviewing: the signed-in Hugging Face user, else the typed name; None before either."""
    if profile is not None:
        return clean_reviewer(profile.username)
    try:
        return clean_reviewer(typed)
    except ValueError:
        return None


@dataclass(frozen=True)
class View:
    """What ``#review-view`` holds: the answer on screen, whose reviews it shows and the citation of each card."""

    token: int  # new at every redraw, so the keyboard can tell the next answer is on screen
    key: str | None
    row_id: str = ""
    question: str = ""
    units: tuple[str | None, ...] = ()  # per card: its citation unit, None when there is nothing to rate
    done: bool = False  # as the "Mark reviewed" button shows it
    reviewer: str | None = None  # whose ratings the cards show: the ones a step saves are theirs

    def dumps(self) -> str:
        return json.dumps({
            "token": self.token, "key": self.key, "row_id": self.row_id, "question": self.question, "units": self.units,
            "done": self.done, "reviewer": self.reviewer,
        })

    @classmethod
    def loads(cls, text: str | None) -> View:
        try:
            data = json.loads(text or "")
            return cls(
                int(data["token"]), data["key"], str(data["row_id"]), str(data["question"]), tuple(data["units"]), bool(data["done"]),
                data.get("reviewer"),
            )
        except (ValueError, KeyError, TypeError):
            return cls(0, None)


@dataclass(frozen=True)
class Drawn:
    """What the page was last sent to show: which answer (None: there were none), for which reviewer.

    Kept in a State, so it is read on the server in the order the review events run, even
    while the redraw that set it is still on its way to the page.
    """

    key: str | None
    reviewer: str | None


@dataclass(frozen=True)
class Screen:
    """What an event knows of the page that sent it."""

    frame: pd.DataFrame | None
    reviewer: str | None
    view: View
    answers_shown: str
    drawn: Drawn | None  # what the page was last sent: the view may still be on its way to it
    shown: tuple[int | None, ...] = ()  # the cards' ratings as the page shows them, when the event sends them

    @property
    def start(self) -> str | None:
        """Where a step or a redraw starts: the answer last drawn."""
        return self.drawn.key if self.drawn is not None else self.view.key

    @classmethod
    def of(cls, profile: gr.OAuthProfile | None, inputs: Mapping[str, Any], *, named: str | None = None) -> Screen:
        """The inputs of :func:`ui.evaluate.review.panel.screen_inputs`, by name.

        The reviewer is ``named`` when the event names one (the reviewer box changed), else
        the one last drawn, else the name in the box or, when that is empty, the one this
        browser remembers. Not the box's name first: an event's inputs are what the page
        held when it was sent, and two requests in flight can reach the server in either
        order; a redraw sent before the reviewer typed their name, arriving after it, would
        otherwise take the name away and lock the cards under the reviewer's keys.
        """
        shown = tuple(inputs[card_input(slot)] for slot in range(CARDS) if card_input(slot) in inputs)
        drawn: Drawn | None = inputs["drawn"]
        if named is not None:
            reviewer = reviewer_of(named, profile)
        elif drawn is not None and drawn.reviewer is not None:
            reviewer = reviewer_of(drawn.reviewer, profile)
        else:
            reviewer = reviewer_of(inputs["typed"] or inputs["remembered"], profile)
        return cls(inputs["frame"], reviewer, View.loads(inputs["view_text"]), inputs["answers_shown"], drawn, shown)
