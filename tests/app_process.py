"""Start the real app (`python app.py`) on a free 127.0.0.1 port for client and browser tests."""

from __future__ import annotations

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
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


@dataclass
class RunningApp:
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def port(self) -> int:
        return int(self.url.rstrip("/").rsplit(":", 1)[1])

    def rss_mib(self) -> float:
        """The app process's resident memory."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS for the app process")

    def cpu_s(self) -> float:
        """CPU time the app process has used so far, in all its threads (user and system)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=15)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_app(
    env: Mapping[str, str], *, timeout_s: float = 180, port: int | None = None, repo: Path = REPO, script: str = "app.py"
) -> RunningApp:
    """Launch the app with ``env`` added to ours and wait until its page answers.

    ``port``: a restart on the same port is the same site to a browser, whose storage
    (the reviewer's name) it keeps; by default a free port. ``repo``: another checkout
    (a benchmark's baseline commit) run by the same interpreter. ``script``: another app
    in ``repo`` (a benchmark's reference app).
    """
    port = port or free_port()
    log_path = Path(tempfile.mkstemp(prefix="app-", suffix=".log")[1])
    full_env = {**os.environ, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1", **env}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, script], cwd=repo, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    app = RunningApp(f"http://127.0.0.1:{port}/", process, log_path)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with {process.returncode}:\n{app.log_tail()}")
        try:
            with urllib.request.urlopen(app.url, timeout=2) as response:
                if response.status == 200:
                    return app
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    app.stop()
    raise RuntimeError(f"the app did not answer within {timeout_s:g} s:\n{app.log_tail()}")
