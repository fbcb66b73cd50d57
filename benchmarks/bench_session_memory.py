"""2. Memory per visitor: the app's RSS as distinct sessions come and go, in API mode.

Rounds of ``ROUND`` new sessions (each its own session hash, as a browser tab; two chats
each, through Gradio's queue as in ``bench_app_load``) against a local endpoint that
answers at once; the app's RSS after every round. The first ``WARM_UP`` sessions fill
the worker threads and allocator arenas; the slope after them is the cost of a session.
The baseline is the same run against another commit (``--baseline REV``, checked out in a
temporary worktree and run by the same interpreter). Target: at most 50 KiB per session
over 2,000 sessions, and a level line instead of a rising one.

    .venv/bin/python benchmarks/bench_session_memory.py --baseline c068f09
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from dataclasses import dataclass
from pathlib import Path

import common  # before the imports below: it puts the project and tests/ on sys.path
from app_process import REPO, RunningApp, start_app
from bench_app_load import run_sessions
from fault_server import FaultServer, Ok

ANSWER = "Grace is the free favour of God."
ROUND = 250
WARM_UP = 500
MEASURED = 2000


@dataclass
class MemoryRun:
    rss_mib: dict[int, float]  # after so many sessions
    failures: list[str]

    def kib_per_session(self, start: int, end: int) -> float:
        """Least-squares slope of RSS against sessions between ``start`` and ``end``."""
        points = [(s, r) for s, r in self.rss_mib.items() if start <= s <= end]
        slope = statistics.linear_regression([s for s, _ in points], [r for _, r in points]).slope
        return slope * 1024


def rss_by_sessions(app: RunningApp, rounds: int, per_round: int, answer_holds: str) -> MemoryRun:
    """Rounds of ``per_round`` new sessions (two chats each, all of a round at once), the app's RSS after each."""
    run = MemoryRun({0: app.rss_mib()}, [])
    for done in range(per_round, (rounds + 1) * per_round, per_round):
        run.failures += run_sessions(app.url, per_round, 1, answer_holds=answer_holds).failures
        run.rss_mib[done] = app.rss_mib()
        print(f"  {done} sessions, RSS {run.rss_mib[done]:.0f} MiB, {len(run.failures)} failed so far", flush=True)
    return run


def measure(repo: Path, base_url: str) -> MemoryRun:
    with tempfile.TemporaryDirectory(prefix="bench-sessions-") as data_dir:
        app = start_app(
            {
                "HF_BASE_URL": base_url,
                "HF_GENERATION_MODEL": "test-model",
                "HF_TOKEN": "hf_FAKE_bench",
                "HF_CACHE_SIZE": "0",
                "SCRIBES_DATA_DIR": data_dir,
            },
            repo=repo,
        )
        try:
            return rss_by_sessions(app, (WARM_UP + MEASURED) // ROUND, ROUND, ANSWER)
        finally:
            app.stop()


def figures(run: MemoryRun) -> str:
    half = WARM_UP + MEASURED // 2
    return (
        f"{run.kib_per_session(WARM_UP, WARM_UP + MEASURED) * 1000 / 1024:.1f} MiB per 1,000 sessions "
        f"({run.kib_per_session(WARM_UP, half):.1f} KiB/session in the first 1,000, {run.kib_per_session(half, WARM_UP + MEASURED):.1f} in the next); "
        f"RSS {run.rss_mib[ROUND]:.0f} → {run.rss_mib[WARM_UP + MEASURED]:.0f} MiB; {len(run.failures)} errors"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--baseline", required=True, help="the commit to measure against, e.g. the one before the change"
    )
    baseline = parser.parse_args().baseline
    with FaultServer() as server, common.checkout(baseline) as worktree:
        server.script([], then=Ok(ANSWER))
        theirs = measure(worktree, server.base_url)
        ours = measure(REPO, server.base_url)
    per_session = ours.kib_per_session(WARM_UP, WARM_UP + MEASURED)
    common.report(
        f"App memory, {MEASURED:,} distinct API sessions × 2 chats after {WARM_UP} to warm up",
        figures(ours),
        f"{figures(theirs)} (commit {baseline})",
        per_session / theirs.kib_per_session(WARM_UP, WARM_UP + MEASURED),
        "target ≤ 50 KiB per session, level",
    )


if __name__ == "__main__":
    main()
