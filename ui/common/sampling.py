"""Sampling sliders made from the parameters table, and the settings they add up to.

Every tab builds its sliders here, so a range, step or default is never written twice,
and a handler receives the sliders by name (``inputs_kwargs``), never by position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import gradio as gr

from core.generation.params import PARAMETERS, GenerationParams

#: The parameters a column of sliders offers; seed and stop sequences are typed, not slid.
SLIDER_PARAMETERS = ("temperature", "top_p", "top_k", "repetition_penalty", "max_new_tokens")


def slider(name: str, value: float | None, **kwargs: object) -> gr.Slider:
    """The slider of one parameter, at ``value`` (``None``: the parameter's "off" value)."""
    parameter = PARAMETERS[name]
    low, high = parameter.slider or (parameter.low, parameter.high)
    return gr.Slider(low, high, value=_slider_value(name, value), step=parameter.step, label=parameter.label, **kwargs)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SamplingSliders:
    """One set of sampling sliders, by parameter name."""

    sliders: dict[str, gr.Slider]

    @classmethod
    def build(
        cls, start: GenerationParams, *, names: Sequence[str] = SLIDER_PARAMETERS, elem_id: str | None = None
    ) -> SamplingSliders:
        """``elem_id`` is a pattern such as ``"tune-{name}-A"``, for the browser tests."""
        return cls(
            {
                name: slider(name, getattr(start, name), **({"elem_id": elem_id.format(name=name)} if elem_id else {}))
                for name in names
            }
        )

    def inputs(self, prefix: str = "") -> dict[str, gr.Slider]:
        """For ``inputs_kwargs``; ``prefix`` keeps several sets apart. A handler reads them with :func:`params_from`."""
        return {prefix + name: component for name, component in self.sliders.items()}

    @property
    def components(self) -> list[gr.Slider]:
        return list(self.sliders.values())



def params_from(
    values: Mapping[str, object], base: GenerationParams, names: Sequence[str], *, prefix: str = "",
    seed: float | None = None, stop: str | None = None,
) -> GenerationParams:
    """The settings that sliders ``names`` show in ``values``, the rest from ``base``.

    A slider at its parameter's "off" value means unset; a blank seed means none; stop
    sequences are one per line (``None``: keep ``base``'s).
    """
    chosen: dict[str, object] = {}
    for name in names:
        parameter = PARAMETERS[name]
        value = parameter.kind(values[prefix + name])  # type: ignore[arg-type]
        chosen[name] = None if parameter.off is not None and value == parameter.off else value
    if stop is not None:
        chosen["stop"] = tuple(line for line in stop.splitlines() if line)
    return replace(base, **chosen, seed=None if seed is None else int(seed))


def slider_values(params: GenerationParams, names: Sequence[str] = SLIDER_PARAMETERS) -> list[float]:
    """What sliders ``names`` show for ``params``, in that order (a preset's outputs)."""
    return [_slider_value(name, getattr(params, name)) for name in names]


def _slider_value(name: str, value: float | None) -> float:
    parameter = PARAMETERS[name]
    return parameter.off if value is None else value  # type: ignore[return-value]
