"""Weight-only int4 and int8 linear layers on torch's own CPU kernels.

A small model decoding on a CPU reads every weight once per token, so its speed follows
the bytes read, not the arithmetic: int4 weights read a quarter of bfloat16's (the
measured speeds are in benchmarks/README.md). torch ships fused CPU kernels that multiply bfloat16 activations
by int4 weights (groups of 32 along the input, each with a scale and a zero point) and by
int8 weights (one scale per output row); the modules here only hold packed weights and
call those kernels.

The embedded model is a Q4_1 GGUF: its linear weights are 4-bit in blocks of 32 with a
scale and a minimum, which is the int4 kernel's layout, so re-quantizing the converted
float weights recovers the file's own 4-bit codes exactly. ``auto`` uses int4 only then,
when it loses nothing; a model with ordinary float weights stays as it is unless the host
asks for int4 or int8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

Quantization = Literal["none", "int4", "int8"]

#: Input features per int4 group: the block size of GGUF's Q4_0/Q4_1 and the kernel's finest.
GROUP_SIZE = 32
_INT4_LEVELS = 15
#: From this many rows on, a layer multiplies by its de-quantized weights instead of calling
#: the int4 kernel. On the benchmark CPU one layer took 40 us in int4 against 74 in
#: bfloat16 at one row and 800 against 335 at 64; in whole runs batches of 8 or 16 answers
#: decoded fastest in int4 and prompts were read fastest in bfloat16 (benchmarks/README.md).
INT4_KERNEL_MAX_ROWS = 32
#: How far a recovered weight may sit from the original, in steps of its group, and still
#: count as exact (the float32 rounding of GGUF's ``scale * code + min``).
_EXACT_TOLERANCE = 1e-3


@dataclass(frozen=True)
class Int4Weights:
    """One weight matrix in int4 groups, and how far that is from the float original."""

    codes: torch.Tensor  # [out, in], values 0..15
    scales: torch.Tensor  # [out, groups]
    zeros: torch.Tensor  # [out, groups]: the value that code 8 stands for
    dequantized: torch.Tensor  # [out, in]: the values the codes stand for
    max_error_in_steps: float

    @property
    def exact(self) -> bool:
        return self.max_error_in_steps <= _EXACT_TOLERANCE


class Int4Linear(nn.Module):
    """A linear layer with int4 weights, groups of :data:`GROUP_SIZE`, asymmetric.

    The int4 kernel is built for decoding, a few rows (tokens) at a time; from
    :data:`INT4_KERNEL_MAX_ROWS` rows on (reading a prompt) an ordinary matrix product
    with the de-quantized weights is faster, so the layer keeps those too: memory traded
    for time to first token and batch speed (benchmarks/README.md).
    """

    def __init__(self, weights: Int4Weights, bias: torch.Tensor | None):
        super().__init__()
        self.out_features, self.in_features = weights.codes.shape
        self.register_buffer("packed", torch.ops.aten._convert_weight_to_int4pack_for_cpu(weights.codes.to(torch.int32), 1))
        # the kernel's layout: [groups, out_features, (scale, zero)], dequantized as (code - 8) * scale + zero
        self.register_buffer("scales_and_zeros", torch.stack([weights.scales, weights.zeros], dim=2).transpose(0, 1).contiguous())
        self.register_buffer("dequantized", weights.dequantized)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).contiguous()
        if flat.shape[0] >= INT4_KERNEL_MAX_ROWS:
            y = nn.functional.linear(flat, self.dequantized)
        else:
            y = torch.ops.aten._weight_int4pack_mm_for_cpu(flat, self.packed, GROUP_SIZE, self.scales_and_zeros.to(x.dtype))
        y = y.reshape(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias


class Int8Linear(nn.Module):
    """A linear layer with int8 weights and one scale per output row, symmetric."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        super().__init__()
        self.out_features, self.in_features = weight.shape
        weight = weight.detach().float()
        scales = weight.abs().amax(dim=1).clamp(min=torch.finfo(torch.float32).tiny) / 127
        self.register_buffer("weight_int8", (weight / scales[:, None]).round().clamp(-127, 127).to(torch.int8))
        self.register_buffer("scales", scales)
        self.bias = None if bias is None else nn.Parameter(bias.detach().clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features).contiguous()
        y = torch.ops.aten._weight_int8pack_mm(flat, self.weight_int8, self.scales.to(x.dtype))
        y = y.reshape(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias


def int4_fits(layer: nn.Linear) -> bool:
    """The kernel needs whole groups along the input and output rows in multiples of 16."""
    return layer.in_features % GROUP_SIZE == 0 and layer.out_features % 16 == 0


def to_int4(weight: torch.Tensor) -> Int4Weights:
    """Asymmetric min/max quantization per group of 32, as GGUF's Q4_1 does it."""
    rows, columns = weight.shape
    groups = weight.detach().float().reshape(rows, columns // GROUP_SIZE, GROUP_SIZE)
    low, high = groups.amin(dim=-1, keepdim=True), groups.amax(dim=-1, keepdim=True)
    scales = (high - low).clamp(min=1e-8) / _INT4_LEVELS
    codes = ((groups - low) / scales).round().clamp(0, _INT4_LEVELS)
    dequantized = codes * scales + low
    error = ((dequantized - groups).abs() / scales).max().item()
    zeros = low + scales * 8
    return Int4Weights(
        codes.to(torch.uint8).reshape(rows, columns), scales.squeeze(-1), zeros.squeeze(-1), dequantized.reshape(rows, columns), error
    )


def quantize_linear_layers(model: nn.Module, scheme: Literal["int4", "int8", "auto"]) -> Quantization:
    """Swap the model's linear layers for weight-only int4 or int8 ones, in place.

    ``int4``: every layer that fits the int4 kernel, the rest and the output layer in int8
    (the output layer shares the token embedding, which GGUF files keep at 8 bits or more,
    and 4 bits there cost measurable quality). ``int8``: every linear layer. ``auto``: int4
    as above only if every decoder layer's weights are exactly int4 already (a Q4 GGUF);
    otherwise nothing changes. Returns the scheme applied.
    """
    output_layer = model.get_output_embeddings()
    swaps: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in model.modules():
        for name, child in parent.named_children():
            if not isinstance(child, nn.Linear):
                continue
            if scheme == "int8" or child is output_layer or not int4_fits(child):
                if scheme == "auto" and child is not output_layer:
                    return "none"  # a layer the int4 kernel cannot take exactly
                swaps.append((parent, name, Int8Linear(child.weight, child.bias)))
                continue
            weights = to_int4(child.weight)
            if scheme == "auto" and not weights.exact:
                return "none"
            swaps.append((parent, name, Int4Linear(weights, child.bias)))
    if not swaps:
        return "none"
    for parent, name, layer in swaps:
        setattr(parent, name, layer)
    return "int8" if scheme == "int8" else "int4"
