"""Streamed local answers decode together, and one that arrives joins the batch at the next token.

The local model runs on one thread, so two pastors asking at once used to wait one after
the other. On a CPU, one decoding step for eight sequences costs little more than for one,
so the model thread runs one decoding loop over every stream it holds (up to
:data:`MAX_BATCH`): continuous batching. Between two tokens it reads the prompts of the
streams that arrived, left-padded into the batch's cache, so a chat sent while others are
answering starts after one prompt's reading, not after the longest answer in progress.
Each row's tokens go to its own reader as text; a reader that stops (Stop, a closed tab)
ends only its own row, at the next token, and the others go on. Rows keep their own
settings: sampling, the token limit, stop strings.

transformers' own continuous batching (``generate_batch``, ``init_continuous_batching``)
works on our int4 layers, but it runs a thread of its own (a second OpenMP team, which
:mod:`~core.generation.backends.model_thread` exists to avoid) on a paged cache, and
answered eight chats in 3.5 to 4.6 times this loop's time (benchmarks/README.md, row 9c).
So the loop is ours, on transformers' cache.

Evaluation batches go through the same loop (``generate_batch``): their rows are submitted
together, up to :data:`MAX_BATCH` decode at once, and a row that ends makes room for the
next, where a padded ``generate()`` kept every row until the longest ended.

A seeded request runs alone, or with the rows of its own batch call (a group), so a seed
still gives the same answer whatever else is running. A greedy answer in a batch of
several can drift from the same answer alone after a few words (padded batches run other
kernel paths); see ``eval_sets/README.md``. The loop lets other jobs on the model thread go
first once its rows end, so a steady flow of chats cannot starve them.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from core.generation.backends.batch_cache import can_merge, crop_front, merged, new_cache
from core.generation.backends.local_sampling import local_sampling
from core.generation.backends.model_thread import ModelThread
from core.generation.backends.token_choice import TokenRule, choose_tokens
from core.generation.params import GenerationParams

#: Most answers decoded in one batch: beyond eight, a step on 2 vCPUs grows with the batch.
MAX_BATCH = 8
#: How long an idle model thread waits for more requests before it starts: requests sent
#: together (several people pressing Enter in the same moment) reach it this far apart.
GATHER_S = 0.02


@dataclass(frozen=True)
class RowEnded:
    """The last item a request's queue receives: its figures, or the error that ended its row."""

    prompt_tokens: int = 0
    output_tokens: int = 0
    stopped: bool = False
    error: BaseException | None = None
    at: float = field(default_factory=time.perf_counter)  # when the row ended


@dataclass(eq=False)  # each request is itself: compared by identity, never by its tensors
class StreamRequest:
    """One streamed answer waiting for, or decoding in, the batch."""

    input_ids: torch.Tensor  # (1, prompt tokens)
    params: GenerationParams
    cancel: threading.Event
    group: object | None = None  # the rows of one batch call: seeded, they run together
    abandoned: threading.Event = field(default_factory=threading.Event)  # the reader went away
    updates: queue.Queue[str | RowEnded] = field(default_factory=queue.Queue)
    ended: threading.Event = field(default_factory=threading.Event)  # no more tokens will be made for it

    @property
    def stopping(self) -> bool:
        return self.cancel.is_set() or self.abandoned.is_set()

    @property
    def prompt_tokens(self) -> int:
        return int(self.input_ids.shape[1])

    def end(self, output_tokens: int, error: BaseException | None = None) -> None:
        """Tell the reader its row is over; only the first call counts."""
        if self.ended.is_set():
            return
        self.ended.set()
        self.updates.put(RowEnded(self.prompt_tokens, output_tokens, stopped=self.cancel.is_set(), error=error))


