"""A real OpenAI-compatible chat endpoint that misbehaves on cue, for the API fault tests.

The API backend's retry, timeout and streaming logic can only be trusted against real
HTTP: real status lines, real chunked bodies, real closed sockets and real slow reads.
A mock of ``InferenceClient`` would test our idea of the library instead of the library.
So this is a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (port 0) that answers
``POST /v1/chat/completions`` by playing a script of scenarios, one per request, and
records every request so tests can count attempts and read what was sent.

Every sleep is bounded (:data:`MAX_SCENARIO_SLEEP_S`) and every socket has a timeout, and
:meth:`FaultServer.close` interrupts sleeps, shuts open connections and joins every thread
it started, so a fault test cannot hang the run or leave threads behind.

Usage::

    with FaultServer() as server:
        server.script([Status(503, headers={"Retry-After": "1"}), Ok("Grace is God's favour.")])
        ...  # point Settings(base_url=server.base_url) at it
        assert len(server.requests) == 2
"""

from __future__ import annotations

import json
import socket
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from socketserver import TCPServer
from types import MappingProxyType
from typing import Protocol

HOST = "127.0.0.1"
CHAT_PATH = "/v1/chat/completions"

#: No scenario may sleep longer than this in all, so a mistaken script cannot hang the run.
MAX_SCENARIO_SLEEP_S = 20.0
#: A client that neither reads nor closes blocks a write at most this long.
SOCKET_TIMEOUT_S = 5.0
#: How long :meth:`FaultServer.close` waits for its threads before calling it a leak.
JOIN_TIMEOUT_S = 5.0
#: How often ``serve_forever`` looks for a shutdown request; small, so close() is quick.
POLL_INTERVAL_S = 0.05

DEFAULT_ANSWER = "Grace is God's favour, freely given."
_EMPTY_HEADERS: Mapping[str, str] = MappingProxyType({})


# --- what a request looked like --------------------------------------------------------------


@dataclass
class ReceivedRequest:
    """One request as the server saw it, and how its answer ended.

    ``headers`` keys are lower-case. ``outcome`` is ``"in progress"`` until the handler
    finishes, then e.g. ``"answered"``, ``"cut"`` or ``"client disconnected"``.
    """

    index: int
    method: str
    path: str
    received_at: float  # time.monotonic(), comparable with the test's own clock
    headers: dict[str, str]
    body: bytes
    scenario: Scenario | None
    outcome: str = "in progress"

    @property
    def json(self) -> dict[str, object]:
        """The request body as JSON (``{}`` when it is not JSON)."""
        try:
            parsed = json.loads(self.body or b"{}")
        except ValueError:
            return {}
        return parsed if isinstance(parsed, dict) else {}


# --- scenarios ----------------------------------------------------------------------------------


class _Reply(Protocol):
    """What a scenario may do with the request it answers (see :class:`_ChatHandler`)."""

    def send_json(self, status: int, payload: object, headers: Mapping[str, str] = ...) -> None: ...
    def send_body(self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] = ...) -> None: ...
    def start_stream(self) -> None: ...
    def send_line(self, line: str) -> None: ...
    def send_event(self, payload: object) -> None: ...
    def end_stream(self) -> None: ...
    def sleep(self, seconds: float) -> None: ...
    def chunk(
        self, content: str | None = None, *, role: bool = False, finish_reason: str | None = None
    ) -> dict[str, object]: ...
    def usage(self, prompt_tokens: int, completion_tokens: int) -> dict[str, object]: ...

    @property
    def authorization(self) -> str: ...


class Scenario(Protocol):
    """One way of answering one request."""

    def play(self, reply: _Reply) -> str:
        """Answer the request; return a word for :attr:`ReceivedRequest.outcome`."""
        ...


def _words(text: str) -> list[str]:
    """The text as one chunk per word, spaces kept, so the chunks join back to ``text``."""
    if not text:
        return []
    words = text.split(" ")
    return [word if i == 0 else " " + word for i, word in enumerate(words) if word or i == 0]


