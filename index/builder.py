"""Full and incremental index builds, with progress callbacks, published as immutable snapshots."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np

from index.annotations import ANNOTATIONS_VERSION, DocumentAnnotations, SentenceAnnotations, annotate
from index.chunking import Chunk, Chunker, ChunkingConfig, Sentence
from index.documents import DEFAULT_MAX_FILE_BYTES, Document, Problem, load_corpus
from index.embedding import Embedder, SpanSums, TextTokens, pooled_vectors
from index.lexical import Analyzer, LexicalIndex, content_words
from index.store import (
    FaissVectorStore,
    Manifest,
    Snapshot,
    SnapshotError,
    SnapshotStore,
    StoreLocked,
    new_snapshot_id,
    write_snapshot,
)


@dataclass(frozen=True)
class BuildProgress:
    stage: str  # "documents" or "embedding"
    done: int
    total: int


ProgressCallback = Callable[[BuildProgress], None]


class BuildError(Exception):
    """The build could not produce a snapshot; the message says why."""


class BuildInProgress(BuildError):
    """Another build holds the index lock."""


class BuildCancelled(BuildError):
    """The build was asked to stop; nothing was published."""


@dataclass
class BuildReport:
    snapshot_id: str
    path: Path
    documents: int
    chunks: int
    new: int
    reused: int
    removed: int
    seconds: float
    embedded_texts: int
    problems: list[Problem] = field(default_factory=list)
    unchanged: bool = False  # the current snapshot already held exactly these documents: nothing was written

    def summary(self) -> str:
        skipped = f", {len(self.problems)} skipped" if self.problems else ""
        if self.unchanged:
            return f"index up to date: {self.documents} documents, {self.chunks} chunks{skipped}"
        return (f"indexed {self.documents} documents, {self.chunks} chunks "
                f"({self.new} new, {self.reused} reused, {self.removed} removed{skipped}) "
                f"in {self.seconds:.1f} s")


SPLIT_GROUP = 64
"""Documents split per tokenizer call (one call per document costs more than the tokenizing)."""

VOCABULARY_VECTORS = "token-table"
"""Word vectors come from the model's token table (`Embedder.word_vectors`), as unknown question words do;
snapshots whose words were encoded one by one have theirs made again."""
SENTENCE_VECTORS = "chunk-pooled"
"""Sentence vectors are mean-pooled from their tokens inside the chunk pass; snapshots made otherwise are
re-embedded in full rather than mixed."""


@dataclass
class ChunkInputs:
    """What the encoder needs for the chunks still to embed, prepared by the text worker."""

    pending: list[DocumentParts]
    texts: list[str] = field(default_factory=list)
    spans: list[list[tuple[int, int]]] = field(default_factory=list)
    owners: list[int] = field(default_factory=list)  # for every span, its sentence's row among pending ones
    sentences: int = 0
    tokens: dict[str, list] | None = None  # the chunks' model inputs, cut from their documents' tokens


@dataclass
class DocumentParts:
    """One document's sentences and chunks (document-local rows) and their vectors."""

    document: Document
    sentences: list[Sentence]
    chunks: list[Chunk]
    sentence_vectors: np.ndarray | None = None
    chunk_vectors: np.ndarray | None = None
    reused: bool = False
    tokens: TextTokens | None = None  # the document's tokens, while its chunks wait to be embedded
    annotations: DocumentAnnotations | None = None  # its sentences' spans and terms


