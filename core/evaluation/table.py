"""The results table: one row per question, its CSV and JSON files (spreadsheet-safe), reading
them back and comparing two runs."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from core.errors import ResultsFileError
from core.evaluation.question_sets import INPUT_COLUMNS, QuestionSet
from core.evaluation.scored_rows import ScoredRow
from core.files import write_file_atomically
from core.generation.params import HARD_OUTPUT_TOKEN_LIMIT
from core.scoring.quotes import MIN_QUOTE_WORDS, MISQUOTE_SIMILARITY
from core.scoring.repetition import DEGENERATE_REP_N, MIN_WORDS_TO_JUDGE, REP_N

#: The columns a results table adds to the input columns, with what each holds.
RESULT_COLUMNS: dict[str, str] = {
    "answer": "The answer that was scored: generated in this run, or given in the set's `answer` column.",
    "answer_source": "`generated` (answered in this run) or `given` (taken from the set's `answer` column, not generated).",
    "valid_citations": "The existing scripture references the answer cites, normalised, each once, in order of appearance, "
    "`; `-joined, e.g. `Ephesians 2:8-9; Romans 6:23`.",
    "nonexistent_citations": "References the answer cites that are not in the Bible (no such book, chapter or verse), "
    "as first written, each once, `; `-joined, e.g. `John 3:99; Hezekiah 3:4`.",
    "nonexistent_count": "How many distinct nonexistent references the answer cites.",
    "citation_precision": "Share of the distinct references cited (nonexistent ones included) that share a verse with an "
    "expected reference (ALCE, Gao et al. 2023). Empty when the row has no expected references or the answer cites nothing.",
    "citation_recall": "Share of the expected references that some citation shares a verse with. "
    "Empty when the row has no expected references.",
    "citation_f1": "2PR/(P+R) of citation precision and recall; 0 when the answer cites nothing. "
    "Empty when the row has no expected references.",
    "grounded_rate": "Share of the existing references cited that are inside the row's context (cited by it, or their "
    "text quoted in it). Empty when the row has no context or the answer cites no existing reference.",
    "misquotes": f"Quotations ({MIN_QUOTE_WORDS}+ words in quotation marks) attributed to a cited verse that match it in neither KJV nor "
    f"ASV (similarity below {MISQUOTE_SIMILARITY}), as `reference (similarity)`, `; `-joined, e.g. `John 3:16 (0.62)`.",
    "distinct_1": "Distinct words / all words (Li et al. 2016); low values mean a repetitive answer.",
    "distinct_2": "Distinct word pairs / all word pairs (Li et al. 2016).",
    "rep_n": f"Share of repeated {REP_N}-grams (rep-{REP_N}, Welleck et al. 2019); 0 for no repetition.",
    "longest_repeat": "Length in words of the longest word sequence that occurs at least twice.",
    "degenerate": f"True when the answer loops: rep-{REP_N} of {DEGENERATE_REP_N} or more over at least "
    f"{MIN_WORDS_TO_JUDGE} words.",
    "output_tokens": "Tokens generated for the answer. Empty for given answers.",
    "within_token_limit": f"True when the answer used at most {HARD_OUTPUT_TOKEN_LIMIT} output tokens. Empty for given answers.",
    "latency_ms": "Time to generate the answer, in milliseconds (rows answered in one local batch share the batch's "
    "time; 0 for an answer from the cache). Empty for given answers.",
    "finish_reason": "`stop` (the model finished) or `length` (cut at the token limit). Empty for given answers.",
    "error": "Why no answer was produced (the generation error's message); empty when the row was answered.",
    "retrieved_references": "The Scripture passages retrieval gave the model (`--ground K`), best first, in pythonbible's normal "
    "form, `; `-joined, e.g. `Philippians 4:5-7; 1 Peter 5:6-8`. Empty when the run was not grounded.",
    "retrieval_hit": "True when some retrieved passage shares a verse with an expected reference. Empty when the run was "
    "not grounded or the row has no expected references.",
}

#: Result columns that results files written before grounding existed lack; read back as empty.
_LATER_RESULT_COLUMNS = ("retrieved_references", "retrieval_hit")

_FLOAT_COLUMNS = frozenset(
    {"citation_precision", "citation_recall", "citation_f1", "grounded_rate", "distinct_1", "distinct_2", "rep_n", "latency_ms"}
)
_INT_COLUMNS = frozenset({"nonexistent_count", "longest_repeat", "output_tokens"})
_BOOL_COLUMNS = frozenset({"degenerate", "within_token_limit", "retrieval_hit"})
TYPED_COLUMNS = _FLOAT_COLUMNS | _INT_COLUMNS | _BOOL_COLUMNS
#: Metrics are rounded so a results file reads well and survives a round trip unchanged.
METRIC_DECIMALS = 4

if TYPE_CHECKING:
    from core.evaluation.runner import EvaluationRun
    from core.evaluation.summary import Summary





def results_columns(question_set: QuestionSet) -> list[str]:
    """The input columns, the set's own extra columns, then :data:`RESULT_COLUMNS`."""
    extras = [c for c in question_set.extra_columns if c not in RESULT_COLUMNS and c not in INPUT_COLUMNS]
    return [*INPUT_COLUMNS, *extras, *RESULT_COLUMNS]


