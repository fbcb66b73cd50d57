"""5. The app under load: concurrent chat sessions through its real queue and HTTP API.

API mode: 100 sessions (Gradio's queue protocol over HTTP, see ``_run_sessions``) arrive at
once and ask a first question, then send 3 more chats each, all at once, to the running app,
whose endpoint is a local OpenAI-compatible server answering in a fixed 500 ms (the
baseline: what a client would wait with no app in between). Local mode: 20 sessions,
one chat each, on the embedded model (answers capped at 48 tokens so the run stays short).
Targets: API p95 ≤ 1.5 s and no errors; local no errors. ``--baseline REV`` runs the same
sessions on another commit too, in the same run, alternately (``--pairs``); API runs also
report the app's CPU time per chat, which the machine's noise moves far less than p95.
``--floor``: the same API sessions against ``gradio_floor_app.py``, a chat of the same shape
that only waits, with a plain and with an async generator: what Gradio alone costs.

    .venv/bin/python benchmarks/bench_app_load.py [--baseline REV] [--api-only | --local-only | --floor] [--pairs N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import common  # before the imports below: it puts the project and tests/ on sys.path
import httpx
from app_process import REPO, RunningApp, start_app
from fault_server import FaultServer, Ok, Slow

SERVER_DELAY_S = 0.5
QUESTION = "What is grace?"
ANSWER = "Grace is the free favour of God."


@dataclass
class LoadRun:
    first: list[float]  # each session's first chat, all sessions arriving at once
    later: list[float]  # the chats that followed, every session open
    failures: list[str]  # what each chat that failed met
    later_wall_s: float
    app_cpu_ms: float = 0.0  # the app's CPU time per chat over the whole run

    @property
    def errors(self) -> int:
        return len(self.failures)


def run_sessions(url: str, sessions: int, chats_each: int, answer_holds: str = "") -> LoadRun:
    """A chat counts as answered when it completes without error and its output holds ``answer_holds``."""
    return asyncio.run(_run_sessions(url, sessions, chats_each, answer_holds))


async def _run_sessions(url: str, sessions: int, chats_each: int, answer_holds: str) -> LoadRun:
    """Every session is a browser tab: its own session hash, its chats one after another.

    First all sessions arrive at once and ask their first question (Gradio sets a session
    up on its first request, one session at a time). Then every open session asks ``chats_each`` more, all at once. The sessions
    speak Gradio's queue protocol (join, then read the event stream) from one asyncio
    loop: ``gradio_client`` gives every client two threads and took three times the app's
    own CPU here (30 s against 10.6 s for 300 chats), so it, not the app, filled the cores.
    """
    url = url.rstrip("/")
    # A connection per request, none kept alive: the server closes a connection idle for
    # 5 s, and on a loaded machine the client could pick one at that very moment, a
    # failure of the client's pool (which a browser would retry), not of the app.
    limits = httpx.Limits(max_connections=2 * sessions + 8, max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=httpx.Timeout(120.0), limits=limits) as http:
        config = (await http.get(f"{url}/config")).json()
        api = f"{url}{config.get('api_prefix', '')}"
        chat = next(d for d in config["dependencies"] if d.get("api_name") == "chat")
        components = {c["id"]: c["type"] for c in config["components"]}
        visible = iter([QUESTION, "", "", False, 5])  # question, system prompt, context (empty: the app's own), no grounding, passages
        data = [None if components[i] == "state" else next(visible) for i in chat["inputs"]]
        failures: list[str] = []

        async def timed_chat(session_hash: str) -> float | None:
            started = time.perf_counter()
            try:
                if await _chat(http, api, chat["id"], session_hash, data, answer_holds):
                    return time.perf_counter() - started
                failures.append(f"no answer holding {answer_holds!r}")
            except httpx.HTTPError as error:  # counted, not raised: the figure is how many fail
                failures.append(repr(error))
            return None

        async def later_chats(session_hash: str) -> list[float | None]:
            return [await timed_chat(session_hash) for _ in range(chats_each)]

        hashes = [uuid.uuid4().hex for _ in range(sessions)]
        first = await asyncio.gather(*(timed_chat(h) for h in hashes))
        started = time.perf_counter()
        later = await asyncio.gather(*(later_chats(h) for h in hashes))
        wall = time.perf_counter() - started
    return LoadRun(
        first=sorted(t for t in first if t is not None),
        later=sorted(t for chats in later for t in chats if t is not None),
        failures=failures,
        later_wall_s=wall,
    )


async def _chat(http: httpx.AsyncClient, api: str, fn_index: int, session_hash: str, data: list[object], answer_holds: str) -> bool:
    """One chat: join the queue, then read the session's event stream until this event completes."""
    joined = await http.post(f"{api}/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session_hash, "event_data": None, "trigger_id": None})
    if joined.status_code != 200:
        return False
    event_id = joined.json()["event_id"]
    async with http.stream("GET", f"{api}/queue/data", params={"session_hash": session_hash}) as stream:
        async for line in stream.aiter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("event_id") == event_id and message.get("msg") == "process_completed":
                return bool(message.get("success")) and answer_holds in json.dumps(message.get("output"), ensure_ascii=False)
    return False


def percentile(values: list[float], share: float) -> float:
    return values[min(len(values) - 1, int(len(values) * share))]


def figures(latencies: list[float]) -> str:
    return f"p50 {statistics.median(latencies):.2f} s, p95 {percentile(latencies, 0.95):.2f} s, max {latencies[-1]:.2f} s"


def api_sessions(repo: Path) -> LoadRun:
    with FaultServer() as server:
        server.script([], then=Slow(delay_s=SERVER_DELAY_S, then=Ok(ANSWER)))
        return open_sessions(start_app({"HF_BASE_URL": server.base_url, "HF_GENERATION_MODEL": "test-model", "HF_TOKEN": "hf_FAKE_bench", "HF_CACHE_SIZE": "0"}, repo=repo))


def floor_sessions(handler: str) -> LoadRun:
    """Row 5a's sessions against ``gradio_floor_app.py``: Gradio's own cost, with no app around it."""
    return open_sessions(start_app({"FLOOR_HANDLER": handler}, repo=Path(__file__).resolve().parent, script="gradio_floor_app.py"))


def open_sessions(app: RunningApp) -> LoadRun:
    """Row 5a's sessions (100 arriving, then 3 chats each) against ``app``, with its CPU a chat; then stops it."""
    try:
        cpu_before = app.cpu_s()
        run = run_sessions(app.url, 100, 3, answer_holds=ANSWER)
        run.app_cpu_ms = (app.cpu_s() - cpu_before) * 1000 / (len(run.first) + len(run.later) + run.errors)
        return run
    finally:
        app.stop()


def floor_runs(pairs: int) -> None:
    for _ in range(pairs):
        for handler in ("sync", "async"):
            run = floor_sessions(handler)
            common.report(f"Gradio alone, {'an async' if handler == 'async' else 'a plain'} generator, 100 open sessions × 3 chats", f"{figures(run.later)}, {run.errors} errors, {run.app_cpu_ms:.1f} ms CPU a chat",
                          f"{SERVER_DELAY_S:.2f} s (the wait alone)", percentile(run.later, 0.95) / SERVER_DELAY_S, "the floor under row 5a: same endpoint shape, no app")


def local_sessions(repo: Path) -> LoadRun:
    app = start_app({"HF_USE_API": "false", "HF_CACHE_SIZE": "0", "ASSISTANT_MAX_OUTPUT_TOKENS": "48"}, repo=repo)
    try:
        return run_sessions(app.url, 20, 0)
    finally:
        app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="also run the sessions on this commit (a temporary worktree), e.g. the one before a change")
    parts = parser.add_mutually_exclusive_group()
    parts.add_argument("--api-only", action="store_true", help="skip the local sessions")
    parts.add_argument("--local-only", action="store_true", help="skip the API sessions")
    parts.add_argument("--floor", action="store_true", help="only Gradio's floor: row 5a's sessions against a chat that only waits")
    parser.add_argument("--pairs", type=int, default=1, help="runs of each commit, alternating (default 1)")
    args = parser.parse_args()
    with contextlib.ExitStack() as stack:
        if args.floor:
            floor_runs(args.pairs)
            return
        baseline = stack.enter_context(common.checkout(args.baseline)) if args.baseline else None
        if not args.local_only:
            api_runs(baseline, args.baseline, args.pairs)
        if not args.api_only:
            local_runs(baseline, args.baseline, args.pairs)