def _check_sleep(total_s: float, what: str) -> None:
    if total_s > MAX_SCENARIO_SLEEP_S:
        limit = f"the fault server allows {MAX_SCENARIO_SLEEP_S:g} s at most"
        raise ValueError(f"{what} would sleep {total_s:g} s; {limit}.")


def _stream_words(reply: _Reply, words: Iterable[str], interval_s: float = 0.0) -> None:
    for i, word in enumerate(words):
        if interval_s and i:
            reply.sleep(interval_s)
        reply.send_event(reply.chunk(word))


@dataclass(frozen=True)
class Ok:
    """A correct streamed answer: a role chunk, one chunk per word, a finish chunk, usage, ``[DONE]``.

    ``finish_reason=None`` leaves the finish chunk out (a stream that says ``[DONE]`` without
    ever saying why it stopped); ``prompt_tokens=None`` leaves the usage chunk out.
    ``completion_tokens`` defaults to the number of words.
    """

    text: str = DEFAULT_ANSWER
    finish_reason: str | None = "stop"
    prompt_tokens: int | None = 9
    completion_tokens: int | None = None
    word_interval_s: float = 0.0

    def __post_init__(self) -> None:
        _check_sleep(self.word_interval_s * len(_words(self.text)), "Ok")

    def play(self, reply: _Reply) -> str:
        words = _words(self.text)
        reply.start_stream()
        reply.send_event(reply.chunk(role=True))
        _stream_words(reply, words, self.word_interval_s)
        if self.finish_reason is not None:
            reply.send_event(reply.chunk(finish_reason=self.finish_reason))
        if self.prompt_tokens is not None:
            completion = len(words) if self.completion_tokens is None else self.completion_tokens
            reply.send_event(reply.usage(self.prompt_tokens, completion))
        reply.send_line("data: [DONE]")
        reply.end_stream()
        return "answered"


@dataclass(frozen=True)
class Status:
    """An error status with an OpenAI-style JSON body ``{"error": {"message": ...}}``.

    ``echo_authorization`` puts the request's ``Authorization`` header into the message,
    as some misconfigured proxies do, to prove the core redacts the token.
    """

    code: int
    headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY_HEADERS)
    message: str = "the fault server said no"
    echo_authorization: bool = False

    def play(self, reply: _Reply) -> str:
        message = self.message + (f" (you sent: {reply.authorization})" if self.echo_authorization else "")
        reply.send_json(self.code, {"error": message, "error_type": "fault"}, self.headers)
        return f"status {self.code}"


@dataclass(frozen=True)
class MalformedStream:
    """A stream that starts well and then sends a line that is not JSON (``data: {not json``)."""

    text_before: str = ""
    bad_line: str = "data: {not json"

    def play(self, reply: _Reply) -> str:
        reply.start_stream()
        reply.send_event(reply.chunk(role=True))
        if self.text_before:
            _stream_words(reply, _words(self.text_before))
        reply.send_line(self.bad_line)
        reply.send_line("data: [DONE]")
        reply.end_stream()
        return "malformed"


@dataclass(frozen=True)
class ErrorEvent:
    """A 200 stream that reports an error as an event, the way TGI does once it has started.

    ``error_type`` is TGI's: ``overloaded``, ``validation``, ``generation``, ``incomplete_generation``.
    """

    error_type: str = "overloaded"
    message: str = "the model is busy"
    text_before: str = ""

    def play(self, reply: _Reply) -> str:
        reply.start_stream()
        reply.send_event(reply.chunk(role=True))
        if self.text_before:
            _stream_words(reply, _words(self.text_before))
        reply.send_event({"error": self.message, "error_type": self.error_type})
        reply.end_stream()
        return f"error event {self.error_type}"


@dataclass(frozen=True)
class HtmlPage:
    """A 200 with an HTML page instead of an event stream: a base URL that points at a website."""

    body: str = "<!doctype html><html><head><title>Welcome</title></head><body><h1>It works!</h1></body></html>"

    def play(self, reply: _Reply) -> str:
        reply.send_body(200, self.body.encode(), "text/html; charset=utf-8")
        return "html"