def is_missing(value: object) -> bool:
    """Empty in a results table: None, pandas' NA or NaN."""
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


def result_record(scored: ScoredRow) -> dict[str, object]:
    """One results-table row: the input columns, then :data:`RESULT_COLUMNS`."""
    row, score = scored.row, scored.score
    record: dict[str, object] = {
        "id": row.id,
        "question": row.question,
        "expected_references": row.expected_text,
        "context": row.context,
        "category": row.category,
        "notes": row.notes,
        **{name: value for name, value in row.extra if name not in RESULT_COLUMNS and name not in INPUT_COLUMNS},
        "answer": scored.answer,
        "answer_source": scored.answer_source,
        "output_tokens": scored.output_tokens,
        "within_token_limit": scored.within_token_limit,
        "latency_ms": None if scored.latency_ms is None else round(scored.latency_ms, 1),
        "finish_reason": scored.finish_reason or "",
        "error": scored.error or "",
        "retrieved_references": "" if scored.retrieved is None else "; ".join(p.reference for p in scored.retrieved),
        "retrieval_hit": scored.retrieval_hit,
    }
    if score is not None:
        repetition = score.repetition
        record.update(
            valid_citations="; ".join(score.valid_citations),
            nonexistent_citations="; ".join(score.nonexistent_citations),
            nonexistent_count=len(score.nonexistent_citations),
            citation_precision=_rounded(score.citation_precision),
            citation_recall=_rounded(score.citation_recall),
            citation_f1=_rounded(score.citation_f1),
            grounded_rate=_rounded(score.grounded_rate),
            misquotes="; ".join(f"{m.reference} ({m.similarity:.2f})" for m in score.misquotes),
            distinct_1=_rounded(repetition.distinct_1),
            distinct_2=_rounded(repetition.distinct_2),
            rep_n=_rounded(repetition.rep_n),
            longest_repeat=repetition.longest_repeat,
            degenerate=bool(score.degenerate),
        )
    return record


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), METRIC_DECIMALS)


