"""The API backend against a real endpoint that fails in every way we know of.

Each test starts :class:`fault_server.FaultServer` on 127.0.0.1, scripts what it
answers, and calls the service the way the app does (``service.chat`` and
``service.stream``). The tests check what the person using the app would see (which error,
which message, what text they already have), how many requests reached the server, how
long it took, and that the token never shows up in an error, a log line or the model info.
"""

from __future__ import annotations

import asyncio
import faulthandler
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.utils import formatdate

import huggingface_hub.constants
import huggingface_hub.errors
import pytest
from fault_server import (  # pytest puts tests/ on sys.path, as conftest's openai_server import relies on
    Cut,
    ErrorEvent,
    FaultServer,
    Flood,
    HtmlPage,
    MalformedStream,
    Ok,
    Scenario,
    Slow,
    Status,
    Trickle,
    refused_port,
)

from core.config import Settings
from core.errors import EndpointError, EndpointUnreachableError, GenerationError, StreamInterruptedError
from core.generation.params import HARD_OUTPUT_TOKEN_LIMIT
from core.generation.service import TextGenService
from core.generation.types import GenerationResult

TOKEN = "hf_FAKE_SECRET_TOKEN_1234567890"
MODEL = "test-model"
PROMPT = "What is grace?"
ANSWER = "Grace is God's favour, freely given."

TIMEOUT_S = 3.0
#: For the tests that must wait out a timeout: as short as a real timeout can usefully be.
SHORT_TIMEOUT_S = 1.0
#: Long enough for a few trickled words to reach the caller before the deadline, short for the run.
TRICKLE_TIMEOUT_S = 2.0
BACKOFF_S = 0.05
MAX_WAIT_S = 2.0
ATTEMPTS = 3
#: Slack on every time bound, for a loaded CI machine; small next to the waits being checked.
MARGIN_S = 1.5
#: The server's and the client's clocks are both time.monotonic(), but sleeps may end a little early.
CLOCK_SLACK_S = 0.1
#: No single test may run longer than this; past it the whole run is stopped with tracebacks.
HARD_LIMIT_S = 45.0
#: How the app calls: a whole answer, a stream on a thread (Tune, evaluation), a stream on the event loop (Chat).
STYLES = ("chat", "stream", "loop")
LOCAL_HOSTS = ("127.0.0.1", "localhost")


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def hard_time_limit() -> Iterator[None]:
    """The last line of defence against a hang: dump every thread's stack and exit."""
    faulthandler.dump_traceback_later(HARD_LIMIT_S, exit=True)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(autouse=True)
def no_leftover_threads() -> Iterator[None]:
    """Neither the server nor the client may leave a thread running after a test."""
    before = set(threading.enumerate())
    yield
    left = [t for t in threading.enumerate() if t not in before and (not t.daemon or t.name.startswith("fault-server"))]
    assert not left, f"threads left running: {[t.name for t in left]}"


