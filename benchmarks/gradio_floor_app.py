"""Gradio's floor for row 5a: a chat of the app's shape whose function does nothing but wait.

The same ``gr.ChatInterface`` endpoint as the app's (six more inputs, two states among
them, two more outputs), whose function waits 0.5 s, as the benchmark's endpoint does, and
streams its answer in two updates. No model, no HTTP call, no other tab: what Gradio itself
costs per chat on this machine. ``FLOOR_HANDLER=async`` makes it an async generator.
Started by ``bench_app_load.py --floor``.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator

import gradio as gr

ANSWER = "Grace is the free favour of God."
WAIT_S = 0.5


def respond(message: str, history: list[dict], *extra: object) -> Iterator[tuple[str, str, str]]:
    time.sleep(WAIT_S)
    yield ANSWER[:8], "", ""
    yield ANSWER, "details", "passages"


async def respond_async(message: str, history: list[dict], *extra: object) -> AsyncIterator[tuple[str, str, str]]:
    await asyncio.sleep(WAIT_S)
    yield ANSWER[:8], "", ""
    yield ANSWER, "details", "passages"


with gr.Blocks() as demo:
    inputs = [gr.Textbox(), gr.Textbox(), gr.Checkbox(), gr.Slider(1, 10, 5), gr.State(None), gr.State(None)]
    handler = respond_async if os.environ.get("FLOOR_HANDLER") == "async" else respond
    gr.ChatInterface(handler, additional_inputs=inputs, additional_outputs=[gr.Markdown(), gr.Markdown()], api_name="chat")

if __name__ == "__main__":
    demo.queue(default_concurrency_limit=128, max_size=256)  # as app.py
    demo.launch(server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")), max_threads=144)
