"""The Hugging Face Inference API, or any TGI / vLLM / OpenAI-compatible endpoint.

Talks through huggingface_hub's ``InferenceClient`` only, or its ``AsyncInferenceClient``
where the caller is on an event loop (the Chat tab). Every call streams, even for
``generate``: that gives the time to first token, lets the overall deadline be checked
between chunks (the client's own timeout is per read, so a trickling server would never
time out), and lets the client stop reading at the output-token limit should a server
ignore ``max_tokens``. Both ways read the chunks with one :class:`_ChunkReader`.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from email.utils import parsedate_to_datetime

from huggingface_hub import AsyncInferenceClient, InferenceClient
from huggingface_hub.errors import HfHubHTTPError, OverloadedError, TextGenerationError

from core.config import Settings
from core.errors import EndpointError, EndpointUnreachableError, GenerationError, StreamInterruptedError
from core.generation.backends import BackendInfo, UsageMeter
from core.generation.backends.async_sessions import share_async_sessions
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

#: Asks the endpoint to end its stream with the token counts.
USAGE = {"include_usage": True}

EXTRAS_OFF = "the endpoint refused repetition_penalty/top_k (%s); sending OpenAI fields only"

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
        reader = self._reader(messages, params, cancel)
        client = self._client()
        with reader.keeping_text():
            try:
                yield from reader.events(self._call(client, messages, params))
            finally:
                client.close()
        yield reader.end()

    async def astream(self, messages: list[ChatMessage], params: GenerationParams, cancel: threading.Event) -> AsyncIterator[StreamEvent]:
        """:meth:`stream` on the event loop: no thread is held while the endpoint answers."""
        reader = self._reader(messages, params, cancel)
        client = self._async_client()
        with reader.keeping_text():
            try:
                async for event in reader.async_events(await self._acall(client, messages, params)):
                    yield event
            finally:
                await client.close()
        yield reader.end()

    # --- internals ------------------------------------------------------------------------

    def _client(self) -> InferenceClient:
        # A client per request: a streamed response stays open in the client's exit stack
        # until the client is closed, and the underlying HTTP session is shared anyway.
        s = self._settings
        if s.base_url:
            return InferenceClient(base_url=s.base_url, api_key=s.token, timeout=s.timeout_s)
        return InferenceClient(provider=s.provider, api_key=s.token, timeout=s.timeout_s)  # type: ignore[arg-type]

    def _reader(self, messages: list[ChatMessage], params: GenerationParams, cancel: threading.Event) -> _ChunkReader:
        s = self._settings
        return _ChunkReader(self._target, s.timeout_s, params.max_new_tokens, cancel, lambda: self.count_tokens(messages), self._usage)

    def _async_client(self) -> AsyncInferenceClient:
        share_async_sessions()
        s = self._settings
        if s.base_url:
            return AsyncInferenceClient(base_url=s.base_url, api_key=s.token, timeout=s.timeout_s)
        return AsyncInferenceClient(provider=s.provider, api_key=s.token, timeout=s.timeout_s)  # type: ignore[arg-type]

    def _call(self, client: InferenceClient, messages: list[ChatMessage], params: GenerationParams) -> Iterator[object]:
        sent = self.sent_parameters(params)
        try:
            return iter(client.chat_completion([m.as_dict() for m in messages], stream=True, stream_options=USAGE, **sent))  # type: ignore[arg-type]
        except Exception as error:  # anything else (a cancelled task) goes on as it is
            refusal = _translate(error, self._target, self._settings.model, self._settings.timeout_s)
            if not self._refuses_extras(refusal, sent):
                raise refusal from error
        try:
            chunks = self._call(client, messages, params)
        except GenerationError:
            raise self._kept_extras(refusal) from None
        logger.warning(EXTRAS_OFF, refusal.status_code)
        return chunks

    async def _acall(self, client: AsyncInferenceClient, messages: list[ChatMessage], params: GenerationParams) -> AsyncIterator[object]:
        sent = self.sent_parameters(params)
        try:
            return await client.chat_completion([m.as_dict() for m in messages], stream=True, stream_options=USAGE, **sent)  # type: ignore[arg-type, return-value]
        except Exception as error:  # anything else (a cancelled task) goes on as it is
            refusal = _translate(error, self._target, self._settings.model, self._settings.timeout_s)
            if not self._refuses_extras(refusal, sent):
                raise refusal from error
        try:
            chunks = await self._acall(client, messages, params)
        except GenerationError:
            raise self._kept_extras(refusal) from None
        logger.warning(EXTRAS_OFF, refusal.status_code)
        return chunks

    def _refuses_extras(self, error: BaseException, sent: dict[str, object]) -> bool:
        """Whether ``error`` may be the endpoint refusing the extra fields; if so, they go off.

        The caller then tries once more without them. If that is accepted, the extras were
        the problem, and they stay off.
        """
        if "extra_body" in sent and isinstance(error, EndpointError) and error.status_code in (400, 422):
            self._extras_accepted = False
            return True
        return False

    def _kept_extras(self, refusal: EndpointError) -> EndpointError:
        """Refused without the extras too, so for another reason (say, a prompt too long)."""
        self._extras_accepted = True
        return refusal


class _ChunkReader:
    """What a stream of chat-completion chunks adds up to, read one chunk at a time.

    Shared by the backend's two ways of reading (a thread, the event loop), so that the
    limit, the finish and the usage are read the same way in both.
    """

    def __init__(
        self, target: str, timeout_s: float, max_new_tokens: int, cancel: threading.Event,
        estimate_prompt_tokens: Callable[[], int], usage: UsageMeter,
    ):
        self._target, self._timeout_s, self._max_new_tokens, self._cancel = target, timeout_s, max_new_tokens, cancel
        self._estimate_prompt_tokens, self._usage = estimate_prompt_tokens, usage
        self._deadline = time.monotonic() + timeout_s
        self._done = False
        self._chunks = self._pieces = 0
        self._received = ""
        self._finish: str | None = None
        self._prompt_tokens: int | None = None
        self._output_tokens: int | None = None

    def events(self, chunks: Iterator[object]) -> Iterator[StreamEvent]:
        """The text in these chunks, read until the answer ends, reaches the limit or is stopped."""
        while not self._done:
            self._check_deadline()
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except Exception as error:
                raise self._translated(error) from error
            if event := self._read(chunk):
                yield event

    async def async_events(self, chunks: AsyncIterator[object]) -> AsyncIterator[StreamEvent]:
        """:meth:`events`, for chunks read on the event loop."""
        while not self._done:
            self._check_deadline()
            try:
                chunk = await anext(chunks)
            except StopAsyncIteration:
                return
            except Exception as error:
                raise self._translated(error) from error
            if event := self._read(chunk):
                yield event

    @contextmanager
    def keeping_text(self) -> Iterator[None]:
        """A failure once text has been handed on ends the answer there, and keeps that text."""
        try:
            yield
        except GenerationError as error:
            if self._received:
                raise self._interruption(error) from error
            raise

    def _check_deadline(self) -> None:
        if time.monotonic() > self._deadline:
            raise EndpointUnreachableError(
                f"The endpoint at {self._target} did not finish answering within {self._timeout_s:g} seconds.", transient=True
            )

    def _translated(self, error: Exception) -> BaseException:
        return _translate(error, self._target, None, self._timeout_s)

    def _read(self, chunk: object) -> StreamEvent | None:
        """The text this chunk adds, if any; notes when to stop reading."""
        self._chunks += 1
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self._prompt_tokens, self._output_tokens = usage.prompt_tokens, usage.completion_tokens
        choices = getattr(chunk, "choices", None)
        choice = choices[0] if choices else None
        piece = (choice.delta.content if choice and choice.delta else None) or ""
        if piece and self._pieces >= self._max_new_tokens:
            self._finish, self._done = "length", True  # the server ignores max_tokens: stop reading at the limit
            return None
        event = None
        if piece:
            self._pieces += 1
            self._received += piece
            event = StreamEvent(text=piece)
        self._finish = (choice.finish_reason if choice else None) or self._finish
        if self._cancel.is_set():
            self._finish = "cancelled"
        self._done = self._finish == "cancelled" or bool(self._finish and self._prompt_tokens is not None)
        return event

    def _interruption(self, error: GenerationError) -> StreamInterruptedError:
        """``error`` once text has been handed on: the answer ends there, and keeps that text."""
        return StreamInterruptedError(f"The answer was cut off part-way: {error.message}", partial_text=self._received)

    def end(self) -> StreamEvent:
        """The last event: the finish and the usage (estimated where the endpoint sent none)."""
        target = self._target
        if self._chunks == 0:  # e.g. a web page at HF_BASE_URL: its lines are not server-sent events
            raise EndpointError(f"The endpoint at {target} sent a reply that is not valid chat-completion data.", transient=False)
        if self._finish is None:
            error = EndpointUnreachableError(f"The endpoint at {target} ended the answer without finishing it.")
            raise self._interruption(error) if self._received else error
        estimated = self._prompt_tokens is None or self._output_tokens is None
        prompt_tokens = self._prompt_tokens if self._prompt_tokens is not None else self._estimate_prompt_tokens()
        output_tokens = self._output_tokens if self._output_tokens is not None else self._pieces  # one token per chunk (TGI, vLLM, transformers)
        self._usage.add(prompt_tokens, output_tokens)
        return StreamEvent(
            finish_reason=_normalise_finish(self._finish),
            prompt_tokens=prompt_tokens,
            output_tokens=output_tokens,
            usage_estimated=estimated,
        )


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