@pytest.fixture(autouse=True)
def only_the_fault_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Let the client reach 127.0.0.1, and nothing else.

    huggingface_hub reads HF_HUB_OFFLINE once, at import, and then blocks every request
    made through its session, a local endpoint's included (see
    test_offline_mode_names_the_switch), so it is turned off here whatever the shell says.
    Its telemetry would then look up huggingface.co on the first request (the agent
    registry behind the User-Agent header), so that is turned off too, and any other name
    lookup fails the test.
    """
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_TELEMETRY", True)
    outside: list[str] = []
    real_getaddrinfo = socket.getaddrinfo

    def local_only(host: object, *args: object, **kwargs: object) -> object:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name not in LOCAL_HOSTS:
            outside.append(name)
            raise socket.gaierror(socket.EAI_NONAME, f"{name}: the fault tests reach only 127.0.0.1")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "getaddrinfo", local_only)
    yield
    assert not outside, f"a test tried to reach {sorted(set(outside))}"


@pytest.fixture
def server() -> Iterator[FaultServer]:
    """A fresh server per test, so its request log and its threads belong to that test alone."""
    with FaultServer() as fault_server:
        yield fault_server
    assert not fault_server.handler_errors, "the fault server itself failed:\n" + "\n".join(fault_server.handler_errors)


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Everything logged, at DEBUG, by the core, the client library and anything else."""
    caplog.set_level(logging.DEBUG)
    for name in ("scribes.textgen", "huggingface_hub", "httpx2", "httpcore2"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture(params=STYLES)
def style(request: pytest.FixtureRequest) -> str:
    return request.param


# --- helpers --------------------------------------------------------------------------------------


def make_service(base_url: str, **overrides: object) -> TextGenService:
    values: dict[str, object] = {
        "base_url": base_url,
        "model": MODEL,
        "token": TOKEN,
        "retry_backoff_s": BACKOFF_S,
        "retry_max_wait_s": MAX_WAIT_S,
        "timeout_s": TIMEOUT_S,
        "cache_size": 0,
        **overrides,
    }
    return TextGenService(Settings(**values))  # type: ignore[arg-type]


@dataclass
class Call:
    """How one call through the service ended: its result or its error, and what the caller got."""

    pieces: list[str] = field(default_factory=list)  # text already handed to the caller
    result: GenerationResult | None = None
    error: GenerationError | None = None
    elapsed_s: float = 0.0

    @property
    def text(self) -> str:
        return self.result.text if self.result is not None else "".join(self.pieces)


def call(service: TextGenService, style: str, **params: object) -> Call:
    """Ask ``PROMPT`` through ``service.chat``, ``service.stream`` or ``service.astream_chat``; keep whatever comes back."""
    outcome = Call()
    started = time.monotonic()
    try:
        if style == "chat":
            outcome.result = service.chat(PROMPT, **params)
        elif style == "stream":
            for piece in service.stream(PROMPT, **params):
                outcome.pieces.append(piece)
        else:
            asyncio.run(_read_on_a_loop(service, outcome, **params))
    except GenerationError as error:
        outcome.error = error
    outcome.elapsed_s = time.monotonic() - started
    return outcome


async def _read_on_a_loop(service: TextGenService, outcome: Call, **params: object) -> None:
    async for update in service.astream_chat(PROMPT, **params):
        if update.delta:
            outcome.pieces.append(update.delta)
        outcome.result = update.result


def waits_before(attempt: int, retry_after_s: float = 0.0) -> float:
    """Total backoff before ``attempt`` (1-based), as RetryPolicy computes it."""
    return sum(min(max(BACKOFF_S * 2 ** (n - 1), retry_after_s), MAX_WAIT_S) for n in range(1, attempt))


def assert_no_secret(outcome: Call, logs: pytest.LogCaptureFixture, service: TextGenService) -> None:
    """The token is in no error text, no log line and no model info."""
    assert outcome.error is not None
    assert TOKEN not in str(outcome.error)
    assert TOKEN not in repr(outcome.error)
    assert TOKEN not in getattr(outcome.error, "partial_text", "")
    assert TOKEN not in logs.text
    assert all(TOKEN not in record.getMessage() for record in logs.records)
    assert TOKEN not in json.dumps(service.get_model_info(), default=str)


def retry_warnings(logs: pytest.LogCaptureFixture) -> list[str]:
    core = [r.getMessage() for r in logs.records if r.name == "scribes.textgen"]
    return [message for message in core if message.startswith("retrying")]


def generation_events(logs: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    events = []
    for record in logs.records:
        if record.name == "scribes.textgen" and record.getMessage().startswith("{"):
            events.append(json.loads(record.getMessage()))
    return events


# --- transient failures, then success ---------------------------------------------------------


@dataclass(frozen=True)
class TransientCase:
    first: Scenario
    retry_after_s: float = 0.0  # the wait the server asked for (0: none)


TRANSIENT_CASES = {
    "429 with Retry-After": TransientCase(Status(429, headers={"Retry-After": "1"}), retry_after_s=1.0),
    "429 without Retry-After": TransientCase(Status(429)),
    "503 then success": TransientCase(Status(503)),
    "502 bad gateway": TransientCase(Status(502)),
    "504 gateway timeout": TransientCase(Status(504)),
    "Retry-After over the max wait is capped": TransientCase(
        Status(503, headers={"Retry-After": "120"}), retry_after_s=120
    ),
    "connection broken before the first word": TransientCase(Cut(text="", abrupt=True)),
}


@pytest.mark.parametrize("case", TRANSIENT_CASES.values(), ids=TRANSIENT_CASES.keys())
def test_transient_failure_is_retried_then_answered(
    server: FaultServer, logs: pytest.LogCaptureFixture, style: str, case: TransientCase
) -> None:
    server.script([case.first, Ok(ANSWER)])
    service = make_service(server.base_url)

    outcome = call(service, style)

    assert outcome.error is None, outcome.error
    assert outcome.text == ANSWER
    assert len(server.requests) == 2
    if outcome.result is not None:
        assert (outcome.result.attempts, outcome.result.finish_reason) == (2, "stop")
    wait = waits_before(2, case.retry_after_s)
    gap = server.requests[1].received_at - server.requests[0].received_at
    assert wait <= gap < wait + MARGIN_S
    assert wait <= outcome.elapsed_s < wait + MARGIN_S
    assert len(retry_warnings(logs)) == 1


def test_retry_after_as_an_http_date_is_honoured(server: FaultServer) -> None:
    retry_in_s = 2
    retry_at = formatdate(time.time() + retry_in_s, usegmt=True)  # whole seconds: up to 1 s is lost
    server.script([Status(503, headers={"Retry-After": retry_at}), Ok(ANSWER)])

    result = make_service(server.base_url).chat(PROMPT)

    gap = server.requests[1].received_at - server.requests[0].received_at
    assert (result.text, result.attempts) == (ANSWER, 2)
    assert retry_in_s - 1 - CLOCK_SLACK_S <= gap < retry_in_s + MARGIN_S


# --- transient failures that never end ------------------------------------------------------------


RUN_OUT_CASES = {
    "500 three times": (Status(500), EndpointError, "failed with a server error (500)"),
    "503 three times": (Status(503), EndpointError, "is unavailable or still loading the model (503)"),
    "broken before the first word three times": (
        Cut(text="", abrupt=True),
        EndpointUnreachableError,
        "the connection broke off",
    ),
    "[DONE] with no text and no finish three times": (
        Ok("", finish_reason=None),
        EndpointUnreachableError,
        "ended the answer without finishing it",
    ),
}


@pytest.mark.parametrize(("scenario", "error_type", "phrase"), RUN_OUT_CASES.values(), ids=RUN_OUT_CASES.keys())
def test_retries_run_out(
    server: FaultServer, logs: pytest.LogCaptureFixture, style: str, scenario: Scenario, error_type: type, phrase: str
) -> None:
    server.script([scenario] * ATTEMPTS, then=Ok(ANSWER))  # a fourth try would succeed: there must be none
    service = make_service(server.base_url)

    outcome = call(service, style)

    assert type(outcome.error) is error_type
    assert len(server.requests) == ATTEMPTS
    assert phrase in str(outcome.error)
    assert str(outcome.error).endswith(f"(tried {ATTEMPTS} times)")
    assert outcome.pieces == []
    assert outcome.elapsed_s < waits_before(ATTEMPTS) + MARGIN_S
    assert len(retry_warnings(logs)) == ATTEMPTS - 1
    assert generation_events(logs)[-1]["outcome"] == "error"
    assert generation_events(logs)[-1]["attempts"] == ATTEMPTS
    assert_no_secret(outcome, logs, service)


def test_connection_refused_is_retried_then_reported(logs: pytest.LogCaptureFixture, style: str) -> None:
    with refused_port() as port:
        service = make_service(f"http://127.0.0.1:{port}/v1")
        outcome = call(service, style)

    assert type(outcome.error) is EndpointUnreachableError
    assert str(outcome.error) == (
        f"Could not reach the endpoint at http://127.0.0.1:{port}/v1 (connection refused or host unknown)."
        f" (tried {ATTEMPTS} times)"
    )
    assert len(retry_warnings(logs)) == ATTEMPTS - 1
    assert outcome.elapsed_s < waits_before(ATTEMPTS) + MARGIN_S
    assert_no_secret(outcome, logs, service)


# --- errors that retrying cannot fix ----------------------------------------------------------------


#: Statuses after which the backend resends once without TGI's extra fields (repetition_penalty,
#: top_k), which some OpenAI-compatible servers refuse. That is not a retry: the retry policy
#: counts one attempt and waits for nothing.
EXTRA_FIELDS_REFUSED = (400, 422)

CLIENT_ERRORS = {
    400: "rejected the request as malformed (400). It said: the fault server said no",
    401: "refused the token (401). Check that HF_TOKEN is set to a valid token",
    402: "needs payment (402)",
    403: "refused access (403): the token lacks permission for this model, or the model is gated",
    404: f"has no model {MODEL} (404). Check HF_GENERATION_MODEL",
    413: "found the request too large (413)",
    422: "could not process the request (422). It said: the fault server said no",
}


@pytest.mark.parametrize(("status", "phrase"), CLIENT_ERRORS.items(), ids=[str(s) for s in CLIENT_ERRORS])
def test_client_error_is_reported_at_once(
    server: FaultServer, logs: pytest.LogCaptureFixture, style: str, status: int, phrase: str
) -> None:
    requests = 2 if status in EXTRA_FIELDS_REFUSED else 1
    server.script([Status(status)] * requests, then=Ok(ANSWER))  # a retry would succeed: there must be none
    service = make_service(server.base_url)

    outcome = call(service, style)

    assert type(outcome.error) is EndpointError
    assert (outcome.error.status_code, outcome.error.transient) == (status, False)
    assert str(outcome.error).startswith(f"The endpoint at {server.base_url} ")
    assert phrase in str(outcome.error)
    assert "tried" not in str(outcome.error)
    assert len(server.requests) == requests
    if requests == 2:
        assert "repetition_penalty" in server.requests[0].json
        assert "repetition_penalty" not in server.requests[1].json
    assert retry_warnings(logs) == []
    assert outcome.elapsed_s < MARGIN_S
    assert_no_secret(outcome, logs, service)


@pytest.mark.parametrize("status", EXTRA_FIELDS_REFUSED)
def test_token_echoed_back_by_the_server_is_redacted(
    server: FaultServer, logs: pytest.LogCaptureFixture, status: int
) -> None:
    server.script([Status(status, echo_authorization=True)] * 2)
    service = make_service(server.base_url)

    outcome = call(service, "chat")

    assert server.requests[0].headers["authorization"] == f"Bearer {TOKEN}"  # the echo really held the token
    assert "It said: the fault server said no (you sent: Bearer ***)" in str(outcome.error)
    assert_no_secret(outcome, logs, service)


# --- slow and stalled servers ------------------------------------------------------------------------


def test_server_silent_past_the_timeout(server: FaultServer, logs: pytest.LogCaptureFixture, style: str) -> None:
    server.script([Slow(delay_s=SHORT_TIMEOUT_S + 2)] * ATTEMPTS, then=Ok(ANSWER))
    service = make_service(server.base_url, timeout_s=SHORT_TIMEOUT_S)

    outcome = call(service, style)

    assert type(outcome.error) is EndpointUnreachableError
    assert str(outcome.error) == (
        f"The endpoint at {server.base_url} did not answer within {SHORT_TIMEOUT_S:g} seconds. (tried {ATTEMPTS} times)"
    )
    assert len(server.requests) == ATTEMPTS
    least = ATTEMPTS * SHORT_TIMEOUT_S + waits_before(ATTEMPTS)
    assert least <= outcome.elapsed_s < least + MARGIN_S
    assert_no_secret(outcome, logs, service)


def test_trickle_is_stopped_by_the_overall_deadline(
    server: FaultServer, logs: pytest.LogCaptureFixture, style: str
) -> None:
    """Each word comes well within the per-read timeout; only the overall deadline can end it."""
    trickle = Trickle(interval_s=0.5, max_chunks=30)
    server.script([trickle], then=Ok(ANSWER))
    timeout_s = TRICKLE_TIMEOUT_S
    service = make_service(server.base_url, timeout_s=timeout_s)

    outcome = call(service, style)

    assert type(outcome.error) is StreamInterruptedError
    assert f"did not finish answering within {timeout_s:g} seconds" in str(outcome.error)
    assert outcome.error.partial_text.split() == ["grace"] * len(outcome.error.partial_text.split())
    assert 2 <= len(outcome.error.partial_text.split()) <= timeout_s / trickle.interval_s + 1
    if style != "chat":  # what the caller was handed as it came
        assert "".join(outcome.pieces) == outcome.error.partial_text
    assert len(server.requests) == 1  # text had reached the caller: no second try
    assert timeout_s <= outcome.elapsed_s < timeout_s + trickle.interval_s + MARGIN_S
    assert_no_secret(outcome, logs, service)


def test_keepalive_trickle_without_text_times_out_each_try(
    server: FaultServer, logs: pytest.LogCaptureFixture
) -> None:
    """Empty deltas keep the connection alive but bring no text: each try ends at its deadline."""
    trickle = Trickle(interval_s=0.25, max_chunks=40, word="")
    server.script([trickle] * ATTEMPTS)
    service = make_service(server.base_url, timeout_s=SHORT_TIMEOUT_S)

    outcome = call(service, "chat")

    assert type(outcome.error) is EndpointUnreachableError
    assert f"did not finish answering within {SHORT_TIMEOUT_S:g} seconds" in str(outcome.error)
    assert len(server.requests) == ATTEMPTS
    least = ATTEMPTS * SHORT_TIMEOUT_S + waits_before(ATTEMPTS)
    assert least <= outcome.elapsed_s < least + ATTEMPTS * trickle.interval_s + MARGIN_S
    assert_no_secret(outcome, logs, service)


# --- answers that stop part-way -------------------------------------------------------------------


CUT_CASES = {
    "connection dropped": (Cut("Grace is God's", abrupt=True), TIMEOUT_S, "the connection broke off"),
    "body ended without a finish": (
        Cut("Grace is God's", abrupt=False),
        TIMEOUT_S,
        "ended the answer without finishing it",
    ),
    "server stalled past the timeout": (
        Cut("Grace is God's", abrupt=True, hang_s=SHORT_TIMEOUT_S + 2),
        SHORT_TIMEOUT_S,
        f"did not answer within {SHORT_TIMEOUT_S:g} seconds",
    ),
    "[DONE] without a finish reason": (
        Ok("Grace is God's", finish_reason=None),
        TIMEOUT_S,
        "ended the answer without finishing it",
    ),
}


@pytest.mark.parametrize(("scenario", "timeout_s", "phrase"), CUT_CASES.values(), ids=CUT_CASES.keys())
def test_answer_cut_part_way_keeps_the_text_and_is_not_retried(
    server: FaultServer, logs: pytest.LogCaptureFixture, style: str, scenario: Scenario, timeout_s: float, phrase: str
) -> None:
    server.script([scenario], then=Ok(ANSWER))  # a retry would "succeed" with a different answer
    service = make_service(server.base_url, timeout_s=timeout_s)

    outcome = call(service, style)

    assert type(outcome.error) is StreamInterruptedError
    assert outcome.error.partial_text == "Grace is God's"
    assert str(outcome.error).startswith("The answer was cut off part-way: ")
    assert phrase in str(outcome.error)
    if style != "chat":  # what the caller was handed as it came
        assert outcome.pieces == ["Grace", " is", " God's"]  # what the caller already showed stays shown
    assert len(server.requests) == 1
    assert retry_warnings(logs) == []
    assert outcome.elapsed_s < timeout_s + MARGIN_S
    assert service.get_model_info()["usage"]["requests"] == 0  # nothing billed as a finished answer
    assert_no_secret(outcome, logs, service)


# --- replies that are not chat-completion data -----------------------------------------------------


MALFORMED_CASES = [
    pytest.param(MalformedStream(), EndpointError, "not valid chat-completion data", "", id="bad JSON before any text"),
    pytest.param(
        MalformedStream(text_before="Grace is"),
        StreamInterruptedError,
        "not valid chat-completion data",
        "Grace is",
        id="bad JSON after some text",
    ),
    pytest.param(HtmlPage(), EndpointError, "not valid chat-completion data", "", id="200 with an HTML page"),
]


@pytest.mark.parametrize(("scenario", "error_type", "phrase", "partial"), MALFORMED_CASES)
def test_malformed_reply_is_reported_without_retrying(
    server: FaultServer,
    logs: pytest.LogCaptureFixture,
    style: str,
    scenario: Scenario,
    error_type: type,
    phrase: str,
    partial: str,
) -> None:
    server.script([scenario], then=Ok(ANSWER))
    service = make_service(server.base_url)

    outcome = call(service, style)

    assert type(outcome.error) is error_type
    assert phrase in str(outcome.error)
    assert getattr(outcome.error, "partial_text", "") == partial
    if style != "chat":  # what the caller was handed as it came
        assert "".join(outcome.pieces) == partial
    assert len(server.requests) == 1
    assert outcome.elapsed_s < MARGIN_S
    assert_no_secret(outcome, logs, service)


# --- errors sent inside a 200 stream (TGI's error events) ---------------------------------------------


def test_overloaded_event_before_the_first_word_is_retried(server: FaultServer, style: str) -> None:
    server.script([ErrorEvent("overloaded"), Ok(ANSWER)])

    outcome = call(make_service(server.base_url), style)

    assert outcome.error is None, outcome.error
    assert outcome.text == ANSWER
    assert len(server.requests) == 2


ERROR_EVENT_CASES = {
    "validation error": (
        ErrorEvent("validation", "Input validation error: `inputs` must have less than 2048 tokens"),
        EndpointError,
        "reported an error: Input validation error: `inputs` must have less than 2048 tokens",
        "",
    ),
    "generation error after some text": (
        ErrorEvent("generation", "CUDA out of memory", text_before="Grace is"),
        StreamInterruptedError,
        "reported an error: CUDA out of memory",
        "Grace is",
    ),
}


@pytest.mark.parametrize(
    ("scenario", "error_type", "phrase", "partial"), ERROR_EVENT_CASES.values(), ids=ERROR_EVENT_CASES.keys()
)
def test_error_event_is_reported_without_retrying(
    server: FaultServer,
    logs: pytest.LogCaptureFixture,
    style: str,
    scenario: Scenario,
    error_type: type,
    phrase: str,
    partial: str,
) -> None:
    server.script([scenario], then=Ok(ANSWER))
    service = make_service(server.base_url)

    outcome = call(service, style)

    assert type(outcome.error) is error_type
    assert phrase in str(outcome.error)
    assert getattr(outcome.error, "partial_text", "") == partial
    if style != "chat":  # what the caller was handed as it came
        assert "".join(outcome.pieces) == partial
    assert len(server.requests) == 1
    assert_no_secret(outcome, logs, service)


# --- a server that ignores max_tokens ---------------------------------------------------------------


@pytest.mark.parametrize(("requested", "sent"), [(20, 20), (1000, HARD_OUTPUT_TOKEN_LIMIT)])
def test_flood_stops_at_max_new_tokens(server: FaultServer, style: str, requested: int, sent: int) -> None:
    server.script([Flood(chunks=1000)])
    service = make_service(server.base_url)

    outcome = call(service, style, max_new_tokens=requested)

    assert outcome.error is None, outcome.error
    assert server.requests[0].json["max_tokens"] == sent
    assert len(outcome.text.split()) == sent
    if style != "chat":
        assert len(outcome.pieces) == sent
    if style != "stream":
        assert outcome.result is not None
        assert outcome.result.output_tokens <= sent
        assert outcome.result.finish_reason == "length"
        assert outcome.result.requested_max_new_tokens == (requested if requested > sent else None)
        assert outcome.result.validation.hit_token_limit
    assert len(server.requests) == 1
    assert outcome.elapsed_s < MARGIN_S


def test_closing_the_stream_hangs_up_on_the_server(server: FaultServer, logs: pytest.LogCaptureFixture) -> None:
    server.script([Flood(chunks=1000, interval_s=0.01)])
    service = make_service(server.base_url)

    stream = service.stream(PROMPT)
    pieces = [next(stream) for _ in range(5)]
    stream.close()

    assert "".join(pieces) == "amen" + " amen" * 4
    assert server.wait_idle(timeout_s=MARGIN_S)  # the server noticed at its next write
    assert server.requests[0].outcome == "client disconnected"
    assert generation_events(logs)[-1]["outcome"] == "cancelled"


def test_stop_on_the_event_loop_hangs_up_on_the_server(server: FaultServer, logs: pytest.LogCaptureFixture) -> None:
    """Stop in the Chat tab cancels the handler's task on Gradio's loop, in the middle of an await."""
    server.script([Flood(chunks=1000, interval_s=0.01)])
    service = make_service(server.base_url)
    pieces: list[str] = []

    async def ask() -> None:
        async for update in service.astream_chat(PROMPT):
            pieces.append(update.delta)

    async def stop_after_five_words() -> None:
        task = asyncio.create_task(ask())
        while len(pieces) < 5:
            await asyncio.sleep(0.002)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(stop_after_five_words())

    assert "".join(pieces).startswith("amen" + " amen" * 4)
    assert len(pieces) < 20
    assert server.wait_idle(timeout_s=MARGIN_S)  # the server noticed at its next write
    assert server.requests[0].outcome == "client disconnected"
    assert generation_events(logs)[-1]["outcome"] == "cancelled"


# --- usage and what was sent -------------------------------------------------------------------------


def test_usage_from_the_endpoint_is_reported_and_added_up(server: FaultServer, style: str) -> None:
    server.script([Ok(ANSWER, prompt_tokens=17, completion_tokens=6)] * 2)
    service = make_service(server.base_url)

    first, second = call(service, style), call(service, style)

    assert (first.text, second.text) == (ANSWER, ANSWER)
    for outcome in (first, second):
        if outcome.result is not None:
            assert (outcome.result.prompt_tokens, outcome.result.output_tokens) == (17, 6)
            assert not outcome.result.usage_estimated
    assert service.get_model_info()["usage"] == {"requests": 2, "prompt_tokens": 34, "output_tokens": 12}


def test_missing_usage_is_estimated(server: FaultServer) -> None:
    server.script([Ok(ANSWER, prompt_tokens=None)])
    service = make_service(server.base_url)

    result = service.chat(PROMPT)

    assert result.usage_estimated
    assert result.output_tokens == len(ANSWER.split())  # one chunk per token
    assert result.prompt_tokens > 0


def test_request_carries_the_limits_and_asks_for_usage(server: FaultServer) -> None:
    server.script([Ok(ANSWER)])

    make_service(server.base_url).chat(PROMPT, temperature=0.5)

    sent = server.requests[0]
    assert (sent.method, sent.path) == ("POST", "/v1/chat/completions")
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    body = sent.json
    assert body["model"] == MODEL
    assert body["messages"][-1] == {"role": "user", "content": PROMPT}
    assert (body["max_tokens"], body["temperature"], body["stream"]) == (HARD_OUTPUT_TOKEN_LIMIT, 0.5, True)
    assert body["stream_options"] == {"include_usage": True}


def test_error_keeps_the_library_exception_as_its_cause(server: FaultServer) -> None:
    """Developers need the library's error (with the server's own words) behind ours."""
    server.script([Status(401)])

    outcome = call(make_service(server.base_url), "chat")

    assert outcome.error is not None
    assert isinstance(outcome.error.__cause__, huggingface_hub.errors.HfHubHTTPError)
    assert "the fault server said no" in str(outcome.error.__cause__)


def test_offline_mode_names_the_switch(server: FaultServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE makes huggingface_hub refuse every request, a local endpoint's included."""
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    server.script([Ok(ANSWER)])

    outcome = call(make_service(server.base_url), "chat")

    assert server.requests == []  # the library stopped it before it left the process
    assert type(outcome.error) is EndpointError
    assert not outcome.error.transient
    assert "HF_HUB_OFFLINE" in str(outcome.error)
    assert "tried" not in str(outcome.error)


# --- a refusal about something else keeps the extra fields -------------------------------------------


def test_a_refusal_unrelated_to_the_extra_fields_keeps_them(server: FaultServer) -> None:
    """A prompt that is too long says nothing about repetition_penalty; later requests still need it."""
    too_long = Status(422, message="Input validation error: `inputs` tokens + `max_new_tokens` must be <= 2048")
    service = make_service(server.base_url)
    server.script([too_long] * 2)

    refused = call(service, "chat")
    server.script([], then=Ok(ANSWER))
    answered = call(service, "chat")

    assert type(refused.error) is EndpointError
    assert answered.text == ANSWER
    assert server.requests[-1].json.get("repetition_penalty") == service.settings.repetition_penalty


# --- a signed-in visitor's own token ---------------------------------------------------------------


VISITOR_TOKEN = "hf_oauth_VISITOR_token_0987654321"


def test_a_signed_in_visitor_calls_with_their_own_token(server: FaultServer, logs: pytest.LogCaptureFixture) -> None:
    server.script([Ok(ANSWER), Ok(ANSWER), Status(401, echo_authorization=True)])
    host = make_service(server.base_url)
    visitor = host.for_token(VISITOR_TOKEN)

    visitor.chat(PROMPT)
    host.chat(PROMPT)
    refused = call(visitor, "chat")

    assert [r.headers["authorization"] for r in server.requests] == [f"Bearer {VISITOR_TOKEN}", f"Bearer {TOKEN}", f"Bearer {VISITOR_TOKEN}"]
    assert host.for_token(VISITOR_TOKEN) is visitor and host.for_token(None) is host and host.for_token(TOKEN) is host
    # usage (API cost) is counted per token: the host's bill is not the visitor's
    assert (visitor.get_model_info()["usage"]["requests"], host.get_model_info()["usage"]["requests"]) == (1, 1)
    assert "refused the token (401)" in str(refused.error)
    shown = str(refused.error) + json.dumps(visitor.get_model_info(), default=str) + logs.text
    assert VISITOR_TOKEN not in shown and TOKEN not in shown
