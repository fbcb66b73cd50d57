"""The code's layout holds: imports run one way, and no module grows past about 500 lines.

An AST walk over every module of ``core/`` and ``ui/`` (imports inside functions and
``TYPE_CHECKING`` blocks count too: they are still a dependency a reader must follow).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 500

#: package -> the packages of this repository it may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "core.stores": {"core.errors", "core.files"},
    "core.scoring": {"core.errors", "core.files"},
    "core.retrieval": {"core.errors", "core.files", "core.config", "core.scoring"},
    "core.generation": {"core.errors", "core.files", "core.config", "core.scoring"},
}
#: No module in core/ imports these.
NEVER_IN_CORE = ("gradio", "ui", "app")


def modules(*folders: str) -> list[Path]:
    return sorted(path for folder in folders for path in (ROOT / folder).rglob("*.py"))


def dotted(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


@pytest.mark.parametrize("path", modules("core"), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_imports_run_one_way(path: Path) -> None:
    module = dotted(path)
    ours = {name for name in imported(path) if within(name, "core")}
    for package, allowed in ALLOWED.items():
        if within(module, package):
            wrong = {n for n in ours if not within(n, package) and not any(within(n, a) for a in allowed)}
            assert not wrong, f"{module} ({package}) may import only {sorted(allowed)} from core, not {sorted(wrong)}"
    outside = {n for n in imported(path) if any(within(n, banned) for banned in NEVER_IN_CORE)}
    assert not outside, f"{module} imports {sorted(outside)}: core/ never imports Gradio or the UI"


@pytest.mark.parametrize("path", modules("ui"), ids=lambda p: str(p.relative_to(ROOT)))
def test_ui_holds_no_model_logic(path: Path) -> None:
    heavy = {n for n in imported(path) if within(n, "torch") or within(n, "transformers") or within(n, "core.generation.backends")}
    assert not heavy, f"{dotted(path)} imports {sorted(heavy)}: the UI calls the service, never a model"


@pytest.mark.parametrize("path", modules("core", "ui") + [ROOT / "app.py"], ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_is_oversized(path: Path) -> None:
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines; split it by job (at most {MAX_LINES})"


def test_the_walk_sees_a_wrong_import(tmp_path: Path) -> None:
    """The check itself can fail: a scoring module importing generation is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text("from core.generation.service import TextGenService\n", encoding="utf-8")
    ours = {n for n in imported(bad) if within(n, "core")}
    assert ours == {"core.generation.service"}
    assert not any(within(n, a) for n in ours for a in ALLOWED["core.scoring"])
