"""Faults of the API endpoint as a person meets them: through the running app's chat.

One app in API mode talks to :class:`fault_server.FaultServer`, scripted per test. Every
fault ends in an answer after a retry or in a plain sentence, in bounded time, with no
token in sight; and the next question is answered, so the chat stays usable.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from app_process import RunningApp, start_app
from fault_server import Cut, FaultServer, MalformedStream, Ok, Scenario, Slow, Status
from gradio_client import Client, handle_file

TOKEN = "hf_FAKE_SECRET_app_faults_0123456789"
ANSWER = "Grace is the free favour of God."
ATTEMPTS = 3
TIMEOUT_S = 2.0
#: Three attempts that each wait out the timeout, the backoffs, and a slow CI machine.
BOUND_S = ATTEMPTS * TIMEOUT_S + 10


@pytest.fixture(scope="module")
def server() -> Iterator[FaultServer]:
    with FaultServer() as fault_server:
        yield fault_server


@pytest.fixture(scope="module")
def app(server: FaultServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningApp]:
    running = start_app(
        {
            "HF_BASE_URL": server.base_url,
            "HF_GENERATION_MODEL": "test-model",
            "HF_TOKEN": TOKEN,
            "HF_RETRY_ATTEMPTS": str(ATTEMPTS),
            "HF_RETRY_BACKOFF": "0.05",
            "HF_RETRY_MAX_WAIT": "1",
            "HF_GENERATION_TIMEOUT": str(TIMEOUT_S),
            "SCRIBES_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        }
    )
    yield running
    running.stop()
    assert TOKEN not in running.log_path.read_text(errors="replace"), "the token reached the app's log"


@pytest.fixture(scope="module")
def client(app: RunningApp) -> Client:
    return Client(app.url, verbose=False)


def _chat(client: Client, question: str = "What is grace?") -> tuple[str, str]:
    answer, details, _passages = client.predict(question, "", "", api_name="/chat")
    return answer, details


RECOVERED = {
    "429 with Retry-After": [Status(429, headers={"Retry-After": "1"})],
    "429 without Retry-After": [Status(429)],
    "503 model loading, then success": [Status(503, message="Model is currently loading")],
    "500 twice, then success": [Status(500)] * 2,
    "broken before the first word": [Cut(text="", abrupt=True)],
}


@pytest.mark.parametrize("faults", RECOVERED.values(), ids=RECOVERED.keys())
def test_a_transient_fault_is_retried_into_an_answer(server: FaultServer, client: Client, faults: list[Scenario]) -> None:
    server.script([*faults, Ok(ANSWER)])
    answer, details = _chat(client)
    assert answer == ANSWER and "tokens/s" in details


REFUSED = {
    "500 three times": ([Status(500)] * ATTEMPTS, "failed with a server error (500)"),
    "401": ([Status(401, echo_authorization=True)], "refused the token (401)"),
    "403": ([Status(403)], "refused access (403)"),
    "404": ([Status(404)], "has no model test-model (404)"),
    "422": ([Status(422)] * 2, "could not process the request (422)"),  # the second try drops extra fields
    "malformed JSON": ([MalformedStream()], "sent a reply that is not valid chat-completion data"),
    "slower than the timeout": ([Slow(delay_s=TIMEOUT_S + 1)] * ATTEMPTS, f"did not answer within {TIMEOUT_S:g} seconds"),
}


@pytest.mark.parametrize(("faults", "phrase"), REFUSED.values(), ids=REFUSED.keys())
def test_a_lasting_fault_is_a_plain_sentence_and_the_chat_goes_on(
    server: FaultServer, client: Client, app: RunningApp, faults: list[Scenario], phrase: str
) -> None:
    server.script(faults, then=Ok(ANSWER))
    started = time.monotonic()
    with pytest.raises(Exception) as caught:
        _chat(client)
    elapsed = time.monotonic() - started
    message = str(caught.value)
    assert phrase in message
    assert "Traceback" not in message and "File \"" not in message and TOKEN not in message
    assert elapsed < BOUND_S
    assert _chat(client, "And what is mercy?")[0] == ANSWER


def test_a_stream_cut_part_way_keeps_the_text_and_says_so(server: FaultServer, client: Client) -> None:
    server.script([Cut(text="Grace is the free", abrupt=True)], then=Ok(ANSWER))
    answer, details = _chat(client)
    assert answer.startswith("Grace is the free") and "⚠️" in details
    assert len(server.requests) >= 1 and _chat(client)[0] == ANSWER


def test_words_faster_than_the_eye_are_drawn_together_and_none_is_lost(server: FaultServer, client: Client) -> None:
    """Every redraw of the answer costs the app work, for every visitor at once: a fast
    endpoint's words are drawn in a few updates, a slow one's word by word."""
    fast = " ".join(f"word{i}" for i in range(200))
    slow = "Grace is the free favour of God."
    server.script([Ok(fast), Ok(slow, word_interval_s=0.2)])

    answers = [[output[0] for output in _streamed(client, question)] for question in ("What is grace?", "What is mercy?")]

    assert answers[0][-1] == fast and answers[1][-1] == slow
    assert len(answers[0]) < 20, f"{len(answers[0])} redraws for 200 words sent back to back"
    drawn = [text for text in dict.fromkeys(answers[1]) if text]
    assert len(drawn) == len(slow.split()), drawn  # each word as it came, the first at once


def _streamed(client: Client, question: str) -> list[tuple[str, str, str]]:
    job = client.submit(question, "", "", api_name="/chat")
    job.result(timeout=BOUND_S)
    return job.outputs()


def test_only_listed_sets_and_uploads_are_read(client: Client, app: RunningApp, tmp_path: Path) -> None:
    """A question set comes from the list or an upload; a path sent to the API is not opened."""
    with pytest.raises(Exception) as caught:
        client.predict("/etc/passwd", None, 1, 1, True, 0.2, 0.9, 1.1, 16, api_name="/evaluate")
    assert "root:" not in str(caught.value)
    outside = tmp_path / "secret.csv"
    outside.write_text("question\nWhat is the secret?\n", encoding="utf-8")
    # raw HTTP, as an attacker would send it: gradio_client would upload the file itself
    file_data = {"path": str(outside), "meta": {"_type": "gradio.FileData"}}
    events = _call_raw(app, "evaluate", [None, file_data, 1, 1, True, 0.2, 0.9, 1.1, 16, 0])  # the last: no grounding
    assert "event: error" in events and "What is the secret?" not in events
    assert "because it was not uploaded by a user" in app.log_tail(200)  # Gradio refused it before our code ran


def _call_raw(app: RunningApp, api_name: str, data: list[object]) -> str:
    """POST to Gradio's HTTP API and read the event stream of the call to its end."""
    request = urllib.request.Request(
        f"{app.url}gradio_api/call/{api_name}", data=json.dumps({"data": data}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        event_id = json.load(response)["event_id"]
    with urllib.request.urlopen(f"{app.url}gradio_api/call/{api_name}/{event_id}", timeout=60) as response:
        return response.read().decode()


def test_an_upload_over_the_limit_is_refused(client: Client, tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    big.write_bytes(b"question\n" + b"What is grace?\n" * 800_000)  # ~12 MB, over the app's 10 MB
    with pytest.raises(Exception) as caught:
        client.predict(None, handle_file(str(big)), 1, 1, True, 0.2, 0.9, 1.1, 16, api_name="/evaluate")
    assert "Traceback" not in str(caught.value)


@pytest.mark.parametrize("question", ["", "   \n  "], ids=["empty", "whitespace"])
def test_an_empty_question_gets_a_plain_message(client: Client, question: str) -> None:
    with pytest.raises(Exception, match="The question is empty"):
        _chat(client, question)
