"""Start and stop a real OpenAI-compatible server (`transformers serve`) for the test suite.

The API backend talks to an OpenAI-compatible endpoint through
`huggingface_hub.InferenceClient(base_url=...)`. Mocks would only test our idea of that
protocol, so the API tests run against a real `transformers serve` process on 127.0.0.1,
serving a small local model folder. This module holds no pytest fixtures: `conftest.py`
wraps `start_transformers_server` in one, and a script can use it as a context manager.

What `transformers serve` (transformers 5.24) does, which this module relies on:

* Given a model as its positional FORCE_MODEL argument, it loads that model *before*
  uvicorn binds the port, so `GET /health` answering 200 means the model is in memory and
  the first request pays no loading time. A pinned model is never unloaded on idle.
* A pinned server only accepts requests whose `model` is absent or equal, character for
  character, to the FORCE_MODEL string; anything else is a 400. `InferenceClient` always
  sends a model (`"dummy"` when none is given), so callers must pass `RunningServer.model`.
* `GET /v1/models` lists the pinned model under that same string, which lets the readiness
  check make sure the server answering on the port is ours and not a stray one.
* huggingface_hub 2.x refuses *every* request, 127.0.0.1 included, once HF_HUB_OFFLINE=1
  was set before it was imported (`OfflineModeIsEnabled: Cannot reach
  http://127.0.0.1:.../v1/chat/completions`). The server gets HF_HUB_OFFLINE=1 in its own
  environment; the test process must not set it (the core reports it plainly if it does).
* Uvicorn writes its access log to stdout and the server writes its own log to stderr;
  both go to a file here, never to a pipe, so a chatty server can never block on a full
  pipe buffer, and the tail of that file is put in every error.
"""

from __future__ import annotations

import atexit
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

HOST = "127.0.0.1"

#: How many times an auto-picked port is retried when the server cannot bind it. Picking a
#: free port and handing it to a subprocess is inherently racy (another process can take it
#: in between); a retry on a fresh port makes that race harmless.
_BIND_RETRIES = 3

#: Servers started by this process and not yet stopped; stopped at interpreter exit so that
#: an interrupted test run (Ctrl-C, a fixture whose teardown never ran) leaves no server behind.
_LIVE_SERVERS: set[RunningServer] = set()


class ServerStartError(RuntimeError):
    """The server died or did not become ready in time; the message ends with its log tail."""


