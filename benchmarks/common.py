"""What every benchmark shares: repeated timing, medians, and one printed result line.

Each script measures the project and its baseline in the same run, on the same machine,
and prints the ratio; medians of several runs, because these machines are noisy.
"""

from __future__ import annotations

import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the project, and the tests' fault server

PROMPT = "Tell me about the life of King David."


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    """Call ``measure`` ``runs`` times; its median and every value."""
    values = [measure() for _ in range(runs)]
    return statistics.median(values), values


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def report(figure: str, ours: str, baseline: str, ratio: float | None, note: str = "") -> None:
    """One Markdown table row for benchmarks/README.md, with the machine and the date."""
    machine = f"{platform.machine()}, {_cpus()} CPUs"
    ratio_text = "–" if ratio is None else f"{ratio:.2f}×"
    print(f"| {figure} | {ours} | {baseline} | {ratio_text} | {note} | {machine}, {date.today()} |")


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0
