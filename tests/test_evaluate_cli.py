"""The evaluation command line: a real run on the embedded model, Ctrl-C and resume, bad input.

The end-to-end tests start ``python -m core.evaluation`` as a person would, in local mode
with the Hub switched off; the bad-input table calls :func:`core.evaluation.cli.main` in-process
(same code, no model start-up) and one case checks the real process's exit code and output.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.config import Settings
from core.evaluation.cli import EXIT_BAD_INPUT, EXIT_INTERRUPTED, main
from core.evaluation.question_sets import INPUT_COLUMNS
from core.evaluation.table import RESULT_COLUMNS, load_results
from core.generation.service import TextGenService
from core.scoring.references import parse_reference_list
from core.stores.reviews import ReviewStore, answer_key

ROOT = Path(__file__).resolve().parent.parent
SET = ROOT / "eval_sets" / "bible_knowledge.csv"
RUN_TIMEOUT_S = 240


def _environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_USE_API": "false", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"})
    # One torch thread: on a small shared test machine two spinning threads run 2-3 times
    # slower as soon as another process holds a core.
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def _start(*args: str | Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "core.evaluation", *map(str, args)],
        cwd=ROOT,
        env=_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ctrl_c_as_in_a_terminal,
    )


def _ctrl_c_as_in_a_terminal() -> None:
    """A shell's background job (as CI may run us) starts with SIGINT ignored, and Python
    then installs no KeyboardInterrupt handler; a person at a terminal has the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core.evaluation", *map(str, args)],
        cwd=ROOT, env=_environment(), capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False,
    )


def _csv_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


@pytest.mark.slow
def test_a_local_run_writes_every_column_and_prints_the_summary(tmp_path: Path) -> None:
    output, json_output = tmp_path / "results.csv", tmp_path / "results.json"

    done = _run(SET, "--limit", "3", "--max-new-tokens", "48", "--output", output, "--json", json_output)

    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    columns, rows = _csv_rows(output)
    assert columns == [*INPUT_COLUMNS, *RESULT_COLUMNS]
    assert [row["id"] for row in rows] == ["knowledge-001", "knowledge-002", "knowledge-003"]
    for row in rows:
        assert row["answer"].strip() and row["answer_source"] == "generated" and row["error"] == ""
        assert 1 <= int(row["output_tokens"]) <= 48 and row["within_token_limit"] == "True"
        assert row["finish_reason"] in ("stop", "length") and float(row["latency_ms"]) > 0
        assert row["degenerate"] in ("True", "False") and row["distinct_1"] != ""
    assert rows[0]["expected_references"] == "Luke 2:4-7; Matthew 2:1"
    assert "Rows           3: 3 answered (3 generated, 0 given), 0 errors (0.0%)" in done.stdout
    assert "Token limit    3 of 3 generated answers within 400 tokens (100.0%)" in done.stdout
    assert json_output.is_file() and len(load_results(json_output)) == 3


@pytest.mark.slow
def test_a_grounded_run_writes_the_retrieved_passages_and_whether_they_hit(tmp_path: Path) -> None:
    output = tmp_path / "grounded.csv"

    done = _run(ROOT / "eval_sets" / "pastoral_care.csv", "--limit", "3", "--max-new-tokens", "16", "--ground", "4", "--output", output)

    assert done.returncode == 0, done.stderr
    assert "grounded in 4 passage(s) each" in done.stderr
    _, rows = _csv_rows(output)
    assert [row["id"] for row in rows] == ["pastoral-001", "pastoral-002", "pastoral-003"]
    for row in rows:
        retrieved = parse_reference_list(row["retrieved_references"])
        assert len(retrieved) == 4 and len(row["retrieved_references"].split("; ")) == 4, row["retrieved_references"]
        expected = {v for c in parse_reference_list(row["expected_references"]) for v in c.verse_ids}
        assert row["retrieval_hit"] == str(any(expected & set(c.verse_ids) for c in retrieved))
    assert "Retrieval      hit rate" in done.stdout and "over 3 rows with expected references" in done.stdout


@pytest.mark.slow
def test_ctrl_c_saves_finished_rows_and_resume_finishes_the_run(tmp_path: Path) -> None:
    output = tmp_path / "results.csv"
    process = _start_three_rows_one_by_one(output)
    _wait_for_a_saved_row(process, output)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=RUN_TIMEOUT_S)

    assert process.returncode == EXIT_INTERRUPTED, stderr
    assert "Traceback" not in stderr
    saved = [row["id"] for row in _csv_rows(output)[1]]
    assert 1 <= len(saved) < 3 and saved == ["knowledge-001", "knowledge-002"][: len(saved)]
    assert f"Stopped with Ctrl-C; {len(saved)} of 3 rows saved to {output}. Add --resume to continue." in stderr

    resumed = _run(SET, "--limit", "3", "--max-new-tokens", "48", "--temperature", "0", "--output", output, "--resume")

    assert resumed.returncode == 0, resumed.stderr
    assert f"Resumed: {len(saved)} row(s) were already answered in {output}." in resumed.stderr
    assert [row["id"] for row in _csv_rows(output)[1]] == ["knowledge-001", "knowledge-002", "knowledge-003"]


