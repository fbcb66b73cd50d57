"""1. Local decode speed: the service's local backend against plain transformers ``generate()``.

Same model (the embedded SmolLM2-135M-Instruct, converted once), same prompt, greedy, 128
new tokens forced. Baseline: ``AutoModelForCausalLM`` in float32 and ``generate()``, as a
developer would write it. Ours: ``TextGenService.chat`` (precision chosen by HF_LOCAL_DTYPE,
default auto). llama.cpp on the same GGUF is measured too when llama-cpp-python is installed.

    .venv/bin/python benchmarks/bench_decode.py
"""

from __future__ import annotations

import importlib.util

import torch
from common import PROMPT, median_of, report, timed

from core import Settings, TextGenService
from core.model_files import conversion_folder, embedded_gguf

NEW_TOKENS = 128
RUNS = 3


def main() -> None:
    settings = Settings.from_env()
    service = TextGenService(Settings(use_api=False, cache_dir=settings.cache_dir, cache_size=0, local_dtype=settings.local_dtype))
    service.chat(PROMPT, max_new_tokens=8, temperature=0)  # load and warm up
    dtype = dict(service.backend().info().details)["dtype"]

    def ours() -> float:
        result = service.chat(PROMPT, max_new_tokens=NEW_TOKENS, temperature=0, repetition_penalty=1.0)
        return result.output_tokens / (result.duration_ms / 1000)

    ours_tps, ours_all = median_of(RUNS, ours)
    base_tps, base_all = median_of(RUNS, plain_transformers())
    report(
        "Local decode (tokens/s, 128 new tokens)", f"{ours_tps:.1f} ({dtype})", f"{base_tps:.1f} (plain generate, float32)",
        ours_tps / base_tps, f"runs: ours {ours_all[0]:.1f}/{ours_all[1]:.1f}/{ours_all[2]:.1f}, base {base_all[0]:.1f}/{base_all[1]:.1f}/{base_all[2]:.1f}",
    )
    if importlib.util.find_spec("llama_cpp") is None:
        print("llama.cpp: llama-cpp-python is not installed; skipped.")
    else:
        cpp_tps, _ = median_of(RUNS, llama_cpp())
        report("Local decode vs llama.cpp (tokens/s)", f"{ours_tps:.1f}", f"{cpp_tps:.1f} (llama.cpp, same GGUF)", ours_tps / cpp_tps)


def plain_transformers():  # type: ignore[no-untyped-def]
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = conversion_folder(embedded_gguf(), Settings.from_env().cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    inputs = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}], add_generation_prompt=True, return_dict=True, return_tensors="pt")

    def measure() -> float:
        with torch.inference_mode():
            seconds = timed(lambda: model.generate(**inputs, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False))
        return NEW_TOKENS / seconds

    return measure


def llama_cpp():  # type: ignore[no-untyped-def]
    from llama_cpp import Llama

    llm = Llama(model_path=str(embedded_gguf()), n_threads=2, verbose=False)

    def measure() -> float:
        seconds = timed(lambda: llm.create_chat_completion([{"role": "user", "content": PROMPT}], max_tokens=NEW_TOKENS, temperature=0))
        return NEW_TOKENS / seconds

    return measure


if __name__ == "__main__":
    main()
