"""Soak: 100 concurrent chat clients for a minute, then 3,000 distinct visitors, through the running app, with faults injected.

Not part of the default run (it takes a minute or more and loads both cores); run it with
``.venv/bin/python -m pytest -m soak -s``. The endpoint is :class:`fault_server.FaultServer`
answering in a fixed time, one answer in ten a transient 503 that the service must retry
into an answer. Pass: no error but the rare chat that meets three 503s in a row (the retry
policy gives up then, as it should), and the app's memory (RSS) grows by less than 10% from
the end of a warm-up at full concurrency to the end of the run. Those clients share one
session; the second test brings 3,000 distinct sessions (each its own session hash, two
chats) in rounds and reads the app's RSS after each: past a warm-up of 500, at most 50 KiB
per session; and the last 1,000, past the 1,000 sessions the app keeps (and the 2,000
message queues Gradio keeps), add per session less than half of what sessions 500 to
1,000 did, while they were still kept.
"""

from __future__ import annotations

import random
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from app_process import RunningApp, start_app
from fault_server import FaultServer, Ok, Status
from gradio_client import Client

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from bench_session_memory import rss_by_sessions  # the benchmark's own rounds, not a copy

CLIENTS = 100
DURATION_S = 60.0
FAULT_SHARE = 0.1
ANSWER_DELAY_S = 0.5
MAX_MEMORY_GROWTH = 0.10
WARM_UP_S = 15.0
#: One chat in a thousand meets three injected 503s in a row (0.1³) and, rightly, gives up.
RETRIES_RUN_OUT = "is unavailable or still loading the model (503). Try again in a minute. (tried 3 times)"

pytestmark = pytest.mark.soak


@dataclass
class Flaky:
    """Answers after ``ANSWER_DELAY_S``; a ``FAULT_SHARE`` of requests get a 503 instead."""

    rng: random.Random = field(default_factory=lambda: random.Random(7))
    faults: int = 0

    def play(self, reply) -> str:  # type: ignore[no-untyped-def]
        if self.rng.random() < FAULT_SHARE:
            self.faults += 1
            return Status(503, message="Model is currently loading").play(reply)
        reply.sleep(ANSWER_DELAY_S)
        return Ok("Grace is the free favour of God, given not earned.").play(reply)


@dataclass
class Tally:
    answered: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture(scope="module")
def soak_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningApp, FaultServer, Flaky]]:
    flaky = Flaky()
    with FaultServer() as server:
        server.script([], then=flaky)
        app = start_app(
            {
                "HF_BASE_URL": server.base_url, "HF_GENERATION_MODEL": "test-model", "HF_TOKEN": "hf_FAKE_TOKEN_soak_0123456789",
                "HF_RETRY_BACKOFF": "0.05", "HF_RETRY_MAX_WAIT": "0.5", "HF_CACHE_SIZE": "0",
                "SCRIBES_DATA_DIR": str(tmp_path_factory.mktemp("soak")),
            }
        )
        try:
            yield app, server, flaky
        finally:
            app.stop()


def _chat_until(client: Client, deadline: float, tally: Tally) -> None:
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            answer, _details, _passages = client.predict("What is grace?", "", "", api_name="/chat")
            ok = bool(answer.strip())
        except Exception as error:  # every failure is counted and shown, none is expected
            ok, answer = False, f"{type(error).__name__}: {error}"
        with tally.lock:
            if ok:
                tally.answered += 1
                tally.latencies.append(time.monotonic() - started)
            else:
                tally.errors.append(answer)


def test_a_minute_of_100_concurrent_chats_with_faults(soak_app: tuple[RunningApp, FaultServer, Flaky]) -> None:
    app, server, flaky = soak_app
    client = Client(app.url, verbose=False)
    warm = Tally()  # at full concurrency, so the worker threads and buffers exist before measuring
    threads = [threading.Thread(target=_chat_until, args=(client, time.monotonic() + WARM_UP_S, warm)) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rss_before = app.rss_mib()

    tally = Tally()
    deadline = time.monotonic() + DURATION_S
    threads = [threading.Thread(target=_chat_until, args=(client, deadline, tally)) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=DURATION_S + 120)
    rss_after = app.rss_mib()

    unexpected = [e for e in tally.errors if RETRIES_RUN_OUT not in e]
    latencies = sorted(tally.latencies)
    growth = rss_after / rss_before - 1
    print(
        f"\nsoak: {tally.answered} chats answered, {len(tally.errors)} errors ({len(unexpected)} unexpected), "
        f"{flaky.faults} faults injected "
        f"({len(server.requests)} requests); latency p50 {latencies[len(latencies) // 2]:.2f} s, "
        f"p95 {latencies[int(len(latencies) * 0.95)]:.2f} s, max {latencies[-1]:.2f} s; "
        f"RSS {rss_before:.0f} MiB -> {rss_after:.0f} MiB ({growth:+.1%})"
    )
    assert not any(thread.is_alive() for thread in threads), "a client hung"
    assert unexpected == [], unexpected[:5]
    assert len(tally.errors) <= 0.01 * tally.answered
    assert flaky.faults > 0 and tally.answered > CLIENTS
    assert growth < MAX_MEMORY_GROWTH


def test_memory_levels_off_over_3000_distinct_sessions(soak_app: tuple[RunningApp, FaultServer, Flaky]) -> None:
    app, _server, _flaky = soak_app
    run = rss_by_sessions(app, 12, 250, "Grace is the free favour of God")
    rss = {sessions: mib * 1024 for sessions, mib in run.rss_mib.items()}  # KiB
    failed, sessions = len(run.failures), 3000
    kept = (rss[1000] - rss[500]) / 500
    past = (rss[3000] - rss[2000]) / 1000
    print(f"\nsessions: RSS KiB {rss}; KiB per session 500-1,000 {kept:.1f}, 2,000-3,000 {past:.1f}; {failed} chats failed")
    assert failed <= 0.01 * 2 * sessions  # retries that ran out against three 503s in a row, as above
    assert (rss[2500] - rss[500]) / 2000 <= 50, rss
    assert past < 0.5 * kept, rss
