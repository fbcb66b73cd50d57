"""A Hugging Face Hub on 127.0.0.1 that serves one file, and fails on cue, for the download tests.

``hf_hub_download`` asks ``HEAD /{repo}/resolve/{revision}/{filename}`` for the file's commit,
ETag and size, then fetches the bytes with ``GET`` on the same path (with ``Range`` when it
resumes). :class:`HubServer` is the fault server (its script of scenarios, its records of
requests, its clean shutdown) with a handler for those two methods; :class:`HubFile` and
:class:`Hangup` play the Hub and a dead connection, and fault_server's ``Status`` plays
its error answers. The request huggingface_hub makes for its telemetry registry is
answered (and recorded) without taking a scenario.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Self

from fault_server import _EMPTY_HEADERS, HOST, FaultServer, Scenario, _ChatHandler, _ServerGone

#: Where huggingface_hub fetches its telemetry registry (once a day, into ``HF_HOME``) before
#: its first request; answered outside the script, since it is no part of a download.
REGISTRY_PATH = "/api/agent-harnesses"

#: The header a Hub 404 carries when the repository exists but the file does not.
ENTRY_NOT_FOUND = {"X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"}


def resolve_path(repo_id: str, revision: str, filename: str) -> str:
    """The URL path under which the Hub serves a file."""
    return f"/{repo_id}/resolve/{revision}/{filename}"


@dataclass(frozen=True)
class HubFile:
    """The file as the Hub serves it, at ``path`` only (anything else: a 404 like the Hub's).

    HEAD gives the commit, the ETag (the file's sha256, as for the Hub's LFS files) and the
    size; GET gives the bytes, from ``Range``'s offset on. ``cut_after`` closes the
    connection after that many bytes of the body (a download cut mid-file).
    """

    data: bytes = field(repr=False)
    path: str
    commit: str
    cut_after: int | None = None

    def play(self, reply: _HubHandler) -> str:
        if reply.path != self.path:
            reply.send_body(404, b"Entry not found", "text/plain", ENTRY_NOT_FOUND)
            return "not found"
        start = _range_start(reply.headers.get("Range"))
        body = self.data[start:]
        headers = {
            "ETag": f'"{hashlib.sha256(self.data).hexdigest()}"',
            "X-Repo-Commit": self.commit,
            "Accept-Ranges": "bytes",
        }
        if start:
            headers["Content-Range"] = f"bytes {start}-{len(self.data) - 1}/{len(self.data)}"
        if self.cut_after is None or reply.command == "HEAD":
            reply.send_body(206 if start else 200, body, "application/octet-stream", headers)
            return "served"
        reply.send_head(206 if start else 200, len(body), "application/octet-stream", headers)
        reply.wfile.write(body[: self.cut_after])
        reply.wfile.flush()
        return "cut"


@dataclass(frozen=True)
class EmptyRegistry:
    """The telemetry registry with no entries, as huggingface_hub reads it."""

    def play(self, reply: _HubHandler) -> str:
        reply.send_json(200, {"standardEnvVars": [], "harnesses": {}})
        return "registry"


@dataclass(frozen=True)
class Hangup:
    """Close the connection without a word: a server that went away."""

    def play(self, reply: _HubHandler) -> str:
        return "hung up"


def _range_start(header: str | None) -> int:
    match = re.fullmatch(r"bytes=(\d+)-", header or "")
    return int(match.group(1)) if match else 0


class _HubHandler(_ChatHandler):
    """Answers HEAD and GET with the next scenario; HEAD answers carry no body, as HTTP says."""

    def do_HEAD(self) -> None:  # the names http.server looks for
        self._play_next()

    def do_GET(self) -> None:
        self._play_next()

    def _play_next(self) -> None:
        self.close_connection = True
        owner = self.server.owner
        scenario: Scenario = EmptyRegistry() if self.path == REGISTRY_PATH else owner.next_scenario()
        record = owner.record(self.command, self.path, dict(self.headers.items()), b"", scenario)
        outcome = "fault server error"  # kept only if the scenario itself raised
        try:
            outcome = scenario.play(self)  # type: ignore[arg-type]
        except _ServerGone:
            outcome = "server closed"
        except (ConnectionError, TimeoutError):
            outcome = "client disconnected"
        finally:
            owner.finish(record, outcome)

    def send_head(self, status: int, length: int, content_type: str, headers: Mapping[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def send_body(
        self, status: int, body: bytes, content_type: str, headers: Mapping[str, str] = _EMPTY_HEADERS
    ) -> None:
        self.send_head(status, len(body), content_type, headers)
        if self.command != "HEAD":
            self.wfile.write(body)


class HubServer(FaultServer):
    """A Hub endpoint on 127.0.0.1 (for ``HF_ENDPOINT``) that follows a script of scenarios."""

    def start(self) -> Self:
        super().start()
        # Set before anyone knows the port, so no request can meet the chat handler.
        self._httpd.RequestHandlerClass = _HubHandler  # type: ignore[union-attr]
        return self

    def __enter__(self) -> Self:
        return self.start()

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.port}"
