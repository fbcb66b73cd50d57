"""1. Local decode speed: the service's local backend against plain transformers ``generate()``.

Same model (the embedded SmolLM2-135M-Instruct, converted once), same prompt, greedy, 128
new tokens. Baseline: ``AutoModelForCausalLM`` in float32 and ``generate()``, as a
developer would write it. Ours: ``TextGenService.chat`` as configured (HF_LOCAL_DTYPE and
HF_LOCAL_QUANTIZATION, default auto). llama.cpp on the same GGUF is measured too when
llama-cpp-python is installed. Each side runs in a process of its own.

    .venv/bin/python benchmarks/bench_decode.py
"""

from __future__ import annotations

import importlib.util
import statistics
import time

import torch
from common import PROMPT, local_service, measure_apart, plain_float32_model, report, timed

from core.generation.model_files import embedded_gguf

NEW_TOKENS = 128
RUNS = 3


def ours() -> list[float]:
    service = local_service()
    service.chat(PROMPT, max_new_tokens=8, temperature=0)  # load and warm up
    details = dict(service.backend().info().details)
    print(f"ours: {details['dtype']}, quantization {details['quantization']}")
    rates = []
    for _ in range(RUNS):
        result = service.chat(PROMPT, max_new_tokens=NEW_TOKENS, temperature=0, repetition_penalty=1.0)
        rates.append(result.output_tokens / (result.duration_ms / 1000))
    return rates


def plain_transformers() -> list[float]:
    model, tokenizer = plain_float32_model()
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}], add_generation_prompt=True, return_dict=True, return_tensors="pt")
    with torch.inference_mode():
        model.generate(**inputs, max_new_tokens=8, do_sample=False)
        seconds = [timed(lambda: model.generate(**inputs, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False)) for _ in range(RUNS)]
    return [NEW_TOKENS / s for s in seconds]


def llama_cpp() -> list[float]:
    from llama_cpp import Llama

    llm = Llama(model_path=str(embedded_gguf()), n_threads=2, verbose=False)
    chat = [{"role": "user", "content": PROMPT}]
    rates = []
    for _ in range(RUNS):
        started = time.perf_counter()
        answer = llm.create_chat_completion(chat, max_tokens=NEW_TOKENS, temperature=0)
        rates.append(answer["usage"]["completion_tokens"] / (time.perf_counter() - started))
    return rates


def main() -> None:
    parts = {"ours": ours, "plain": plain_transformers}
    has_llama_cpp = importlib.util.find_spec("llama_cpp") is not None
    if has_llama_cpp:
        parts["llama_cpp"] = llama_cpp
    rates = measure_apart(parts)
    median = {name: statistics.median(values) for name, values in rates.items()}

    def runs(name: str) -> str:
        return "/".join(f"{v:.1f}" for v in rates[name])

    report("Local decode (tokens/s, 128 new tokens)", f"{median['ours']:.1f}", f"{median['plain']:.1f} (plain generate, float32)",
           median["ours"] / median["plain"], f"runs: ours {runs('ours')}, base {runs('plain')}")
    if has_llama_cpp:
        report("Local decode vs llama.cpp (tokens/s)", f"{median['ours']:.1f}", f"{median['llama_cpp']:.1f} (llama.cpp, same GGUF)",
               median["ours"] / median["llama_cpp"], f"runs: {runs('llama_cpp')}")
    else:
        print("llama.cpp: llama-cpp-python is not installed; skipped.")


if __name__ == "__main__":
    main()
