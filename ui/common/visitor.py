"""Who is asking: a visitor signed in with Hugging Face (on Spaces) brings their own token.

Handlers take an ``oauth_token: gr.OAuthToken | None`` parameter, which Gradio fills in
by its type, and generate through :func:`service_for`, so API requests carry the
visitor's token and the host's ``HF_TOKEN`` is only the fallback.
"""

from __future__ import annotations

import os

import gradio as gr

from core import TextGenService, get_textgen_service


def service_for(oauth_token: gr.OAuthToken | None) -> TextGenService:
    """The service as this visitor uses it (the host's when nobody is signed in)."""
    return get_textgen_service().for_token(oauth_token.token if oauth_token else None)


def sign_in_offered() -> bool:
    """Only a Space with ``hf_oauth: true`` has an OAuth app (it sets OAUTH_CLIENT_ID) to sign in with."""
    return bool(os.environ.get("OAUTH_CLIENT_ID"))
