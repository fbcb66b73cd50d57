"""What every benchmark shares: repeated timing, medians, and one printed result line.

Each script measures the project and its baseline in the same run, on the same machine,
and prints the ratio; medians of several runs, because these machines are noisy.
"""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]  # the project, and the tests' fault server

PROMPT = "Tell me about the life of King David."


def median_of(runs: int, measure: Callable[[], float]) -> tuple[float, list[float]]:
    """Call ``measure`` ``runs`` times; its median and every value."""
    values = [measure() for _ in range(runs)]
    return statistics.median(values), values


def local_service():  # type: ignore[no-untyped-def]
    """The service on the embedded model as configured (HF_LOCAL_DTYPE, HF_LOCAL_QUANTIZATION), answer cache off."""
    from dataclasses import replace

    from core import Settings, TextGenService

    return TextGenService(replace(Settings.from_env(), use_api=False, cache_size=0))


def plain_float32_model():  # type: ignore[no-untyped-def]
    """The baseline: the same converted model in float32, loaded as a developer would; (model, tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from core import Settings
    from core.generation.model_files import conversion_folder, embedded_gguf

    folder = conversion_folder(embedded_gguf(), Settings.from_env().cache_dir)
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval(), AutoTokenizer.from_pretrained(folder)


def measure_apart(parts: Mapping[str, Callable[[], list[float]]]) -> dict[str, list[float]]:
    """Measure each part in a process of its own (this script run again with the part's name).

    torch gives every thread that computes its own OpenMP team, and once a process holds
    more of them than cores, libgomp stops spinning between parallel regions: a baseline
    timed in the same process as the service's model thread is measured slower than it is.
    """
    if len(sys.argv) > 1:  # the child: one part, its values on the last line
        print(json.dumps(parts[sys.argv[1]]()))
        raise SystemExit(0)
    values = {}
    for name in parts:
        child = subprocess.run([sys.executable, sys.argv[0], name], capture_output=True, text=True, check=True)
        *said, last = child.stdout.strip().splitlines()
        for line in said:
            print(line)
        values[name] = json.loads(last)
    return values


@contextmanager
def checkout(revision: str) -> Iterator[Path]:
    """Another commit of this repository in a temporary worktree: a baseline the same interpreter runs."""
    with tempfile.TemporaryDirectory(prefix="bench-baseline-") as folder:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", folder, revision], check=True, capture_output=True)
        try:
            yield Path(folder)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", folder], check=True)


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
