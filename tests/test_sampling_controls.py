"""One table of sampling parameters behind the settings, the CLI's flags and every slider.

The sliders are built in-process with real Gradio components, under the real environment
variables, and read back from the app's own config, as the browser receives it.
"""

from __future__ import annotations

import gradio as gr
import pytest

from core import GenerationParams, Settings, reset_textgen_service
from core.config import ENVIRONMENT_VARIABLES
from core.errors import ConfigurationError, InvalidRequestError
from core.evaluation.cli import build_parser
from core.generation.params import SAMPLING_PARAMETERS, resolve_params
from ui.common.presets import presets
from ui.common.sampling import SLIDER_PARAMETERS, params_from, slider_values
from ui.evaluate.tab import build_evaluate_tab


def slider_props(demo: gr.Blocks, elem_id: str) -> dict[str, object]:
    return next(c["props"] for c in demo.config["components"] if c.get("props", {}).get("elem_id") == elem_id)


def test_the_evaluate_sliders_start_at_the_configured_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("HF_GENERATION_TEMPERATURE", "0.7")
    monkeypatch.setenv("ASSISTANT_MODEL_TOP_P", "0.8")
    monkeypatch.setenv("ASSISTANT_MAX_OUTPUT_TOKENS", "250")
    monkeypatch.setenv("HF_USE_API", "false")
    monkeypatch.setenv("SCRIBES_DATA_DIR", str(tmp_path))
    reset_textgen_service()
    try:
        with gr.Blocks() as demo:
            build_evaluate_tab(gr.State(GenerationParams()), gr.State(None))
    finally:
        reset_textgen_service()
    assert slider_props(demo, "evaluate-temperature")["value"] == 0.7  # was hard-coded 0.2
    assert slider_props(demo, "evaluate-top_p")["value"] == 0.8
    assert slider_props(demo, "evaluate-max_new_tokens")["value"] == 250
    assert slider_props(demo, "evaluate-repetition_penalty")["value"] == 1.1
    assert (slider_props(demo, "evaluate-temperature")["minimum"], slider_props(demo, "evaluate-temperature")["maximum"]) == (0, 2)


@pytest.mark.parametrize("parameter", SAMPLING_PARAMETERS, ids=lambda p: p.name)
def test_every_parameter_has_a_flag_with_its_range(parameter) -> None:
    flags = {action.option_strings[0]: action for action in build_parser()._actions if action.option_strings}
    assert parameter.flag in flags and f"Allowed: {parameter.allowed}" in (flags[parameter.flag].help or "")
    args = build_parser().parse_args(["set.csv", "-o", "out.csv", parameter.flag, str(parameter.kind(parameter.high))])
    assert getattr(args, parameter.name) == parameter.high


@pytest.mark.parametrize("parameter", SAMPLING_PARAMETERS, ids=lambda p: p.name)
def test_a_request_and_a_variable_are_held_to_the_same_range(parameter) -> None:
    beyond = parameter.kind(parameter.high + 1)
    if parameter.clamped:  # asking for more tokens gets the most there are
        assert resolve_params(Settings(), {parameter.name: beyond}).params.max_new_tokens == parameter.high
    else:
        with pytest.raises(InvalidRequestError, match=rf"Allowed: {parameter.allowed}\.$"):
            resolve_params(Settings(), {parameter.name: beyond})
    for name in parameter.env:
        assert name in ENVIRONMENT_VARIABLES
        with pytest.raises(ConfigurationError, match=rf"^{name}='{beyond}' is out of range\. Allowed: {parameter.allowed}\.$"):
            Settings.from_env({name: str(beyond)}, dotenv_path=None)


def test_a_preset_survives_its_sliders() -> None:
    for name, chosen in presets(Settings()).items():
        values = dict(zip(SLIDER_PARAMETERS, slider_values(chosen)))
        assert params_from(values, GenerationParams(), SLIDER_PARAMETERS) == chosen, name


def test_top_k_at_zero_means_off() -> None:
    values = dict(zip(SLIDER_PARAMETERS, slider_values(GenerationParams(top_k=None))))
    assert values["top_k"] == 0 and params_from(values, GenerationParams(), SLIDER_PARAMETERS).top_k is None
    assert params_from({**values, "top_k": 40}, GenerationParams(), SLIDER_PARAMETERS, seed=7, stop="Amen\n\n").overrides()["stop"] == ["Amen"]
