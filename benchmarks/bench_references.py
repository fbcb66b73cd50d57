"""7. Reference finding: exact verse sets on the notation corpus, ours against pythonbible.

The corpus is the test corpus (``tests/reference_corpus.py``: hand-written cases and the
SBL, Chicago and informal abbreviation lists). Ours is :func:`core.scoring.references.extract_citations`;
a case is exact when the existing verses and the nonexistent parts reported are the
expected ones. The baseline is plain ``pythonbible.get_references``, which cannot report
nonexistent references (it drops them), so for it a case is exact when its verses are the
expected existing ones; its exceptions are counted and the case counted as missed. Also
prints the figures by kind, and our throughput in texts per second (median of 3).

    .venv/bin/python benchmarks/bench_references.py [--misses]
"""

from __future__ import annotations

import sys
import time

import pythonbible
from common import median_of, report  # common puts the project and tests/ on sys.path
from reference_corpus import Found, Tally, load_corpus, measure

from core.scoring.references import extract_citations


def ours(text: str) -> Found:
    citations = extract_citations(text)
    return Found(
        frozenset(v for c in citations for v in c.verse_ids),
        frozenset(getattr(c, "label", None) or c.text for c in citations if not c.exists),
    )


def plain_pythonbible(text: str) -> Found:
    references = pythonbible.get_references(text)
    return Found(frozenset(pythonbible.convert_references_to_verse_ids(references)), frozenset())


def _row(name: str, tally: Tally) -> str:
    return (
        f"| {name} | {tally.cases} | {tally.exact_share:.1%} | {tally.wrongly_nonexistent} | "
        f"{tally.prose_false_positives} | {tally.errors} |"
    )


def main() -> None:
    cases = load_corpus()
    results = {"ours": measure(ours, cases), "pythonbible": measure(plain_pythonbible, cases)}
    print("| finder | cases | exact | wrongly nonexistent | prose false positives | exceptions |")
    print("|---|---|---|---|---|---|")
    for name, (overall, _, _) in results.items():
        print(_row(name, overall))
    print("\n| kind | cases | ours exact | pythonbible exact |\n|---|---|---|---|")
    for kind, tally in sorted(results["ours"][1].items()):
        print(f"| {kind} | {tally.cases} | {tally.exact_share:.1%} | {results['pythonbible'][1][kind].exact_share:.1%} |")
    if "--misses" in sys.argv:
        for case, found in results["ours"][2]:
            print(f"MISS [{case.kind}] {case.text!r}: got {found}")

    runs = iter(range(1_000_000))

    def texts_per_s() -> float:
        texts = [f"{case.text} ({next(runs)})" for case in cases]  # new texts: no cache hits
        started = time.perf_counter()
        for text in texts:
            extract_citations(text)
        return len(cases) / (time.perf_counter() - started)

    speed, _ = median_of(3, texts_per_s)
    ours_share = results["ours"][0].exact_share
    theirs = results["pythonbible"][0].exact_share
    report(
        "Reference finding, exact verse sets on the corpus",
        f"{ours_share:.1%} of {len(cases)} ({speed:,.0f} texts/s)",
        f"{theirs:.1%} plain pythonbible.get_references ({results['pythonbible'][0].errors} exceptions)",
        ours_share / theirs if theirs else float("inf"),
    )


if __name__ == "__main__":
    main()
