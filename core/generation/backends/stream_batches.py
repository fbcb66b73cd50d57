"""Streamed answers that arrive together decode together, each still streaming on its own.

The local model runs on one thread, so two pastors asking at once used to wait one after
the other. On a CPU, one decoding step for eight sequences costs little more than for one,
so the model thread takes every stream request waiting for it with the same generation
settings (up to :data:`MAX_BATCH`) and answers them in one left-padded ``generate()``.
Each row's new tokens go to its own reader as text; a reader that stops (Stop, a closed
tab) ends only its own row, at the next token, and the others go on.

This is batching of arrivals, not continuous batching: a request that comes while a batch
is decoding waits for the next one. Seeded requests run alone, so a seed still gives the
same answer whatever else is running. A greedy answer in a batch of several can drift from
the same answer alone after a few words (padded batches run other kernel paths), as
evaluation batches do; see ``eval_sets/README.md``.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from core.generation.backends.model_thread import ModelThread
from core.generation.params import GenerationParams

#: Most answers decoded in one batch: beyond eight, a step on 2 vCPUs grows with the batch.
MAX_BATCH = 8
#: How long the model thread waits for more requests before it starts a batch: requests
#: sent together (several people pressing Enter in the same moment) reach it this far apart.
GATHER_S = 0.02


@dataclass(frozen=True)
class RowEnded:
    """The last item a request's queue receives: its figures, or the error that ended the batch."""

    prompt_tokens: int = 0
    output_tokens: int = 0
    stopped: bool = False
    error: BaseException | None = None


@dataclass(eq=False)  # each request is itself: compared by identity, never by its tensors
class StreamRequest:
    """One streamed answer waiting for, or decoding in, a batch."""

    input_ids: torch.Tensor  # (1, prompt tokens)
    params: GenerationParams
    cancel: threading.Event
    abandoned: threading.Event = field(default_factory=threading.Event)  # the reader went away
    updates: queue.Queue[str | RowEnded] = field(default_factory=queue.Queue)
    ended: threading.Event = field(default_factory=threading.Event)  # no more tokens will be made for it

    @property
    def stopping(self) -> bool:
        return self.cancel.is_set() or self.abandoned.is_set()


class StreamBatcher:
    """Gathers stream requests and decodes each group that shares its settings in one batch."""

    def __init__(
        self, model: torch.nn.Module, tokenizer: object, thread: ModelThread,
        generate_kwargs: Callable[[GenerationParams], dict[str, object]], stop_ids: set[int],
    ) -> None:
        self._model, self._tokenizer, self._thread = model, tokenizer, thread
        self._generate_kwargs, self._stop_ids = generate_kwargs, stop_ids
        self._pending: list[StreamRequest] = []
        self._lock = threading.Lock()

    def submit(self, request: StreamRequest) -> None:
        """Queue ``request``; its text and then a :class:`RowEnded` arrive on ``request.updates``."""
        with self._lock:
            self._pending.append(request)
        self._thread.submit(self._drain)

    def _drain(self) -> None:
        """On the model thread: answer the oldest waiting request with every one that can join it."""
        with self._lock:
            if not self._pending:
                return  # answered in an earlier batch: no gathering wait for it
        time.sleep(GATHER_S)
        with self._lock:
            first = self._pending[0]
            group = [r for r in self._pending if _joins(r.params, first.params)][:MAX_BATCH] if first.params.seed is None else [first]
            self._pending = [r for r in self._pending if r not in group]
        live = [r for r in group if not r.stopping]
        for request in group:
            if request.stopping:
                request.ended.set()
                request.updates.put(RowEnded(int(request.input_ids.shape[1]), 0, stopped=True))
        if live:
            self._decode(live)

    def _decode(self, group: list[StreamRequest]) -> None:
        input_ids, attention_mask = _left_padded([r.input_ids for r in group], self._pad_id())
        streamer = _RowStreamer(self._tokenizer, group, self._stop_ids)
        params = group[0].params
        failure: BaseException | None = None
        try:
            if params.seed is not None:
                torch.manual_seed(params.seed)
            with torch.inference_mode():
                self._model.generate(
                    input_ids=input_ids, attention_mask=attention_mask, **self._generate_kwargs(params),
                    streamer=streamer, stopping_criteria=StoppingCriteriaList([_StopRows(group)]),
                )
        except BaseException as error:  # handed to every reader of the batch, which raise it
            failure = error
        finally:
            streamer.end()
            for row, request in enumerate(group):
                request.ended.set()
                request.updates.put(
                    RowEnded(int(request.input_ids.shape[1]), len(streamer.tokens[row]), stopped=request.cancel.is_set(), error=failure)
                )

    def _pad_id(self) -> int:
        pad = getattr(self._tokenizer, "pad_token_id", None)
        return int(pad if pad is not None else getattr(self._tokenizer, "eos_token_id", 0))


def _joins(params: GenerationParams, first: GenerationParams) -> bool:
    """Whether a request can decode in ``first``'s batch: the same settings, and no seed."""
    return params.seed is None and params == first


def _left_padded(rows: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts of different lengths, padded on the left so every row's new tokens follow its prompt."""
    width = max(int(row.shape[1]) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=rows[0].dtype, device=rows[0].device)
    mask = torch.zeros((len(rows), width), dtype=torch.long, device=rows[0].device)
    for index, row in enumerate(rows):
        ids[index, width - row.shape[1] :] = row[0]
        mask[index, width - row.shape[1] :] = 1
    return ids, mask


class _StopRows(StoppingCriteria):
    """Ends each row at the next token once its reader stopped or went away; the batch runs on."""

    def __init__(self, group: list[StreamRequest]):
        self._group = group

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: object) -> torch.BoolTensor:
        stops = []
        for request in self._group:
            if request.stopping:
                request.ended.set()
            stops.append(request.stopping)
        return torch.tensor(stops, dtype=torch.bool, device=input_ids.device)


class _RowStreamer(BaseStreamer):
    """Turns each step's new token of every row into text for that row's reader."""

    def __init__(self, tokenizer: object, group: list[StreamRequest], stop_ids: set[int]):
        self._tokenizer, self._group, self._stop_ids = tokenizer, group, stop_ids
        self.tokens: list[list[int]] = [[] for _ in group]
        self._sent = [""] * len(group)
        self._done = [False] * len(group)
        self._prompt_seen = False

    def put(self, value: torch.Tensor) -> None:
        if not self._prompt_seen:  # generate() hands the prompt over first
            self._prompt_seen = True
            return
        for row, token in enumerate(value.reshape(len(self._group), -1)[:, -1].tolist()):
            if self._done[row]:
                continue
            if token in self._stop_ids or self._group[row].stopping:
                self._done[row] = True
                continue
            self.tokens[row].append(token)
            self._send(row, final=False)

    def end(self) -> None:
        for row in range(len(self._group)):
            self._send(row, final=True)

    def _send(self, row: int, *, final: bool) -> None:
        text = self._tokenizer.decode(self.tokens[row], skip_special_tokens=True)  # type: ignore[attr-defined]
        if text.endswith("\ufffd") and not final:
            return  # a character split across tokens: wait for the rest of it
        if len(text) > len(self._sent[row]):
            self._group[row].updates.put(text[len(self._sent[row]) :])
            self._sent[row] = text
