"""A real feature-extraction endpoint on 127.0.0.1 for the embedding re-ranking tests, well or badly behaved.

It embeds each text as its letter counts (:func:`letter_vector`), so a test can compute the
order the re-ranker must produce; ``mode`` makes it answer an error status, one vector
too few, or one vector per token (a model without pooling). Requests are recorded.
"""

from __future__ import annotations

import json
import string
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Literal

Mode = Literal["ok", "status-500", "one-short", "per-token"]


def letter_vector(text: str) -> list[float]:
    lower = text.lower()
    return [float(lower.count(letter)) for letter in string.ascii_lowercase] + [1.0]


@dataclass
class EmbeddingServer:
    url: str
    mode: Mode = "ok"
    requests: list[dict] = field(default_factory=list)


@contextmanager
def embedding_server(mode: Mode = "ok") -> Iterator[EmbeddingServer]:
    state = EmbeddingServer("", mode)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state.requests.append(body)
            texts = body["inputs"] if isinstance(body["inputs"], list) else [body["inputs"]]
            if state.mode == "status-500":
                self._send(500, {"error": "the model crashed"})
            elif state.mode == "one-short":
                self._send(200, [letter_vector(t) for t in texts[:-1]])
            elif state.mode == "per-token":
                self._send(200, [[letter_vector(t), letter_vector(t)] for t in texts])
            else:
                self._send(200, [letter_vector(t) for t in texts])

        def _send(self, status: int, payload: object) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/embed"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
