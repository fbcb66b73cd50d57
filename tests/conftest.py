"""Shared fixtures: the real embedded model, loaded once per test session.

The converted model is cached in SCRIBES_CACHE_DIR (default ~/.cache/scribes-textgen),
so only the first run on a machine pays the ~20 s GGUF conversion.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from app_process import RunningApp, start_app
from openai_server import RunningServer, start_transformers_server

from core.config import Settings
from core.generation.model_files import conversion_folder, embedded_gguf
from core.generation.service import TextGenService


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    return Settings.from_env(environ=os.environ, dotenv_path=None).cache_dir


@pytest.fixture(scope="session")
def local_settings(cache_dir: Path) -> Settings:
    """Local mode on the embedded model, whatever the developer's own environment says."""
    return Settings(use_api=False, cache_dir=cache_dir, cache_size=64, retry_backoff_s=0.01)


@pytest.fixture(scope="session")
def local_service(local_settings: Settings) -> TextGenService:
    """One service with the model loaded, shared by the tests that only read from it."""
    service = TextGenService(local_settings)
    service.backend()
    return service


@pytest.fixture
def fresh_local_service(local_service: TextGenService) -> Iterator[TextGenService]:
    """A service with an empty cache that reuses the loaded model (usage counters are the model's)."""
    yield TextGenService(local_service.settings, backends={"local": local_service.backend()})


@pytest.fixture(scope="session")
def converted_model_dir(local_service: TextGenService, cache_dir: Path) -> Path:
    """The embedded model as a transformers folder (what `transformers serve` needs)."""
    folder = conversion_folder(embedded_gguf(), cache_dir)
    assert (folder / "config.json").is_file(), folder
    return folder


@pytest.fixture(scope="session")
def openai_server(converted_model_dir: Path) -> Iterator[RunningServer]:
    """A real `transformers serve` on 127.0.0.1 serving the embedded model (greedy decoding)."""
    server = start_transformers_server(converted_model_dir)
    yield server
    server.stop()


@pytest.fixture
def api_service(openai_server: RunningServer, tmp_path: Path) -> TextGenService:
    """A service in API mode against the real server, with a fresh cache and usage counters."""
    settings = Settings(
        base_url=openai_server.base_url,
        model=openai_server.model,
        token="hf_FAKE_TOKEN_for_api_tests_0123456789",
        timeout_s=120,
        retry_backoff_s=0.01,
        cache_dir=tmp_path,
    )
    return TextGenService(settings)


@pytest.fixture(scope="session")
def local_app_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The data folder (feedback, reviews) of :func:`local_app`."""
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def local_app(local_app_data: Path, cache_dir: Path) -> Iterator[RunningApp]:
    """The app in local mode on the embedded model; its log lines carry the prompts sent."""
    app = start_app(
        {"HF_USE_API": "false", "SCRIBES_CACHE_DIR": str(cache_dir), "SCRIBES_DATA_DIR": str(local_app_data), "HF_LOG_PROMPTS": "true"}
    )
    yield app
    app.stop()
