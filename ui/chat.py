"""The Chat tab: pastors ask questions, watch answers stream in, and check the verses cited."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import aclosing

import anyio
import gradio as gr

from core import GenerationError, GenerationParams, StreamInterruptedError, get_textgen_service
from core.evaluation.question_sets import append_to_question_set, load_question_set
from core.generation.prompting import DEFAULT_SYSTEM_PROMPT
from core.generation.types import GenerationResult
from core.retrieval import MAX_PASSAGES
from core.stores.feedback import Feedback, feedback_store
from ui.common.citations import citations_markdown, passages_markdown
from ui.common.grounding import DEFAULT_PASSAGES, passages_for, warm_retriever
from ui.common.sets import EVAL_SETS
from ui.common.visitor import service_for

EXAMPLES_PER_SET = 2
#: An answer is redrawn at most this often (the first words at once): each redraw costs the app
#: work for every visitor at once, and words that come faster are not read faster.
REDRAW_EVERY_S = 0.05


def example_questions() -> list[str]:
    """A couple of questions from each shipped question set."""
    questions: list[str] = []
    for path in sorted(EVAL_SETS.glob("*.csv")):
        questions += [row.question for row in load_question_set(path).rows[:EXAMPLES_PER_SET]]
    return questions


def describe_result(result: GenerationResult) -> str:
    """The figures and flags shown under an answer, in plain words."""
    figures = f"{result.output_tokens} tokens · {result.duration_ms / 1000:.1f} s · {result.tokens_per_s:.1f} tokens/s"
    notes = []
    if result.validation.repetitive:
        notes.append("⚠️ The answer repeats itself.")
    if result.validation.too_short:
        notes.append("⚠️ The answer is very short.")
    if result.validation.hit_token_limit:
        notes.append(f"The answer reached the {result.params.max_new_tokens}-token limit and may be cut off.")
    if result.truncation:
        notes.append(result.truncation.describe())
    if result.cached:
        notes.append("Answered from the cache (same question and settings as before).")
    return "  \n".join([figures, *notes])


def shown(answer: str) -> str:
    """An answer as the chat displays it: any HTML the model wrote shows as text and runs nothing.

    The chat renders Markdown, and Gradio's sanitiser would silently drop a ``<script>``
    or an ``onerror=`` from the answer; people testing answers must see what the model
    really wrote. ``&`` and ``<`` become entities, so no tag can start; Markdown (and a
    ``>`` blockquote) still renders. :func:`as_written` is the exact inverse.
    """
    return answer.replace("&", "&amp;").replace("<", "&lt;")


def as_written(displayed: str) -> str:
    return displayed.replace("&lt;", "<").replace("&amp;", "&")


def message_text(message: Mapping[str, object]) -> str:
    """The text of a chat message: Gradio 6 hands content over as a list of typed parts."""
    content = message.get("content")
    if isinstance(content, str):
        text = content
    else:
        parts = content if isinstance(content, list) else []
        text = "".join(str(p.get("text", "")) for p in parts if isinstance(p, dict) and p.get("type") == "text")
    return as_written(text) if message.get("role") == "assistant" else text


async def respond(
    message: str,
    history: list[dict],
    system_prompt: str,
    context: str,
    ground: bool,
    passage_count: float | None,
    sampling: GenerationParams,
    mode: str | None,
    oauth_token: gr.OAuthToken | None = None,
) -> AsyncIterator[tuple[str, str, str]]:
    """Stream one answer; errors become plain sentences and the chat stays usable.

    With grounding on, the passages found for the question go to the model after the
    context (and are the first thing cut when the prompt must fit), and are shown under
    the answer. The handler runs on Gradio's event loop: an answer from an endpoint holds
    no thread while it streams, which is what lets many people ask at once.
    """
    messages = [{"role": m["role"], "content": message_text(m)} for m in history if m.get("role") in ("user", "assistant")]
    messages.append({"role": "user", "content": message})
    given = [p for p in context.split("\n\n") if p.strip()] if context else []
    found = await anyio.to_thread.run_sync(passages_for, message, passage_count or DEFAULT_PASSAGES) if ground else ()
    shown_passages = passages_markdown(found)
    try:
        stream = service_for(oauth_token).astream_chat(
            messages, system_prompt=system_prompt or None, context=given, retrieved=[p.as_context() for p in found], mode=mode,
            **sampling.overrides(),
        )
        shown_at = 0.0
        async with aclosing(stream):  # a Stop closes this generator: the answer's stream ends with it
            async for update in stream:
                if update.result is None:
                    if time.monotonic() - shown_at < REDRAW_EVERY_S:
                        continue
                    shown_at = time.monotonic()
                    yield shown(update.text), "", shown_passages
                else:
                    yield shown(update.text), citations_markdown(update.text, found) + "\n\n" + describe_result(update.result), shown_passages
    except StreamInterruptedError as error:
        yield shown(error.partial_text), f"⚠️ {error.message}", shown_passages
    except GenerationError as error:
        raise gr.Error(error.message, print_exception=False) from error


def _exchange(history: list[dict], index: int) -> tuple[str, str]:
    """The question and answer around the assistant message at ``index``."""
    question = next((message_text(m) for m in reversed(history[:index]) if m["role"] == "user"), "")
    return question, message_text(history[index])


def save_feedback(data: gr.LikeData, history: list[dict], sampling: GenerationParams, system_prompt: str, mode: str | None) -> None:
    """👍/👎 on an answer, stored with its question and the settings that produced it."""
    if data.liked is None or not history:
        return
    index = data.index if isinstance(data.index, int) else data.index[0]
    question, answer = _exchange(history, index)
    service = get_textgen_service()
    settings = {**sampling.overrides(), "system_prompt": system_prompt, "mode": mode or service.settings.mode, "model": service.get_model_info()["model_name"]}
    feedback_store(service.settings.data_dir).add(Feedback(question, answer, bool(data.liked), settings))
    gr.Info("Thanks: your feedback is saved.")


def add_to_question_set(history: list[dict], notes: str) -> str:
    """Turn the last answer into an evaluation case (scored as it is in the Evaluate tab)."""
    answers = [i for i, m in enumerate(history) if m["role"] == "assistant"]
    if not answers:
        raise gr.Error("There is no answer yet to add.", print_exception=False)
    question, answer = _exchange(history, answers[-1])
    path = get_textgen_service().settings.data_dir / "question_sets" / "from_chat.csv"
    row_id = append_to_question_set(path, question=question, answer=answer, notes=notes)
    gr.Info(f"Added as {row_id} to the question set “from_chat”. Open it in the Evaluate tab.")
    return ""


def build_chat_tab(sampling: gr.State, mode: gr.State) -> None:
    with gr.Tab("Chat", id="chat"):
        with gr.Accordion("Instructions and context", open=False):
            system_prompt = gr.Textbox(DEFAULT_SYSTEM_PROMPT, label="System prompt", lines=4)
            context = gr.Textbox(
                label="Context (optional)",
                lines=4,
                placeholder="Passages or sermon notes the answer must rest on. Separate passages with a blank line.",
            )
            sampling_note = gr.Markdown(f"Sampling: {sampling.value.describe()}")
        with gr.Row(equal_height=True):
            ground = gr.Checkbox(False, label="Ground in Scripture: give the model Bible passages found for the question",
                                 elem_id="chat-ground", scale=3)
            passage_count = gr.Slider(1, MAX_PASSAGES, value=DEFAULT_PASSAGES, step=1, label="Passages", elem_id="chat-passage-count", scale=1)
        chatbot = gr.Chatbot(label="Answers", elem_id="chat-answers", height=460, feedback_options=("Like", "Dislike"))
        question = gr.Textbox(placeholder="Ask a question about the Bible…", label="Question", elem_id="chat-question", submit_btn=True, stop_btn=True)
        details = gr.Markdown(elem_id="answer-details", render=False)
        given_passages = gr.Markdown(elem_id="chat-passages", render=False)
        gr.ChatInterface(
            respond,
            chatbot=chatbot,
            textbox=question,
            additional_inputs=[system_prompt, context, ground, passage_count, sampling, mode],
            additional_outputs=[details, given_passages],
            editable=True,
            api_name="chat",
        )
        details.render()  # under the chat, where people look after reading the answer
        with gr.Accordion("Passages given to the model", open=False, elem_id="chat-passages-box"):
            given_passages.render()
        gr.Examples(example_questions(), inputs=[question], label="Example questions")
        with gr.Accordion("Doubt an answer? Add it to a question set", open=False):
            notes = gr.Textbox(label="What is wrong with it (optional)", lines=2)
            add = gr.Button("Add the last answer to a question set")
    chatbot.like(save_feedback, outputs=None, api_visibility="private",
                 inputs_kwargs={"history": chatbot, "sampling": sampling, "system_prompt": system_prompt, "mode": mode})
    add.click(add_to_question_set, outputs=notes, inputs_kwargs={"history": chatbot, "notes": notes}, api_visibility="private")
    ground.change(warm_retriever, ground, None, api_visibility="private", show_progress="hidden")
    sampling.change(lambda s: f"Sampling: {s.describe()}", sampling, sampling_note, api_visibility="private")
