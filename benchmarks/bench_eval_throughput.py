"""4. Batch evaluation throughput: questions per minute, batched or concurrent against one at a time.

Local mode: 16 questions of a shipped set on the embedded model, 64 new tokens, greedy;
batches of 8 (ours) against batches of 1 (one at a time). API mode: the same 16 against a
local OpenAI-compatible server of the tests' own that answers in a fixed 500 ms; 8 requests
at once against 1. Target: batched local at least 3x one at a time.

``--baseline REV`` instead times local batches of 8 on this tree and on commit REV (a
temporary worktree), alternately, each in a process of its own: the 16 questions at 64
tokens, where most answers reach the limit, and at up to 200 tokens, where they end at
their own lengths.

    .venv/bin/python benchmarks/bench_eval_throughput.py [--baseline REV]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import common
from common import ROOT, local_service, report, timed
from fault_server import FaultServer, Ok, Slow

from core import Settings, TextGenService
from core.evaluation.question_sets import load_question_set
from core.evaluation.runner import run_evaluation

QUESTIONS = 16
PARAMS = {"max_new_tokens": 64, "temperature": 0}
SERVER_DELAY_S = 0.5
RUNS = 3


def per_minute(seconds: float) -> float:
    return QUESTIONS / seconds * 60


def main() -> None:
    question_set = load_question_set(ROOT / "eval_sets" / "bible_knowledge.csv")
    local = local_service()
    local.chat("warm up", max_new_tokens=4)

    def local_run(batch_size: int) -> float:
        return timed(lambda: run_evaluation(question_set, service=local, params=PARAMS, limit=QUESTIONS, batch_size=batch_size))

    # alternating, so that drift in the machine's speed falls on both sides alike
    runs = [(local_run(8), local_run(1)) for _ in range(RUNS)]
    batched, single = statistics.median(b for b, _ in runs), statistics.median(s for _, s in runs)
    ratios = ", ".join(f"{s / b:.2f}×" for b, s in runs)
    report(f"Evaluation, local ({QUESTIONS} q, questions/min, median of {RUNS})", f"{per_minute(batched):.1f} (batches of 8)",
           f"{per_minute(single):.1f} (one at a time)", statistics.median(s / b for b, s in runs), f"ratios per run {ratios}; target ≥ 3×")

    with FaultServer() as server:
        server.script([], then=Slow(delay_s=SERVER_DELAY_S, then=Ok("Grace is the free favour of God.")))
        api = TextGenService(Settings(base_url=server.base_url, model="test-model", token="hf_FAKE_bench", cache_size=0))

        def api_run(concurrency: int) -> float:
            return timed(lambda: run_evaluation(question_set, service=api, params=PARAMS, limit=QUESTIONS, concurrency=concurrency))

        concurrent, sequential = api_run(8), api_run(1)
    report(f"Evaluation, API ({QUESTIONS} q, questions/min)", f"{per_minute(concurrent):.0f} (8 at once)", f"{per_minute(sequential):.0f} (one at a time)",
           sequential / concurrent, f"server answers in {SERVER_DELAY_S * 1000:.0f} ms")


#: Run by a child in the tree it measures: seconds for batches of 8, per token limit.
_CHILD = """
import json, sys, time
sys.path[:0] = [{root!r}, {root!r} + "/benchmarks", {root!r} + "/tests"]
from common import ROOT, local_service
from core.evaluation.question_sets import load_question_set
from core.evaluation.runner import run_evaluation
service = local_service()
service.chat("warm up", max_new_tokens=4)
question_set = load_question_set(ROOT / "eval_sets" / "bible_knowledge.csv")
seconds = {{}}
for tokens in {limits!r}:
    started = time.perf_counter()
    run_evaluation(question_set, service=service, params={{"max_new_tokens": tokens, "temperature": 0}}, limit={questions}, batch_size=8)
    seconds[tokens] = time.perf_counter() - started
print(json.dumps(seconds))
"""
LIMITS = (64, 200)


def batches_in(root: Path) -> dict[str, float]:
    code = _CHILD.format(root=str(root), limits=LIMITS, questions=QUESTIONS)
    child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    return json.loads(child.stdout.strip().splitlines()[-1])


def against(revision: str) -> None:
    with common.checkout(revision) as worktree:
        runs = [(batches_in(ROOT), batches_in(worktree)) for _ in range(RUNS)]
    for tokens in map(str, LIMITS):
        ours, theirs = [o[tokens] for o, _ in runs], [t[tokens] for _, t in runs]
        report(
            f"Evaluation, local, {QUESTIONS} q, up to {tokens} tokens, batches of 8 (questions/min, median of {RUNS} alternating pairs)",
            f"{per_minute(statistics.median(ours)):.1f} (runs {' / '.join(f'{per_minute(v):.1f}' for v in ours)})",
            f"{per_minute(statistics.median(theirs)):.1f} (runs {' / '.join(f'{per_minute(v):.1f}' for v in theirs)}; commit {revision})",
            statistics.median(theirs) / statistics.median(ours),
            "ratio: baseline's time over ours",
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", help="time local batches against this commit instead, e.g. the one before a change")
    arguments = parser.parse_args()
    against(arguments.baseline) if arguments.baseline else main()