def api_runs(baseline: Path | None, revision: str | None, pairs: int) -> None:
    runs: list[tuple[str, LoadRun]] = []
    for _ in range(pairs):
        runs.append(("", api_sessions(REPO)))
        if baseline is not None:
            runs.append((f" (commit {revision})", api_sessions(baseline)))
    server_alone = f"{SERVER_DELAY_S:.2f} s (the server alone)"
    for label, run in runs:
        common.report(f"App, 100 open API sessions × 3 chats{label}", f"{figures(run.later)}, {run.errors} errors, {run.later_wall_s:.1f} s wall",
                      server_alone, percentile(run.later, 0.95) / SERVER_DELAY_S, "ratio = p95 / server time; target p95 ≤ 1.5 s, 0 errors")
        common.report(f"App, 100 API sessions arriving at once (first chat){label}", figures(run.first), server_alone,
                      percentile(run.first, 0.95) / SERVER_DELAY_S, "includes Gradio setting each session up")
    if baseline is not None:
        theirs = statistics.median(run.app_cpu_ms for label, run in runs if label)
        for label, run in runs:
            common.report(f"App CPU per API chat{label}", f"{run.app_cpu_ms:.1f} ms", f"{theirs:.1f} ms (commit {revision}, median)",
                          run.app_cpu_ms / theirs, "all the app's threads, over the 400 chats; the less noisy figure")


def local_runs(baseline: Path | None, revision: str | None, pairs: int) -> None:
    ours: list[LoadRun] = []
    theirs: list[LoadRun] = []
    for _ in range(pairs):
        ours.append(local_sessions(REPO))
        if baseline is not None:
            theirs.append(local_sessions(baseline))
    for run in ours:
        compared = ""
        ratio = None
        if theirs:
            p95s = [percentile(r.first, 0.95) for r in theirs]
            compared = "; ".join(f"{figures(r.first)}, {r.errors} errors" for r in theirs) + f" (commit {revision})"
            ratio = percentile(run.first, 0.95) / statistics.median(p95s)
        common.report("App, 20 local sessions arriving at once × 1 chat (≤48 tokens)", f"{figures(run.first)}, {run.errors} errors",
                      compared or "–", ratio, "ratio = p95 / the baseline's median p95")


if __name__ == "__main__":
    main()
