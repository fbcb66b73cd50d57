"""Chat, Tune and a batch run driving the one local model at once, through the running app.

The local model serialises its generations behind a lock, so nothing may crash, deadlock
or mix up answers, and a seeded comparison must give exactly the text it gives alone.
The answer cache is off in this app, so "the same text" is generated twice, not recalled.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from app_process import REPO, RunningApp, start_app
from gradio_client import Client

#: Columns A-D of the Tune tab: temperature, top_p, top_k, repetition penalty, max new tokens.
#: Tune's columns A and B, as the /compare API names their sliders.
SAMPLED_COLUMNS = {
    "a_temperature": 0.9, "a_top_p": 0.9, "a_top_k": 0, "a_repetition_penalty": 1.1, "a_max_new_tokens": 24, "a_passages": 0,
    "b_temperature": 0.7, "b_top_p": 0.95, "b_top_k": 40, "b_repetition_penalty": 1.05, "b_max_new_tokens": 24, "b_passages": 0,
}
SEED = 7
QUESTION_SET = str(REPO / "eval_sets" / "bible_knowledge.csv")
TIMEOUT_S = 600


@pytest.fixture(scope="module")
def uncached_app(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> Iterator[RunningApp]:
    app = start_app(
        {"HF_USE_API": "false", "HF_CACHE_SIZE": "0", "SCRIBES_CACHE_DIR": str(cache_dir), "SCRIBES_DATA_DIR": str(tmp_path_factory.mktemp("data"))}
    )
    yield app
    app.stop()


def test_the_model_loads_at_start_before_anyone_asks(uncached_app: RunningApp) -> None:
    """The first of this module's tests: no question has been sent, yet the model is loaded."""
    deadline = time.monotonic() + 120
    while '"event": "model_loaded"' not in (log := uncached_app.log_path.read_text(errors="replace")) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert '"event": "model_loaded"' in log, uncached_app.log_tail()
    assert '"event": "generation"' not in log


def _compare(client: Client):  # type: ignore[no-untyped-def]
    return client.submit(count=2, prompt="What is faith?", system_prompt="", seed=SEED, stop="", **SAMPLED_COLUMNS, api_name="/compare")


def test_chat_tune_and_a_batch_run_at_once(uncached_app: RunningApp) -> None:
    client = Client(uncached_app.url, verbose=False)
    alone = _compare(client).result(timeout=TIMEOUT_S)

    chat = client.submit("Who was Ruth?", "", "", api_name="/chat")
    evaluation = client.submit(QUESTION_SET, None, 3, 1, False, 0.2, 0.9, 1.1, 16, api_name="/evaluate")
    together = _compare(client)
    chat_answer, chat_details, _passages = chat.result(timeout=TIMEOUT_S)
    evaluation_status, *_ = evaluation.result(timeout=TIMEOUT_S)
    compared = together.result(timeout=TIMEOUT_S)

    assert compared[:2] == alone[:2] and all(text.strip() for text in alone[:2])
    assert chat_answer.strip() and "tokens/s" in chat_details
    assert evaluation_status.startswith("Finished: 3 of 3 rows")
    assert "Traceback" not in uncached_app.log_tail(400)
