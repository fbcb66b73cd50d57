"""9. Concurrent local chats: 8 chats sent at once against the same 8 one after another.

Eight different questions, 64 new tokens each, greedy, answer cache off, through
``service.chat`` on the embedded model. Before batching of arrivals the model answered one
at a time, so 8 at once took as long as 8 in a row (1.00x). Target: at most 1/3 of the
sequential time. Also the single answer's decode speed, which batching must not lower, and
(9c) the same eight through transformers' own continuous batching (``generate_batch`` on
the same int4 model, greedy), which our decoding loop was measured against.

    .venv/bin/python benchmarks/bench_concurrent_chats.py
"""

from __future__ import annotations

import statistics
import threading

from common import local_service, report, timed

QUESTIONS = [
    "Who was Ruth?", "What is faith?", "Who was Moses?", "What is hope?",
    "What is grace?", "Who was David?", "What is prayer?", "Who was Paul?",
]
PARAMS = {"max_new_tokens": 64, "temperature": 0}
RUNS = 3


def main() -> None:
    service = local_service()
    service.chat("Warm up.", max_new_tokens=8, temperature=0)

    def one_after_another() -> None:
        for question in QUESTIONS:
            service.chat(question, **PARAMS)

    def at_once() -> None:
        threads = [threading.Thread(target=service.chat, args=(q,), kwargs=PARAMS) for q in QUESTIONS]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    pairs = [(timed(one_after_another), timed(at_once)) for _ in range(RUNS)]
    sequential = statistics.median(s for s, _ in pairs)
    together = statistics.median(t for _, t in pairs)
    single = [service.chat(QUESTIONS[0], max_new_tokens=128, temperature=0) for _ in range(RUNS)]
    speed = statistics.median(r.tokens_per_s for r in single)
    runs = " / ".join(f"{t:.1f} vs {s:.1f}" for s, t in pairs)
    report(
        "8 local chats at once, 64 tokens each (median of 3 paired runs)",
        f"{together:.1f} s at once", f"{sequential:.1f} s one after another", together / sequential,
        f"runs {runs} s; target ≤ 0.33; single answer {speed:.1f} tokens/s (128 tokens, greedy)",
    )
    theirs = [timed(lambda: transformers_batch(service)) for _ in range(RUNS)]
    report(
        "The same 8 chats: our loop against transformers' continuous batching (generate_batch)",
        f"{together:.1f} s", f"{statistics.median(theirs):.1f} s (runs {' / '.join(f'{t:.1f}' for t in theirs)})",
        together / statistics.median(theirs), "same model, greedy, 64 tokens",
    )


def transformers_batch(service) -> None:  # type: ignore[no-untyped-def]
    from transformers import GenerationConfig

    backend = service.backend()
    tokenizer = backend.tokenizer
    prompts = [tokenizer.apply_chat_template([{"role": "user", "content": q}], add_generation_prompt=True)["input_ids"] for q in QUESTIONS]
    config = GenerationConfig(max_new_tokens=PARAMS["max_new_tokens"], do_sample=False, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id)
    backend.model.generate_batch(inputs=prompts, generation_config=config)


if __name__ == "__main__":
    main()
