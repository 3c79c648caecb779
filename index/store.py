"""Immutable index snapshots on disk: vectors (FAISS), BM25, documents, chunks and a manifest.

Layout under the index folder:

    CURRENT                 name of the snapshot in use (replaced atomically with os.replace)
    snap-<time>-<id>/       one immutable snapshot per build
    .build-<id>/            a build in progress (never loaded; removed by the next build)
    build.lock              held while a build runs
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

import faiss
import numpy as np
from filelock import FileLock, Timeout

from index.annotations import DocumentAnnotations, SentenceAnnotations, StoredTerms, decode_terms
from index.chunking import Chunk
from index.documents import Document
from index.lexical import LexicalIndex
from index.spans import Span, spans_from_rows

SCHEMA_VERSION = 3
POINTER = "CURRENT"
SNAPSHOT_PREFIX = "snap-"
BUILD_PREFIX = ".build-"
KEEP_SNAPSHOTS = 2  # the current version and the one it replaced
LARGE_HNSW_VECTORS = 500_000
LARGE_HNSW_EF_SEARCH = 256


class StoreLocked(Exception):
    """Another build holds the store's build lock."""


class SnapshotError(Exception):
    """No usable snapshot; the message tells the user what to run."""


class VectorStore(Protocol):
    """What the retriever needs from a vector index; FAISS is the embedded default."""

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...

    def reconstruct(self, rows: np.ndarray) -> np.ndarray: ...

    def save(self, path: Path) -> None: ...

    @property
    def size(self) -> int: ...


