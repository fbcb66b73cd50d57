"""The Chat tab: pastors ask questions and watch answers stream in."""

from __future__ import annotations

from collections.abc import Iterator

import gradio as gr

from core import GenerationError, StreamInterruptedError, get_textgen_service
from core.results import GenerationResult

DEFAULT_SYSTEM_PROMPT = (
    "You are a warm, careful pastoral assistant. Answer questions about the Bible and the "
    "Christian life in plain words. Support what you say with Bible verses, cited by book, "
    "chapter and verse (for example John 3:16), and quote them accurately. If the Bible does "
    "not address something, or a verse or book does not exist, say so rather than inventing one. "
    "For matters of health, safety or crisis, gently encourage the person to seek help from a "
    "pastor, doctor or counsellor."
)


def describe_result(result: GenerationResult) -> str:
    """The figures and flags shown under an answer, in plain words."""
    figures = f"{result.output_tokens} tokens · {result.duration_ms / 1000:.1f} s · {result.tokens_per_s:.1f} tokens/s"
    notes = []
    if result.validation.repetitive:
        notes.append("⚠ The answer repeats itself.")
    if result.validation.too_short:
        notes.append("⚠ The answer is very short.")
    if result.validation.hit_token_limit:
        notes.append(f"The answer reached the {result.params.max_new_tokens}-token limit and may be cut off.")
    if result.truncation:
        notes.append(result.truncation.describe())
    if result.cached:
        notes.append("Answered from the cache (same question and settings as before).")
    return "  \n".join([figures, *notes])


def respond(message: str, history: list[dict], system_prompt: str, context: str) -> Iterator[tuple[str, str]]:
    """Stream one answer; errors become plain sentences and the chat stays usable."""
    messages = [{"role": m["role"], "content": m["content"]} for m in history if isinstance(m.get("content"), str)]
    messages.append({"role": "user", "content": message})
    passages = [p for p in context.split("\n\n") if p.strip()] if context else []
    text = ""
    try:
        for update in get_textgen_service().stream_chat(messages, system_prompt=system_prompt or None, context=passages):
            text = update.text
            yield text, describe_result(update.result) if update.result else ""
    except StreamInterruptedError as error:
        yield error.partial_text, f"⚠ {error.message}"
    except GenerationError as error:
        raise gr.Error(error.message, print_exception=False) from error


def build_chat_tab() -> None:
    with gr.Tab("Chat"):
        with gr.Accordion("Instructions and context", open=False):
            system_prompt = gr.Textbox(DEFAULT_SYSTEM_PROMPT, label="System prompt", lines=4)
            context = gr.Textbox(
                label="Context (optional)",
                lines=4,
                placeholder="Passages or sermon notes the answer must rest on. Separate passages with a blank line.",
            )
        details = gr.Markdown(elem_id="answer-details")
        gr.ChatInterface(
            respond,
            additional_inputs=[system_prompt, context],
            additional_outputs=[details],
            editable=True,
            chatbot=gr.Chatbot(label="Answers", elem_id="chat-answers", height=480),
            textbox=gr.Textbox(placeholder="Ask a question about the Bible…", label="Question", elem_id="chat-question"),
            api_name="chat",
        )