class IndexBuilder:
    """Builds snapshots from a corpus folder, re-embedding only documents whose content changed."""

    def __init__(self, embedder: Embedder, store: SnapshotStore, chunking: ChunkingConfig | None = None,
                 hnsw_threshold: int = 200_000, max_file_bytes: int = DEFAULT_MAX_FILE_BYTES) -> None:
        self.embedder = embedder
        self.store = store
        self.chunking = chunking or ChunkingConfig(max_tokens=embedder.max_seq_length)
        self.chunker = Chunker(embedder.tokenize_texts, embedder.special_tokens, self.chunking)
        self.analyzer = Analyzer()
        self.hnsw_threshold = hnsw_threshold
        self.max_file_bytes = max_file_bytes

    def build(self, corpus: Path, full: bool = False, progress: ProgressCallback | None = None,
              stop: threading.Event | None = None) -> BuildReport:
        """Index `corpus` and publish the snapshot; raise BuildError when nothing could be indexed, and
        BuildCancelled, publishing nothing, at the next batch after `stop` is set."""
        started = time.perf_counter()
        progress = _stoppable(progress, stop)
        loaded = load_corpus(Path(corpus), self.max_file_bytes)
        if not loaded.documents:
            reasons = "; ".join(map(str, loaded.problems)) or f"no articles found in {corpus}"
            raise BuildError(f"nothing to index: {reasons}")
        with self._lock():
            self.store.remove_abandoned_builds()
            previous = None if full else self._previous_snapshot()
            if previous is not None and self._up_to_date(previous, loaded.documents):
                count = len(loaded.documents)
                return BuildReport(snapshot_id=previous.snapshot_id, path=previous.path, documents=count,
                                   chunks=len(previous.chunks), new=0, reused=count, removed=0,
                                   seconds=time.perf_counter() - started, embedded_texts=0,
                                   problems=loaded.problems, unchanged=True)
            # Text work runs in a second thread while this one looks up word vectors and encodes (the
            # encoder leaves the GIL and some CPU free): BM25 is built during the chunks' encoding.
            with ThreadPoolExecutor(1, thread_name_prefix="footnote-build-text") as text_worker:
                preparing = text_worker.submit(self._prepare, loaded.documents, previous, progress)
                vocabulary, vocabulary_vectors = self._vocabulary(loaded.documents, previous)
                parts, inputs = preparing.result()
                lexical = text_worker.submit(self._lexical_index, parts)
                embedded = self._embed_missing(inputs, progress)
                lexical_index = lexical.result()
            _raise_if_stopped(stop)
            snapshot_id = new_snapshot_id()
            folder = self.store.new_build_folder(snapshot_id)
            indexed_at = _indexed_at(parts, previous)
            manifest = self._write(folder, snapshot_id, parts, (vocabulary, vocabulary_vectors), lexical_index,
                                   indexed_at, started)
            path = self.store.publish(folder)
        reused = sum(p.reused for p in parts)
        removed = len(set(previous.documents) - {d.doc_id for d in loaded.documents}) if previous else 0
        return BuildReport(
            snapshot_id=snapshot_id, path=path, documents=len(parts), chunks=manifest.counts["chunks"],
            new=len(parts) - reused, reused=reused, removed=removed,
            seconds=time.perf_counter() - started, embedded_texts=embedded, problems=loaded.problems,
        )

    @contextmanager
    def _lock(self) -> Iterator[None]:
        try:
            with self.store.build_lock():
                yield
        except StoreLocked as exc:
            raise BuildInProgress(str(exc)) from None

    def _previous_snapshot(self) -> Snapshot | None:
        """The current snapshot if its vectors can be reused with this model and chunking."""
        try:
            snapshot = self.store.load(self.embedder.name, self.embedder.dimension,
                                       fingerprint=self.embedder.fingerprint)
        except SnapshotError:
            return None
        same_chunking = snapshot.manifest.chunking == asdict(self.chunking)
        return snapshot if same_chunking and snapshot.manifest.sentence_vectors == SENTENCE_VECTORS else None

    def _up_to_date(self, previous: Snapshot, documents: list[Document]) -> bool:
        """Whether `previous` holds exactly these documents, in this order, with the vector index a build
        would make now (so publishing a copy of it would change nothing)."""
        kind = "hnsw" if len(previous.chunks) > self.hnsw_threshold else "flat"
        return (list(previous.manifest.documents.items()) == [(d.doc_id, d.sha256) for d in documents]
                and previous.manifest.vector_index == kind and previous.manifest.annotations == ANNOTATIONS_VERSION
                and previous.manifest.vocabulary_vectors == VOCABULARY_VECTORS)

    def _document_parts(self, documents: list[Document], previous: Snapshot | None,
                        progress: ProgressCallback | None) -> list[DocumentParts]:
        """Each document's sentences and chunks: reused when unchanged, else split in groups."""
        reusable = _parts_by_document(previous) if previous else {}
        parts: list[DocumentParts | None] = []
        for document in documents:
            old = reusable.get(document.doc_id)
            unchanged = old is not None and old.document.sha256 == document.sha256
            if unchanged:
                old.document, old.reused = document, True
            parts.append(old if unchanged else None)
        fresh = [row for row, part in enumerate(parts) if part is None]
        for first in range(0, len(fresh), SPLIT_GROUP):
            rows = fresh[first : first + SPLIT_GROUP]
            splits = self.chunker.split_many([(documents[row].doc_id, documents[row].text) for row in rows])
            for row, split in zip(rows, splits, strict=True):
                parts[row] = DocumentParts(documents[row], split.sentences, split.chunks, tokens=split.tokens)
            if progress:
                progress(BuildProgress("documents", first + len(rows), len(fresh)))
        return [part for part in parts if part is not None]

    def _prepare(self, documents: list[Document], previous: Snapshot | None,
                 progress: ProgressCallback | None) -> tuple[list[DocumentParts], ChunkInputs]:
        """Split the documents and tokenize the chunks still to embed (text work, for the worker thread)."""
        parts = self._document_parts(documents, previous, progress)
        for part in parts:
            if part.annotations is None:
                part.annotations = annotate(part.document.text, [(s.start, s.end) for s in part.sentences],
                                            self.analyzer)
        inputs = ChunkInputs([p for p in parts if p.chunk_vectors is None])
        slices = []
        for part in inputs.pending:
            token_starts = part.tokens.offsets[:, 0]
            for chunk in part.chunks:
                inputs.texts.append(part.document.text[chunk.start : chunk.end])
                sentences = [part.sentences[i] for i in chunk.sentence_range]
                inputs.spans.append([(s.start - chunk.start, s.end - chunk.start) for s in sentences])
                inputs.owners += [inputs.sentences + i for i in chunk.sentence_range]
                first, end = np.searchsorted(token_starts, [chunk.start, chunk.end])
                slices.append((part.tokens, int(first), int(end), chunk.start))
            inputs.sentences += len(part.sentences)
        inputs.tokens = self.embedder.inputs_from_slices(slices)
        return parts, inputs

    def _embed_missing(self, inputs: ChunkInputs, progress: ProgressCallback | None) -> int:
        """Embed the chunks of new or changed documents in one batched pass; each sentence's vector is
        pooled from its tokens inside the chunks that hold it (one encoder pass serves both)."""
        on_batch = (lambda done, total: progress(BuildProgress("embedding", done, total))) if progress else None
        vectors, span_sums = self.embedder.encode_with_spans(inputs.texts, inputs.spans, on_batch, inputs.tokens)
        sentence_sums = SpanSums(np.zeros((inputs.sentences, self.embedder.dimension), np.float32),
                                 np.zeros(inputs.sentences))
        np.add.at(sentence_sums.sums, inputs.owners, span_sums.sums)
        np.add.at(sentence_sums.counts, inputs.owners, span_sums.counts)
        sentence_vectors = pooled_vectors(sentence_sums)
        chunk_row = sentence_row = 0
        for part in inputs.pending:
            part.chunk_vectors = vectors[chunk_row : chunk_row + len(part.chunks)]
            part.sentence_vectors = sentence_vectors[sentence_row : sentence_row + len(part.sentences)]
            part.tokens = None
            chunk_row += len(part.chunks)
            sentence_row += len(part.sentences)
        return len(inputs.texts)

    def _vocabulary(self, documents: list[Document],
                    previous: Snapshot | None) -> tuple[list[str], np.ndarray]:
        """Every content word of the corpus with its vector from the token table (for soft term matching at
        query time); the words of `previous` keep theirs."""
        words = sorted({w for d in documents for w in content_words(d.text)})
        reusable = previous is not None and previous.manifest.vocabulary_vectors == VOCABULARY_VECTORS
        known = previous.vocabulary if reusable else {}
        new_words = [w for w in words if w not in known]
        new_vectors = dict(zip(new_words, self.embedder.word_vectors(new_words), strict=True))
        vectors = np.zeros((len(words), self.embedder.dimension), dtype=np.float32)
        for row, word in enumerate(words):
            vectors[row] = new_vectors[word] if word in new_vectors else previous.vocabulary_vectors[known[word]]
        return words, vectors

    def _lexical_index(self, parts: list[DocumentParts]) -> LexicalIndex:
        """BM25 over every chunk, in snapshot row order."""
        return LexicalIndex.build(self.analyzer.terms_many(
            [p.document.text[c.start : c.end] for p in parts for c in p.chunks]))

    def _write(self, folder: Path, snapshot_id: str, parts: list[DocumentParts],
               vocabulary: tuple[list[str], np.ndarray], lexical: LexicalIndex, indexed_at: dict[str, str],
               started: float) -> Manifest:
        chunks, sentence_rows, first_rows = [], [], []
        for doc_row, part in enumerate(parts):
            base = len(sentence_rows)
            first_rows.append(base)
            sentence_rows += [(doc_row, s.start, s.end, s.paragraph) for s in part.sentences]
            chunks += [Chunk(c.chunk_id, c.doc_id, c.start, c.end, c.first_sentence + base,
                             c.last_sentence + base) for c in part.chunks]
        dimension = self.embedder.dimension
        chunk_vectors = _stack([p.chunk_vectors for p in parts], dimension)
        vectors = FaissVectorStore.build(chunk_vectors, self.hnsw_threshold)
        manifest = Manifest(
            snapshot_id=snapshot_id, model=self.embedder.name, dimension=dimension,
            max_seq_length=self.embedder.max_seq_length, chunking=asdict(self.chunking),
            documents={p.document.doc_id: p.document.sha256 for p in parts},
            counts={"documents": len(parts), "chunks": len(chunks), "sentences": len(sentence_rows),
                    "vocabulary": len(vocabulary[0])},
            built_at=datetime.now(UTC).isoformat(timespec="seconds"), indexed_at=indexed_at,
            build_seconds=round(time.perf_counter() - started, 3), vector_index=vectors.kind,
            libraries=_library_versions(), sentence_vectors=SENTENCE_VECTORS,
            precision=self.embedder.build_precision, annotations=ANNOTATIONS_VERSION,
            model_fingerprint=self.embedder.fingerprint, vocabulary_vectors=VOCABULARY_VECTORS,
        )
        write_snapshot(folder, manifest, [p.document for p in parts], chunks,
                       np.array(sentence_rows, dtype=np.int64).reshape(-1, 4),
                       _stack([p.sentence_vectors for p in parts], dimension),
                       SentenceAnnotations.join([p.annotations for p in parts], first_rows), vectors, lexical,
                       *vocabulary)
        return manifest