class StreamBatcher:
    """Holds the waiting stream requests and runs the one decoding loop over them."""

    def __init__(self, model: torch.nn.Module, tokenizer: object, thread: ModelThread, stop_ids: set[int]) -> None:
        self._model, self._tokenizer, self._thread, self._stop_ids = model, tokenizer, thread, stop_ids
        self._pending: list[StreamRequest] = []
        self._lock = threading.Lock()
        self._looping = False  # whether the loop is on the model thread or queued for it

    def submit(self, *requests: StreamRequest) -> None:
        """Queue ``requests``, in order; each one's text and then a :class:`RowEnded` arrive on its ``updates``."""
        with self._lock:
            self._pending += requests
            if self._looping:
                return
            self._looping = True
        self._thread.submit(self._loop)

    def _loop(self) -> None:
        """On the model thread: decode until no stream is left, taking in arrivals between tokens."""
        time.sleep(GATHER_S)
        batch = _Batch(self._model, self._tokenizer, self._stop_ids, self._pad_id())
        while True:
            with self._lock:
                joining = self._admit(batch)
                if not joining and not batch.rows:
                    if self._pending:  # another job on the model thread goes first; the loop queues behind it
                        self._thread.submit(self._loop)
                    else:
                        self._looping = False
                    return
            try:
                if joining:
                    batch.join(joining)
                batch.step()
            except BaseException as error:  # handed to every reader of the batch, which raise it
                for request in joining:
                    if not request.ended.is_set():
                        request.end(0, error)
                batch.fail(error)

    def _admit(self, batch: _Batch) -> list[StreamRequest]:
        """Take the requests that join ``batch`` now, in order of arrival; end those already stopped."""
        for request in [r for r in self._pending if r.stopping]:
            self._pending.remove(request)
            request.end(0)
        if not self._pending or batch.seeded or not batch.open or self._thread.others_waiting:
            return []
        first = self._pending[0]
        if first.params.seed is not None:  # a seed runs alone (with its group), so it waits for the batch to end
            group = itertools.takewhile(lambda r: first.group is not None and r.group is first.group, self._pending[1:])
            taken = [] if batch.rows else [first, *group][:MAX_BATCH]
        else:
            room = MAX_BATCH - len(batch.rows)
            taken = []
            for request in self._pending:
                if len(taken) == room or request.params.seed is not None:
                    break
                taken.append(request)
        self._pending = self._pending[len(taken) :]
        return taken

    def _pad_id(self) -> int:
        pad = getattr(self._tokenizer, "pad_token_id", None)
        return int(pad if pad is not None else getattr(self._tokenizer, "eos_token_id", 0))


class _Row:
    """One request in the batch: its sampling, its tokens so far, and the text its reader has."""

    def __init__(self, request: StreamRequest, tokenizer: object):
        self.request, self._tokenizer = request, tokenizer
        sent = local_sampling(request.params)
        self.rule = TokenRule.from_sent(sent)
        self.limit = int(sent["max_new_tokens"])  # type: ignore[call-overload]
        self.stop_strings: list[str] = list(sent.get("stop_strings", []))  # type: ignore[call-overload]
        self.seen = request.input_ids  # prompt and answer so far: what the repetition penalty looks at
        self.tokens: list[int] = []
        self.text = ""
        self._prefix = self._read = 0  # incremental detokenization: decoded window [prefix, read)

    def add(self, token: int) -> bool:
        """Add ``token`` to the answer and hand new text to the reader; whether the row is done."""
        self.tokens.append(token)
        self.seen = torch.cat([self.seen, self.seen.new_tensor([[token]])], dim=1)
        self._send(final=False)
        return len(self.tokens) >= self.limit or any(stop in self.text for stop in self.stop_strings)

    def finish(self, error: BaseException | None = None) -> None:
        if error is None:
            self._send(final=True)
        self.request.end(len(self.tokens), error)

    def _send(self, *, final: bool) -> None:
        # decoding only the tokens since the last word keeps each token's cost constant over a long answer
        before = self._tokenizer.decode(self.tokens[self._prefix : self._read], skip_special_tokens=True)  # type: ignore[attr-defined]
        now = self._tokenizer.decode(self.tokens[self._prefix :], skip_special_tokens=True)  # type: ignore[attr-defined]
        if now.endswith("\ufffd") and not final:
            return  # a character split across tokens: wait for the rest of it
        if len(now) > len(before):
            delta = now[len(before) :]
            self.text += delta
            self.request.updates.put(delta)
            self._prefix, self._read = self._read, len(self.tokens)


