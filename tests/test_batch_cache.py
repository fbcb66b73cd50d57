"""The local batch's key/value cache on the embedded model: growing in place, rows merged in and dropped.

Decoding with :class:`GrowingLayer` must give what transformers' own cache gives, while
writing each token into the same buffer; and a row padded into another batch's cache must
decode as it does alone, which is what lets a question join answers in progress.
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

from core.generation.backends.batch_cache import GROWTH, GrowingLayer, crop_front, merged, new_cache
from core.generation.backends.local import LocalTransformersBackend
from core.generation.service import TextGenService

STEPS = 12


def _prompt(backend: LocalTransformersBackend, question: str) -> torch.Tensor:
    return backend.tokenizer.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True, return_tensors="pt", return_dict=True)["input_ids"]  # type: ignore[attr-defined]


def _greedy(model: torch.nn.Module, cache: DynamicCache, mask: torch.Tensor, first: torch.Tensor, steps: int = STEPS) -> list[list[int]]:
    """``steps`` greedy tokens per row after ``first`` (rows, 1), the prompts already in ``cache``."""
    tokens, rows = first, [[int(t)] for t in first[:, 0]]
    for _ in range(steps):
        mask = torch.cat([mask, mask.new_ones((mask.shape[0], 1))], dim=1)
        positions = mask.sum(dim=1, keepdim=True) - 1
        logits = model(input_ids=tokens, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
        tokens = logits.argmax(dim=-1, keepdim=True)
        for row, token in zip(rows, tokens[:, 0].tolist(), strict=True):
            row.append(token)
    return rows


def _read(model: torch.nn.Module, ids: torch.Tensor, cache: DynamicCache) -> tuple[torch.Tensor, torch.Tensor]:
    mask = torch.ones_like(ids)
    logits = model(input_ids=ids, attention_mask=mask, cache=cache, use_cache=True, logits_to_keep=1).logits[:, -1]
    return mask, logits.argmax(dim=-1, keepdim=True)


def test_a_growing_cache_decodes_as_transformers_own_and_writes_in_place(local_service: TextGenService) -> None:
    backend = local_service.backend()
    assert isinstance(backend, LocalTransformersBackend)
    model, ids = backend.model, _prompt(backend, "Who was Ruth?")

    def decode(cache: DynamicCache) -> list[int]:
        with torch.inference_mode():
            mask, first = _read(model, ids, cache)
            return _greedy(model, cache, mask, first)[0]

    theirs = backend._thread.run(lambda: decode(DynamicCache(config=model.config)))
    cache = new_cache(model.config)
    assert all(isinstance(layer, GrowingLayer) for layer in cache.layers)
    ours = backend._thread.run(lambda: decode(cache))
    assert ours == theirs
    layer = cache.layers[0]
    assert layer.get_seq_length() == ids.shape[1] + STEPS
    assert layer.keys.data_ptr() == layer._buffers[0].data_ptr()  # a view of the buffer, not a copy
    assert layer._buffers[0].shape[-2] == ids.shape[1] + GROWTH  # one buffer since the prompt: no token reallocated it


def test_a_row_merged_into_a_running_batch_decodes_as_it_does_alone(local_service: TextGenService) -> None:
    backend = local_service.backend()
    assert isinstance(backend, LocalTransformersBackend)
    model = backend.model
    running, joining = _prompt(backend, "Tell me the whole story of King David, please."), _prompt(backend, "Who was Ruth?")

    def alone() -> list[int]:
        with torch.inference_mode():
            cache = new_cache(model.config)
            mask, first = _read(model, joining, cache)
            return _greedy(model, cache, mask, first, steps=8)[0]

    def join() -> tuple[DynamicCache, torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            cache = new_cache(model.config)
            mask, first = _read(model, running, cache)
            under_way = _greedy(model, cache, mask, first, steps=3)[0]  # the first row is under way...
            mask = torch.cat([mask, mask.new_ones((1, 3))], dim=1)
            other = new_cache(model.config)  # ...when the second joins: its prompt read apart, padded in on the left
            other_mask, other_first = _read(model, joining, other)
            cache, mask = merged(cache, mask, other, other_mask)
            return cache, mask, torch.tensor([[under_way[-1]], [int(other_first)]])

    expected = backend._thread.run(alone)
    cache, mask, next_tokens = backend._thread.run(join)
    assert mask.shape == (2, running.shape[1] + 3) and int(mask[1].sum()) == joining.shape[1]

    def together() -> list[list[int]]:
        with torch.inference_mode():
            return _greedy(model, cache, mask, next_tokens, steps=3)

    both = backend._thread.run(together)
    assert both[1][:3] == expected[:3]  # in the padded batch: the joined row's own opening

    def left_alone() -> list[int]:
        """The other row leaves and the padding no row needs is dropped: the rest is exactly as alone."""
        with torch.inference_mode():
            cache.batch_select_indices(torch.tensor([1]))
            row_mask = torch.cat([mask[1:], mask.new_ones((1, 3))], dim=1)
            start = int(row_mask.any(dim=0).int().argmax())
            crop_front(cache, start)
            return _greedy(model, cache, row_mask[:, start:], torch.tensor([[both[1][-1]]]), steps=5)[0]

    assert both[1][:3] + backend._thread.run(left_alone) == expected
