"""The Hugging Face Inference API, or any TGI / vLLM / OpenAI-compatible endpoint.

Talks through ``huggingface_hub.InferenceClient`` only. Every call streams, even for
``generate``: that gives the time to first token, lets the overall deadline be checked
between chunks (the client's own timeout is per read, so a trickling server would never
time out), and lets the client stop reading at the output-token limit should a server
ignore ``max_tokens``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from email.utils import parsedate_to_datetime

from huggingface_hub import InferenceClient
from huggingface_hub.errors import HfHubHTTPError, OverloadedError, TextGenerationError

from core.config import Settings
from core.errors import EndpointError, EndpointUnreachableError, GenerationError, StreamInterruptedError
from core.generation.backends import BackendInfo, UsageMeter
from core.generation.params import ChatMessage, GenerationParams
from core.generation.types import StreamEvent, TokenUsage

logger = logging.getLogger("scribes.textgen")

_NETWORK_ERRORS: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
for _module in ("httpx2", "httpx"):  # huggingface_hub 2 uses httpx2; 1.x used httpx
    try:
        _httpx = __import__(_module)
        _NETWORK_ERRORS += (_httpx.TransportError, _httpx.StreamError)
    except (ImportError, AttributeError):
        pass

#: Statuses where trying again may help. 400/401/402/403/404/422 never do.
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})

#: Rough characters per token, to estimate prompt size where the endpoint's tokenizer is unknown.
CHARS_PER_TOKEN = 4


class InferenceAPIBackend:
    name = "api"

    def __init__(self, settings: Settings):
        self._settings = settings
        self._usage = UsageMeter()
        self._target = settings.public_base_url or settings.provider or "Hugging Face Inference Providers"
        # TGI and vLLM take repetition_penalty / top_k beyond the OpenAI fields; some servers
        # refuse unknown fields with a 400/422. The first such refusal turns them off for good.
        self._extras_accepted = bool(settings.base_url)

    # --- Protocol -------------------------------------------------------------------------

    def count_tokens(self, messages: list[ChatMessage]) -> int:
        return sum(len(m.content) // CHARS_PER_TOKEN + 4 for m in messages) + 2

    def info(self) -> BackendInfo:
        details = [("endpoint", self._target)]
        if self._settings.provider:
            details.append(("provider", self._settings.provider))
        return BackendInfo(
            backend=self.name,
            model=self._settings.model,
            device="remote",
            context_window=self._settings.context_window,
            details=tuple(details),
        )

    def usage(self) -> TokenUsage:
        return self._usage.snapshot()

    def sent_parameters(self, params: GenerationParams) -> dict[str, object]:
        sent: dict[str, object] = {
            "model": self._settings.model,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.seed is not None:
            sent["seed"] = params.seed
        if params.stop:
            sent["stop"] = list(params.stop)
        extras: dict[str, object] = {}
        if self._extras_accepted:
            extras["repetition_penalty"] = params.repetition_penalty
            if params.top_k:
                extras["top_k"] = params.top_k
        if extras:
            sent["extra_body"] = extras
        return sent

    def stream(self, messages: list[ChatMessage], params: GenerationParams, cancel: threading.Event) -> Iterator[StreamEvent]:
        deadline = time.monotonic() + self._settings.timeout_s
        client = self._client()
        chunk_count = text_parts = 0
        received = ""
        finish: str | None = None
        prompt_tokens: int | None = None
        output_tokens: int | None = None
        try:
            chunks = self._call(client, messages, params)
            for chunk in _guarded(chunks, self._settings.timeout_s, deadline, self._target):
                chunk_count += 1
                if chunk.usage is not None:
                    prompt_tokens, output_tokens = chunk.usage.prompt_tokens, chunk.usage.completion_tokens
                choice = chunk.choices[0] if chunk.choices else None
                piece = (choice.delta.content if choice and choice.delta else None) or ""
                if piece and text_parts >= params.max_new_tokens:
                    finish = "length"  # the server ignores max_tokens: stop reading at the limit
                    break
                if piece:
                    text_parts += 1
                    received += piece
                    yield StreamEvent(text=piece)
                finish = (choice.finish_reason if choice else None) or finish
                if cancel.is_set():
                    finish = "cancelled"
                    break
                if finish and prompt_tokens is not None:
                    break
        except GenerationError as error:
            if received:
                raise StreamInterruptedError(
                    f"The answer was cut off part-way: {error.message}", partial_text=received
                ) from error
            raise
        finally:
            client.close()
        if chunk_count == 0:  # e.g. a web page at HF_BASE_URL: its lines are not server-sent events
            raise EndpointError(f"The endpoint at {self._target} sent a reply that is not valid chat-completion data.", transient=False)
        if finish is None:
            error = EndpointUnreachableError(f"The endpoint at {self._target} ended the answer without finishing it.")
            if received:
                raise StreamInterruptedError(f"The answer was cut off part-way: {error.message}", partial_text=received)
            raise error
        estimated = prompt_tokens is None or output_tokens is None
        if prompt_tokens is None:
            prompt_tokens = self.count_tokens(messages)
        if output_tokens is None:
            output_tokens = text_parts  # TGI, vLLM and transformers send one token per chunk
        self._usage.add(prompt_tokens, output_tokens)
        yield StreamEvent(
            finish_reason=_normalise_finish(finish),
            prompt_tokens=prompt_tokens,
            output_tokens=output_tokens,
            usage_estimated=estimated,
        )

    # --- internals ------------------------------------------------------------------------

    def _client(self) -> InferenceClient:
        # A client per request: a streamed response stays open in the client's exit stack
        # until the client is closed, and the underlying HTTP session is shared anyway.
        s = self._settings
        if s.base_url:
            return InferenceClient(base_url=s.base_url, api_key=s.token, timeout=s.timeout_s)
        return InferenceClient(provider=s.provider, api_key=s.token, timeout=s.timeout_s)  # type: ignore[arg-type]

    def _call(self, client: InferenceClient, messages: list[ChatMessage], params: GenerationParams) -> Iterator[object]:
        sent = self.sent_parameters(params)
        try:
            return iter(
                client.chat_completion(
                    [m.as_dict() for m in messages],
                    stream=True,
                    stream_options={"include_usage": True},
                    **sent,  # type: ignore[arg-type]
                )
            )
        except BaseException as error:
            translated = _translate(error, self._target, self._settings.model, self._settings.timeout_s)
            if "extra_body" in sent and isinstance(translated, EndpointError) and translated.status_code in (400, 422):
                return self._call_without_extras(client, messages, params, refusal=translated)
            raise translated from error

    def _call_without_extras(self, client: InferenceClient, messages: list[ChatMessage], params: GenerationParams, *, refusal: EndpointError) -> Iterator[object]:
        """Try once more with OpenAI fields only; if that is accepted, the extras were the problem."""
        self._extras_accepted = False
        try:
            chunks = self._call(client, messages, params)
        except GenerationError:
            self._extras_accepted = True  # refused for another reason (say, a prompt too long)
            raise refusal from None
        logger.warning("the endpoint refused repetition_penalty/top_k (%s); sending OpenAI fields only", refusal.status_code)
        return chunks


def _guarded(chunks: Iterator[object], timeout_s: float, deadline: float, target: str) -> Iterator[object]:
    """Yield chunks, translating library errors and enforcing the overall deadline."""
    while True:
        if time.monotonic() > deadline:
            raise EndpointUnreachableError(
                f"The endpoint at {target} did not finish answering within {timeout_s:g} seconds.", transient=True
            )
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except BaseException as error:
            raise _translate(error, target, None, timeout_s) from error
        yield chunk


def _translate(error: BaseException, target: str, model: str | None, timeout_s: float) -> BaseException:
    """Map the library's many exception types (they differ across versions) onto ours."""
    if isinstance(error, GenerationError) or not isinstance(error, Exception):
        return error
    if isinstance(error, HfHubHTTPError) or getattr(error, "response", None) is not None:
        return _from_status(error, target, model)
    if isinstance(error, OverloadedError):
        return EndpointError(f"The model at {target} is overloaded right now.", status_code=503, transient=True)
    if isinstance(error, TextGenerationError):
        return EndpointError(f"The endpoint at {target} reported an error: {_short(str(error))}", transient=False)
    if type(error).__name__ == "OfflineModeIsEnabled":
        return EndpointError(
            "HF_HUB_OFFLINE is set, and it blocks every request, even to HF_BASE_URL. Unset it to use API mode.",
            transient=False,
        )
    if isinstance(error, TimeoutError) or "timeout" in type(error).__name__.lower():
        return EndpointUnreachableError(f"The endpoint at {target} did not answer within {timeout_s:g} seconds.")
    if isinstance(error, _NETWORK_ERRORS):
        return EndpointUnreachableError(f"Could not reach the endpoint at {target} ({_network_reason(error)}).")
    if isinstance(error, (json.JSONDecodeError, ValueError, KeyError, TypeError)):
        return EndpointError(f"The endpoint at {target} sent a reply that is not valid chat-completion data.", transient=False)
    return GenerationError(f"Unexpected error talking to {target} ({type(error).__name__}).")


