"""The launched app through its real HTTP API (gradio_client), as Spaces would serve it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator

import pytest
from app_process import RunningApp, free_port, start_app
from fault_server import FaultServer, Gathered
from gradio_client import Client
from prometheus_client.parser import text_string_to_metric_families

#: The issue's floor for API-mode chats answered at once through the app's queue.
CONCURRENT_CHATS = 32


@pytest.fixture(scope="session")
def dead_endpoint_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    """The app in API mode pointed at a port where nothing listens."""
    app = start_app(
        {
            "HF_BASE_URL": f"http://127.0.0.1:{free_port()}/v1",
            "HF_TOKEN": "hf_FAKE_TOKEN_app_tests_0123456789",
            "HF_RETRY_ATTEMPTS": "2",
            "HF_RETRY_BACKOFF": "0.1",
            "SCRIBES_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        }
    )
    yield app
    app.stop()


def test_a_chat_answer_from_the_embedded_model(local_app: RunningApp) -> None:
    client = Client(local_app.url, verbose=False)
    answer, details, passages = client.predict("What does John 3:16 say?", "Answer in one sentence.", "", api_name="/chat")
    assert isinstance(answer, str) and len(answer.split()) >= 3
    assert "tokens" in details and "tokens/s" in details
    assert "not grounded" in passages


def test_a_grounded_chat_gives_the_model_the_passages_it_shows(local_app: RunningApp) -> None:
    client = Client(local_app.url, verbose=False)
    _answer, _details, passages = client.predict("For God so loved the world", "", "", True, 3, api_name="/chat")
    assert "3 passages given to the model" in passages and "**John 3:" in passages
    sent = [json.loads(line) for line in local_app.log_path.read_text().splitlines() if line.startswith("{") and '"prompt"' in line][-1]
    system = next(m["content"] for m in sent["prompt"] if m["role"] == "system")
    assert "For God so loved the world" in system  # John 3:16's words reached the model with the question


def test_an_unreachable_endpoint_gives_a_readable_message(dead_endpoint_app: RunningApp) -> None:
    client = Client(dead_endpoint_app.url, verbose=False)
    with pytest.raises(Exception) as caught:
        client.predict("What is grace?", "", "", api_name="/chat")
    message = str(caught.value)
    assert "Could not reach the endpoint at http://127.0.0.1" in message and "tried 2 times" in message
    assert "Traceback" not in message and "hf_FAKE_TOKEN" not in message
    assert "hf_FAKE_TOKEN" not in dead_endpoint_app.log_path.read_text()


def column(prefix: str, temperature: float, top_p: float, top_k: int, repetition_penalty: float, max_new_tokens: int, passages: int = 0) -> dict[str, float]:
    """One Tune column's inputs, as the /compare API names them."""
    values = {"temperature": temperature, "top_p": top_p, "top_k": top_k, "repetition_penalty": repetition_penalty,
              "max_new_tokens": max_new_tokens, "passages": passages}
    return {f"{prefix}_{name}": value for name, value in values.items()}


def test_a_compare_run_gives_one_answer_per_setting(local_app: RunningApp) -> None:
    client = Client(local_app.url, verbose=False)
    columns = {**column("a", 0.0, 1.0, 0, 1.1, 12), **column("b", 0.9, 0.9, 40, 1.0, 12), **column("c", 1.0, 0.95, 0, 1.05, 12)}
    outputs = client.predict(count=3, prompt="What is grace?", system_prompt="", seed=42, stop="", **columns, api_name="/compare")
    answers, figures = outputs[:4], outputs[4:]
    assert all(a.strip() for a in answers[:3]) and answers[3] == ""  # three settings asked for, three answers
    assert all("tokens/s" in f and "Citations:" in f for f in figures[:3]) and figures[3] == ""


def test_a_compare_with_and_without_passages_under_one_seed(local_app: RunningApp) -> None:
    """Tune's per-column grounding: the same settings and seed, one column given Scripture passages."""
    client = Client(local_app.url, verbose=False)
    columns = {**column("a", 0.7, 0.9, 0, 1.1, 16, passages=3), **column("b", 0.7, 0.9, 0, 1.1, 16)}
    before = len(local_app.log_path.read_text().splitlines())
    outputs = client.predict(count=2, prompt="For God so loved the world", system_prompt="", seed=5, stop="", **columns, api_name="/compare")
    grounded, plain = outputs[4], outputs[5]
    assert "Grounded in 3 passages:" in grounded and "John 3:" in grounded
    assert "Grounded" not in plain
    logged = [json.loads(line) for line in local_app.log_path.read_text().splitlines()[before:] if line.startswith("{") and '"generation"' in line]
    prompt_tokens = sorted(record["prompt_tokens"] for record in logged[-2:])
    assert prompt_tokens[1] > prompt_tokens[0] + 50  # the grounded column's prompt holds the three passages


def test_api_mode_chats_run_at_once(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The queue lets many API-mode chats wait on the endpoint together, not one by one."""
    with FaultServer() as server:
        server.script([], then=Gathered(count=CONCURRENT_CHATS))
        app = start_app(
            {
                "HF_BASE_URL": server.base_url,
                "HF_GENERATION_MODEL": "test-model",
                "HF_TOKEN": "hf_FAKE_TOKEN_app_tests_0123456789",
                "SCRIBES_DATA_DIR": str(tmp_path_factory.mktemp("data")),
            }
        )
        try:
            client = Client(app.url, verbose=False)
            jobs = [client.submit(f"Question {i}: what is grace?", "", "", api_name="/chat") for i in range(CONCURRENT_CHATS)]
            answers = [job.result(timeout=120) for job in jobs]
        finally:
            app.stop()
        outcomes = [r.outcome for r in server.requests]
    assert all(answer.strip() for answer, _details, _passages in answers)
    together = outcomes.count("answered together")
    assert together == CONCURRENT_CHATS, f"only {together} of {CONCURRENT_CHATS} chats were held by the endpoint at once"


def test_metrics_count_the_answers_and_show_the_queue(local_app: RunningApp) -> None:
    Client(local_app.url, verbose=False).predict("What is hope?", "", "", api_name="/chat")
    with urllib.request.urlopen(f"{local_app.url}metrics", timeout=10) as response:
        metrics = {
            sample.name + repr(sorted(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.read().decode())
            for sample in family.samples
        }
    assert metrics["scribes_generation_seconds_count[('backend', 'local'), ('outcome', 'ok')]"] >= 1
    assert metrics["scribes_output_tokens_count[('backend', 'local')]"] >= 1
    assert metrics["scribes_time_to_first_token_seconds_count[('backend', 'local')]"] >= 1
    assert metrics["scribes_queue_waiting[]"] == 0 and "scribes_queue_active[]" in metrics