@dataclass(eq=False)
class RunningServer:
    """A started `transformers serve` process, ready to answer.

    Attributes:
        base_url: What to give `InferenceClient(base_url=...)` or an OpenAI client,
            `http://127.0.0.1:<port>/v1`. (`InferenceClient` also accepts the URL without `/v1`:
            it appends `/v1/chat/completions` itself.)
        model: The value to send as `model` in every request: the absolute folder path the
            server is pinned to. Any other value is rejected with a 400.
        port: The TCP port on 127.0.0.1.
        process: The server process; it leads its own process group.
        log_path: File that receives the server's stdout and stderr.
        command: The server's command line, for error messages and reports (on Linux it is
            exec()ed by a tiny bootstrap that arms the parent-death signal first).
    """

    base_url: str
    model: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    command: list[str] = field(default_factory=list)
    _stopped: bool = field(default=False, init=False, repr=False)

    @property
    def root_url(self) -> str:
        """The server root (`/health`, `/v1/...` live under it)."""
        return f"http://{HOST}:{self.port}"

    def is_running(self) -> bool:
        """Whether the server process is still alive."""
        return self.process.poll() is None

    def log_tail(self, max_chars: int = 4000) -> str:
        """The end of the server's combined stdout/stderr, to explain a failure."""
        return _read_tail(self.log_path, max_chars)

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop the server and every process it started; safe to call more than once.

        SIGTERM lets uvicorn shut down cleanly (it frees the model and exits within a
        second or two); SIGKILL on the whole process group follows if it does not, so no
        orphan survives even if the server is stuck in a generation.
        """
        if self._stopped:
            return
        self._stopped = True
        _LIVE_SERVERS.discard(self)
        _terminate_group(self.process, timeout_s)
        try:
            self.log_path.unlink()
            self.log_path.parent.rmdir()
        except OSError:
            pass

    def __enter__(self) -> RunningServer:  # noqa: PYI034 (typing.Self needs Python 3.11)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def start_transformers_server(
    model_dir: Path,
    *,
    port: int | None = None,
    timeout_s: float = 120.0,
    device: str = "cpu",
    threads: int | None = None,
    extra_args: list[str] | None = None,
    extra_env: Mapping[str, str] | None = None,
    die_with_parent: bool = True,
) -> RunningServer:
    """Start `transformers serve` pinned to `model_dir` on 127.0.0.1 and wait until it answers.

    Args:
        model_dir: A transformers model folder (config.json, weights, tokenizer). A GGUF file
            will not do: convert it first, as `conftest.converted_model_dir` does.
        port: The port to listen on; by default a free one is picked (and re-picked if
            another process takes it before the server binds it).
        timeout_s: Upper bound on the whole start, model loading included (about 6 s for
            SmolLM2-135M in float32 on 2 CPU cores).
        device: Passed to `--device`. "cpu" by default, so the server's outputs match the
            in-process backend's and do not depend on whether the machine has a GPU.
        threads: Torch/OpenMP threads for the server. By default the number of usable CPUs
            capped at 4: enough for a 135M model, and not so many that the server fights
            the test process (which may hold its own copy of the model) for the cores.
        extra_args: More `transformers serve` options (e.g. ["--default-seed", "0"]).
        extra_env: Environment overrides, applied last.
        die_with_parent: On Linux, have the kernel SIGTERM the server when the thread that
            started it dies, so a test run killed with SIGKILL leaves no server behind.
            Start it from a long-lived thread (pytest fixtures run on the main one), or
            pass False if it must outlive the thread that starts it.

    Returns:
        The running server. The caller must `stop()` it (or use it as a context manager).

    Raises:
        FileNotFoundError: `model_dir` is not a model folder.
        ServerStartError: the server exited or was not ready within `timeout_s`; the
            message carries the command line and the tail of the server's log.
    """
    folder = Path(model_dir).resolve()
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} is not a transformers model folder (no config.json)")
    model = str(folder)
    deadline = time.monotonic() + timeout_s

    attempts = 1 if port is not None else _BIND_RETRIES
    last_error: ServerStartError | None = None
    for _ in range(attempts):
        chosen_port = port if port is not None else _free_port()
        server = _launch(model, chosen_port, device, threads, extra_args or [], extra_env or {}, die_with_parent)
        try:
            _wait_until_ready(server, deadline)
            return server
        except ServerStartError as error:
            server.stop()
            last_error = error
            # Only a lost port race is worth another try; anything else would fail again.
            if port is not None or not _lost_port_race(str(error)) or time.monotonic() >= deadline:
                raise
        except BaseException:  # KeyboardInterrupt while waiting: leave nothing behind
            server.stop()
            raise
    assert last_error is not None
    raise last_error


def serve_command(model: str, port: int, device: str = "cpu", extra_args: list[str] | None = None) -> list[str]:
    """The command line that starts the server (exposed so reports and errors can show it).

    The `transformers` console script next to `sys.executable` is the CLI's public entry
    point; `python -m transformers.cli.transformers` (the module it calls) is the fallback
    for an environment without console scripts. Either way it is the interpreter running
    the tests, so the server sees the same packages.
    """
    script = Path(sys.executable).with_name("transformers.exe" if os.name == "nt" else "transformers")
    launcher = [str(script)] if script.is_file() else [sys.executable, "-m", "transformers.cli.transformers"]
    return [
        *launcher,
        "serve",
        model,
        "--host",
        HOST,
        "--port",
        str(port),
        "--device",
        device,
        "--log-level",
        "warning",
        *(extra_args or []),
    ]


# ----- internals -----


def _free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago (the kernel's pick)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _server_env(threads: int | None, extra_env: Mapping[str, str]) -> dict[str, str]:
    """The server's environment: offline, a bounded thread count, unbuffered logs."""
    if threads is None:
        try:
            cpus = len(os.sched_getaffinity(0))  # honours taskset/cgroup CPU pinning
        except AttributeError:  # not on Linux
            cpus = os.cpu_count() or 1
        threads = max(1, min(cpus, 4))
    env = dict(os.environ)
    env.update(
        {
            "HF_HUB_OFFLINE": "1",  # the Hub is unreachable in CI; fail fast instead of retrying
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "OMP_NUM_THREADS": str(threads),
            "MKL_NUM_THREADS": str(threads),
            "OPENBLAS_NUM_THREADS": str(threads),
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",  # the log file is up to date when we read its tail
            "TQDM_DISABLE": "1",  # no progress bars in the log
        }
    )
    env.update(extra_env)
    return env


