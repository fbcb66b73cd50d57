"""6. Scoring throughput: answers scored per second by the citation and repetition scorers.

10,000 answers (a mix of realistic ones: citations, quotes, a loop, a nonexistent verse)
through ``core.scoring.citations.score_answer`` with expected references and context. Baseline: the
issue's target, 10,000 answers in 10 s (1,000 per second).

    .venv/bin/python benchmarks/bench_scoring.py
"""

from __future__ import annotations

import time

from common import report

from core.scoring.citations import score_answer
from core.scoring.references import parse_reference_list

ANSWERS = [
    "For by grace are ye saved through faith (Ephesians 2:8-9). See also Romans 6:23 and John 3:16.",
    "Paul wrote “Charity suffereth long, and is kind” (1 Cor 13:4-7). Love is patient, as Rom 5:8 shows.",
    "The Bible says in Hezekiah 3:4 that God helps those who help themselves, and John 3:99 agrees.",
    "Grace grace grace is is is the the the gift gift gift of of of God God God. " * 4,
    "Psalm 23 is a comfort in grief; Ps. 23:4 speaks of the valley of the shadow of death.",
]
TARGET_PER_S = 1000
COUNT = 10_000


def main() -> None:
    expected = parse_reference_list("Ephesians 2:8; Romans 6:23")
    context = "Romans 6:23 — For the wages of sin is death; but the gift of God is eternal life through Jesus Christ our Lord."
    started = time.perf_counter()
    for i in range(COUNT):
        score_answer(ANSWERS[i % len(ANSWERS)] + f" ({i})", expected=expected, context=context)
    elapsed = time.perf_counter() - started
    per_s = COUNT / elapsed
    report("Scoring throughput (answers/s)", f"{per_s:,.0f} ({COUNT:,} in {elapsed:.1f} s)", f"{TARGET_PER_S:,} (target: 10,000 in 10 s)", per_s / TARGET_PER_S)


if __name__ == "__main__":
    main()
