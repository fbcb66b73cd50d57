"""The local model's sampling settings for a request, named as ``generate()`` names them.

The decoding loop (:mod:`~core.generation.backends.stream_batches`) reads its rules from
this dict, and the Tune tab shows it, so what is shown is what is applied.

Kept apart from :mod:`~core.generation.backends.local` (which imports torch and loads the
model) so the Tune tab can show the parameters the local model would receive while a
slider moves, without loading a model to say so.
"""

from __future__ import annotations

from core.generation.params import GenerationParams


def local_sampling(params: GenerationParams) -> dict[str, object]:
    """The settings for ``params``; ``seed`` seeds torch before the batch it runs in."""
    sampling = params.temperature > 0
    sent: dict[str, object] = {"max_new_tokens": params.max_new_tokens, "do_sample": sampling}
    if sampling:
        sent.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or 0)
    sent["repetition_penalty"] = params.repetition_penalty
    if params.stop:
        sent["stop_strings"] = list(params.stop)
    if params.seed is not None:
        sent["seed"] = params.seed
    return sent
