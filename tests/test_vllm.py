"""API mode against a real vLLM server on 127.0.0.1: what people who outgrow one CPU point HF_BASE_URL at.

Not in the default run (vLLM needs its own 3.5 GB environment and minutes to start): run
`./scripts/setup_vllm.sh` once, then `.venv/bin/python -m pytest -m vllm`.
Without that environment these tests fail and say so; they do not skip.

The service is configured as a person would configure it, from environment variables
(HF_BASE_URL, HF_GENERATION_MODEL, ...), and the batch run is the real command line.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai_server import RunningServer
from test_api_backend import (  # what holds for any OpenAI-compatible server, run here against vLLM
    QUESTION,
    test_an_answer_with_usage_counts_from_the_server,
    test_deterministic_api_requests_hit_the_cache,
    test_streaming_pieces_add_up_and_usage_accumulates,
)
from vllm_server import ROOT, VllmNotInstalled, app_environment, start_vllm_server, vllm_python

from core.config import Settings
from core.generation.model_files import EMBEDDED_NAME
from core.generation.service import TextGenService

pytestmark = pytest.mark.vllm

__all__ = [  # collected here too, with this module's mark and its api_service
    "test_an_answer_with_usage_counts_from_the_server",
    "test_deterministic_api_requests_hit_the_cache",
    "test_streaming_pieces_add_up_and_usage_accumulates",
]

SET = ROOT / "eval_sets" / "bible_knowledge.csv"
BATCH_QUESTIONS = 16
CONCURRENCY = 8


@pytest.fixture(scope="module")
def vllm(request: pytest.FixtureRequest) -> Iterator[RunningServer]:
    """vLLM serving the embedded model, converted to a transformers folder, as `SmolLM2-135M-Instruct`."""
    try:
        vllm_python()
    except VllmNotInstalled as missing:
        not_installed = str(missing)
    else:
        not_installed = ""
    if not_installed:  # a failure, not a skip: asking for -m vllm means wanting these tests run
        pytest.fail(not_installed, pytrace=False)
    # asked for only now, so that a missing vLLM is said before the local model loads
    server = start_vllm_server(request.getfixturevalue("converted_model_dir"), EMBEDDED_NAME)
    yield server
    server.stop()


@pytest.fixture
def api_service(vllm: RunningServer, tmp_path: Path) -> TextGenService:
    """The service as a person configures it for their vLLM server; replaces conftest's, so the
    imported checks of test_api_backend run against vLLM too."""
    return TextGenService(Settings.from_env(environ=app_environment(vllm, tmp_path), dotenv_path=None))


def test_a_request_for_1000_tokens_gets_at_most_400(api_service: TextGenService, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="scribes.textgen")
    assert api_service.sent_parameters(max_new_tokens=1000)["max_tokens"] == 400
    result = api_service.chat("Write the numbers from 1 to 1000, separated by commas.", max_new_tokens=1000, temperature=0)
    assert result.params.max_new_tokens == 400 and result.requested_max_new_tokens == 1000
    assert result.output_tokens == 400 and result.finish_reason == "length"  # the server stopped it at 400
    assert '"clamped_from": 1000' in caplog.text


def test_repetition_penalty_and_top_k_are_accepted_and_take_effect(api_service: TextGenService, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="scribes.textgen")
    sent = api_service.sent_parameters(repetition_penalty=1.5, top_k=1)
    assert sent["extra_body"] == {"repetition_penalty": 1.5, "top_k": 1}

    def answer(**params: object) -> str:
        result = api_service.chat(QUESTION, **{"max_new_tokens": 24, "repetition_penalty": 1.0, **params})
        assert result.attempts == 1
        return result.text

    greedy = answer(temperature=0)
    # top_k=1 leaves one candidate per step, so hot sampling under any seed is greedy decoding.
    # Only 24 tokens: vLLM keeps every token tied with the k-th, and in bfloat16 two next
    # tokens of this answer tie a few tokens later, where the seeds would part.
    hot_top1 = {answer(temperature=1.5, top_k=1, seed=seed) for seed in (1, 2, 3)}
    hot = {answer(temperature=1.5, seed=seed) for seed in (1, 2, 3)}
    assert hot_top1 == {greedy}
    assert len(hot) > 1  # without top_k, the same seeds do part
    assert answer(temperature=0, repetition_penalty=2.0) != greedy
    assert "extra_body" in api_service.sent_parameters()  # never turned off
    assert "refused repetition_penalty" not in caplog.text


def test_a_batch_evaluation_at_concurrency_8_from_the_command_line(vllm: RunningServer, tmp_path: Path) -> None:
    running = RunningRequests(vllm)
    output, summary = tmp_path / "results.csv", tmp_path / "results.json"
    with running:
        finished = subprocess.run(
            [sys.executable, "-m", "core.evaluation", str(SET), "-o", str(output), "--json", str(summary),
             "--limit", str(BATCH_QUESTIONS), "--concurrency", str(CONCURRENCY), "--max-new-tokens", "64", "--temperature", "0"],
            cwd=ROOT, env={**os.environ, **app_environment(vllm, tmp_path)}, capture_output=True, text=True, timeout=600, check=False,
        )  # fmt: skip
    assert finished.returncode == 0, finished.stderr[-3000:]
    results = json.loads(summary.read_text())
    assert results["run"]["mode"] == "api" and results["run"]["status"] == "finished"
    rows = results["rows"]
    assert len(rows) == BATCH_QUESTIONS and not [row["error"] for row in rows if row["error"]]
    assert all(row["answer"].strip() and 0 < row["output_tokens"] <= 64 for row in rows)
    assert all(row["answer_source"] == "generated" for row in rows)
    # vLLM really decoded 8 at once, and never more than asked for
    assert running.most == CONCURRENCY, running.seen


class RunningRequests:
    """Samples vLLM's own gauge of requests being decoded, on a thread, while the block runs."""

    _GAUGE = re.compile(r"^vllm:num_requests_running\{[^}]*\} ([0-9.]+)$", re.MULTILINE)

    def __init__(self, server: RunningServer):
        self._url = f"{server.root_url}/metrics"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.seen: list[int] = []

    @property
    def most(self) -> int:
        return max(self.seen, default=0)

    def __enter__(self) -> RunningRequests:  # noqa: PYI034 (typing.Self needs Python 3.11)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _sample(self) -> None:
        while not self._stop.wait(0.05):
            with urllib.request.urlopen(self._url, timeout=5) as response:
                found = self._GAUGE.search(response.read().decode())
            if found:
                self.seen.append(int(float(found.group(1))))
