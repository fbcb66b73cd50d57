"""Weight-only int4/int8 layers: exact on the embedded Q4_1 model, close elsewhere, chosen safely."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

from core.config import Settings
from core.errors import ConfigurationError, ModelLoadError
from core.generation.backends.local import cpu_has_bfloat16, pick_quantization
from core.generation.backends.quantized import Int4Linear, Int8Linear, quantize_linear_layers, to_int4
from core.generation.model_files import ModelSource, conversion_folder, embedded_gguf
from core.generation.service import TextGenService, reset_textgen_service
from core.scoring.references import verse_text
from ui.status import describe_model

CPU = torch.device("cpu")
GGUF = ModelSource("gguf", "model.gguf", "model")


@pytest.fixture(scope="module")
def converted(cache_dir: Path, local_service: TextGenService) -> Path:
    return conversion_folder(embedded_gguf(), cache_dir)


def _float32_model(folder: Path) -> nn.Module:
    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def _tiny_random_model() -> nn.Module:
    """Ordinary float weights, with layers (k/v: 8 outputs) the int4 kernel cannot take."""
    config = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=8,
                         num_key_value_heads=1, head_dim=8, tie_word_embeddings=True)
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


def test_the_embedded_models_linear_weights_are_exact_int4(converted: Path) -> None:
    """Q4_1 blocks of 32 are what the int4 kernel takes: re-quantizing recovers every code."""
    model = _float32_model(converted)
    decoder = [m for m in model.model.modules() if isinstance(m, nn.Linear)]
    assert len(decoder) == 30 * 7
    assert all(to_int4(layer.weight).exact for layer in decoder)


def test_ordinary_float_weights_are_not_exact_int4() -> None:
    weights = to_int4(torch.randn(32, 64))
    assert not weights.exact and 0.1 < weights.max_error_in_steps <= 0.5


@pytest.mark.parametrize("rows", [1, 5, 40])  # 2 x rows: the int4 kernel up to 32, the de-quantized weights after
def test_int4_and_int8_layers_compute_the_matrix_product(rows: int) -> None:
    torch.manual_seed(1)
    layer = nn.Linear(128, 48, bias=True)
    x = torch.randn(2, rows, 128)
    weights = to_int4(layer.weight)
    int4 = Int4Linear(weights, layer.bias)
    dequantized = (weights.codes.float().reshape(48, 4, 32) - 8) * weights.scales[..., None] + weights.zeros[..., None]
    torch.testing.assert_close(weights.dequantized, dequantized.reshape(48, 128))
    expected = nn.functional.linear(x, dequantized.reshape(48, 128), layer.bias)
    torch.testing.assert_close(int4(x), expected, rtol=1e-4, atol=1e-4)
    int8 = Int8Linear(layer.weight, layer.bias)
    torch.testing.assert_close(int8(x), layer(x), rtol=0.02, atol=0.02)
    in_bfloat16 = int4.to(torch.bfloat16)(x.bfloat16())  # how the model runs: scales and bias cast with it
    assert in_bfloat16.dtype == torch.bfloat16 and in_bfloat16.shape == (2, rows, 48)
    torch.testing.assert_close(in_bfloat16.float(), expected, rtol=0.05, atol=0.05)


def test_auto_leaves_ordinary_float_weights_alone() -> None:
    model = _tiny_random_model()
    assert quantize_linear_layers(model, "auto") == "none"
    assert not any(isinstance(m, (Int4Linear, Int8Linear)) for m in model.modules())


def test_int4_takes_what_fits_and_puts_the_rest_and_the_output_layer_in_int8() -> None:
    model = _tiny_random_model()
    before = model(torch.tensor([[1, 2, 3]])).logits
    assert quantize_linear_layers(model, "int4") == "int4"
    attention = model.model.layers[0].self_attn
    assert isinstance(attention.q_proj, Int4Linear) and isinstance(attention.k_proj, Int8Linear)
    assert isinstance(model.lm_head, Int8Linear) and isinstance(model.model.embed_tokens, nn.Embedding)
    after = model(torch.tensor([[1, 2, 3]])).logits
    assert torch.corrcoef(torch.stack([before.flatten(), after.flatten()]))[0, 1] > 0.95


def test_int8_takes_every_linear_layer() -> None:
    model = _tiny_random_model()
    assert quantize_linear_layers(model, "int8") == "int8"
    assert not any(type(m) is nn.Linear for m in model.modules())


def test_the_quantized_embedded_model_reads_scripture_as_well_as_float32(converted: Path) -> None:
    """Perplexity on KJV text: the int4 model within 1% of the float32 one (measured: 4.318 vs 4.319)."""
    tokenizer = AutoTokenizer.from_pretrained(converted)
    genesis_1, john_3 = range(1_001_001, 1_001_032), range(43_003_001, 43_003_037)  # pythonbible verse ids
    text = " ".join(verse_text(verse) for verse in [*genesis_1, *john_3])
    ids = tokenizer(text, return_tensors="pt")["input_ids"][:, :1024]

    def perplexity(model: nn.Module) -> float:
        with torch.inference_mode():
            logits = model(ids).logits.float()
        return math.exp(nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:]).item())

    model = _float32_model(converted)
    reference = perplexity(model)
    assert quantize_linear_layers(model, "auto") == "int4"
    quantized = perplexity(model.to(torch.bfloat16))
    assert abs(quantized - reference) / reference < 0.01, (quantized, reference)


def test_auto_quantizes_only_a_gguf_model_computing_in_bfloat16_on_a_cpu() -> None:
    folder = ModelSource("folder", "/models/x", "x")
    assert pick_quantization(CPU, torch.bfloat16, GGUF) == "auto"
    assert pick_quantization(CPU, torch.float32, GGUF) == "none"  # the int4 kernel's slow path
    assert pick_quantization(CPU, torch.bfloat16, folder) == "none"
    assert pick_quantization(CPU, torch.float32, folder, "int8") == "int8"
    assert pick_quantization(torch.device("cuda"), torch.bfloat16, GGUF) == "none"
    with pytest.raises(ModelLoadError, match="HF_LOCAL_QUANTIZATION=int4 runs on the CPU only"):
        pick_quantization(torch.device("cuda"), torch.bfloat16, GGUF, "int4")


def test_the_service_reports_its_quantization_and_can_be_told_none(local_service: TextGenService, local_settings: Settings) -> None:
    details = dict(local_service.backend().info().details)
    assert details["quantization"] == ("int4" if cpu_has_bfloat16() else "none")
    reset_textgen_service(local_service)
    try:
        shown = describe_model(None)  # the app's status panel
    finally:
        reset_textgen_service()
    assert ("**Device:** cpu · bfloat16 · int4 weights" if cpu_has_bfloat16() else "**Device:** cpu · float32") in shown
    plain = TextGenService(replace(local_settings, local_quantization="none"))
    assert dict(plain.backend().info().details)["quantization"] == "none"
    assert plain.chat("What is grace?", max_new_tokens=8, temperature=0).output_tokens >= 1


def test_a_bad_quantization_setting_names_the_choices() -> None:
    with pytest.raises(ConfigurationError, match="HF_LOCAL_QUANTIZATION='int3' is not allowed. Use one of: auto, none, int4, int8"):
        Settings.from_env(environ={"HF_LOCAL_QUANTIZATION": "int3"}, dotenv_path=None)