def _stoppable(progress: ProgressCallback | None, stop: threading.Event | None) -> ProgressCallback:
    """`progress` that first raises BuildCancelled once `stop` is set (it is called at every batch)."""

    def report(event: BuildProgress) -> None:
        _raise_if_stopped(stop)
        if progress is not None:
            progress(event)

    return report


def _raise_if_stopped(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise BuildCancelled("the build was stopped; the previous index stays in use")


def _indexed_at(parts: list[DocumentParts], previous: Snapshot | None) -> dict[str, str]:
    """When each document's current content was first indexed."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    old = previous.manifest.indexed_at if previous else {}
    return {p.document.doc_id: old.get(p.document.doc_id, now) if p.reused else now
            for p in parts}


def _stack(arrays: list[np.ndarray | None], dimension: int) -> np.ndarray:
    present = [a for a in arrays if a is not None and len(a)]
    return np.vstack(present).astype(np.float32) if present else np.zeros((0, dimension), np.float32)


def _parts_by_document(snapshot: Snapshot) -> dict[str, DocumentParts]:
    """Split a snapshot back into per-document parts (local sentence rows) with their vectors."""
    chunk_rows: dict[str, list[int]] = {}
    for row, chunk in enumerate(snapshot.chunks):
        chunk_rows.setdefault(chunk.doc_id, []).append(row)
    all_chunk_vectors = snapshot.vectors.reconstruct(np.arange(len(snapshot.chunks)))
    # sentence rows are stored document by document, so each document's rows are one contiguous range
    bounds = np.searchsorted(snapshot.sentences[:, 0], np.arange(len(snapshot.doc_ids) + 1))
    annotations_current = snapshot.manifest.annotations == ANNOTATIONS_VERSION
    parts = {}
    for doc_row, doc_id in enumerate(snapshot.doc_ids):
        sentence_rows = np.arange(bounds[doc_row], bounds[doc_row + 1])
        base = int(bounds[doc_row])
        rows = chunk_rows.get(doc_id, [])
        parts[doc_id] = DocumentParts(
            document=snapshot.documents[doc_id],
            sentences=[Sentence(int(s), int(e), int(p)) for _, s, e, p in snapshot.sentences[sentence_rows]],
            chunks=[_local(snapshot.chunks[r], base) for r in rows],
            sentence_vectors=np.asarray(snapshot.sentence_vectors[sentence_rows]),
            chunk_vectors=all_chunk_vectors[rows],
            annotations=snapshot.document_annotations(doc_row, base, base + len(sentence_rows))
            if annotations_current else None,
        )
    return parts


def _local(chunk: Chunk, base: int) -> Chunk:
    return Chunk(chunk.chunk_id, chunk.doc_id, chunk.start, chunk.end,
                 chunk.first_sentence - base, chunk.last_sentence - base)


def _library_versions() -> dict[str, str]:
    names = ("footnote", "sentence-transformers", "torch", "faiss-cpu", "bm25s", "nupunkt")
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "unknown"
    return versions
