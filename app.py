"""Scribes TextGen Studio: the Gradio app that Hugging Face Spaces runs. Assembles the tabs."""

from __future__ import annotations

import logging
import os

import gradio as gr

from core import GenerationParams, get_textgen_service
from ui.chat import build_chat_tab
from ui.evaluate.tab import build_evaluate_tab
from ui.missing_modules import record_missing_modules
from ui.prometheus import mount_metrics
from ui.sessions import use_lean_sessions
from ui.status import build_status_panel
from ui.tune import build_tune_tab

logging.basicConfig(level=logging.INFO, format="%(message)s")

#: API-mode chats wait on the network, not the CPU, so 100+ run at once (the spec's target);
#: the local model takes its answers in turn on its one thread. Beyond the queue's size,
#: people get a "busy" message.
CONCURRENCY_LIMIT = 128
QUEUE_SIZE = 256
#: Uploads larger than this are refused by the server before any of our code reads them;
#: question sets have their own, smaller limit (5 MB) with a message that says so.
MAX_UPLOAD = "10mb"
#: Every hour, files older than an hour leave Gradio's cache: anyone holding a file's URL
#: (a results export, an upload) could fetch it for as long as it stays there.
DELETE_CACHE = (3600, 3600)

with gr.Blocks(title="Scribes TextGen Studio", delete_cache=DELETE_CACHE) as demo:
    gr.Markdown("# Scribes TextGen Studio\nTest, tune and evaluate answers to Bible and pastoral questions.")
    sampling = gr.State(GenerationParams.configured(get_textgen_service().settings))  # per browser session
    mode = gr.State(None)  # None: the configured backend
    build_status_panel(mode)
    with gr.Tabs() as tabs:
        build_chat_tab(sampling, mode)
        build_tune_tab(sampling, mode, tabs)
        build_evaluate_tab(sampling, mode)


def launch_settings() -> dict[str, object]:
    """127.0.0.1 locally; 0.0.0.0 on Spaces (which sets SPACE_ID); both overridable."""
    on_spaces = bool(os.environ.get("SPACE_ID"))
    return {
        "server_name": os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0" if on_spaces else "127.0.0.1"),
        "server_port": int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        "max_threads": CONCURRENCY_LIMIT + 16,
        "max_file_size": MAX_UPLOAD,
        "state_session_capacity": get_textgen_service().settings.sessions_kept,
    }


if __name__ == "__main__":
    record_missing_modules()
    use_lean_sessions()
    get_textgen_service().load_local_model_in_background()
    demo.queue(default_concurrency_limit=CONCURRENCY_LIMIT, max_size=QUEUE_SIZE)
    demo.launch(**launch_settings(), prevent_thread_lock=True)
    mount_metrics(demo)
    demo.block_thread()