def results_frame(run: EvaluationRun | Iterable[ScoredRow]) -> pd.DataFrame:
    """The results table: input columns, then :data:`RESULT_COLUMNS`, one row per scored row, in the set's order.

    Numbers are floats (NaN where a metric does not apply), counts nullable integers,
    flags nullable booleans; everything else is text ("" where empty).
    """
    if not isinstance(run, Iterable):  # an EvaluationRun: its set's extra columns even when no row is done
        scored, columns = list(run.rows), results_columns(run.question_set)
    else:
        scored = list(run)
        extras = dict.fromkeys(name for s in scored for name, _ in s.row.extra)
        columns = results_columns(QuestionSet("", (), tuple(extras)))
    scored.sort(key=lambda s: s.row.row_number)
    frame = pd.DataFrame([result_record(s) for s in scored], columns=columns)
    return _typed(frame)


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Give the result columns their types; text columns get "" for missing values."""
    frame = frame.copy()
    for column in frame.columns:
        if column in _FLOAT_COLUMNS:
            frame[column] = pd.to_numeric(frame[column].map(_blank_to_none), errors="coerce").astype("float64")
        elif column in _INT_COLUMNS:
            frame[column] = pd.to_numeric(frame[column].map(_blank_to_none), errors="coerce").astype("Int64")
        elif column in _BOOL_COLUMNS:
            frame[column] = frame[column].map(_to_bool).astype("boolean")
        else:
            frame[column] = frame[column].map(lambda v: "" if is_missing(v) else str(v)).astype(object)
    return frame


def _blank_to_none(value: object) -> object:
    return None if is_missing(value) or value == "" else value


_TRUE_TEXT = {"true", "1", "yes"}
_FALSE_TEXT = {"false", "0", "no"}


def _to_bool(value: object) -> object:
    if is_missing(value):
        return pd.NA
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE_TEXT:
        return True
    if text in _FALSE_TEXT:
        return False
    return pd.NA


#: First characters that make a spreadsheet run a cell as a formula (OWASP "CSV injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)  # "-٣" is no number to a spreadsheet


def neutralize_formula(text: str) -> str:
    """Prefix a single quote to a text cell a spreadsheet would run as a formula.

    ``=HYPERLINK(...)``, ``+cmd``, ``@SUM(...)`` and ``-2+3`` get a ``'``; so does a cell
    that already starts with quotes before such a character, so :func:`restore_formula`
    can undo exactly this. Text that is just a number ("-3", "+1.5") is left alone: a
    spreadsheet reads it as that number and runs nothing.
    """
    if _PLAIN_NUMBER.fullmatch(text):
        return text
    if text.lstrip("'").startswith(FORMULA_TRIGGERS) and (text.startswith(FORMULA_TRIGGERS) or text.startswith("'")):
        return "'" + text
    return text


def restore_formula(text: str) -> str:
    """Undo :func:`neutralize_formula` on a cell read back from a results CSV."""
    if text.startswith("'") and text.lstrip("'").startswith(FORMULA_TRIGGERS):
        return text[1:]
    return text


def csv_cell(value: object, *, text: bool) -> str:
    if is_missing(value):
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if not text:
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            return repr(value)
        return str(value)
    return neutralize_formula(str(value))


def write_results_csv(frame: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write a results table as UTF-8 CSV (with a BOM, so Excel reads the accents right).

    Text cells a spreadsheet would run as formulas are neutralised (see
    :func:`neutralize_formula`); numbers in numeric columns, negative ones included, are
    written as numbers. The file is replaced in one step, never left half-written.
    """
    numeric = {c for c in frame.columns if pd.api.types.is_numeric_dtype(frame[c]) or pd.api.types.is_bool_dtype(frame[c])}

    def write(handle: io.TextIOBase) -> None:
        writer = csv.writer(handle)
        writer.writerow([str(c) for c in frame.columns])
        for values in frame.itertuples(index=False, name=None):
            writer.writerow([csv_cell(v, text=c not in numeric) for c, v in zip(frame.columns, values)])

    return write_file_atomically(Path(path), write, encoding="utf-8-sig")


def write_results_json(
    frame: pd.DataFrame, path: str | os.PathLike[str], *, summary: Summary | None = None, run: EvaluationRun | None = None
) -> Path:
    """Write ``{"run": {...}, "summary": {...}, "rows": [...]}``; missing values are ``null``.

    ``run`` adds the set's name, mode, parameters, system prompt, status and timing;
    ``summary`` the figures of :func:`summarize`. :func:`load_results` reads the rows back.
    """
    rows = [{k: _json_value(v) for k, v in record.items()} for record in frame.to_dict("records")]
    payload: dict[str, object] = {}
    if run is not None:
        payload["run"] = {
            "question_set": run.question_set.name,
            "mode": run.mode,
            "params": run.params,
            "ground": run.ground,
            "ranking": run.ranking,
            "ranking_note": run.ranking_note,
            "system_prompt": run.system_prompt,
            "status": run.status,
            "error": run.error,
            "rows": len(run.rows),
            "total": run.total,
            "resumed": run.resumed,
            "started_at": run.started_at,
            "duration_s": round(run.duration_s, 1),
        }
    if summary is not None:
        payload["summary"] = asdict(summary)
    payload["rows"] = rows
    text = json.dumps(payload, ensure_ascii=False, indent=2, allow_nan=False)
    return write_file_atomically(Path(path), lambda handle: handle.write(text + "\n"))


