"""``/metrics`` for Prometheus on the app's own server: the generator's metrics and the queue's.

The generation metrics live in :mod:`core.generation.telemetry`; the queue is Gradio's, so its two
gauges are read here, at scrape time.
"""

from __future__ import annotations

import gradio as gr
from prometheus_client import Gauge, make_asgi_app

QUEUE_WAITING = Gauge("scribes_queue_waiting", "Requests waiting in Gradio's queue for a worker.")
QUEUE_ACTIVE = Gauge("scribes_queue_active", "Requests being worked on now.")


def mount_metrics(blocks: gr.Blocks) -> None:
    """Serve ``/metrics`` beside a launched app (``launch(prevent_thread_lock=True)`` first)."""
    queue = blocks._queue  # Gradio offers no public accessor for its queue
    QUEUE_WAITING.set_function(lambda: len(queue))
    QUEUE_ACTIVE.set_function(queue.get_active_worker_count)
    blocks.app.mount("/metrics", make_asgi_app())