@dataclass(frozen=True)
class Slow:
    """Sleep ``delay_s`` before sending any header (longer than the client's timeout), then answer."""

    delay_s: float
    then: Ok = field(default_factory=Ok)

    def __post_init__(self) -> None:
        _check_sleep(self.delay_s, "Slow")

    def play(self, reply: _Reply) -> str:
        reply.sleep(self.delay_s)
        self.then.play(reply)
        return "answered late"


@dataclass(frozen=True)
class Gathered:
    """Hold every request until ``count`` of them are held at once (or ``wait_s`` passes), then answer.

    A concurrency check that timing cannot fool: on a loaded machine the requests may
    arrive seconds apart, yet they are all answered "together" only if the client really
    had ``count`` of them open at the same moment.
    """

    count: int
    wait_s: float = MAX_SCENARIO_SLEEP_S
    then: Ok = field(default_factory=Ok)
    _held: list[int] = field(default_factory=lambda: [0], repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_sleep(self.wait_s, "Gathered")

    def play(self, reply: _Reply) -> str:
        with self._lock:
            self._held[0] += 1
        deadline = time.monotonic() + self.wait_s
        while self._held[0] < self.count and time.monotonic() < deadline:
            reply.sleep(0.02)
        together = self._held[0] >= self.count
        self.then.play(reply)
        return "answered together" if together else "answered alone"


@dataclass(frozen=True)
class Trickle:
    """One word every ``interval_s``, for up to ``max_chunks`` words and never a finish.

    Each read arrives well within the client's per-read timeout, so only the backend's own
    overall deadline can end it. ``word=""`` trickles empty deltas (keep-alives, no text).
    """

    interval_s: float = 0.5
    max_chunks: int = 30
    word: str = "grace"

    def __post_init__(self) -> None:
        _check_sleep(self.interval_s * self.max_chunks, "Trickle")

    def play(self, reply: _Reply) -> str:
        reply.start_stream()
        reply.send_event(reply.chunk(role=True))
        for i in range(self.max_chunks):
            reply.sleep(self.interval_s)
            reply.send_event(reply.chunk(("" if i == 0 or not self.word else " ") + self.word))
        reply.end_stream()
        return "trickled to the end"


@dataclass(frozen=True)
class Cut:
    """Some words, then the connection closes: no finish reason, no usage, no ``[DONE]``.

    ``abrupt=True`` closes mid-body (no final chunk of the chunked encoding), which the
    client sees as a broken connection; ``abrupt=False`` ends the body cleanly, so the only
    sign of trouble is the missing finish. ``hang_s`` waits before closing (a stalled
    server: longer than the client's timeout, it becomes a read timeout).
    """

    text: str = "Grace is"
    abrupt: bool = True
    hang_s: float = 0.0

    def __post_init__(self) -> None:
        _check_sleep(self.hang_s, "Cut")

    def play(self, reply: _Reply) -> str:
        reply.start_stream()
        reply.send_event(reply.chunk(role=True))
        _stream_words(reply, _words(self.text))
        if self.hang_s:
            reply.sleep(self.hang_s)
        if not self.abrupt:
            reply.end_stream()
        return "cut"


@dataclass(frozen=True)
class Flood:
    """A server that ignores ``max_tokens``: ``chunks`` one-word chunks, then a normal ending."""

    chunks: int = 1000
    word: str = "amen"
    interval_s: float = 0.0

    def __post_init__(self) -> None:
        _check_sleep(self.interval_s * self.chunks, "Flood")

    def play(self, reply: _Reply) -> str:
        reply.start_stream()
        reply.send_event(reply.chunk(role=True))
        _stream_words(reply, ([self.word] + [" " + self.word] * (self.chunks - 1)), self.interval_s)
        reply.send_event(reply.chunk(finish_reason="stop"))
        reply.send_line("data: [DONE]")
        reply.end_stream()
        return "flooded"


#: What an unscripted request gets, so a test that sends more requests than it expected fails loudly.
SCRIPT_EXHAUSTED = Status(500, message="fault server: no scenario left in the script for this request")


# --- the server -------------------------------------------------------------------------------


class _ServerGone(Exception):
    """The server is closing: stop the scenario where it stands."""


class _ChatHandler(BaseHTTPRequestHandler):
    """Answers each request with the next scenario; one connection per request (``Connection: close``)."""

    protocol_version = "HTTP/1.1"  # for chunked bodies; every answer still closes its connection
    timeout = SOCKET_TIMEOUT_S
    server: _ThreadingServer

    def setup(self) -> None:
        super().setup()
        self.server.connection_opened(self.connection)
        self._record: ReceivedRequest | None = None
        self._model = "fault-model"
        self._created = int(time.time())

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.connection_closed(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        """Silent: request lines and headers must not reach the logs the secret checks read."""

    def do_POST(self) -> None:
        self.close_connection = True
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        scenario = self.server.owner.next_scenario() if self.path == CHAT_PATH else None
        self._record = self.server.owner.record(self.command, self.path, dict(self.headers.items()), body, scenario)
        self._model = str(self._record.json.get("model", self._model))  # echoed in every chunk, as servers do
        outcome = "fault server error"  # kept only if the scenario itself raised (see handler_errors)
        try:
            if scenario is None:
                self.send_json(404, {"error": f"fault server: no route {self.path}"})
                outcome = "no route"
            else:
                outcome = scenario.play(self)
        except _ServerGone:
            outcome = "server closed"
        except (ConnectionError, TimeoutError):  # BrokenPipe, ConnectionReset, a client that stopped reading
            outcome = "client disconnected"
        finally:
            self.server.owner.finish(self._record, outcome)

    # --- the _Reply interface ---------------------------------------------------------------

    @property
    def authorization(self) -> str:
        return self.headers.get("Authorization", "")

    def send_json(self, status: int, payload: object, headers: Mapping[str, str] = _EMPTY_HEADERS) -> None:
        self.send_body(status, json.dumps(payload).encode(), "application/json", headers)

    def send_body(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] = _EMPTY_HEADERS
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Connection", "close")
        self.end_headers()

    def send_line(self, line: str) -> None:
        data = (line + "\n\n").encode()
        self.wfile.write(b"%X\r\n%s\r\n" % (len(data), data))

    def send_event(self, payload: object) -> None:
        self.send_line("data: " + json.dumps(payload))

    def end_stream(self) -> None:
        self.wfile.write(b"0\r\n\r\n")

    def sleep(self, seconds: float) -> None:
        if self.server.stopping.wait(seconds):
            raise _ServerGone

    def chunk(
        self, content: str | None = None, *, role: bool = False, finish_reason: str | None = None
    ) -> dict[str, object]:
        delta: dict[str, str] = {}
        if role:
            delta = {"role": "assistant", "content": ""}
        elif content is not None:
            delta = {"content": content}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**self._envelope(), "choices": [choice]}

    def usage(self, prompt_tokens: int, completion_tokens: int) -> dict[str, object]:
        counts = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        return {**self._envelope(), "choices": [], "usage": counts}

    def _envelope(self) -> dict[str, object]:
        index = self._record.index if self._record else 0
        return {
            "id": f"chatcmpl-fault-{index}",
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
        }


class _ThreadingServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer whose request threads are named, tracked and joined on close.

    The threads are daemons as a last resort only (a bug here must never keep the
    interpreter alive); :meth:`FaultServer.close` joins them and reports any that remain.
    """

    daemon_threads = True
    block_on_close = False  # FaultServer.close joins the threads itself, with a time limit
    #: socketserver's default listen backlog is 5: under 100 simultaneous clients the kernel
    #: drops the rest of the connection attempts, which retry a second later. Real servers
    #: (uvicorn, TGI) queue thousands.
    request_queue_size = 1024

    def __init__(self, owner: FaultServer):
        self.owner = owner
        self.stopping = threading.Event()
        self.request_threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        super().__init__((HOST, 0), _ChatHandler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall without a network.
        TCPServer.server_bind(self)
        self.server_name, self.server_port = HOST, self.server_address[1]

    def process_request(  # type: ignore[override]
        self, request: socket.socket, client_address: tuple[str, int]
    ) -> None:
        with self._lock:
            self.request_threads = [t for t in self.request_threads if t.is_alive()]
            thread = threading.Thread(
                target=self.process_request_thread,
                args=(request, client_address),
                name=f"fault-server-{self.server_port}-request",
                daemon=True,
            )
            self.request_threads.append(thread)
        thread.start()

    def handle_error(self, request: object, client_address: object) -> None:
        """Keep the fault server's own bugs for the tests to see, instead of printing them."""
        self.owner.report_error(traceback.format_exc())

    def connection_opened(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.add(connection)

    def connection_closed(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def interrupt_connections(self) -> None:
        """Unblock every handler waiting on a socket, so the threads can be joined now."""
        with self._lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the other side: nothing left to unblock


class FaultServer:
    """A real chat-completions endpoint on 127.0.0.1 that follows a script of scenarios.

    Start it with ``with FaultServer() as server:`` (or :meth:`start` / :meth:`close`).
    Each request to :data:`CHAT_PATH` takes the next scenario from :meth:`script`; once the
    script is used up, requests get ``then`` (by default a 500 that names the problem).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[Scenario] = deque()
        self._then: Scenario = SCRIPT_EXHAUSTED
        self._requests: list[ReceivedRequest] = []
        self._handler_errors: list[str] = []
        self._idle = threading.Condition(self._lock)
        self._active = 0
        self._httpd: _ThreadingServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> FaultServer:
        if self._httpd is not None:
            raise RuntimeError("The fault server is already started.")
        self._httpd = _ThreadingServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_S},
            name=f"fault-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, cut open connections, and join every thread; raise if one will not stop."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.stopping.set()
        httpd.shutdown()
        httpd.interrupt_connections()
        httpd.server_close()
        deadline = time.monotonic() + JOIN_TIMEOUT_S
        threads = [self._thread, *httpd.request_threads] if self._thread else list(httpd.request_threads)
        for thread in threads:
            thread.join(max(deadline - time.monotonic(), 0.0))
        left = [t.name for t in threads if t.is_alive()]
        if left:
            raise RuntimeError(f"The fault server's threads did not stop within {JOIN_TIMEOUT_S:g} s: {left}")

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- what tests use -------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("The fault server is not running.")
        return self._httpd.server_port

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL (``.../v1``); the client appends ``/chat/completions``."""
        return f"http://{HOST}:{self.port}/v1"

    @property
    def handler_errors(self) -> list[str]:
        """Tracebacks of the server's own failures (kept after close); a healthy run leaves this empty."""
        with self._lock:
            return list(self._handler_errors)

    def script(self, scenarios: Iterable[Scenario], *, then: Scenario = SCRIPT_EXHAUSTED) -> None:
        """Answer the next requests with ``scenarios``, one each, then every later one with ``then``."""
        with self._lock:
            self._script = deque(scenarios)
            self._then = then

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Every request received so far, oldest first."""
        with self._lock:
            return list(self._requests)

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no request is being answered; False if that took longer than ``timeout_s``."""
        with self._idle:
            return self._idle.wait_for(lambda: self._active == 0, timeout_s)

    # --- called by the handler ------------------------------------------------------------------

    def next_scenario(self) -> Scenario:
        with self._lock:
            return self._script.popleft() if self._script else self._then

    def record(
        self, method: str, path: str, headers: dict[str, str], body: bytes, scenario: Scenario | None
    ) -> ReceivedRequest:
        with self._lock:
            received = ReceivedRequest(
                index=len(self._requests),
                method=method,
                path=path,
                received_at=time.monotonic(),
                headers={name.lower(): value for name, value in headers.items()},
                body=body,
                scenario=scenario,
            )
            self._requests.append(received)
            self._active += 1
            return received

    def report_error(self, formatted_traceback: str) -> None:
        with self._lock:
            self._handler_errors.append(formatted_traceback)

    def finish(self, received: ReceivedRequest, outcome: str) -> None:
        with self._idle:
            received.outcome = outcome
            self._active -= 1
            self._idle.notify_all()


@contextmanager
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 that is bound but not listening, so every connection is refused at once.

    Holding the port bound (rather than picking a free number and hoping) keeps any other
    process from starting to listen on it during the test.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        yield sock.getsockname()[1]
