"""5. The app under load: concurrent chat sessions through its real queue and HTTP API.

API mode: 100 sessions (one ``gradio_client.Client`` each) send 3 chats each at once to the
running app, whose endpoint is a local OpenAI-compatible server answering in a fixed 500 ms
(the baseline: what a client would wait with no app in between). Local mode: 20 sessions,
one chat each, on the embedded model (answers capped at 48 tokens so the run stays short;
the model answers one at a time, so this shows queueing, not speed).
Targets: API p95 within 1 s of 500 ms and no errors; local no errors.

    .venv/bin/python benchmarks/bench_app_load.py
"""

from __future__ import annotations

import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from common import report
from gradio_client import Client

from app_process import start_app
from fault_server import FaultServer, Ok, Slow

SERVER_DELAY_S = 0.5


def run_sessions(url: str, sessions: int, chats_each: int) -> tuple[list[float], int, float]:
    """Latencies of every chat, the error count, and the wall time of the whole run."""
    with ThreadPoolExecutor(sessions) as pool:
        clients = list(pool.map(lambda _: Client(url, verbose=False), range(sessions)))
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()

    def session(client: Client) -> None:
        nonlocal errors
        for _ in range(chats_each):
            started = time.perf_counter()
            try:
                answer, _ = client.predict("What is grace?", "", "", api_name="/chat")
                ok = bool(answer.strip())
            except Exception:  # counted, not raised: the figure is how many fail
                ok = False
            with lock:
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

    started = time.perf_counter()
    with ThreadPoolExecutor(sessions) as pool:
        list(pool.map(session, clients))
    return sorted(latencies), errors, time.perf_counter() - started


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(len(values) * share))]


def main() -> None:
    with FaultServer() as server:
        server.script([], then=Slow(delay_s=SERVER_DELAY_S, then=Ok("Grace is the free favour of God.")))
        app = start_app({"HF_BASE_URL": server.base_url, "HF_GENERATION_MODEL": "test-model", "HF_TOKEN": "hf_FAKE_bench", "HF_CACHE_SIZE": "0"})
        try:
            latencies, errors, wall = run_sessions(app.url, 100, 3)
        finally:
            app.stop()
    p50, p95 = statistics.median(latencies), percentile(latencies, 0.95)
    report("App, 100 API sessions × 3 chats", f"p50 {p50:.2f} s, p95 {p95:.2f} s, max {latencies[-1]:.2f} s, {errors} errors, {wall:.0f} s wall",
           f"{SERVER_DELAY_S:.2f} s (the server alone)", p95 / SERVER_DELAY_S, "ratio = p95 / server time; target p95 ≤ 1.5 s")

    app = start_app({"HF_USE_API": "false", "HF_CACHE_SIZE": "0", "ASSISTANT_MAX_OUTPUT_TOKENS": "48"})
    try:
        latencies, errors, wall = run_sessions(app.url, 20, 1)
    finally:
        app.stop()
    report("App, 20 local sessions × 1 chat (≤48 tokens)", f"p50 {statistics.median(latencies):.1f} s, p95 {percentile(latencies, 0.95):.1f} s, {errors} errors, {wall:.0f} s wall",
           "–", None, "one model, answers in turn")


if __name__ == "__main__":
    main()
