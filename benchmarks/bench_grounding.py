"""8. What grounding does to answers: the shipped sets on the embedded model, grounded against ungrounded.

Both runs in this process, on the same model, with the same parameters and seed; the only
difference is ``ground``. Per set and over all of them: mean citation precision and
recall against the expected references, the nonexistent-citation rate (nonexistent
citations / all citations), the misquote rate (quotations attributed to a cited verse
that match it in neither KJV nor ASV / all such quotations checked) and, for the grounded
run, the retrieval hit rate. Targets: a nonexistent rate at most half the ungrounded
run's, and a citation recall at least 5x the ungrounded run's.

    .venv/bin/python benchmarks/bench_grounding.py [--ground 5] [--max-new-tokens 160] [--limit N] [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from common import ROOT, local_service, report

from core.evaluation.question_sets import load_question_set
from core.evaluation.runner import run_evaluation
from core.evaluation.summary import summarize
from core.evaluation.table import results_frame, write_results_csv
from core.scoring.citations import score_answer
from core.scoring.references import parse_reference_list

SEED = 0


@dataclass(frozen=True)
class Figures:
    precision: float | None
    recall: float | None
    nonexistent_rate: float | None
    misquote_rate: float | None
    misquotes: int
    quotes: int
    retrieval_hit_rate: float | None


def figures(frame: pd.DataFrame) -> Figures:
    summary = summarize(frame)
    misquotes = quotes = 0
    for answer, expected, context in frame[["answer", "expected_references", "context"]].itertuples(index=False):
        score = score_answer(answer, expected=parse_reference_list(expected), context=context)
        misquotes, quotes = misquotes + len(score.misquotes), quotes + score.quotes_checked
    return Figures(
        summary.mean_citation_precision,
        summary.mean_citation_recall,
        summary.nonexistent_rate,
        misquotes / quotes if quotes else None,
        misquotes,
        quotes,
        summary.retrieval_hit_rate,
    )


def cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def ratio(after: float | None, before: float | None) -> str:
    if after is None or before is None:
        return "–"
    return "∞" if before == 0 and after > 0 else ("–" if before == 0 else f"{after / before:.2f}×")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ground", type=int, default=5, help="passages per question in the grounded run")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--limit", type=int, help="only the first N rows of each set (a sample)")
    parser.add_argument("--out", type=Path, help="keep the results CSVs here")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-grounding-"))
    out.mkdir(parents=True, exist_ok=True)
    service = local_service()
    params = {"max_new_tokens": args.max_new_tokens, "seed": SEED}
    frames: dict[str, list[pd.DataFrame]] = {"ungrounded": [], "grounded": []}
    print("| Set | Run | Citation precision | Citation recall | Nonexistent rate | Misquote rate (misquoted / checked) | Retrieval hit rate | Minutes |")
    print("|---|---|---|---|---|---|---|---|")
    for path in sorted((ROOT / "eval_sets").glob("*.csv")):
        question_set = load_question_set(path)
        for name, ground in (("ungrounded", 0), ("grounded", args.ground)):
            started = time.perf_counter()
            run = run_evaluation(question_set, service=service, params=params, ground=ground, limit=args.limit)
            frame = results_frame(run)
            write_results_csv(frame, out / f"{path.stem}.{name}.csv")
            frames[name].append(frame)
            f = figures(frame)
            print(
                f"| {path.stem} | {name}{f' (K={ground})' if ground else ''} | {cell(f.precision)} | {cell(f.recall)} | "
                f"{cell(f.nonexistent_rate)} | {cell(f.misquote_rate)} ({f.misquotes}/{f.quotes}) | {cell(f.retrieval_hit_rate)} | "
                f"{(time.perf_counter() - started) / 60:.1f} |",
                flush=True,
            )
    before, after = (figures(pd.concat(frames[name], ignore_index=True)) for name in ("ungrounded", "grounded"))
    for label, f in (("ungrounded", before), (f"grounded (K={args.ground})", after)):
        print(
            f"| all sets | {label} | {cell(f.precision)} | {cell(f.recall)} | {cell(f.nonexistent_rate)} | "
            f"{cell(f.misquote_rate)} ({f.misquotes}/{f.quotes}) | {cell(f.retrieval_hit_rate)} | |"
        )
    rows = sum(len(frame) for frame in frames["grounded"])
    note = f"{rows} questions, {args.max_new_tokens} new tokens, seed {SEED}; results in {out}"
    report("Grounding: citation recall, grounded / ungrounded", cell(after.recall), cell(before.recall), None, f"{ratio(after.recall, before.recall)}; target ≥ 5×; {note}")
    report(
        "Grounding: nonexistent-citation rate, grounded / ungrounded",
        cell(after.nonexistent_rate),
        cell(before.nonexistent_rate),
        None,
        f"{ratio(after.nonexistent_rate, before.nonexistent_rate)}; target ≤ 0.5×",
    )
    report("Grounding: citation precision", cell(after.precision), cell(before.precision), None, ratio(after.precision, before.precision))
    report("Grounding: misquote rate", cell(after.misquote_rate), cell(before.misquote_rate), None, ratio(after.misquote_rate, before.misquote_rate))


if __name__ == "__main__":
    main()
