"""The "Review citations" panel: a reviewer rates, one answer at a time, each citation it makes.

Built for speed and for losing nothing. Every rating, note and "reviewed" mark is written to
:class:`core.reviews.ReviewStore` the moment it is made (there is no save button to forget),
keyed by :func:`core.reviews.answer_key`, so a crash, a restart or a re-loaded results file
brings the reviews back. The keyboard does the stepping and the rating (see
:data:`REVIEW_KEYBOARD_JS`). Model output is only ever shown as plain text.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import gradio as gr
import pandas as pd

from core import get_textgen_service
from core.reviews import RATINGS, AnswerReview, ReviewStore, answer_key, manual_citation_accuracy
from core.scoring import CitationClass, score_answer
from core.scripture import citation_text, parse_reference_list
from ui.citations import _escape as escape_markdown

#: How each automatic class reads to a reviewer.
CLASS_LABELS: dict[str, str] = {
    "expected": "✅ expected reference",
    "in_context": "✅ inside the question's context",
    "unsupported": "❔ neither expected nor in the context",
    "nonexistent": "⚠️ does not exist",
}

#: The rating radio's options, best first: the keyboard's 2/1/0 pick them by position.
RATING_CHOICES: list[tuple[str, int]] = [(f"{value} · {label}", value) for value, label in sorted(RATINGS.items(), reverse=True)]

#: Where export files are written before the browser downloads them.
EXPORT_FOLDER = Path(tempfile.gettempdir()) / "scribes-review-exports"

#: Key bindings, run once per page by the panel's help line (``gr.HTML(js_on_load=...)``),
#: so app.py passes nothing. Keys act only while the panel is on screen and never while
#: the focus is in a text field, so notes can contain "j" and "2".
#: j or → next answer, k or ← previous answer; 2/1/0 rate the citation that has the focus
#: (or the first one not rated yet), then the focus moves on to the next citation.
REVIEW_KEYBOARD_JS = """
if (!window.scribesReviewKeys) {
  window.scribesReviewKeys = true;
  const style = document.createElement("style");
  style.textContent = `
    #review-panel .review-citation:focus-within { outline: 3px solid var(--color-accent); outline-offset: 2px; }
    #review-panel .review-flagged { border-left: 4px solid var(--color-red-500, #ef4444); }
    #review-panel kbd { border: 1px solid var(--border-color-primary); border-radius: 4px; padding: 0 4px; font-size: 0.85em; }
  `;
  document.head.appendChild(style);
  const TEXT_INPUTS = /^(text|search|email|number|password|url|tel|date|time|datetime-local|month|week)$/;
  const isTyping = (el) => !!el && (el.isContentEditable || el.tagName === "TEXTAREA" || el.tagName === "SELECT"
    || (el.tagName === "INPUT" && TEXT_INPUTS.test(el.type)));
  const OPTION_OF_KEY = { "2": 0, "1": 1, "0": 2 };
  // Gradio draws a Group as two nested elements that both carry its classes: keep the outer one.
  const rateable = (panel) => [...panel.querySelectorAll(".review-citation")]
    .filter((card) => !card.parentElement.closest(".review-citation") && card.querySelector("input[type=radio]"));
  const focusCard = (card) => {
    const input = card.querySelector("input[type=radio]:checked") || card.querySelector("input[type=radio]");
    input.focus({ preventScroll: true });
    card.scrollIntoView({ block: "nearest" });
  };
  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || isTyping(event.target)) return;
    const panel = document.getElementById("review-panel");
    if (!panel || panel.getClientRects().length === 0) return;  // another tab is showing
    const press = (id) => { event.preventDefault(); document.getElementById(id)?.click(); };
    if (event.key === "j" || event.key === "ArrowRight") return press("review-next");
    if (event.key === "k" || event.key === "ArrowLeft") return press("review-previous");
    if (!(event.key in OPTION_OF_KEY)) return;
    const cards = rateable(panel);
    const focused = cards.find((c) => c.contains(document.activeElement));
    const card = focused || cards.find((c) => !c.querySelector("input[type=radio]:checked"));
    if (!card || !cards.includes(card)) return;
    event.preventDefault();
    card.querySelectorAll("input[type=radio]")[OPTION_OF_KEY[event.key]]?.click();
    const next = cards[cards.indexOf(card) + 1];
    focusCard(next || card);
  }, true);
}
"""

KEYBOARD_HELP = (
    "<p class='review-keys'>Keys: <kbd>j</kbd>/<kbd>→</kbd> next answer · <kbd>k</kbd>/<kbd>←</kbd> previous · "
    "<kbd>2</kbd> supports · <kbd>1</kbd> partly supports · <kbd>0</kbd> does not support "
    "(rates the highlighted citation, then moves on) · <kbd>Tab</kbd> moves between controls. "
    "Every change is saved at once.</p>"
)


# --- what is reviewed -----------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewCitation:
    """One distinct reference of an answer, with what a reviewer needs to rate it.

    Repeats of a reference ("John 3:16" ... "Jn 3:16") are one citation with every
    spelling and every sentence, because the store keeps one rating per normalized
    reference of an answer.
    """

    written: tuple[str, ...]  # as the answer spelled it, each spelling once
    normalized: str | None  # None when the reference does not exist
    classification: CitationClass
    sentences: tuple[str, ...]  # the sentences that cite it, in order
    kjv: str = ""
    asv: str = ""
    reason: str | None = None  # why it does not exist

    @property
    def needs_rating(self) -> bool:
        """Nonexistent references are flagged automatically: there is no verse to judge."""
        return self.normalized is not None


@dataclass(frozen=True)
class ReviewItem:
    """One answer of the results table as the panel shows it."""

    key: str  # answer_key(question, answer): where its review is stored
    row: int  # position in the results table, from 0
    row_id: str
    question: str
    expected_references: str
    answer: str
    citations: tuple[ReviewCitation, ...]
    expected_problem: str | None = None  # why the expected references could not be read


@dataclass(frozen=True)
class ReviewProgress:
    answers: int
    reviewed: int
    rated_citations: int
    accuracy: float | None  # manual_citation_accuracy over the rated citations


def _cell(row: Mapping[str, object], column: str) -> str:
    value = row.get(column, "")
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def answer_list(frame: pd.DataFrame | None) -> list[tuple[str, int]]:
    """(answer key, table row) of each answer to review, in table order.

    Rows without an answer (a failed generation) have nothing to review. A question asked
    twice with the same answer is one answer and one review, so it is listed once.
    """
    if frame is None or frame.empty or "answer" not in frame:
        return []
    answers: dict[str, int] = {}
    for row, (question, answer) in enumerate(zip(frame["question"].fillna(""), frame["answer"].fillna(""))):
        if str(answer).strip():
            answers.setdefault(answer_key(str(question), str(answer)), row)
    return list(answers.items())


def review_citations(answer: str, expected_references: str = "", context: str = "") -> tuple[tuple[ReviewCitation, ...], str | None]:
    """The answer's distinct citations, classified by :func:`core.scoring.score_answer`.

    Returns the citations and, when the expected references cannot be read (a results
    file edited by hand), why: the citations are then classified without them rather
    than not shown at all.
    """
    try:
        expected, problem = parse_reference_list(expected_references), None
    except ValueError as error:
        expected, problem = [], str(error)
    groups: dict[str, list] = {}
    for scored in score_answer(answer, expected=expected, context=context).citations:
        citation = scored.citation
        unit = citation.normalized if citation.exists else "?" + " ".join(citation.text.casefold().split())
        groups.setdefault(unit, []).append(scored)
    citations = []
    for group in groups.values():
        first = group[0].citation
        citations.append(
            ReviewCitation(
                written=tuple(dict.fromkeys(s.citation.text for s in group)),
                normalized=first.normalized if first.exists else None,
                classification=group[0].classification,
                sentences=tuple(dict.fromkeys(s.sentence for s in group)),
                kjv=citation_text(first, "KJV") if first.exists else "",
                asv=citation_text(first, "ASV") if first.exists else "",
                reason=first.reason,
            )
        )
    return tuple(citations), problem


def review_item(frame: pd.DataFrame, row: int) -> ReviewItem:
    """The answer in table row ``row`` (from 0), ready to show."""
    record = frame.iloc[row].to_dict()
    question, answer = _cell(record, "question"), _cell(record, "answer")
    citations, problem = review_citations(answer, _cell(record, "expected_references"), _cell(record, "context"))
    return ReviewItem(
        key=answer_key(question, answer),
        row=row,
        row_id=_cell(record, "id"),
        question=question,
        expected_references=_cell(record, "expected_references"),
        answer=answer,
        citations=citations,
        expected_problem=problem,
    )


def current_index(answers: Sequence[tuple[str, int]], key: str | None) -> int:
    """Where ``key`` is in the list; the first answer when it is not (new results, or none yet)."""
    for index, (candidate, _) in enumerate(answers):
        if candidate == key:
            return index
    return 0


def review_progress(keys: Sequence[str], reviews: Mapping[str, AnswerReview]) -> ReviewProgress:
    """How far the review of these answers has got."""
    of_these = [reviews[key] for key in keys if key in reviews]
    return ReviewProgress(
        answers=len(keys),
        reviewed=sum(review.done for review in of_these),
        rated_citations=sum(len(review.ratings) for review in of_these),
        accuracy=manual_citation_accuracy(of_these),
    )


def progress_markdown(progress: ReviewProgress) -> str:
    accuracy = (
        "no citation rated yet"
        if progress.accuracy is None
        else f"manual citation accuracy **{progress.accuracy:.0%}** over {progress.rated_citations} rated citations"
    )
    return f"**Reviewed {progress.reviewed} of {progress.answers} answers** · {accuracy}"


def read_reviews_file(path: str | Path) -> list[dict[str, object]]:
    """Reviews exported by this panel, checked before any is imported.

    Checking everything first means a bad file imports nothing, rather than half.
    Raises ``ValueError`` with a message for the reviewer.
    """
    name = Path(path).name
    try:
        rows = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{name} is not a reviews file (JSON exported from this panel): {error}.") from error
    if not isinstance(rows, list):
        raise ValueError(f"{name} is not a reviews file: it should hold a list of reviews, one per answer.")
    for number, row in enumerate(rows, start=1):
        where = f"Review {number} in {name}"
        if not isinstance(row, dict) or not isinstance(row.get("answer_key"), str) or not row["answer_key"]:
            raise ValueError(f"{where} has no answer_key.")
        ratings = row.get("ratings") or {}
        if not isinstance(ratings, dict) or any(
            isinstance(value, bool) or not isinstance(value, int) or value not in RATINGS for value in ratings.values()
        ):
            raise ValueError(f"{where} has a rating that is not 2 (supports), 1 (partly supports) or 0 (does not support).")
    return rows


def write_reviews_export(store: ReviewStore, keys: Sequence[str], folder: Path = EXPORT_FOLDER) -> Path:
    """The reviews of these answers as a JSON file to download; one file per set of answers."""
    folder.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:12]
    path = folder / f"reviews-{digest}.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(store.export(keys), ensure_ascii=False, indent=1), encoding="utf-8")
    temporary.replace(path)  # a download never sees a half-written file
    return path


# --- event handlers: each saves at once and returns what the screen shows next ------------------


def review_store() -> ReviewStore:
    return ReviewStore(get_textgen_service().settings.data_dir)


def _keys(frame: pd.DataFrame | None) -> list[str]:
    return [key for key, _ in answer_list(frame)]


def _export(store: ReviewStore, frame: pd.DataFrame | None) -> str | None:
    keys = _keys(frame)
    return str(write_reviews_export(store, keys)) if keys else None


def _progress(store: ReviewStore, frame: pd.DataFrame | None) -> str:
    keys = _keys(frame)
    return progress_markdown(review_progress(keys, store.many(keys)))


def rate_citation(frame: pd.DataFrame | None, key: str, citation: str, rating: int | None) -> tuple[str, str | None]:
    """Save one rating; returns the progress line and the export file, both now changed."""
    store = review_store()
    if rating is not None:
        store.rate(key, citation, int(rating))
    return _progress(store, frame), _export(store, frame)


def save_notes(frame: pd.DataFrame | None, key: str, note: str) -> str | None:
    """Save the notes as they are typed; returns the export file."""
    store = review_store()
    store.annotate(key, note=note)
    return _export(store, frame)


def save_missing_citations(frame: pd.DataFrame | None, key: str, missing: str) -> str | None:
    """Save the references the answer should have cited, as they are typed; returns the export file."""
    store = review_store()
    store.annotate(key, missing_citations=missing)
    return _export(store, frame)


def _find_unreviewed(answers: Sequence[tuple[str, int]], start: int, step: int, reviews: Mapping[str, AnswerReview]) -> int | None:
    """The first answer not marked reviewed from ``start`` on, going by ``step``."""
    index = start
    while 0 <= index < len(answers):
        if not reviews[answers[index][0]].done:
            return index
        index += step
    return None


def step_answer(frame: pd.DataFrame | None, key: str | None, step: int, only_unreviewed: bool) -> str | None:
    """The key of the next (step 1) or previous (step -1) answer, skipping reviewed ones if asked."""
    answers = answer_list(frame)
    if not answers:
        return None
    index = current_index(answers, key)
    if only_unreviewed:
        reviews = review_store().many(k for k, _ in answers)
        found = _find_unreviewed(answers, index + step, step, reviews)
        if found is None:
            gr.Info(f"No answer {'after' if step > 0 else 'before'} this one is waiting for review.")
            return answers[index][0]
        return answers[found][0]
    if not 0 <= index + step < len(answers):
        gr.Info("This is the last answer." if step > 0 else "This is the first answer.")
        return answers[index][0]
    return answers[index + step][0]


def jump_to(frame: pd.DataFrame | None, key: str | None, number: float | None) -> str | None:
    """The key of answer ``number`` (from 1, as the panel counts)."""
    answers = answer_list(frame)
    if not answers or number is None:
        return key
    if not 1 <= number <= len(answers):
        raise gr.Error(f"There are {len(answers)} answers; pick a number from 1 to {len(answers)}.")
    return answers[int(number) - 1][0]


def _waiting_from(answers: Sequence[tuple[str, int]], index: int, reviews: Mapping[str, AnswerReview]) -> int | None:
    """The first answer waiting for review at or after ``index``, else from the top."""
    found = _find_unreviewed(answers, index, 1, reviews)
    return _find_unreviewed(answers, 0, 1, reviews) if found is None else found


def first_unreviewed(frame: pd.DataFrame | None, key: str | None, only_unreviewed: bool) -> str | None:
    """When the filter is switched on, go to the first answer still waiting from here on."""
    answers = answer_list(frame)
    if not only_unreviewed or not answers:
        return key
    index = current_index(answers, key)
    found = _waiting_from(answers, index, review_store().many(k for k, _ in answers))
    if found is None:
        gr.Info("Every answer is reviewed.")
        return answers[index][0]
    return answers[found][0]


def status_line(index: int, total: int, row_id: str, done: bool) -> str:
    """"Answer 3 of 12 · id q3 · not reviewed yet"."""
    parts = [f"### Answer {index + 1} of {total}"]
    if row_id:
        parts.append(f"id {escape_markdown(row_id)}")
    parts.append("✔️ reviewed" if done else "not reviewed yet")
    return " · ".join(parts)


def reviewed_button(done: bool) -> gr.Button:
    return gr.Button("Mark not reviewed" if done else "Mark reviewed", variant="secondary" if done else "primary")


def toggle_reviewed(
    frame: pd.DataFrame | None, key: str, row_id: str, only_unreviewed: bool
) -> tuple[str | None, str, str, gr.Button, str | None]:
    """Mark the answer reviewed and go on to the next one (the next waiting one, with the
    filter); or, when it already was, take the mark back and stay.

    Returns the key to show, the progress line, the status line, the button and the export.
    """
    store = review_store()
    done = not store.get(key).done
    store.annotate(key, done=done)
    answers = answer_list(frame)
    index = current_index(answers, key)
    next_key = key
    if done:
        if only_unreviewed:
            found = _waiting_from(answers, index + 1, store.many(k for k, _ in answers))
        else:
            found = index + 1 if index + 1 < len(answers) else None
        if found is None:
            gr.Info("Every answer is reviewed." if only_unreviewed else "That was the last answer.")
        else:
            next_key = answers[found][0]
    status = status_line(index, len(answers), row_id, done)
    return next_key, _progress(store, frame), status, reviewed_button(done), _export(store, frame)


def import_reviews(frame: pd.DataFrame | None, path: str | None, reloads: int) -> int:
    """Load an exported reviews file; later values win. Returns the reload count plus one,
    which redraws the current answer with what was imported."""
    if not path:
        return reloads
    try:
        rows = read_reviews_file(path)
    except ValueError as error:
        raise gr.Error(str(error)) from error
    count = review_store().import_rows(rows)
    current = set(_keys(frame))
    here = sum(str(row["answer_key"]) in current for row in rows)
    gr.Info(f"Imported the reviews of {count} answers ({here} of them in the current results).")
    return reloads + 1


# --- the panel --------------------------------------------------------------------------------

_PRIVATE = {"api_visibility": "private", "show_progress": "hidden"}


def _citation_card(number: int, citation: ReviewCitation, rating: int | None) -> gr.Radio | None:
    """One citation as a card; returns its rating radio (None for a nonexistent reference)."""
    written = " / ".join(f"“{escape_markdown(text)}”" for text in citation.written)
    sentences = "\n".join(citation.sentences)
    if not citation.needs_rating:
        with gr.Group(elem_classes=["review-citation", "review-flagged"]):
            gr.Markdown(
                f"**{number}. {written}** · {CLASS_LABELS['nonexistent']} ({escape_markdown(citation.reason or 'unknown')}). "
                "Flagged automatically: no rating needed."
            )
            gr.Textbox(sentences, label="Sentence that cites it", interactive=False, lines=1, max_lines=6)
        return None
    heading = f"**{number}. {citation.normalized}** · {CLASS_LABELS[citation.classification]}"
    if citation.written != (citation.normalized,):
        heading += f" · written {written}"
    with gr.Group(elem_classes=["review-citation"]):
        gr.Markdown(heading)
        gr.Textbox(sentences, label="Sentence that cites it", interactive=False, lines=1, max_lines=6)
        gr.Markdown(f"**KJV:** {escape_markdown(citation.kjv)}")
        with gr.Accordion("ASV text", open=False):
            gr.Markdown(escape_markdown(citation.asv))
        return gr.Radio(
            RATING_CHOICES,
            value=rating,
            label=f"Does {citation.normalized} support the sentence? (keys 2 / 1 / 0)",
            elem_classes=["review-rating"],
        )


def build_review_panel(results: gr.State) -> None:
    """The panel, for ``results`` (a per-session State holding the results DataFrame or None).

    Called inside the Evaluate tab: ``with gr.Tab("Review citations"): build_review_panel(results)``.
    Needs nothing from app.py: the key bindings come with the panel.
    """
    position = gr.State(None)  # the answer_key shown; None or unknown: the first answer
    reloads = gr.State(0)  # bumped by an import, to redraw the answer with what was imported
    with gr.Column(elem_id="review-panel"):
        gr.HTML(KEYBOARD_HELP, js_on_load=REVIEW_KEYBOARD_JS, elem_id="review-keys")
        with gr.Row(equal_height=True):
            previous_button = gr.Button("← Previous (k)", elem_id="review-previous", size="md")
            jump = gr.Number(1, label="Go to answer number (Enter)", precision=0, minimum=1, elem_id="review-jump")
            next_button = gr.Button("Next (j) →", elem_id="review-next", size="md")
            only_unreviewed = gr.Checkbox(False, label="Only answers not yet reviewed", elem_id="review-only-unreviewed")

        # Redrawn when the results, the answer shown or the imported reviews change.
        @gr.render(inputs=[results, position, reloads])
        def show_answer(frame: pd.DataFrame | None, key: str | None, _reloads: int) -> None:
            answers = answer_list(frame)
            if not answers:
                gr.Markdown("_No answers to review yet: run a question set, or load a results file, in the tabs beside this one._")
                return
            store = review_store()
            index = current_index(answers, key)
            item = review_item(frame, answers[index][1])
            review = store.get(item.key)
            progress = gr.Markdown(_progress(store, frame), elem_id="review-progress")
            status = gr.Markdown(status_line(index, len(answers), item.row_id, review.done), elem_id="review-status")
            gr.Textbox(item.question, label="Question", interactive=False, lines=1, max_lines=6, elem_id="review-question")
            expected = item.expected_references or "(none)"
            if item.expected_problem:
                expected += f"  (could not be read: {item.expected_problem})"
            gr.Textbox(expected, label="Expected references", interactive=False, lines=1, max_lines=3)
            gr.Textbox(item.answer, label="Answer, as the model wrote it", interactive=False, lines=3, max_lines=24,
                       elem_id="review-answer")
            if item.citations:
                gr.Markdown(f"**Citations in this answer: {len(item.citations)}**")
            else:
                gr.Markdown("_This answer cites no Bible reference. Note any it should have cited below._")
            radios = [
                (citation, _citation_card(number, citation, review.ratings.get(citation.normalized or "")))
                for number, citation in enumerate(item.citations, start=1)
            ]
            with gr.Row():
                missing = gr.Textbox(review.missing_citations, label="Missing citations: references the answer should have cited",
                                     placeholder="e.g. Romans 6:23; Ephesians 2:8", lines=2, elem_id="review-missing")
                notes = gr.Textbox(review.note, label="Notes", lines=2, elem_id="review-notes")
            with gr.Row():
                reviewed = gr.Button(
                    "Mark not reviewed" if review.done else "Mark reviewed",
                    variant="secondary" if review.done else "primary",
                    elem_id="review-mark",
                )
                export = gr.DownloadButton("Export reviews (JSON)", value=_export(store, frame), elem_id="review-export")

            for citation, radio in radios:
                if radio is not None:
                    radio.input(
                        lambda f, value, normalized=citation.normalized: rate_citation(f, item.key, normalized, value),
                        [results, radio], [progress, export], trigger_mode="always_last", **_PRIVATE,
                    )
            missing.input(lambda f, text: save_missing_citations(f, item.key, text), [results, missing], export,
                          trigger_mode="always_last", **_PRIVATE)
            notes.input(lambda f, text: save_notes(f, item.key, text), [results, notes], export,
                        trigger_mode="always_last", **_PRIVATE)
            reviewed.click(lambda f, only: toggle_reviewed(f, item.key, item.row_id, only), [results, only_unreviewed],
                           [position, progress, status, reviewed, export], **_PRIVATE)

        with gr.Accordion("Import reviews", open=False):
            upload = gr.File(label="A reviews JSON exported from this panel (re-importing restores them)",
                             file_types=[".json"], type="filepath", elem_id="review-import")

    previous_button.click(lambda f, k, only: step_answer(f, k, -1, only), [results, position, only_unreviewed], position, **_PRIVATE)
    next_button.click(lambda f, k, only: step_answer(f, k, 1, only), [results, position, only_unreviewed], position, **_PRIVATE)
    jump.submit(jump_to, [results, position, jump], position, **_PRIVATE)
    only_unreviewed.input(first_unreviewed, [results, position, only_unreviewed], position, **_PRIVATE)
    upload.upload(import_reviews, [results, upload, reloads], reloads, api_visibility="private")