class FaissVectorStore:
    """Inner-product search over normalised vectors: exact up to `hnsw_threshold`, HNSW above."""

    def __init__(self, index: faiss.Index) -> None:
        self.index = index

    @classmethod
    def build(cls, vectors: np.ndarray, hnsw_threshold: int = 200_000, hnsw_m: int = 32,
              ef_construction: int = 80, ef_search: int = 128) -> FaissVectorStore:
        dimension = vectors.shape[1]
        if len(vectors) > hnsw_threshold:
            index = faiss.IndexHNSWFlat(dimension, hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = ef_construction
            index.hnsw.efSearch = ef_search
        else:
            index = faiss.IndexFlatIP(dimension)
        if len(vectors):
            index.add(np.ascontiguousarray(vectors, dtype=np.float32))
        return cls(index)

    @property
    def size(self) -> int:
        return int(self.index.ntotal)

    @property
    def kind(self) -> str:
        return "hnsw" if isinstance(self.index, faiss.IndexHNSW) else "flat"

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, rows) arrays of shape (len(queries), k'); rows of -1 are padding."""
        k = min(k, self.size)
        if k == 0:
            empty = np.zeros((len(queries), 0))
            return empty.astype(np.float32), empty.astype(np.int64)
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def reconstruct(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of the given rows."""
        if len(rows) == 0:
            return np.zeros((0, self.index.d), dtype=np.float32)
        return self.index.reconstruct_batch(np.asarray(rows, dtype=np.int64))

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, ef_search: int = 128) -> FaissVectorStore:
        flags = faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY
        index = faiss.read_index(str(path), flags)
        if isinstance(index, faiss.IndexHNSW):
            # recall@10 against exact search falls below 0.98 at efSearch 128 past ~500k vectors
            large = index.ntotal > LARGE_HNSW_VECTORS
            index.hnsw.efSearch = max(ef_search, LARGE_HNSW_EF_SEARCH) if large else ef_search
        return cls(index)


@dataclass
class Manifest:
    snapshot_id: str
    model: str
    dimension: int
    max_seq_length: int
    chunking: dict
    documents: dict[str, str]
    counts: dict[str, int]
    built_at: str
    build_seconds: float
    vector_index: str
    libraries: dict[str, str] = field(default_factory=dict)
    indexed_at: dict[str, str] = field(default_factory=dict)
    sentence_vectors: str = "standalone"  # how sentence vectors were made; "chunk-pooled" since pooling
    precision: str = "float32"
    annotations: int = 0  # the index.annotations version that made the stored sentence spans and terms
    model_fingerprint: str = ""  # sha256 of the model folder (index.embedding.model_fingerprint)
    vocabulary_vectors: str = "encoded"  # how word vectors were made; "token-table" since the token table
    schema_version: int = SCHEMA_VERSION

    @classmethod
    def read(cls, path: Path) -> Manifest:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema_version") != SCHEMA_VERSION:
            raise SnapshotError(
                f"index at {path.parent} has schema version {data.get('schema_version')}, this Footnote "
                f"reads version {SCHEMA_VERSION}: rebuild it with `python -m bot index --full`"
            )
        return cls(**data)


@dataclass
class Snapshot:
    """A loaded, read-only snapshot. Sentence and chunk rows are global across documents."""

    path: Path
    manifest: Manifest
    documents: dict[str, Document]
    chunks: list[Chunk]
    sentences: np.ndarray  # int64 rows: document row, start, end, paragraph
    sentence_vectors: np.ndarray
    vectors: VectorStore
    lexical: LexicalIndex
    vocabulary: dict[str, int]
    vocabulary_vectors: np.ndarray
    annotations: SentenceAnnotations
    doc_ids: list[str] = field(default_factory=list)
    span_bounds: np.ndarray = field(default_factory=lambda: np.zeros(1, np.int64))  # sentence row -> first span

    @property
    def snapshot_id(self) -> str:
        return self.manifest.snapshot_id

    def chunk_text(self, row: int) -> str:
        chunk = self.chunks[row]
        return self.documents[chunk.doc_id].text[chunk.start : chunk.end]

    def sentence_text(self, row: int) -> str:
        doc_row, start, end, _ = self.sentences[row]
        return self.documents[self.doc_ids[doc_row]].text[start:end]

    def sentence_spans(self, row: int, text: str) -> list[Span]:
        """The names, numbers and dates of sentence `row` (whose text is `text`), found at build time."""
        return spans_from_rows(text, self.annotations.spans[self.span_bounds[row] : self.span_bounds[row + 1]])

    def sentence_terms(self, row: int) -> StoredTerms:
        """The stems (with offsets) and content words of sentence `row`, found at build time."""
        return decode_terms(self.annotations.line(row))

    def document_annotations(self, doc_row: int, first: int, end: int) -> DocumentAnnotations:
        """Document `doc_row`'s annotations (its sentences are rows [first, end)), with local rows."""
        return self.annotations.document(first, end, self.span_bounds)


def write_snapshot(folder: Path, manifest: Manifest, documents: list[Document], chunks: list[Chunk],
                   sentences: np.ndarray, sentence_vectors: np.ndarray, annotations: SentenceAnnotations,
                   vectors: FaissVectorStore, lexical: LexicalIndex, vocabulary: list[str],
                   vocabulary_vectors: np.ndarray) -> None:
    """Write every file of a snapshot into `folder` and fsync them; the manifest goes last."""
    folder.mkdir(parents=True)
    write_jsonl(folder / "documents.jsonl", (d.to_json() for d in documents))
    write_jsonl(folder / "chunks.jsonl", (
        {"chunk_id": c.chunk_id, "doc_id": c.doc_id, "start": c.start, "end": c.end,
         "first_sentence": c.first_sentence, "last_sentence": c.last_sentence} for c in chunks))
    np.save(folder / "sentences.npy", sentences.astype(np.int64))
    np.save(folder / "sentence_vectors.npy", sentence_vectors.astype(np.float32))
    np.save(folder / "sentence_spans.npy", annotations.spans.astype(np.int32))
    np.save(folder / "sentence_terms.npy", annotations.terms)
    np.save(folder / "sentence_term_bounds.npy", annotations.term_bounds)
    vectors.save(folder / "vectors.faiss")
    lexical.save(folder / "bm25")
    (folder / "vocabulary.json").write_text(json.dumps(vocabulary, ensure_ascii=False), encoding="utf-8")
    np.save(folder / "vocabulary_vectors.npy", vocabulary_vectors.astype(np.float32))
    (folder / "manifest.json").write_text(json.dumps(manifest.__dict__, indent=1), encoding="utf-8")
    _fsync_tree(folder)


def write_jsonl(path: Path, rows) -> None:
    """One JSON object a line (UTF-8, not ASCII-escaped)."""
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def _fsync_tree(folder: Path, recursive: bool = True) -> None:
    for path in [*(folder.rglob("*") if recursive else ()), folder]:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def read_jsonl(path: Path) -> list[dict]:
    return list(iter_jsonl(path))


def iter_jsonl(path: Path) -> Iterator[dict]:
    """The records of a JSONL file, one line at a time."""
    with path.open(encoding="utf-8") as handle:
        yield from (json.loads(line) for line in handle if line.strip())


class SnapshotStore:
    """Publishes snapshots atomically and loads the current one, refusing incompatible ones."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def current_id(self) -> str | None:
        """The current version's snapshot id, None before the first."""
        path = self.current_path()
        return path.name.removeprefix(SNAPSHOT_PREFIX) if path is not None else None

    def current_path(self) -> Path | None:
        try:
            name = (self.root / POINTER).read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None
        path = self.root / name
        return path if (path / "manifest.json").is_file() else None

    @contextmanager
    def build_lock(self) -> Iterator[None]:
        """Held for a whole build: one build of this folder at a time (StoreLocked otherwise)."""
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(self.root / "build.lock", blocking=False):
                yield
        except Timeout:
            raise StoreLocked(f"another build of {self.root} is running") from None

    def new_build_folder(self, snapshot_id: str) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root / f"{BUILD_PREFIX}{snapshot_id}"

    def publish(self, build_folder: Path) -> Path:
        """Rename a finished build into place and swap the pointer; keep the new snapshot and the one it
        replaces."""
        previous = self.current_path()
        final = self.root / (SNAPSHOT_PREFIX + build_folder.name.removeprefix(BUILD_PREFIX))
        os.replace(build_folder, final)
        try:
            pointer_tmp = self.root / f"{POINTER}.tmp"
            pointer_tmp.write_text(final.name + "\n", encoding="utf-8")
            with pointer_tmp.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(pointer_tmp, self.root / POINTER)
        except BaseException:  # never current: gone now (after a kill, the next publish's prune removes it)
            if self.current_path() != final:  # interrupted as the pointer's swap returned: it is current
                shutil.rmtree(final, ignore_errors=True)
            raise
        _fsync_tree(self.root, recursive=False)  # the renames themselves survive a power cut
        self._prune(keep={final, previous})
        return final

    def _prune(self, keep: set[Path | None]) -> None:
        """Delete every snapshot folder but `keep`: older versions, and any folder whose publish was interrupted
        before the pointer named it (it never was current, so it is no previous version)."""
        for path in self.root.glob(f"{SNAPSHOT_PREFIX}*"):
            if path not in keep:
                shutil.rmtree(path, ignore_errors=True)

    def drop(self) -> None:
        """Delete every version: afterwards there is no current one."""
        shutil.rmtree(self.root, ignore_errors=True)

    def remove_abandoned_builds(self) -> None:
        """Delete half-written build folders left by a killed build (call while holding the lock)."""
        for path in self.root.glob(f"{BUILD_PREFIX}*"):
            shutil.rmtree(path, ignore_errors=True)

    def load(self, model: str, dimension: int, ef_search: int = 128, fingerprint: str | None = None) -> Snapshot:
        """Load the current snapshot, checking it was built with the same model (name, dimension and, when
        given, fingerprint); any unreadable part raises SnapshotError naming the folder and the reason."""
        path = self.current_path()
        if path is None:
            raise SnapshotError(f"no index in {self.root}: build it with `python -m bot index`")
        try:
            return load_snapshot(path, model, dimension, ef_search, fingerprint)
        except SnapshotError:
            raise
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RuntimeError) as exc:
            raise SnapshotError(f"index at {path} is unreadable ({type(exc).__name__}: {exc}): "
                                "rebuild it with `python -m bot index --full`") from exc


def load_snapshot(path: Path, model: str, dimension: int, ef_search: int = 128,
                  fingerprint: str | None = None) -> Snapshot:
    manifest = Manifest.read(path / "manifest.json")
    if manifest.model != model or manifest.dimension != dimension:
        raise SnapshotError(
            f"index at {path} was built with model {manifest.model} (dimension {manifest.dimension}) "
            f"but the configured model is {model} (dimension {dimension}): "
            "rebuild it with `python -m bot index --full`"
        )
    if fingerprint is not None and manifest.model_fingerprint != fingerprint:
        raise SnapshotError(f"index at {path} was built with other {model} weights than the configured ones: "
                            "rebuild it with `python -m bot index --full`")
    documents = [Document(**row) for row in read_jsonl(path / "documents.jsonl")]
    vocabulary = json.loads((path / "vocabulary.json").read_text(encoding="utf-8"))
    sentences = np.load(path / "sentences.npy")  # small, and read row by row: in memory, not mapped
    spans = np.load(path / "sentence_spans.npy")
    annotations = SentenceAnnotations(spans, np.load(path / "sentence_terms.npy", mmap_mode="r"),
                                      np.load(path / "sentence_term_bounds.npy"))
    return Snapshot(
        path=path,
        manifest=manifest,
        documents={d.doc_id: d for d in documents},
        doc_ids=[d.doc_id for d in documents],
        chunks=[Chunk(**row) for row in read_jsonl(path / "chunks.jsonl")],
        sentences=sentences,
        annotations=annotations,
        span_bounds=np.searchsorted(spans[:, 0], np.arange(len(sentences) + 1)),
        sentence_vectors=np.load(path / "sentence_vectors.npy", mmap_mode="r"),
        vectors=FaissVectorStore.load(path / "vectors.faiss", ef_search),
        lexical=LexicalIndex.load(path / "bm25"),
        vocabulary={word: row for row, word in enumerate(vocabulary)},
        vocabulary_vectors=np.load(path / "vocabulary_vectors.npy"),
    )


def new_snapshot_id() -> str:
    """Sortable by build time: UTC time to the microsecond plus a random suffix."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f") + "-" + uuid.uuid4().hex[:6]
