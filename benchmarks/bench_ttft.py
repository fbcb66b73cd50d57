"""2. Time to first token, streaming, for a ~300-token prompt, against plain transformers.

Ours: ``TextGenService.stream_chat`` on the local backend (chat template, prompt fitting,
streaming thread). Baseline: ``generate()`` with a ``TextIteratorStreamer`` in float32.
Target: under 1 s for the embedded model.

    .venv/bin/python benchmarks/bench_ttft.py
"""

from __future__ import annotations

import statistics
import threading
import time

from common import local_service, measure_apart, plain_float32_model, report

#: ~300 tokens of question: a pastor pasting a passage and asking about it.
LONG_PROMPT = (
    "Here is a passage I am preaching on next Sunday: " + "Blessed are the poor in spirit, for theirs is the kingdom of heaven. " * 18
    + "What should I stress about humility?"
)
RUNS = 5


def ours() -> list[float]:
    service = local_service()
    prompt_tokens = service.chat(LONG_PROMPT, max_new_tokens=1, temperature=0).prompt_tokens
    print(f"prompt: {prompt_tokens} tokens")

    def measure() -> float:
        started = time.perf_counter()
        stream = service.stream_chat(LONG_PROMPT, max_new_tokens=16, temperature=0)
        next(u for u in stream if u.delta)
        elapsed = time.perf_counter() - started
        stream.close()
        return elapsed

    return [measure() for _ in range(RUNS)]


def plain_streaming() -> list[float]:
    from transformers import TextIteratorStreamer

    model, tokenizer = plain_float32_model()

    def measure() -> float:
        started = time.perf_counter()
        inputs = tokenizer.apply_chat_template([{"role": "user", "content": LONG_PROMPT}], add_generation_prompt=True, return_dict=True, return_tensors="pt")
        streamer = TextIteratorStreamer(tokenizer, skip_prompt=True)
        worker = threading.Thread(target=lambda: model.generate(**inputs, max_new_tokens=16, do_sample=False, streamer=streamer))
        worker.start()
        next(t for t in streamer if t)
        elapsed = time.perf_counter() - started
        worker.join()
        return elapsed

    return [measure() for _ in range(RUNS)]


def main() -> None:
    seconds = measure_apart({"ours": ours, "plain": plain_streaming})
    ours_s, base_s = statistics.median(seconds["ours"]), statistics.median(seconds["plain"])
    report("Time to first token (long prompt)", f"{ours_s * 1000:.0f} ms", f"{base_s * 1000:.0f} ms (plain streamer, float32)", base_s / ours_s, "target < 1 s")


if __name__ == "__main__":
    main()
