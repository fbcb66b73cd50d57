"""Watching the local model from a test: how many forward passes ran, and when it went idle."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from core.generation.backends.local import LocalTransformersBackend


@contextmanager
def forward_passes(model: torch.nn.Module) -> Iterator[list[int]]:
    """Count the model's forward passes (one per generated token) while the block runs."""
    count = [0]

    def hook(module: torch.nn.Module, args: tuple) -> None:
        count[0] += 1

    handle = model.register_forward_pre_hook(hook)
    try:
        yield count
    finally:
        handle.remove()


def wait_until_idle(backend: LocalTransformersBackend, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while backend.busy and time.monotonic() < deadline:
        time.sleep(0.05)
    return not backend.busy
