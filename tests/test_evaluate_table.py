"""The Evaluate tab's compact results table, on rows as a run makes them, failed rows included."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from core.errors import GenerationError
from core.evaluation.question_sets import QuestionRow
from core.evaluation.scored_rows import score_row
from core.evaluation.summary import Thresholds
from core.evaluation.table import results_frame
from ui.evaluate.views import TABLE_COLUMNS, row_details, table_view


def _frame() -> pd.DataFrame:
    rows = [
        score_row(QuestionRow(2, "What is grace?", id="q1"), "By grace (Ephesians 2:8), see John 3:99."),
        score_row(QuestionRow(3, "Who was Noah?", id="q2"), GenerationError("The endpoint answered 500.")),
        score_row(QuestionRow(4, "Long?", id="q3"), "word " * 100),
    ]
    return results_frame(rows)


def test_a_failed_row_shows_its_flag_instead_of_breaking_the_table() -> None:
    view = table_view(_frame(), False, "", Thresholds())
    assert list(view.columns) == TABLE_COLUMNS
    assert list(view["#"]) == [1, 2, 3]
    flags = list(view["flags"])
    assert flags[0] == "1 nonexistent" and flags[1] == "error" and "loops" in flags[2]
    assert view["citations"][0] == "Ephesians 2:8; ⚠️ John 3:99"
    assert view["answer"][2].endswith("…") and len(view["answer"][2]) <= 120


def test_the_selected_row_is_found_by_its_number_not_its_place_on_screen() -> None:
    frame = _frame()
    shown = table_view(frame, True, "noah", Thresholds())  # filtered: the failed row is first on screen
    assert list(shown["#"]) == [2]
    event = gr.SelectData(None, {"index": [0, 1], "value": "q2", "row_value": list(shown.iloc[0]), "selected": True})
    details = dict(zip(row_details(event, frame)["column"], row_details(event, frame)["value"]))
    assert details["id"] == "q2" and details["error"] == "The endpoint answered 500."
