"""3. Cold start: a new process, from start to the first token, first run and later runs.

First run: an empty cache folder, so the GGUF is converted (the baseline every later start
is compared with). Later runs: the converted copy is loaded from the cache. Target: later
starts under 5 s.

    .venv/bin/python benchmarks/bench_cold_start.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from common import ROOT, report

FIRST_TOKEN = (
    "import time\n"
    "from core import get_textgen_service\n"
    "stream = get_textgen_service().stream_chat('What is grace?', max_new_tokens=4, temperature=0)\n"
    "next(u for u in stream if u.delta)\n"
    "print(time.time())\n"  # the first token's moment; the interpreter's exit is not counted
    "stream.close()\n"
)
LATER_RUNS = 3


def start_to_first_token(cache_dir: str) -> float:
    env = {**os.environ, "HF_USE_API": "false", "SCRIBES_CACHE_DIR": cache_dir}
    started = time.time()
    child = subprocess.run([sys.executable, "-c", FIRST_TOKEN], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    return float(child.stdout.strip().splitlines()[-1]) - started


def main() -> None:
    with tempfile.TemporaryDirectory() as cache_dir:
        first = start_to_first_token(cache_dir)
        later = sorted(start_to_first_token(cache_dir) for _ in range(LATER_RUNS))
    median = later[len(later) // 2]
    report("Cold start to first token (s)", f"{median:.1f} s cached", f"{first:.1f} s first run (conversion)", first / median,
           f"later runs {', '.join(f'{t:.1f}' for t in later)}; target < 5 s")


if __name__ == "__main__":
    main()
