"""Settings from the environment and .env: defaults, parsing, and plain error messages."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from core.config import Settings
from core.errors import ConfigurationError
from core.generation.service import TextGenService

FAKE_TOKEN = "hf_FAKE_TOKEN_abcdefghijklmnop123456"


def test_defaults_match_the_spec() -> None:
    s = Settings.from_env(environ={}, dotenv_path=None)
    assert (s.model, s.timeout_s, s.temperature, s.max_output_tokens) == ("meta-llama/Llama-2-7b-chat-hf", 60.0, 0.2, 400)
    assert (s.top_p, s.repetition_penalty, s.context_window) == (0.9, 1.1, 2048)
    assert s.mode == "local"  # no token and no endpoint: the embedded model


@pytest.mark.parametrize(
    ("environ", "mode"),
    [
        ({"HF_TOKEN": FAKE_TOKEN}, "api"),
        ({"HF_API_KEY": FAKE_TOKEN}, "api"),
        ({"HF_BASE_URL": "http://127.0.0.1:8080/v1"}, "api"),
        ({"HF_TOKEN": FAKE_TOKEN, "HF_USE_API": "false"}, "local"),
        ({"HF_USE_API": "no"}, "local"),
    ],
)
def test_mode_follows_token_endpoint_and_switch(environ: dict[str, str], mode: str) -> None:
    assert Settings.from_env(environ=environ, dotenv_path=None).mode == mode


def test_hf_token_wins_over_the_specs_hf_api_key() -> None:
    s = Settings.from_env(environ={"HF_TOKEN": "hf_first_one_1234", "HF_API_KEY": "hf_second_one_5678"}, dotenv_path=None)
    assert s.token == "hf_first_one_1234"


def test_every_documented_variable_is_read() -> None:
    s = Settings.from_env(
        environ={
            "HF_GENERATION_MODEL": "org/model",
            "HF_PROVIDER": "together",
            "HF_LOCAL_MODEL": "/models/x",
            "HF_GENERATION_TIMEOUT": "30",
            "HF_GENERATION_TEMPERATURE": "0.7",
            "ASSISTANT_MAX_OUTPUT_TOKENS": "200",
            "ASSISTANT_MODEL_TOP_P": "0.5",
            "ASSISTANT_MODEL_REPETITION_PENALTY": "1.3",
            "ASSISTANT_MODEL_CONTEXT_WINDOW": "4096",
        },
        dotenv_path=None,
    )
    assert (s.model, s.provider, s.local_model, s.timeout_s, s.temperature) == ("org/model", "together", "/models/x", 30.0, 0.7)
    assert (s.max_output_tokens, s.top_p, s.repetition_penalty, s.context_window) == (200, 0.5, 1.3, 4096)


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    dotenv = tmp_path / ".env"
    dotenv.write_text("HF_GENERATION_TEMPERATURE=0.5\nASSISTANT_MODEL_TOP_P=0.8\n")
    s = Settings.from_env(environ={"ASSISTANT_MODEL_TOP_P": "0.7"}, dotenv_path=dotenv)
    assert (s.temperature, s.top_p) == (0.5, 0.7)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("HF_GENERATION_TEMPERATURE", "3", "HF_GENERATION_TEMPERATURE='3' is out of range. Allowed: from 0 to 2."),
        ("HF_GENERATION_TEMPERATURE", "warm", "HF_GENERATION_TEMPERATURE='warm' is not a number. Allowed: from 0 to 2."),
        ("ASSISTANT_MAX_OUTPUT_TOKENS", "1000", "ASSISTANT_MAX_OUTPUT_TOKENS='1000' is out of range. Allowed: from 1 to 400."),
        ("ASSISTANT_MAX_OUTPUT_TOKENS", "12.5", "ASSISTANT_MAX_OUTPUT_TOKENS='12.5' is not a whole number. Allowed: from 1 to 400."),
        ("ASSISTANT_MODEL_TOP_P", "0", "ASSISTANT_MODEL_TOP_P='0' is out of range. Allowed: more than 0 up to 1."),
        ("ASSISTANT_MODEL_REPETITION_PENALTY", "0.9", "ASSISTANT_MODEL_REPETITION_PENALTY='0.9' is out of range. Allowed: from 1 to 2."),
        ("ASSISTANT_MODEL_CONTEXT_WINDOW", "100", "ASSISTANT_MODEL_CONTEXT_WINDOW='100' is out of range. Allowed: from 256 to 131072."),
        ("HF_GENERATION_TIMEOUT", "0", "HF_GENERATION_TIMEOUT='0' is out of range. Allowed: from 1 to 600."),
        ("SCRIBES_SESSIONS_KEPT", "5", "SCRIBES_SESSIONS_KEPT='5' is out of range. Allowed: from 10 to 100000."),
        ("HF_USE_API", "maybe", "HF_USE_API='maybe' is not a yes/no value. Use true or false."),
        ("HF_DEVICE", "tpu", "HF_DEVICE='tpu' is not allowed. Use one of: auto, cpu, cuda."),
        ("HF_BASE_URL", "localhost:8080", "HF_BASE_URL must be an http:// or https:// URL, e.g. http://localhost:8080/v1."),
    ],
)
def test_bad_values_name_the_variable_and_the_allowed_range(name: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env(environ={name: value}, dotenv_path=None)
    assert str(caught.value) == expected


def test_api_mode_without_token_or_endpoint_says_what_to_set() -> None:
    with pytest.raises(ConfigurationError, match="HF_USE_API is true, but neither HF_TOKEN nor HF_BASE_URL is set"):
        Settings.from_env(environ={"HF_USE_API": "true"}, dotenv_path=None)


def test_the_token_never_shows_in_repr_info_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = Settings.from_env(
        environ={"HF_TOKEN": FAKE_TOKEN, "HF_BASE_URL": "https://user:secretpass@example.invalid/v1"}, dotenv_path=None
    )
    info = TextGenService(settings).get_model_info()
    assert FAKE_TOKEN not in repr(settings)
    assert FAKE_TOKEN not in repr(info) and "secretpass" not in repr(info)
    assert info["endpoint"] == "https://example.invalid/v1"
    assert FAKE_TOKEN not in caplog.text