_STATUS_MESSAGES = {
    400: "rejected the request as malformed (400)",
    401: "refused the token (401). Check that HF_TOKEN is set to a valid token",
    402: "needs payment (402): the account's inference credits are used up",
    403: "refused access (403): the token lacks permission for this model, or the model is gated",
    404: "has no model {model} (404). Check HF_GENERATION_MODEL, HF_PROVIDER and HF_BASE_URL",
    408: "timed out (408)",
    413: "found the request too large (413). Shorten the question or context",
    422: "could not process the request (422)",
    429: "is limiting requests (429). Wait a minute and try again",
    503: "is unavailable or still loading the model (503). Try again in a minute",
}


def _from_status(error: BaseException, target: str, model: str | None) -> EndpointError:
    response = getattr(error, "response", None)
    status = int(getattr(response, "status_code", 0) or 0)
    headers = getattr(response, "headers", {}) or {}
    template = _STATUS_MESSAGES.get(status) or (
        f"failed with a server error ({status})" if status >= 500 else f"returned an error ({status})"
    )
    message = f"The endpoint at {target} {template.format(model=model or 'configured')}."
    server_message = getattr(error, "server_message", None)
    if server_message and status in (400, 413, 422):
        message += f" It said: {_short(server_message)}"
    return EndpointError(
        message,
        status_code=status,
        request_id=getattr(error, "request_id", None),
        transient=status in TRANSIENT_STATUSES,
        retry_after_s=_retry_after(headers.get("retry-after")),
    )


def _retry_after(value: str | None) -> float | None:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max(parsedate_to_datetime(value).timestamp() - time.time(), 0.0)
    except (TypeError, ValueError):
        return None


def _network_reason(error: BaseException) -> str:
    name = type(error).__name__
    if "Connect" in name:
        return "connection refused or host unknown"
    if "Protocol" in name or "Read" in name or "Stream" in name:
        return "the connection broke off"
    return name


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _normalise_finish(reason: str) -> str:
    return {"eos_token": "stop", "stop_sequence": "stop", "max_tokens": "length"}.get(reason, reason)
