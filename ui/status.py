"""The model / status panel: what is running, on what, and how much it has used."""

from __future__ import annotations

import gradio as gr

from core import get_textgen_service
from ui.common.visitor import service_for, sign_in_offered

_MODE_LABELS = {"local": "Local model (this machine)", "api": "API endpoint"}


def describe_model(mode: str | None, oauth_token: gr.OAuthToken | None = None) -> str:
    """``get_model_info()`` as a few lines of Markdown, for the chosen mode and this visitor."""
    service = service_for(oauth_token)
    info = service.get_model_info()
    chosen = mode or info["mode"]
    usage, cache = info["usage"], info["cache"]
    lines = [
        f"**Mode:** {_MODE_LABELS.get(chosen, chosen)}",
        f"**Model:** {info['model_name'] if chosen == info['mode'] else _other_model_name(chosen)}",
        f"**Device:** {info['device']}{_precision(info.get('details', {}))}" if chosen == info["mode"] else "",
        f"**Output limit:** {info['max_output_tokens']} tokens · **Context window:** {info['context_window']} tokens",
        f"**Used so far:** {usage['requests']} answers · {usage['prompt_tokens']} prompt tokens · {usage['output_tokens']} answer tokens",
        f"**Cache:** {cache['hits']} hits · {cache['misses']} misses",
    ]
    if info.get("endpoint") and chosen == "api":
        lines.insert(2, f"**Endpoint:** {info['endpoint']}")
    if oauth_token is not None:
        lines.append("**Signed in:** API requests use your own Hugging Face token; the usage above is yours.")
    return "  \n".join(line for line in lines if line)


def _precision(details: dict[str, str]) -> str:
    """How the local model computes, for developers comparing speeds: " · bfloat16 · int4 weights"."""
    parts = [details["dtype"]] if "dtype" in details else []
    if details.get("quantization", "none") != "none":
        parts.append(f"{details['quantization']} weights")
    return "".join(f" · {part}" for part in parts)


def _other_model_name(mode: str) -> str:
    settings = get_textgen_service().settings
    return settings.model if mode == "api" else (settings.local_model or "SmolLM2-135M-Instruct (embedded)")


def choose_mode(mode: str, oauth_token: gr.OAuthToken | None = None) -> tuple[str, str]:
    return mode, describe_model(mode, oauth_token)


def build_status_panel(mode_state: gr.State) -> None:
    """A collapsible panel; the backend choice is per browser session (``mode_state``)."""
    service = get_textgen_service()
    # a visitor who signs in brings a token, so API mode is there for them even where the host set none
    modes = ["api", "local"] if sign_in_offered() else list(service.available_modes)
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
            if sign_in_offered():
                gr.LoginButton()
    choice.change(choose_mode, choice, [mode_state, info], api_visibility="private")
    refresh.click(describe_model, mode_state, info, api_visibility="private")
