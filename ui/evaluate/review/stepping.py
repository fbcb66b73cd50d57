"""Where Previous, Next and the filter go: the answers the steps visit, in table order."""

from __future__ import annotations

from collections.abc import Sequence

import gradio as gr
import pandas as pd

from core.evaluation.review_items import answer_list
from core.evaluation.review_stats import disagreements
from ui.evaluate.review.view import ALL, DISAGREE, NOT_REVIEWED, store


def visited_answers(frame: pd.DataFrame | None, reviewer: str | None, answers_shown: str) -> list[str]:
    """The answers the steps visit under the filter, in table order."""
    keys = [k for k, _ in answer_list(frame)]
    if answers_shown == NOT_REVIEWED and reviewer:
        reviews = store().many(reviewer, keys)
        return [k for k in keys if not reviews[k].done]
    if answers_shown == DISAGREE:
        split = {key for key, _ in disagreements(store().ratings(keys))}
        return [k for k in keys if k in split]
    return keys


def step_from(keys: Sequence[str], visited: Sequence[str], current: str | None, step: int) -> str | None:
    """The visited answer after (step 1) or before (step -1) ``current`` in table order; None when there is none."""
    position = keys.index(current) if current in keys else -1
    chosen = set(visited)
    ordered = range(position + 1, len(keys)) if step > 0 else range(position - 1, -1, -1)
    return next((keys[i] for i in ordered if keys[i] in chosen), None)


def next_answer(frame: pd.DataFrame | None, reviewer: str | None, current: str | None, direction: int, answers_shown: str) -> str | None:
    """The answer a step in ``direction`` (1 or -1) goes to: ``current`` itself when there is none, said in a note."""
    keys = [k for k, _ in answer_list(frame)]
    found = step_from(keys, visited_answers(frame, reviewer, answers_shown), current, direction)
    if found is None and keys:
        where = "after" if direction > 0 else "before"
        gr.Info(f"No answer {where} this one." if answers_shown == ALL else f"No answer {where} this one is in “{answers_shown}”.")
    return found or current
