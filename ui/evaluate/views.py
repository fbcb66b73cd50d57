"""What the Evaluate tab shows of a results table: the summary, the compact table, a row, the plots."""

from __future__ import annotations

import gradio as gr
import pandas as pd

from core import get_textgen_service
from core.evaluation.summary import Thresholds, check_thresholds, summarize
from core.stores.reviews import review_store
from ui.evaluate.review.figures import figures_markdown

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
