"""The Hugging Face token is used, and never shown: not in output, files, logs, errors or the UI.

A known fake token is set; an endpoint of the tests' own echoes it back in an error, as
misconfigured proxies do; then everything a person or an attacker could read is searched.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_server import FaultServer, Ok, Status

from core import Settings, TextGenService, reset_textgen_service
from ui.status import describe_model

TOKEN = "hf_FAKE_SECRET_for_grep_0123456789abcdef"
ROOT = Path(__file__).resolve().parent.parent
SET = ROOT / "eval_sets" / "adversarial.csv"


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as fault_server:
        yield fault_server


def test_a_batch_run_writes_the_token_nowhere(server: FaultServer, tmp_path: Path) -> None:
    server.script([Status(401, echo_authorization=True)], then=Ok("Grace is the free favour of God."))
    results_csv, results_json = tmp_path / "results.csv", tmp_path / "results.json"
    env = {
        **os.environ, "HF_BASE_URL": server.base_url, "HF_TOKEN": TOKEN, "HF_GENERATION_MODEL": "test-model",
        "HF_LOG_PROMPTS": "true", "HF_RETRY_BACKOFF": "0.01",
    }
    done = subprocess.run(
        [sys.executable, "-m", "core.evaluation", SET, "--limit", "3", "--concurrency", "1", "--output", results_csv, "--json", results_json],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False,
    )

    assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"  # the token was really in use
    assert "refused the token (401)" in results_csv.read_text(encoding="utf-8-sig")  # the failed row says why
    for name, text in [("stdout", done.stdout), ("stderr and logs", done.stderr), ("CSV", results_csv.read_text()), ("JSON", results_json.read_text())]:
        assert TOKEN not in text, f"the token is in the {name}"


def test_the_status_panel_shows_the_endpoint_not_the_token(server: FaultServer) -> None:
    service = TextGenService(Settings(token=TOKEN, base_url=f"http://user:{TOKEN}@127.0.0.1:{server.port}/v1", model="test-model"))
    reset_textgen_service(service)
    try:
        shown = describe_model(None) + repr(service.get_model_info()) + repr(service.settings)
    finally:
        reset_textgen_service()
    assert TOKEN not in shown and f"127.0.0.1:{server.port}/v1" in shown