@pytest.mark.slow
def test_a_run_killed_outright_keeps_its_finished_rows_and_resumes(tmp_path: Path) -> None:
    output = tmp_path / "results.csv"
    process = _start_three_rows_one_by_one(output)
    _wait_for_a_saved_row(process, output)
    process.kill()  # SIGKILL: no handler runs, nothing is flushed on the way out
    process.communicate(timeout=RUN_TIMEOUT_S)

    saved = [row["id"] for row in _csv_rows(output)[1]]
    assert 1 <= len(saved) < 3 and saved == ["knowledge-001", "knowledge-002"][: len(saved)]
    resumed = _run(SET, "--limit", "3", "--max-new-tokens", "48", "--temperature", "0", "--output", output, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert [row["id"] for row in _csv_rows(output)[1]] == ["knowledge-001", "knowledge-002", "knowledge-003"]


def _start_three_rows_one_by_one(output: Path) -> subprocess.Popen[str]:
    return _start(SET, "--limit", "3", "--batch-size", "1", "--max-new-tokens", "48", "--temperature", "0", "--output", output)


def _wait_for_a_saved_row(process: subprocess.Popen[str], output: Path) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        if output.is_file() and len(_csv_rows(output)[1]) >= 1:
            return
        time.sleep(0.05)


def test_bad_input_exits_with_2_and_one_plain_message(tmp_path: Path) -> None:
    bad = tmp_path / "set.csv"
    bad.write_bytes(b"id,question\nq1,What is grace?\nq2,\n")

    done = _run(bad, "--output", tmp_path / "results.csv")

    assert done.returncode == EXIT_BAD_INPUT
    assert done.stderr == "error: set.csv, row 3, column B (question): the question is empty. Write a question or delete the row.\n"
    assert done.stdout == "" and not (tmp_path / "results.csv").exists()


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        pytest.param(
            b"question,expected_references\nWhat is grace?,Ephesians 2:88\n", [],
            "error: set.csv, row 2, column B (expected_references): the expected reference 'Ephesians 2:88' in "
            "'Ephesians 2:88' does not exist: verse 88 is past the end of Ephesians 2, which has 22 verses.",
            id="bad-reference",
        ),
        pytest.param(b"question\nWhat is grace?\n", ["--temperature", "5"], "error: temperature=5.0 is out of range. Allowed: from 0 to 2.", id="temperature"),
        pytest.param(b"question\nWhat is grace?\n", ["--top-p", "0"], "error: top_p=0.0 would allow no token at all. Allowed: more than 0 up to 1.", id="top-p"),
        pytest.param(
            b"question\nWhat is grace?\n", ["--mode", "api"],
            "error: API mode is not available here (available: local). API mode needs HF_TOKEN or HF_BASE_URL.",
            id="api-without-endpoint",
        ),
        pytest.param(None, [], "error: set.csv: there is no such file", id="missing-file"),
    ],
)
def test_bad_input_table(tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes | None, args: list[str], message: str) -> None:
    question_set = tmp_path / "set.csv"
    if content is not None:
        question_set.write_bytes(content)

    status = main([str(question_set), "--output", str(tmp_path / "out.csv"), *args], service=TextGenService(Settings(use_api=False)))

    assert status == EXIT_BAD_INPUT
    assert capsys.readouterr().err.splitlines()[-1].startswith(message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--limit", "0"], "argument --limit: '0' must be at least 1"),
        (["--batch-size", "two"], "argument --batch-size: 'two' is not a whole number"),
        (["--temperature", "warm"], "argument --temperature: 'warm' is not a number"),
        (["--mode", "cloud"], "argument --mode: invalid choice: 'cloud'"),
        (["--ground", "21"], "argument --ground: '21' must be from 0 (off) to 20"),
        (["--ground", "some"], "argument --ground: 'some' is not a whole number"),  # the choices' quoting varies by Python version
    ],
)
def test_bad_arguments_exit_with_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as caught:
        main([str(SET), "--output", str(tmp_path / "out.csv"), *args])

    assert caught.value.code == EXIT_BAD_INPUT
    assert capsys.readouterr().err.splitlines()[-1].startswith(f"python -m core.evaluation: error: {message}")


def test_the_summary_shows_the_reviews_made_of_these_answers(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Ratings made in the app (here: in its store) are in the CLI's summary and JSON, as in the Evaluate tab."""
    question_set = tmp_path / "given.csv"
    answer = "By grace are ye saved (Ephesians 2:8); see also Romans 6:23 and Hezekiah 3:1."
    question_set.write_text(f'question,expected_references,answer\nWhat is grace?,Ephesians 2:8,"{answer}"\n', encoding="utf-8")
    settings = Settings(use_api=False, data_dir=tmp_path / "data")
    store = ReviewStore(settings.data_dir)
    store.rate("Ruth", answer_key("What is grace?", answer), "Ephesians 2:8", 2)
    store.rate("Ruth", answer_key("What is grace?", answer), "Romans 6:23", 2)
    status = main([str(question_set), "--output", str(tmp_path / "out.csv"), "--json", str(tmp_path / "out.json")], service=TextGenService(settings))
    assert status == 0
    # 2 supported of 3: Hezekiah 3:1 does not exist and counts as not accurate
    assert "Manual review  citation accuracy 66.7%" in capsys.readouterr().out
    assert json.loads((tmp_path / "out.json").read_text())["summary"]["manual_citation_accuracy"] == pytest.approx(2 / 3)
