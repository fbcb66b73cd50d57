"""Evaluate the assistant on a question set from the command line.

    python -m core.evaluation eval_sets/core_doctrine.csv --output results.csv [--json results.json]
        [--mode local|api] [--limit N] [--concurrency N] [--batch-size N] [--temperature T]
        [--top-p P] [--top-k K] [--repetition-penalty R] [--max-new-tokens N] [--seed S]
        [--system-prompt TEXT] [--ground K] [--resume]

The sampling flags are made from :data:`core.generation.params.SAMPLING_PARAMETERS`.

Shows a progress bar on stderr, saves each row to ``--output`` as it finishes (so
``--resume`` can continue a run that was stopped), then writes the final results and
prints the summary. Exit status: 0 done, 1 the run failed part-way (finished rows are
saved), 2 bad input (question set, parameter, setting), 130 stopped with Ctrl-C
(finished rows are saved).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd
from tqdm import tqdm

from core.errors import (
    ConfigurationError,
    EvaluationFailed,
    EvaluationInterrupted,
    GenerationError,
    InvalidRequestError,
    QuestionSetError,
    ResultsFileError,
)
from core.evaluation.question_sets import load_question_set
from core.evaluation.review_items import reviewed_citations
from core.evaluation.runner import EvaluationRun, Progress, run_evaluation
from core.evaluation.summary import Summary, format_summary, summarize
from core.evaluation.table import results_frame, write_results_csv, write_results_json
from core.generation.params import SAMPLING_PARAMETERS
from core.generation.prompting import DEFAULT_SYSTEM_PROMPT
from core.generation.service import TextGenService, get_textgen_service
from core.retrieval import MAX_PASSAGES
from core.stores.reviews import review_store

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be at least 1")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


def _passage_count(text: str) -> int:
    value = _whole_number(text)
    if not 0 <= value <= MAX_PASSAGES:
        raise argparse.ArgumentTypeError(f"{text!r} must be from 0 (off) to {MAX_PASSAGES}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core.evaluation",
        description="Answer every question of a question set, score the answers and save the results.",
        epilog="Settings not given here (model, endpoint, token, defaults) come from the environment and .env.",
    )
    parser.add_argument("question_set", type=Path, help="the question-set CSV (see eval_sets/README.md)")
    parser.add_argument("--output", "-o", type=Path, required=True, help="results CSV to write (saved row by row)")
    parser.add_argument("--json", type=Path, help="also write the results, summary and run settings as JSON")
    parser.add_argument("--mode", choices=("local", "api"), help="generate with the local model or the API (default: as configured)")
    parser.add_argument("--limit", type=_positive_int, help="evaluate only the first N rows")
    parser.add_argument("--concurrency", type=_positive_int, default=4, help="requests at once in API mode (default 4)")
    parser.add_argument("--batch-size", type=_positive_int, default=8, help="questions per model batch in local mode (default 8)")
    for parameter in SAMPLING_PARAMETERS:  # checked against their ranges by the service, with its message
        default = f"{parameter.default:g} or {parameter.env[0]}" if parameter.env else "unset"
        parser.add_argument(
            parameter.flag,
            type=_whole_number if parameter.kind is int else _number,
            help=f"{parameter.help} Allowed: {parameter.allowed} (default: {default}).",
        )
    parser.add_argument("--system-prompt", help="the system prompt (default: the Chat tab's pastoral prompt)")
    parser.add_argument(
        "--ground",
        type=_passage_count,
        default=0,
        metavar="K",
        help="give the model K Scripture passages retrieved for each question, after the row's context (default 0: off)",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run saved in --output: rows answered there are not asked again"
    )
    return parser


def main(argv: Sequence[str] | None = None, *, service: TextGenService | None = None) -> int:
    """Run the command; returns the exit status. ``service`` replaces the configured one (tests)."""
    args = build_parser().parse_args(argv)
    # The service logs one JSON line per generation; on a terminal they would break the bar.
    logging.getLogger("scribes.textgen").setLevel(logging.ERROR)
    try:
        return _evaluate(args, service)
    except (QuestionSetError, ResultsFileError, InvalidRequestError, ConfigurationError, ValueError) as error:
        _say(f"error: {error}")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _say("Stopped before any question was answered.")
        return EXIT_INTERRUPTED


def _evaluate(args: argparse.Namespace, service: TextGenService | None) -> int:
    question_set = load_question_set(args.question_set)
    service = service or get_textgen_service()
    params = {parameter.name: getattr(args, parameter.name) for parameter in SAMPLING_PARAMETERS}
    resume_from = args.output if args.resume and args.output.exists() else None
    if args.output.exists() and not args.resume:
        _say(f"Replacing {args.output} (use --resume to continue it instead).")
    total = min(len(question_set), args.limit or len(question_set))
    mode = args.mode or service.settings.mode
    grounding = f", grounded in {args.ground} passage(s) each" if args.ground else ""
    _say(f"Evaluating {total} question(s) from {question_set.name} in {mode} mode{grounding}.")

    bar = tqdm(total=total, file=sys.stderr, unit="q", dynamic_ncols=True, disable=None)
    try:
        run = run_evaluation(
            question_set,
            service=service,
            params=params,
            system_prompt=args.system_prompt if args.system_prompt is not None else DEFAULT_SYSTEM_PROMPT,
            mode=args.mode,
            concurrency=args.concurrency,
            batch_size=args.batch_size,
            limit=args.limit,
            ground=args.ground,
            on_progress=lambda progress: _show(bar, progress),
            checkpoint=args.output,
            resume_from=resume_from,
        )
        status = EXIT_OK
    except EvaluationInterrupted as interrupted:
        run, status = interrupted.run, EXIT_INTERRUPTED
    except EvaluationFailed as failed:
        run, status = failed.run, EXIT_FAILED
        bar.close()
        _say(f"error: {failed}")
    finally:
        bar.close()
    if run.resumed:
        _say(f"Resumed: {run.resumed} row(s) were already answered in {args.output}.")
    if run.ranking_note:
        _say(f"warning: {run.ranking_note}")
    _save(run, args, service)
    if status == EXIT_INTERRUPTED:
        _say(f"Stopped with Ctrl-C; {len(run.rows)} of {run.total} rows saved to {args.output}. Add --resume to continue.")
    print(format_summary(summary_with_reviews(results_frame(run), service), title=f"{question_set.name}: {run.status}, {run.duration_s:.0f} s"))
    return status


def summary_with_reviews(frame: pd.DataFrame, service: TextGenService) -> Summary:
    """The summary with the manual citation accuracy of the reviews made of these answers (in the app or imported)."""
    estimate = reviewed_citations(frame, review_store(service.settings.data_dir)).accuracy()
    return replace(summarize(frame), manual_citation_accuracy=None if estimate is None else estimate.share)


def _show(bar: tqdm, progress: Progress) -> None:
    bar.update(progress.done - bar.n)
    if progress.errors:
        bar.set_postfix(errors=progress.errors, refresh=False)


def _save(run: EvaluationRun, args: argparse.Namespace, service: TextGenService) -> None:
    frame = results_frame(run)
    write_results_csv(frame, args.output)
    _say(f"Results: {args.output}" + (f" and {args.json}" if args.json else ""))
    if args.json:
        write_results_json(frame, args.json, summary=summary_with_reviews(frame, service), run=run)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_as_program() -> None:
    """``python -m core.evaluation``: run :func:`main` and exit with its status."""
    try:
        status = main()
    except GenerationError as error:  # anything the run itself did not turn into a row error
        _say(f"error: {error}")
        status = EXIT_FAILED
    if status == EXIT_INTERRUPTED:
        # Everything is saved. Requests still in flight (API mode) would hold the exit until
        # they time out, because Python waits for the worker threads; do not wait for them.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    sys.exit(status)
