"""9e. A pastor's chat asked while a local evaluation batch decodes: its first word and its end.

Eight questions of a shipped set are answered as one batch (120 new tokens, greedy); one
second in, a chat asks for 24 tokens. The baseline is the same run on another commit
(``--baseline REV``, a temporary worktree), each tree in a process of its own, alternately.

    .venv/bin/python benchmarks/bench_chat_during_evaluation.py --baseline REV
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import common
from common import ROOT, report

RUNS, PAIRS = 3, 2

#: Run by a child in the tree it measures: (first word, end) of the chat, in seconds, per run.
_CHILD = """
import json, sys, threading, time
sys.path[:0] = [{root!r}, {root!r} + "/benchmarks", {root!r} + "/tests"]
from common import ROOT, local_service
from core.evaluation.question_sets import load_question_set
service = local_service()
service.chat("warm up", max_new_tokens=4)
questions = [row.question for row in load_question_set(ROOT / "eval_sets" / "bible_knowledge.csv").rows[:8]]
runs = []
for _ in range({runs}):
    batch = threading.Thread(target=lambda: service.chat_batch(questions, max_new_tokens=120, temperature=0))
    batch.start()
    time.sleep(1.0)
    started, first = time.perf_counter(), None
    for update in service.stream_chat("Who was Ruth?", max_new_tokens=24, temperature=0):
        if first is None and update.delta:
            first = time.perf_counter() - started
    runs.append((first, time.perf_counter() - started))
    batch.join()
print(json.dumps(runs))
"""


def chats_in(root: Path) -> list[tuple[float, float]]:
    child = subprocess.run([sys.executable, "-c", _CHILD.format(root=str(root), runs=RUNS)], capture_output=True, text=True, check=True, cwd=root)
    return [tuple(run) for run in json.loads(child.stdout.strip().splitlines()[-1])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="the commit to measure against, e.g. the one before a change")
    revision = parser.parse_args().baseline
    ours: list[tuple[float, float]] = []
    theirs: list[tuple[float, float]] = []
    with common.checkout(revision) as worktree:
        for _ in range(PAIRS):
            ours += chats_in(ROOT)
            theirs += chats_in(worktree)

    def figures(runs: list[tuple[float, float]]) -> str:
        first, end = statistics.median(f for f, _ in runs), statistics.median(e for _, e in runs)
        return f"first word {first:.2f} s, end {end:.2f} s (ends {' / '.join(f'{e:.1f}' for _, e in runs)})"

    report(
        f"A 24-token chat asked 1 s into a local batch of 8 × 120 tokens (medians of {PAIRS} × {RUNS}, alternating processes)",
        figures(ours),
        f"{figures(theirs)}; commit {revision}",
        statistics.median(e for _, e in theirs) / statistics.median(e for _, e in ours),
        "ratio: the baseline's end over ours",
    )


if __name__ == "__main__":
    main()