class _Batch:
    """The rows decoding together, their shared key/value cache, and the next token of each."""

    def __init__(self, model: torch.nn.Module, tokenizer: object, stop_ids: set[int], pad_id: int):
        self._model, self._tokenizer, self._stop_ids, self._pad_id = model, tokenizer, stop_ids, pad_id
        self._device = model.device  # every tensor the loop makes lives with the model (CUDA when present)
        self.rows: list[_Row] = []
        self._cache: DynamicCache | None = None
        self._mask = torch.zeros((0, 0), dtype=torch.long, device=self._device)  # (rows, cached positions): 0 where a row is padded
        self._next = torch.zeros((0, 1), dtype=torch.long, device=self._device)  # each row's last token, not yet in the cache

    @property
    def seeded(self) -> bool:
        return any(row.request.params.seed is not None for row in self.rows)

    @property
    def open(self) -> bool:
        """Whether rows can join now: the cache is empty or plain key/value layers (no sliding windows)."""
        return self._cache is None or can_merge(self._cache)

    def join(self, requests: list[StreamRequest]) -> None:
        """Read the prompts of ``requests`` together and add their rows, each with its first token."""
        ids, mask = _left_padded([r.input_ids for r in requests], self._pad_id)
        seed = requests[0].params.seed
        if seed is not None:
            torch.manual_seed(seed)
        cache = new_cache(self._model.config)
        logits = self._forward(ids, mask, cache)
        rows = [_Row(r, self._tokenizer) for r in requests]
        first = _choose(logits, rows)
        if self._cache is None:
            self._cache, self._mask = cache, mask
        else:
            self._cache, self._mask = merged(self._cache, self._mask, cache, mask)
        self.rows += rows
        self._next = torch.cat([self._next, torch.tensor(first, dtype=torch.long, device=self._device)[:, None]])
        self._take(first, start=len(self.rows) - len(rows))

    def step(self) -> None:
        """One token for every row; rows that end leave the batch."""
        self._end_rows([i for i, row in enumerate(self.rows) if row.request.stopping])
        if not self.rows:
            return
        self._mask = torch.cat([self._mask, self._mask.new_ones((len(self.rows), 1))], dim=1)
        logits = self._forward(self._next, self._mask, self._cache)
        chosen = _choose(logits, self.rows)
        self._next = torch.tensor(chosen, dtype=torch.long, device=self._device)[:, None]
        self._take(chosen)

    def fail(self, error: BaseException) -> None:
        for row in self.rows:
            row.finish(error)
        self._empty()

    def _empty(self) -> None:
        self.rows, self._cache = [], None
        self._mask, self._next = self._mask[:0, :0], self._next[:0]

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor, cache: DynamicCache | None) -> torch.Tensor:
        """The logits of each row's last position, for ``ids`` after what ``cache`` holds."""
        positions = (mask.cumsum(dim=1) - 1).clamp(min=0)[:, -ids.shape[1] :]
        with torch.inference_mode():
            out = self._model(input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1)
        return out.logits[:, -1]

    def _take(self, chosen: list[int], start: int = 0) -> None:
        """Hand the rows from ``start`` on their chosen tokens; end those that stop on it or reach their limit."""
        done = []
        for index, (row, token) in enumerate(zip(self.rows[start:], chosen, strict=True), start=start):
            if token in self._stop_ids or row.add(token):
                done.append(index)
        self._end_rows(done)

    def _end_rows(self, indices: list[int]) -> None:
        if not indices:
            return
        for index in indices:
            self.rows[index].finish()
        keep = [i for i in range(len(self.rows)) if i not in indices]
        if not keep:
            self._empty()
            return
        self.rows = [self.rows[i] for i in keep]
        kept = torch.tensor(keep, device=self._device)
        self._cache.batch_select_indices(kept)  # type: ignore[union-attr]
        self._mask, self._next = self._mask[kept], self._next[kept]
        # columns that are padding in every row left are dropped: attention never reads them
        start = int(self._mask.any(dim=0).int().argmax())
        if start:
            crop_front(self._cache, start)  # type: ignore[arg-type]
            self._mask = self._mask[:, start:]


def _choose(logits: torch.Tensor, rows: list[_Row]) -> list[int]:
    return choose_tokens(logits, [row.rule for row in rows], [row.seen for row in rows])


def _left_padded(rows: list[torch.Tensor], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Prompts of different lengths, padded on the left so every row's new tokens follow its prompt."""
    width = max(int(row.shape[1]) for row in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=rows[0].dtype, device=rows[0].device)
    mask = torch.zeros((len(rows), width), dtype=torch.long, device=rows[0].device)
    for index, row in enumerate(rows):
        ids[index, width - row.shape[1] :] = row[0]
        mask[index, width - row.shape[1] :] = 1
    return ids, mask
