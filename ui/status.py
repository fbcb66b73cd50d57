"""The model / status panel: what is running, on what, and how much it has used."""

from __future__ import annotations

import gradio as gr

from core import get_textgen_service

_MODE_LABELS = {"local": "Local model (this machine)", "api": "API endpoint"}


def describe_model(mode: str | None) -> str:
    """``get_model_info()`` as a few lines of Markdown, for the chosen mode."""
    service = get_textgen_service()
    info = service.get_model_info()
    chosen = mode or info["mode"]
    usage, cache = info["usage"], info["cache"]
    lines = [
        f"**Mode:** {_MODE_LABELS.get(chosen, chosen)}",
        f"**Model:** {info['model_name'] if chosen == info['mode'] else _other_model_name(chosen)}",
        f"**Device:** {info['device']}" if chosen == info["mode"] else "",
        f"**Output limit:** {info['max_output_tokens']} tokens · **Context window:** {info['context_window']} tokens",
        f"**Used so far:** {usage['requests']} answers · {usage['prompt_tokens']} prompt tokens · {usage['output_tokens']} answer tokens",
        f"**Cache:** {cache['hits']} hits · {cache['misses']} misses",
    ]
    if info.get("endpoint") and chosen == "api":
        lines.insert(2, f"**Endpoint:** {info['endpoint']}")
    return "  \n".join(line for line in lines if line)


def _other_model_name(mode: str) -> str:
    settings = get_textgen_service().settings
    return settings.model if mode == "api" else (settings.local_model or "SmolLM2-135M-Instruct (embedded)")


def build_status_panel(mode_state: gr.State) -> None:
    """A collapsible panel; the backend choice is per browser session (``mode_state``)."""
    service = get_textgen_service()
    modes = list(service.available_modes)
    with gr.Accordion("Model and status", open=False, elem_id="status-panel"):
        info = gr.Markdown(describe_model(None), elem_id="model-info")
        with gr.Row():
            choice = gr.Radio(
                [(_MODE_LABELS[m], m) for m in modes],
                value=service.settings.mode,
                label="Answer with",
                visible=len(modes) > 1,
                interactive=True,
            )
            refresh = gr.Button("Refresh", size="sm")
    choice.change(lambda m: (m, describe_model(m)), choice, [mode_state, info], api_visibility="private")
    refresh.click(describe_model, mode_state, info, api_visibility="private")
