"""Modules the app does without are recorded once as absent; installed ones import as usual."""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

import pytest
from gradio import utils as gradio_utils

from ui.missing_modules import TRIED_PER_EVENT, record_missing_modules


def test_gradio_still_tries_matplotlib_at_every_event() -> None:
    """If Gradio stops trying the import per event, the record is no longer needed."""
    assert "matplotlib" in TRIED_PER_EVENT
    assert "import matplotlib" in inspect.getsource(gradio_utils.MatplotlibBackendMananger)


def test_a_module_that_is_not_installed_is_recorded_as_absent(monkeypatch: pytest.MonkeyPatch) -> None:
    name = "scribes_module_nobody_installed"
    monkeypatch.delitem(sys.modules, name, raising=False)
    assert record_missing_modules((name,)) == [name]
    assert name in sys.modules and sys.modules[name] is None
    with pytest.raises(ImportError):
        importlib.import_module(name)
    assert importlib.util.find_spec(name) is None  # what optional-dependency checks ask: still "not installed"
    monkeypatch.delitem(sys.modules, name)


def test_an_installed_module_is_left_to_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "scribes_plots").mkdir()
    (tmp_path / "scribes_plots" / "__init__.py").write_text("BACKEND = 'agg'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "scribes_plots", raising=False)
    assert record_missing_modules(("scribes_plots",)) == []
    assert importlib.import_module("scribes_plots").BACKEND == "agg"
    monkeypatch.delitem(sys.modules, "scribes_plots")
