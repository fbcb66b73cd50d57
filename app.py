"""Scribes TextGen Studio: the Gradio app that Hugging Face Spaces runs."""

from __future__ import annotations

import logging
import os

import gradio as gr

from ui.chat import build_chat_tab

logging.basicConfig(level=logging.INFO, format="%(message)s")

with gr.Blocks(title="Scribes TextGen Studio") as demo:
    gr.Markdown("# Scribes TextGen Studio")
    build_chat_tab()


def launch_settings() -> dict[str, object]:
    """127.0.0.1 locally; 0.0.0.0 on Spaces (which sets SPACE_ID); both overridable."""
    on_spaces = bool(os.environ.get("SPACE_ID"))
    return {
        "server_name": os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0" if on_spaces else "127.0.0.1"),
        "server_port": int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
    }


if __name__ == "__main__":
    demo.queue().launch(**launch_settings())
