"""The one door to text generation: :class:`TextGenService` and :func:`get_textgen_service`.

Every tab of the app, the evaluation runner and the command line go through here, so
the output limit, retries, validation, caching and logging apply to all of them alike.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from functools import partial
from itertools import chain
from pathlib import Path

import anyio

from core.config import Mode, Settings
from core.errors import GenerationError, OutputValidationError, redact
from core.generation.backends import Backend, BackendInfo, BatchingBackend, create_backend, stream_on_loop
from core.generation.backends.local_sampling import local_sampling
from core.generation.cache import LRUCache
from core.generation.model_files import EMBEDDED_NAME
from core.generation.params import ChatMessage, resolve_params, to_messages
from core.generation.prompting import PromptParts, fit_prompt
from core.generation.request_state import PreparedRequest, StreamingAnswer
from core.generation.retry import RetryPolicy, open_with_retry, open_with_retry_async
from core.generation.telemetry import GenerationLogRecord, log_generation
from core.generation.types import GenerationResult, StreamEvent, StreamUpdate
from core.generation.validation import validate_output

logger = logging.getLogger("scribes.textgen")

MessagesLike = str | Sequence[ChatMessage | Mapping[str, str]]

#: Signed-in visitors whose API backends are kept; the least recent are dropped first.
MAX_VISITOR_VIEWS = 256


class TextGenService:
    """Generation with limits, retries, validation, caching and logs, over one or two backends.

    Backends load lazily, on first use, once: constructing the service loads nothing.
    Safe to call from many threads at once.
    """

    def __init__(self, settings: Settings, backends: Mapping[Mode, Backend] | None = None):
        """``backends`` lets several services share an already loaded model (tests, tools)."""
        self.settings = settings
        self._backends: dict[Mode, Backend] = dict(backends or {})
        self._load_lock = threading.Lock()
        self._cache: LRUCache[GenerationResult] = LRUCache(settings.cache_size)
        self._policy = RetryPolicy.from_settings(settings)
        self._host: TextGenService | None = None  # set on a visitor's view (see ``for_token``)
        self._visitors: LRUCache[TextGenService] = LRUCache(MAX_VISITOR_VIEWS)

    def for_token(self, token: str | None) -> TextGenService:
        """This service as a signed-in visitor uses it: API requests carry the visitor's token.

        On Spaces, "Sign in with Hugging Face" gives each visitor a token of their own, so
        API mode bills them rather than the host (whose token stays the fallback). The view
        shares the host's local model and answer cache; only the API backend, and so its
        usage counts, is the visitor's. Views are kept per token, a bounded number of them.
        """
        if not token or token == self.settings.token:
            return self
        host = self._host or self
        view = host._visitors.get(token)
        if view is None:
            # same default mode as the host's; the visitor may switch to API (now available)
            view = TextGenService(replace(host.settings, token=token, use_api=host.settings.mode == "api"))
            view._host, view._cache = host, host._cache
            host._visitors.put(token, view)
        return view

    # --- backends -------------------------------------------------------------------------

    @property
    def available_modes(self) -> tuple[Mode, ...]:
        """Local always works; API only where a token or an endpoint is configured."""
        api_ready = bool(self.settings.token or self.settings.base_url)
        return ("api", "local") if api_ready else ("local",)

    def backend(self, mode: Mode | None = None) -> Backend:
        """The backend for ``mode`` (default: the configured one), created on first use."""
        mode = mode or self.settings.mode
        if mode not in self.available_modes:
            raise GenerationError("API mode needs HF_TOKEN or HF_BASE_URL to be set by whoever hosts this app.")
        if mode == "local" and self._host is not None:
            return self._host.backend("local")  # one local model per process, whoever asks
        backend = self._backends.get(mode)
        if backend is None:
            with self._load_lock:
                backend = self._backends.get(mode)
                if backend is None:
                    backend = create_backend(mode, self.settings)
                    self._backends[mode] = backend
        return backend

    def is_loaded(self, mode: Mode | None = None) -> bool:
        return self._loaded_backend(mode or self.settings.mode) is not None

    def _loaded_backend(self, mode: Mode) -> Backend | None:
        if mode == "local" and self._host is not None:
            return self._host._loaded_backend("local")
        return self._backends.get(mode)

    # --- generation -----------------------------------------------------------------------

    def generate(self, prompt: str, **params: object) -> str:
        """The spec's call: one prompt in, the answer's text out."""
        return self.chat(prompt, **params).text  # type: ignore[arg-type]

    def chat(
        self, messages: MessagesLike, *, system_prompt: str | None = None, context: Sequence[str] = (),
        retrieved: Sequence[str] = (), mode: Mode | None = None, **params: object,
    ) -> GenerationResult:
        """Answer a conversation and return the text with its figures and flags.

        ``retrieved``: passages found for the question (:mod:`core.retrieval`), best first;
        they follow ``context`` in the prompt and are the first thing cut to fit it.
        """
        result = _last_result(
            self.stream_chat(messages, system_prompt=system_prompt, context=context, retrieved=retrieved, mode=mode, **params)
        )
        if isinstance(result, GenerationError):
            raise result
        return result

    def chat_batch(
        self,
        conversations: Sequence[MessagesLike],
        *,
        system_prompt: str | None = None,
        contexts: Sequence[Sequence[str]] | None = None,
        retrieved: Sequence[Sequence[str]] | None = None,
        mode: Mode | None = None,
        **params: object,
    ) -> list[GenerationResult | GenerationError]:
        """Answer several conversations with the same settings; one result or error per item.

        A backend that can batch (the local one) decodes them together, which on a CPU is
        several times faster than one at a time; others answer in turn. A failing item
        does not stop the others: its :class:`GenerationError` takes its place. Seeded
        sampling in a batch is reproducible batch by batch, not equal to the same question
        asked alone.
        """
        backend = self.backend(mode)
        results: list[GenerationResult | GenerationError | None] = [None] * len(conversations)
        pending: list[tuple[int, PreparedRequest]] = []
        for index, conversation in enumerate(conversations):
            try:
                prepared = self._prepare(
                    conversation,
                    system_prompt,
                    contexts[index] if contexts else (),
                    retrieved[index] if retrieved else (),
                    mode,
                    params,
                )
            except GenerationError as error:
                results[index] = error
                continue
            hit = self._cached(prepared)
            if hit is not None:
                results[index] = hit
            elif not isinstance(backend, BatchingBackend):
                results[index] = _last_result(self._stream_prepared(prepared))
            else:
                pending.append((index, prepared))
        if pending:
            started = time.perf_counter()
            try:
                finals = backend.generate_batch([p.messages for _, p in pending], pending[0][1].params)
            except Exception as error:  # the whole batch failed: every pending item gets the error
                failure = self._failure(error, pending[0][1].record, started)
                finals = [failure] * len(pending)
            for (index, prepared), final in zip(pending, finals, strict=True):
                if isinstance(final, BaseException):  # logged, and said in words a person can act on
                    results[index] = self._failure(final if isinstance(final, Exception) else GenerationError(str(final)), prepared.record, started)
                    continue
                try:
                    results[index] = self._complete(prepared, final.text, final, started, ttft_ms=None, attempts=1)
                except GenerationError as error:  # strict validation
                    results[index] = error
        return [r for r in results if r is not None]

    def stream(self, messages: MessagesLike, **kwargs: object) -> Iterator[str]:
        """Yield the answer's text as it is produced. Closing the iterator stops generation."""
        for update in self.stream_chat(messages, **kwargs):  # type: ignore[arg-type]
            if update.delta:
                yield update.delta

    def stream_chat(
        self, messages: MessagesLike, *, system_prompt: str | None = None, context: Sequence[str] = (),
        retrieved: Sequence[str] = (), mode: Mode | None = None, **params: object,
    ) -> Iterator[StreamUpdate]:
        """Yield text updates; the last update carries the :class:`GenerationResult`.

        Transient failures are retried before the first token only. Closing the iterator
        (a Stop button, a closed browser tab) stops the backend at its next token.
        """
        prepared = self._prepare(messages, system_prompt, context, retrieved, mode, params)
        hit = self._cached(prepared)
        if hit is not None:
            yield StreamUpdate(delta=hit.text, text=hit.text, result=hit)
            return
        yield from self._stream_prepared(prepared)

    async def astream_chat(
        self, messages: MessagesLike, *, system_prompt: str | None = None, context: Sequence[str] = (),
        retrieved: Sequence[str] = (), mode: Mode | None = None, **params: object,
    ) -> AsyncIterator[StreamUpdate]:
        """:meth:`stream_chat` for an event loop (the app's Chat tab): waiting holds no thread.

        The same limits, retries, validation, cache and logs. A cancelled task (Stop, a
        closed tab) stops the backend at its next token. A model not yet loaded is loaded
        on a worker thread, so the loop keeps serving everyone else meanwhile.
        """
        prepare = partial(self._prepare, messages, system_prompt, context, retrieved, mode, params)
        prepared = prepare() if self.is_loaded(mode) else await anyio.to_thread.run_sync(prepare)
        hit = self._cached(prepared)
        if hit is not None:
            yield StreamUpdate(delta=hit.text, text=hit.text, result=hit)
            return
        answer, cancel, opened = StreamingAnswer(), threading.Event(), None
        with self._outcome_logged(prepared.record, answer):
            try:
                opened = await open_with_retry_async(
                    lambda: stream_on_loop(prepared.backend, prepared.messages, prepared.params, cancel), self._policy
                )
                for event in opened.head:
                    if update := answer.add(event):
                        yield update
                async for event in opened.rest:
                    if update := answer.add(event):
                        yield update
            finally:
                cancel.set()
                if opened is not None:
                    await opened.rest.aclose()  # type: ignore[attr-defined]
        yield self._last_update(prepared, answer, opened.attempts)

    def _stream_prepared(self, prepared: PreparedRequest) -> Iterator[StreamUpdate]:
        answer, cancel, opened = StreamingAnswer(), threading.Event(), None
        with self._outcome_logged(prepared.record, answer):
            try:
                opened = open_with_retry(lambda: prepared.backend.stream(prepared.messages, prepared.params, cancel), self._policy)
                for event in chain(opened.head, opened.rest):
                    if update := answer.add(event):
                        yield update
            finally:
                cancel.set()
                if opened is not None:
                    opened.rest.close()  # type: ignore[attr-defined]
        yield self._last_update(prepared, answer, opened.attempts)

    def _last_update(self, prepared: PreparedRequest, answer: StreamingAnswer, attempts: int) -> StreamUpdate:
        result = self._complete(prepared, answer.text, answer.final, answer.started, ttft_ms=answer.ttft_ms, attempts=attempts)
        return StreamUpdate(delta="", text=answer.text, result=result)

    @contextmanager
    def _outcome_logged(self, record: GenerationLogRecord, answer: StreamingAnswer) -> Iterator[None]:
        """Log a stream that was stopped or failed; a failure is said in words a person can act on."""
        try:
            yield
        except (GeneratorExit, asyncio.CancelledError):  # Stop, or a closed tab
            record.outcome, record.duration_ms = "cancelled", answer.elapsed_ms()
            log_generation(record)
            raise
        except Exception as error:
            failure = self._failure(error, record, answer.started)
            if failure is error:
                raise  # keeps the library error it was raised from as its cause
            raise failure from error

    def _prepare(
        self,
        messages: MessagesLike,
        system_prompt: str | None,
        context: Sequence[str],
        retrieved: Sequence[str],
        mode: Mode | None,
        params: Mapping[str, object],
    ) -> PreparedRequest:
        """Everything before the model runs: parameters, clamp, truncation, cache key, log record."""
        chat = to_messages([ChatMessage("user", messages)] if isinstance(messages, str) else messages)
        resolved = resolve_params(self.settings, params)
        backend = self.backend(mode)
        info = backend.info()
        parts = PromptParts.from_messages(chat, system_prompt=system_prompt, context=context, retrieved=retrieved)
        fitted, truncation = fit_prompt(parts, backend.count_tokens, info.context_window - resolved.params.max_new_tokens)
        record = GenerationLogRecord(
            backend=info.backend,
            model=info.model,
            clamped_from=resolved.requested_max_new_tokens,
            truncated=truncation is not None,
            prompt=[m.as_dict() for m in fitted] if self.settings.log_prompts else None,
        )
        return PreparedRequest(backend, info, fitted, truncation, resolved.params, resolved.requested_max_new_tokens, record)

    def _cached(self, prepared: PreparedRequest) -> GenerationResult | None:
        key = prepared.cache_key
        hit = self._cache.get(key) if key is not None else None
        if hit is None:
            return None
        result = replace(hit, cached=True, attempts=0, duration_ms=0.0, ttft_ms=0.0)
        self._log(prepared.record, result)
        return result

    def _complete(self, prepared: PreparedRequest, text: str, final: StreamEvent, started: float, *, ttft_ms: float | None, attempts: int) -> GenerationResult:
        """Validate, log and cache a finished answer; raise if strict validation fails it."""
        result = GenerationResult(
            text=text,
            prompt_tokens=final.prompt_tokens or 0,
            output_tokens=final.output_tokens or 0,
            finish_reason=final.finish_reason or "stop",
            duration_ms=(final.elapsed_s if final.elapsed_s is not None else time.perf_counter() - started) * 1000,
            ttft_ms=ttft_ms,
            backend=prepared.info.backend,
            model=prepared.info.model,
            params=prepared.params,
            validation=validate_output(text, min_chars=self.settings.min_answer_chars, finish_reason=final.finish_reason or ""),
            attempts=attempts,
            truncation=prepared.truncation,
            requested_max_new_tokens=prepared.requested_max_new_tokens,
            usage_estimated=final.usage_estimated,
        )
        self._log(prepared.record, result)
        if prepared.cache_key is not None:
            self._cache.put(prepared.cache_key, result)
        if self.settings.strict_validation and not result.validation.passed:
            raise OutputValidationError(
                f"The answer failed validation ({', '.join(result.validation.flags)}).", result=result
            )
        return result

    # --- information ----------------------------------------------------------------------

    def sent_parameters(self, *, mode: Mode | None = None, **params: object) -> dict[str, object]:
        """The parameters exactly as the backend will pass them on (after defaults and the clamp).

        Never loads the local model for this: the Tune tab asks at every slider move.
        """
        resolved = resolve_params(self.settings, params).params
        mode = mode or self.settings.mode
        if mode == "local" and not self.is_loaded("local"):
            return local_sampling(resolved)
        return self.backend(mode).sent_parameters(resolved)

    def load_local_model_in_background(self) -> threading.Thread | None:
        """In local mode, load the model now on a thread of its own; the app calls this at start.

        Otherwise the first question after a start waits for the load (seconds from the
        cache, longer the first time), and so does everyone who asked with it. A load that
        fails is only logged here: the first question meets the same plain message.
        """
        if self.settings.mode != "local":
            return None

        def load() -> None:
            try:
                self.backend("local")
            except GenerationError as error:
                logger.warning('{"event": "model_preload_failed", "error": "%s"}', error.message)

        thread = threading.Thread(target=load, name="local-model-preload", daemon=True)
        thread.start()
        return thread

    def get_model_info(self) -> dict[str, object]:
        """The spec's fields plus device, context window, usage and cache figures. No secrets."""
        s = self.settings
        mode = s.mode
        loaded = self._loaded_backend(mode)
        info: BackendInfo | None = loaded.info() if loaded else None
        usage = loaded.usage() if loaded else None
        cache = self._cache.stats()
        return {
            "model_name": info.model if info else (s.model if mode == "api" else _local_model_name(s.local_model)),
            "mode": mode,
            "max_output_tokens": s.max_output_tokens,
            "temperature": s.temperature,
            "top_p": s.top_p,
            "repetition_penalty": s.repetition_penalty,
            "initialized": loaded is not None,
            "device": info.device if info else ("remote" if mode == "api" else "not loaded yet"),
            "context_window": info.context_window if info else s.context_window,
            "endpoint": s.public_base_url or s.provider or ("Hugging Face Inference Providers" if mode == "api" else None),
            "available_modes": list(self.available_modes),
            "usage": {
                "requests": usage.requests if usage else 0,
                "prompt_tokens": usage.prompt_tokens if usage else 0,
                "output_tokens": usage.output_tokens if usage else 0,
            },
            "cache": {"hits": cache.hits, "misses": cache.misses, "size": cache.size, "capacity": cache.capacity},
            **({"details": dict(info.details)} if info else {}),
        }

    # --- internals ------------------------------------------------------------------------

    def _log(self, record: GenerationLogRecord, result: GenerationResult) -> None:
        record.duration_ms, record.ttft_ms = result.duration_ms, result.ttft_ms
        record.prompt_tokens, record.output_tokens = result.prompt_tokens, result.output_tokens
        record.tokens_per_s, record.attempts = result.tokens_per_s, result.attempts
        record.finish_reason, record.cached, record.flags = result.finish_reason, result.cached, result.validation.flags
        log_generation(record)

    def _failure(self, error: Exception, record: GenerationLogRecord, started: float) -> GenerationError:
        """Turn any failure into a :class:`GenerationError` whose message is safe to show."""
        if not isinstance(error, GenerationError):
            error = GenerationError("Something went wrong while generating the answer. Please try again.")
        attempts = getattr(error, "attempts", 1)
        message = error.message + (f" (tried {attempts} times)" if attempts > 1 else "")
        error.args = (redact(message, (self.settings.token,)),)
        record.outcome, record.attempts = "error", attempts
        record.duration_ms = (time.perf_counter() - started) * 1000
        record.error_type, record.error = type(error).__name__, error.message
        log_generation(record)
        return error


def _last_result(updates: Iterator[StreamUpdate]) -> GenerationResult | GenerationError:
    """Run a stream to its end; its result, or the error that ended it."""
    try:
        last = None
        for last in updates:
            pass
        assert last is not None and last.result is not None
        return last.result
    except GenerationError as error:
        return error


def _local_model_name(local_model: str | None) -> str:
    return Path(local_model).name if local_model else EMBEDDED_NAME


# The singleton: the only global state in the core. One service per process, so the
# local model is loaded once and shared by every tab and every user; tests reset it.
_service: TextGenService | None = None
_service_lock = threading.Lock()


def get_textgen_service() -> TextGenService:
    """The process-wide service, created on first call from the environment and ``.env``."""
    global _service
    if _service is None:
        with _service_lock:
            if _service is None:
                _service = TextGenService(Settings.from_env())
    return _service


def reset_textgen_service(service: TextGenService | None = None) -> None:
    """Drop (or replace) the process-wide service; for tests and for reloading settings."""
    global _service
    with _service_lock:
        _service = service