#: Run by a fresh interpreter that then exec()s the server in its own place: it asks Linux to
#: SIGTERM the process when its parent dies (PR_SET_PDEATHSIG survives exec). Doing this in a
#: throwaway single-threaded interpreter, rather than in a preexec_fn of the multi-threaded
#: test process (torch's thread pools run there), keeps the fork free of lock hazards.
_DIE_WITH_PARENT_BOOTSTRAP = """\
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != int(sys.argv[1]):  # the parent died before the signal was armed
    sys.exit(1)
os.execv(sys.argv[2], sys.argv[2:])
"""


def _with_death_signal(command: list[str]) -> list[str]:
    """Wrap `command` so that the kernel SIGTERMs it when the thread that started it dies.

    It covers what atexit cannot: a test run killed with SIGKILL or crashing. The server
    runs in its own session (so stop() can signal its whole group), which otherwise would
    keep it alive after such a death. Linux only; elsewhere the command is left as it is.
    """
    if not sys.platform.startswith("linux"):
        return command
    return [sys.executable, "-I", "-c", _DIE_WITH_PARENT_BOOTSTRAP, str(os.getpid()), *command]


def _launch(
    model: str,
    port: int,
    device: str,
    threads: int | None,
    extra_args: list[str],
    extra_env: Mapping[str, str],
    die_with_parent: bool,
) -> RunningServer:
    command = serve_command(model, port, device, extra_args)
    log_path = Path(tempfile.mkdtemp(prefix="transformers-serve-")) / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            _with_death_signal(command) if die_with_parent else command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_server_env(threads, extra_env),
            start_new_session=os.name == "posix",  # its own process group, for stop()
        )
    server = RunningServer(
        base_url=f"http://{HOST}:{port}/v1",
        model=model,
        port=port,
        process=process,
        log_path=log_path,
        command=command,
    )
    _LIVE_SERVERS.add(server)
    return server


def _wait_until_ready(server: RunningServer, deadline: float) -> None:
    """Poll until `/health` is 200 and `/v1/models` lists our model, or fail.

    `/health` alone could be answered by some other server that already held the port;
    `/v1/models` naming our folder proves the answer comes from our process.
    """
    delay = 0.1
    while True:
        code = server.process.poll()
        if code is not None:
            raise ServerStartError(_failure(server, f"exited with code {code} before it was ready"))
        if _http_ok(f"{server.root_url}/health") and _lists_model(server):
            return
        if time.monotonic() >= deadline:
            raise ServerStartError(_failure(server, "was not ready in time"))
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2.0) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _lists_model(server: RunningServer) -> bool:
    try:
        with urllib.request.urlopen(f"{server.root_url}/v1/models", timeout=2.0) as response:
            listed = json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return any(entry.get("id") == server.model for entry in listed.get("data", []))


def _lost_port_race(message: str) -> bool:
    lowered = message.lower()
    return "address already in use" in lowered or "errno 98" in lowered


def _failure(server: RunningServer, what: str) -> str:
    return (
        f"transformers serve {what}.\n"
        f"command: {' '.join(server.command)}\n"
        f"--- server log (tail) ---\n{server.log_tail() or '<empty: it was still starting>'}"
    )


def _read_tail(path: Path, max_chars: int) -> str:
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_chars))
            return handle.read().decode("utf-8", errors="replace")
    except OSError as error:
        return f"<log unavailable: {error}>"


def _terminate_group(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """SIGTERM the process group, then SIGKILL it if it lingers; always reap the child.

    Called once per server (stop() is guarded), right after the leader exits: Linux does
    not hand out a process-group id again while any member of that group lives, so the
    final SIGKILL can only reach processes this server started.
    """
    if process.poll() is None:
        _signal_group(process, kill=False)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
    # The group may hold helpers even after the leader exited: kill whatever is left.
    _signal_group(process, kill=True)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:  # pragma: no cover - a process SIGKILL cannot end
        pass


def _signal_group(process: subprocess.Popen[bytes], *, kill: bool) -> None:
    """SIGTERM (or SIGKILL) every process of the server's group; plain terminate/kill elsewhere."""
    if os.name != "posix":
        if process.poll() is None:
            if kill:
                process.kill()
            else:
                process.terminate()
        return
    try:
        os.killpg(process.pid, signal.SIGKILL if kill else signal.SIGTERM)  # pid == pgid: own session
    except (ProcessLookupError, PermissionError):
        pass


@atexit.register
def _stop_leftover_servers() -> None:
    for server in list(_LIVE_SERVERS):
        server.stop(timeout_s=5)
