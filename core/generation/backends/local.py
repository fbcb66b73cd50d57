"""A local ``transformers`` model on CUDA when present, else the CPU.

Everything that touches the model runs on one :class:`~core.generation.backends.model_thread.ModelThread`
(why one thread: see there). A stream's reader only consumes text, so a slow or vanished
reader cannot block other users; a reader that stops sets an event that a stopping
criterion checks at every token.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
)

from core.config import Settings
from core.errors import GenerationError, ModelLoadError
from core.files import write_folder_atomically
from core.generation.backends import BackendInfo, UsageMeter
from core.generation.backends.local_sampling import local_sampling
from core.generation.backends.model_thread import ModelThread
from core.generation.backends.quantized import Quantization, quantize_linear_layers
from core.generation.backends.stream_batches import RowEnded, StreamBatcher, StreamRequest
from core.generation.model_files import ModelSource, conversion_folder, is_complete, resolve_source
from core.generation.params import ChatMessage, GenerationParams
from core.generation.types import StreamEvent, TokenUsage

logger = logging.getLogger("scribes.textgen")

OUT_OF_MEMORY = (
    "The model ran out of GPU memory while answering. Try a shorter question or context, fewer output tokens, "
    "or ask the host to use a smaller model."
)


def pick_device(requested: str) -> torch.device:
    if requested == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError("HF_DEVICE=cuda, but no CUDA GPU is available here. Use HF_DEVICE=auto or cpu.")
    if requested == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def pick_dtype(device: torch.device, requested: str = "auto", *, quantized: bool = False) -> torch.dtype:
    """The model's float precision: ``requested``, or the fastest one this device runs natively.

    A small model on a CPU is limited by per-token overhead and memory traffic, not
    arithmetic: bfloat16 halves the traffic and, where the CPU has bfloat16 instructions
    (AVX512-BF16 or AMX), decodes ~1.6x faster than float32 (benchmarks/README.md).
    Without them bfloat16 is emulated and slower, so float32 stays the default there,
    except under int4/int8 weights, whose kernels are fast with bfloat16 activations only.
    """
    if requested != "auto":
        return getattr(torch, requested)
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16 if quantized or cpu_has_bfloat16() else torch.float32


def pick_quantization(device: torch.device, dtype: torch.dtype, source: ModelSource, requested: str = "auto") -> str:
    """``none``, ``int4``, ``int8``, or ``auto``: int4 if it is exact (see ``core.generation.backends.quantized``).

    ``auto`` tries only where it can pay off and lose nothing: a GGUF file (4-bit weights
    come from there) on a CPU computing in bfloat16 (with float32 activations the int4
    kernel takes a slow path: ~6 tokens/s against ~45).
    """
    if requested == "none":
        return "none"
    if device.type != "cpu":
        if requested == "auto":
            return "none"
        raise ModelLoadError(
            f"HF_LOCAL_QUANTIZATION={requested} runs on the CPU only. On a GPU use none or auto."
        )
    if requested == "auto":
        return "auto" if source.kind == "gguf" and dtype == torch.bfloat16 else "none"
    return requested


def cpu_has_bfloat16() -> bool:
    """AVX512-BF16 or AMX on this CPU (torch's own probes; absent on other platforms)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


#: How long closing a stream waits for its running generation to stop: a few tokens' time
#: (one still queued behind someone else's answer is simply cancelled).
ABANDON_WAIT_S = 2.0


class LocalTransformersBackend:
    name = "local"

    def __init__(self, settings: Settings):
        self._settings = settings
        self._source = resolve_source(settings.local_model)
        self._device = pick_device(settings.device)
        self._usage = UsageMeter()
        started = time.perf_counter()
        dtype = pick_dtype(self._device, settings.local_dtype, quantized=settings.local_quantization in ("int4", "int8"))
        wanted = pick_quantization(self._device, dtype, self._source, settings.local_quantization)
        self._thread = ModelThread()
        try:
            self._model, self._tokenizer, self.loaded_from, self.quantization = self._thread.run(
                lambda: _load_and_quantize(self._source, settings.cache_dir, self._device, dtype, wanted)
            )
        except BaseException:
            self._thread.close()
            raise
        self.load_seconds = time.perf_counter() - started
        self._batcher = StreamBatcher(self._model, self._tokenizer, self._thread, self._stop_token_ids())
        logger.info(
            '{"event": "model_loaded", "model": "%s", "from": "%s", "device": "%s", "dtype": "%s", '
            '"quantization": "%s", "seconds": %.2f}',
            self._source.name, self.loaded_from, self._device, str(dtype).removeprefix("torch."), self.quantization, self.load_seconds,
        )

    @property
    def busy(self) -> bool:
        """Whether the model is answering or has answers queued."""
        return self._thread.busy

    @property
    def model(self) -> torch.nn.Module:
        """The loaded ``transformers`` model (benchmarks and fault-injection tests hook into it)."""
        return self._model

    @property
    def tokenizer(self) -> object:
        """The model's tokenizer (a benchmark feeds transformers' own batching with it)."""
        return self._tokenizer

    # --- Protocol -------------------------------------------------------------------------

    def count_tokens(self, messages: list[ChatMessage]) -> int:
        return int(self._encode(messages)["input_ids"].shape[1])

    def info(self) -> BackendInfo:
        config = self._model.config
        return BackendInfo(
            backend=self.name,
            model=self._source.name,
            device=str(self._device),
            context_window=min(self._settings.context_window, getattr(config, "max_position_embeddings", 10**9)),
            details=(
                ("dtype", str(self._model.dtype).removeprefix("torch.")),
                ("quantization", self.quantization),
                ("loaded_from", self.loaded_from),
            ),
        )

    def usage(self) -> TokenUsage:
        return self._usage.snapshot()

    def sent_parameters(self, params: GenerationParams) -> dict[str, object]:
        return local_sampling(params)

    def stream(self, messages: list[ChatMessage], params: GenerationParams, cancel: threading.Event) -> Iterator[StreamEvent]:
        inputs = self._encode(messages)
        produced = False
        for attempt in (1, 2):
            try:
                for event in self._generate(inputs, params, cancel):
                    produced = produced or bool(event.text)
                    yield event
                return
            except torch.cuda.OutOfMemoryError as error:
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                if produced or attempt == 2:
                    raise GenerationError(OUT_OF_MEMORY) from error
                logger.warning("CUDA out of memory: cache emptied, trying once more")

    def generate_batch(self, conversations: list[list[ChatMessage]], params: GenerationParams) -> list[StreamEvent | BaseException]:
        """Answer several conversations in the decoding loop the streams use, submitted together.

        On a CPU one token for eight sequences costs little more than for one, so they
        decode together, and a row that ends makes room for the next (see stream_batches).
        Each answer's time runs from this call to its own end, not to the batch's.
        """
        group, started = object(), time.perf_counter()
        requests = [StreamRequest(self._encode(messages)["input_ids"], params, threading.Event(), group) for messages in conversations]
        self._batcher.submit(*requests)
        events: list[StreamEvent | BaseException] = []
        for request in requests:
            parts = []
            while not isinstance(item := request.updates.get(), RowEnded):
                parts.append(item)
            try:
                events.append(replace(self._ended(item, params), text="".join(parts), elapsed_s=item.at - started))
            except torch.cuda.OutOfMemoryError as error:
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                failure = GenerationError(OUT_OF_MEMORY)
                failure.__cause__ = error
                events.append(failure)
            except GenerationError as error:
                events.append(error)
        return events

    # --- internals ------------------------------------------------------------------------

    def _stop_token_ids(self) -> set[int]:
        eos = self._model.generation_config.eos_token_id
        ids = set(eos if isinstance(eos, list) else [eos])
        if self._tokenizer.pad_token_id is not None:
            ids.add(self._tokenizer.pad_token_id)
        return ids - {None}

    def _encode(self, messages: list[ChatMessage]) -> dict[str, torch.Tensor]:
        encoded = self._tokenizer.apply_chat_template(
            [m.as_dict() for m in messages], add_generation_prompt=True, return_dict=True, return_tensors="pt"
        )
        return {key: value.to(self._device) for key, value in encoded.items()}

    def _generate(self, inputs: dict[str, torch.Tensor], params: GenerationParams, cancel: threading.Event) -> Iterator[StreamEvent]:
        """Stream one answer; it decodes in a batch with the requests that arrive with it (see stream_batches)."""
        request = StreamRequest(inputs["input_ids"], params, cancel)
        self._batcher.submit(request)
        ended: RowEnded | None = None
        try:
            while not isinstance(item := request.updates.get(), RowEnded):
                yield StreamEvent(text=item)
            ended = item
        finally:
            if ended is None:
                request.abandoned.set()
                # its row ends at the next token; wait for that, so a closed stream leaves the
                # model no work of its own (a process exiting mid-torch aborts)
                request.ended.wait(ABANDON_WAIT_S)
        yield self._ended(ended, params)

    def _ended(self, ended: RowEnded, params: GenerationParams) -> StreamEvent:
        """A row's last event, its usage counted; raises the error that ended it."""
        if ended.error is not None:
            if isinstance(ended.error, torch.cuda.OutOfMemoryError):
                raise ended.error
            raise GenerationError("The local model failed while answering. Try again; if it keeps failing, restart the app.") from ended.error
        if ended.stopped:
            finish = "cancelled"
        elif ended.output_tokens >= params.max_new_tokens:
            finish = "length"
        else:
            finish = "stop"
        self._usage.add(ended.prompt_tokens, ended.output_tokens)
        return StreamEvent(finish_reason=finish, prompt_tokens=ended.prompt_tokens, output_tokens=ended.output_tokens)


def _load_and_quantize(
    source: ModelSource, cache_dir: Path, device: torch.device, dtype: torch.dtype, wanted: str
) -> tuple[torch.nn.Module, object, str, Quantization]:
    # auto looks for exact int4 codes in the weights, which only their float32 values show
    model, tokenizer, loaded_from = _load(source, cache_dir, device, torch.float32 if wanted == "auto" else dtype)
    applied: Quantization = "none" if wanted == "none" else quantize_linear_layers(model, wanted)  # type: ignore[arg-type]
    return model.to(dtype), tokenizer, loaded_from, applied


def _load(source: ModelSource, cache_dir: Path, device: torch.device, dtype: torch.dtype) -> tuple[torch.nn.Module, object, str]:
    """Load model and tokenizer; a GGUF file is converted once into ``cache_dir`` (in float32)."""
    try:
        if source.kind == "gguf":
            folder = conversion_folder(source.path, cache_dir)
            if is_complete(folder):
                return _from_folder(str(folder), dtype, device) + (f"cache:{folder}",)
            model, tokenizer = _convert_gguf(source.path, folder)
            return model.to(device=device, dtype=dtype).eval(), tokenizer, f"gguf:{source.path}"
        return _from_folder(source.location, dtype, device) + (f"{source.kind}:{source.location}",)
    except ModelLoadError:
        raise
    except Exception as error:
        raise ModelLoadError(
            f"The local model {source.name} could not be loaded ({type(error).__name__}). "
            "Check HF_LOCAL_MODEL: it must be a model folder, a .gguf file, or a Hub model id "
            "(which needs an internet connection the first time)."
        ) from error


def _from_folder(location: str, dtype: torch.dtype, device: torch.device) -> tuple[torch.nn.Module, object]:
    tokenizer = AutoTokenizer.from_pretrained(location)
    model = AutoModelForCausalLM.from_pretrained(location, dtype=dtype).to(device).eval()
    return model, tokenizer


def _convert_gguf(gguf: Path, folder: Path) -> tuple[torch.nn.Module, object]:
    logger.info('{"event": "gguf_conversion", "file": "%s", "cache": "%s"}', gguf.name, folder)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:  # weights are already de-quantized; the marker only blocks saving
        quantizer.remove_quantization_config(model)

    def save(staging: Path) -> None:
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)

    try:
        write_folder_atomically(folder, save, is_complete=is_complete)
    except OSError as error:  # a read-only cache still leaves a working model, only a slower next start
        logger.warning("could not cache the converted model in %s: %s", folder, error)
    return model, tokenizer