def _json_value(value: object) -> object:
    if is_missing(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()  # type: ignore[union-attr]
    return value


def load_results(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a results file written by :func:`write_results_csv` or :func:`write_results_json`.

    Neutralised formulas get their text back and the result columns their types, so the
    frame equals the one that was written. Raises :class:`ResultsFileError` for a file
    that is not a results file.
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".json":
            payload = json.loads(path.read_text(encoding="utf-8"))
            records = payload.get("rows") if isinstance(payload, dict) else payload
            if not isinstance(records, list):
                raise ResultsFileError(f"{path.name} is not a results file: it has no list of rows.")
            frame = pd.DataFrame(records)
        else:
            frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
            for column in frame.columns:
                if column not in TYPED_COLUMNS:
                    frame[column] = frame[column].map(restore_formula)
    except FileNotFoundError:
        raise ResultsFileError(f"{path.name}: there is no such file ({path}).") from None
    except (OSError, UnicodeDecodeError, ValueError, pd.errors.ParserError) as error:
        if isinstance(error, ResultsFileError):
            raise
        raise ResultsFileError(f"{path.name} could not be read as a results file: {error}") from error
    for column in _LATER_RESULT_COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    missing = [c for c in ("question", *RESULT_COLUMNS) if c not in frame.columns]
    if missing:
        raise ResultsFileError(
            f"{path.name} is not a results file of this app: it lacks the column(s) {', '.join(missing)}."
        )
    for column in INPUT_COLUMNS:
        if column not in frame.columns:
            frame[column] = ""
    return _typed(frame)


_CHANGE_COLUMNS = ("citation_f1", "nonexistent_count", "degenerate")


def compare_runs(a: pd.DataFrame, b: pd.DataFrame) -> pd.DataFrame:
    """Per-question changes from run ``a`` to run ``b``, in ``a``'s order, then rows new in ``b``.

    Rows are matched on ``id`` when every row of both runs has one, otherwise on the
    question text. For each of citation F1 (higher is better), nonexistent citations
    (fewer is better) and degenerate (False is better) the table has the value in
    ``a`` and ``b``, the delta (b - a) and ``better``/``worse``/``same``, or ``n/a``
    where either run has no value. ``present`` says ``both``, ``a only`` or ``b only``.
    """
    use_id = len(a) > 0 and len(b) > 0 and all((frame["id"].astype(str) != "").all() for frame in (a, b))
    key = "id" if use_id else "question"
    keep = ["id", "question", *_CHANGE_COLUMNS]
    left = a[keep].assign(_order_a=range(len(a)))
    right = b[keep].assign(_order_b=range(len(b)))
    merged = left.merge(right, on=key, how="outer", suffixes=("_a", "_b"), indicator="present")
    merged = merged.sort_values(["_order_a", "_order_b"], na_position="last", ignore_index=True)
    other = "question" if key == "id" else "id"
    out = pd.DataFrame({
        key: merged[key].astype(object),
        other: [x if isinstance(x, str) else y for x, y in zip(merged[f"{other}_a"], merged[f"{other}_b"])],
        "present": merged["present"].map({"both": "both", "left_only": "a only", "right_only": "b only"}).astype(object),
    })[["id", "question", "present"]]
    for column, higher_is_better in (("citation_f1", True), ("nonexistent_count", False)):
        before, after = merged[f"{column}_a"].astype("Float64"), merged[f"{column}_b"].astype("Float64")
        delta = after - before
        if column == "citation_f1":
            out[f"{column}_a"], out[f"{column}_b"] = before.astype("float64"), after.astype("float64")
            out[f"{column}_delta"] = delta.round(METRIC_DECIMALS).astype("float64")
        else:
            out[f"{column}_a"], out[f"{column}_b"] = before.astype("Int64"), after.astype("Int64")
            out[f"{column}_delta"] = delta.astype("Int64")
        out[f"{column}_change"] = [_change(d, higher_is_better) for d in delta]
    before, after = merged["degenerate_a"].astype("boolean"), merged["degenerate_b"].astype("boolean")
    out["degenerate_a"], out["degenerate_b"] = before, after
    out["degenerate_change"] = [
        "n/a" if is_missing(x) or is_missing(y) else ("same" if x == y else ("worse" if y else "better"))
        for x, y in zip(before, after)
    ]
    return out


def _change(delta: object, higher_is_better: bool) -> str:
    if is_missing(delta):
        return "n/a"
    value = float(delta)  # type: ignore[arg-type]
    if abs(value) < 1e-9:
        return "same"
    return "better" if (value > 0) == higher_is_better else "worse"
