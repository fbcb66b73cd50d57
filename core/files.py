"""Files that appear whole or not at all: results, checkpoints, review exports, the
converted model and the retrieval index.

A run killed mid-write, or a second process writing the same thing, must never leave a
half-written file that a later start would trust. Everything is written beside its final
place and renamed into it, which is atomic on one file system; text files are fsynced
first, so a crash right after the rename still finds the data on disk.
"""

from __future__ import annotations

import io
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def write_file_atomically(path: Path, write: Callable[[io.TextIOBase], object], *, encoding: str = "utf-8") -> Path:
    """Call ``write`` with a text handle on a temporary sibling, then replace ``path`` with it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(descriptor, "w", encoding=encoding, newline="") as handle:
            write(handle)  # type: ignore[arg-type]
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def write_folder_atomically(folder: Path, save: Callable[[Path], None], *, is_complete: Callable[[Path], bool]) -> None:
    """Call ``save`` on a temporary sibling folder, then rename it to ``folder``.

    When another process renamed its own copy into place first, the rename fails; that
    copy is kept if ``is_complete`` says it is whole, since both wrote the same thing.
    """
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}-"))
    try:
        save(staging)
        os.replace(staging, folder)
    except OSError:
        if not is_complete(folder):
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
