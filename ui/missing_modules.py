"""Modules the app does without, recorded once so that code trying them every time pays nothing.

Gradio tries ``import matplotlib`` twice for every update it sends (to switch plots to a
backend with no window, and back). Without matplotlib installed, and the app does not need
it, each try searches every folder on ``sys.path`` before failing: a tenth of the app's
time under a hundred chatting sessions. A module recorded as ``None`` in ``sys.modules``
fails at once with the same ``ImportError``.
"""

from __future__ import annotations

import importlib.util
import sys

#: Modules that Gradio imports optionally on the path of every event.
TRIED_PER_EVENT = ("matplotlib",)


def record_missing_modules(names: tuple[str, ...] = TRIED_PER_EVENT) -> list[str]:
    """Mark each of ``names`` that is not installed as absent; return the ones marked.

    One that is installed is left alone, so it imports as usual.
    """
    missing = [name for name in names if name not in sys.modules and importlib.util.find_spec(name) is None]
    for name in missing:
        sys.modules[name] = None  # type: ignore[assignment]
    return missing
