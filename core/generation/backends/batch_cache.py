"""The key/value cache of a local decoding batch: rows merged in, rows dropped, room to grow.

transformers' ``DynamicLayer`` concatenates each new token onto its keys and values, which
copies the whole cache of every layer at every token: for 8 rows a few hundred tokens
long, that was an eighth of the model thread's time (py-spy). :class:`GrowingLayer` keeps
them in a buffer with room for :data:`GROWTH` more positions and writes each token in
place. Rows that join a running batch are padded in on the left, where the attention
mask hides them, and the columns that no row needs any more are dropped.
"""

from __future__ import annotations

import torch
from torch.nn import functional
from transformers import DynamicCache, PretrainedConfig
from transformers.cache_utils import DynamicLayer

#: Positions a layer's buffer gains each time it is full.
GROWTH = 128


class GrowingLayer(DynamicLayer):
    """A ``DynamicLayer`` whose keys and values are views of a buffer that grows in steps.

    Whatever replaces ``keys`` and ``values`` from outside (a merge, dropped rows, a crop)
    is taken over into a new buffer at the next update, so those stay plain assignments.
    """

    def __init__(self) -> None:
        super().__init__()
        self._buffers: tuple[torch.Tensor, torch.Tensor] | None = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args: object, **kwargs: object) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        length, new = self.get_seq_length(), key_states.shape[-2]
        buffers = self._buffers
        if buffers is None or self.keys.data_ptr() != buffers[0].data_ptr() or length + new > buffers[0].shape[-2]:
            buffers = self._rebuffer(key_states, value_states, length, length + new + GROWTH)
        keys, values = buffers
        keys[:, :, length : length + new] = key_states
        values[:, :, length : length + new] = value_states
        self.keys, self.values = keys[:, :, : length + new], values[:, :, : length + new]
        return self.keys, self.values

    def _rebuffer(self, key_states: torch.Tensor, value_states: torch.Tensor, length: int, capacity: int) -> tuple[torch.Tensor, torch.Tensor]:
        rows, heads, _, width = key_states.shape
        keys = key_states.new_empty((rows, heads, capacity, width))
        values = value_states.new_empty((rows, heads, capacity, value_states.shape[-1]))
        if length:
            keys[:, :, :length] = self.keys
            values[:, :, :length] = self.values
        self._buffers = (keys, values)
        return self._buffers


def new_cache(config: PretrainedConfig) -> DynamicCache:
    """transformers' cache for ``config``, its plain layers growing in place (sliding-window ones stay theirs)."""
    cache = DynamicCache(config=config)
    cache.layers = [GrowingLayer() if type(layer) is DynamicLayer else layer for layer in cache.layers]
    return cache


def can_merge(cache: DynamicCache) -> bool:
    """Whether rows can be padded into ``cache``: every layer is a plain one (no sliding window)."""
    return all(isinstance(layer, GrowingLayer) for layer in cache.layers)


def merged(cache: DynamicCache, mask: torch.Tensor, other: DynamicCache, other_mask: torch.Tensor) -> tuple[DynamicCache, torch.Tensor]:
    """Two batches' caches as one: the shorter is padded on the left, where its mask hides it."""
    width = max(mask.shape[1], other_mask.shape[1])
    for layer, joining in zip(cache.layers, other.layers, strict=True):
        layer.keys = torch.cat([_pad_front(layer.keys, width), _pad_front(joining.keys, width)])
        layer.values = torch.cat([_pad_front(layer.values, width), _pad_front(joining.values, width)])
    return cache, torch.cat([_pad_front(mask, width, dim=1), _pad_front(other_mask, width, dim=1)])


def crop_front(cache: DynamicCache, start: int) -> None:
    """Drop the first ``start`` positions of every row."""
    for layer in cache.layers:
        layer.keys, layer.values = layer.keys[:, :, start:], layer.values[:, :, start:]


def _pad_front(tensor: torch.Tensor, width: int, dim: int = 2) -> torch.Tensor:
    """``tensor`` with zeros in front along ``dim`` up to ``width``."""
    missing = width - tensor.shape[dim]
    if not missing:
        return tensor
    pad = [0, 0] * (tensor.dim() - 1 - dim) + [missing, 0]
    return functional.pad(tensor, pad)
