"""Search at scale: FAISS HNSW against exact search over synthetic embeddings, BM25 over synthetic texts.

Real sentence embeddings lie near a low-dimensional manifold, in topics and documents, and questions sit
farther from their passages than passages from each other. So vectors are drawn (seeded, float32,
normalised) from a two-level Gaussian mixture in a 32-dimensional latent space, rotated into 384 dimensions
with a little isotropic noise; queries come from the same documents with more spread. The HNSW index is
built with the product's own `FaissVectorStore.build` defaults and cached under var/bench/cache, keyed by
every parameter.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss
import numpy as np

from benchmarks.common import CACHE, Context, log, percentiles, product_settings
from benchmarks.corpora import SEED, SQUAD, read_questions
from benchmarks.report import Section, Target
from bot.config import Settings
from bot.service import search_config
from index.annotations import SentenceAnnotations
from index.chunking import Chunk
from index.documents import load_corpus
from index.lexical import Analyzer, LexicalIndex
from index.search import HybridRetriever
from index.store import FaissVectorStore, Manifest, Snapshot

GENERATOR_VERSION = 3
DIMENSION = 384
RECALL_K = 10
WIDER_EF_SEARCH = 256
SEARCH_TARGET = Target("<", 30.0)
RECALL_TARGET = Target(">=", 0.98)
BLOCK = 100_000


@dataclass(frozen=True)
class VectorSpec:
    """Topics, documents around topics, points around documents, in a latent space rotated into 384-d."""

    rows: int
    seed: int = 7
    latent: int = 32
    per_topic: int = 300
    per_document: int = 6
    document_spread: float = 1.5
    point_spread: float = 0.25
    noise: float = 0.03
    query_spread: float = 1.4
    query_noise: float = 0.35

    @property
    def key(self) -> str:
        return f"v{GENERATOR_VERSION}-" + "-".join(f"{k}{v}" for k, v in asdict(self).items())


class VectorGenerator:
    """Points and queries of one `VectorSpec`; its defaults give real MiniLM's question-to-passage cosines
    (top-1 ~0.69, top-10 ~0.50, unrelated ~0.01, measured on the SQuAD and synthetic indexes)."""

    def __init__(self, spec: VectorSpec) -> None:
        rng = np.random.default_rng(spec.seed)
        self.spec = spec
        self.rotation = np.linalg.qr(rng.standard_normal((DIMENSION, spec.latent)))[0].T.astype(np.float32)
        topics = rng.standard_normal((max(1, spec.rows // spec.per_topic), spec.latent), dtype=np.float32)
        count = max(1, spec.rows // spec.per_document)
        self.documents = topics[rng.integers(len(topics), size=count)]
        self.documents += spec.document_spread * rng.standard_normal(self.documents.shape, dtype=np.float32)

    def points(self, count: int, seed: int, spread: float, noise: float) -> np.ndarray:
        rng = np.random.default_rng(seed)
        out = np.empty((count, DIMENSION), dtype=np.float32)
        for first in range(0, count, BLOCK):
            size = min(BLOCK, count - first)
            latent = self.documents[rng.integers(len(self.documents), size=size)]
            latent += spread * rng.standard_normal(latent.shape, dtype=np.float32)
            block = latent @ self.rotation + noise * rng.standard_normal((size, DIMENSION), dtype=np.float32)
            out[first : first + size] = block / np.linalg.norm(block, axis=1, keepdims=True)
        return out

    def vectors(self) -> np.ndarray:
        return self.points(self.spec.rows, self.spec.seed + 1, self.spec.point_spread, self.spec.noise)

    def queries(self, count: int) -> np.ndarray:
        return self.points(count, self.spec.seed + 2, self.spec.query_spread, self.spec.query_noise)


def hnsw_parameters() -> dict[str, int]:
    """The product's HNSW build defaults (M, efConstruction), read from `FaissVectorStore.build`."""
    parameters = inspect.signature(FaissVectorStore.build).parameters
    return {name: parameters[name].default for name in ("hnsw_m", "ef_construction")}


def cached_hnsw(spec: VectorSpec, vectors: np.ndarray, ef_search: int) -> tuple[FaissVectorStore, dict]:
    """The HNSW store over `vectors`, loaded as the product loads it; built once and cached."""
    params = hnsw_parameters()
    path = CACHE / f"hnsw-{spec.key}-m{params['hnsw_m']}-efc{params['ef_construction']}-faiss{faiss.__version__}"
    meta_path = path.with_suffix(".json")
    if meta_path.is_file():
        meta = {**json.loads(meta_path.read_text()), "cached": True}
    else:
        started = time.perf_counter()
        store = FaissVectorStore.build(vectors, hnsw_threshold=0)
        meta = {"build_seconds": round(time.perf_counter() - started, 2), **params}
        path.parent.mkdir(parents=True, exist_ok=True)
        store.save(path.with_suffix(".tmp"))
        os.replace(path.with_suffix(".tmp"), path.with_suffix(".faiss"))
        meta_path.write_text(json.dumps(meta))
        meta["cached"] = False
    meta["path"] = str(path.with_suffix(".faiss"))
    return FaissVectorStore.load(path.with_suffix(".faiss"), ef_search), meta


def term_distribution() -> tuple[list[str], np.ndarray]:
    """Stems of the real corpora and their frequencies, for realistic synthetic BM25 texts."""
    analyzer = Analyzer()
    documents = load_corpus(SEED).documents + load_corpus(SQUAD / "corpus.jsonl").documents
    counts = Counter(term for d in documents for term in analyzer.terms(d.text))
    terms = sorted(counts)
    weights = np.array([counts[t] for t in terms], dtype=np.float64)
    return terms, weights / weights.sum()


def synthetic_texts(rows: int, seed: int = 11) -> list[list[str]]:
    """`rows` short texts of 10 to 24 stems each, drawn from the corpora's term frequencies."""
    terms, probabilities = term_distribution()
    rng = np.random.default_rng(seed)
    lengths = rng.integers(10, 25, size=rows)
    ids = rng.choice(len(terms), size=int(lengths.sum()), p=probabilities)
    ends = np.cumsum(lengths)
    words = np.array(terms, dtype=object)[ids].tolist()
    return [words[end - length : end] for end, length in zip(ends.tolist(), lengths.tolist(), strict=True)]


def _time_each(function, items) -> tuple[list, list[float]]:
    results, latencies = [], []
    for item in items:
        started = time.perf_counter()
        results.append(function(item))
        latencies.append((time.perf_counter() - started) * 1000)
    return results, latencies


def scale_snapshot(store: FaissVectorStore, lexical: LexicalIndex, folder: Path) -> Snapshot:
    """A snapshot holding only what hybrid retrieval reads: vectors, BM25 and chunk records."""
    rows = store.size
    manifest = Manifest("scale", "synthetic", DIMENSION, 256, {}, {}, {"chunks": rows}, "", 0.0, store.kind)
    empty = np.zeros((0, DIMENSION), dtype=np.float32)
    chunks = [Chunk(f"scale#{row}", "scale", 0, 0, 0, 0) for row in range(rows)]
    return Snapshot(folder, manifest, {}, chunks, np.zeros((0, 4), np.int64), empty, store, lexical, {}, empty,
                    SentenceAnnotations.join([], []))


def hybrid_search_ms(settings: Settings, snapshot: Snapshot, questions: list[str],
                     vectors: np.ndarray) -> list[float]:
    retriever = HybridRetriever(snapshot, search_config(settings))
    pairs = list(zip(questions, vectors, strict=False))
    for text, vector in pairs[:5]:
        retriever.search(text, vector)
    return _time_each(lambda pair: retriever.search(*pair), pairs)[1]


def hnsw_recall(store: FaissVectorStore, queries: np.ndarray, truth: np.ndarray, k: int,
                ef_search: int) -> tuple[float, dict[str, float]]:
    """Recall@10 against `truth` and latency of single-query top-`k` searches at `ef_search`."""
    store.index.hnsw.efSearch = ef_search
    found, ms = _time_each(lambda q: store.search(q.reshape(1, -1), k)[1][0], queries)
    overlap = [len(set(f[:RECALL_K]) & set(t)) / RECALL_K for f, t in zip(found, truth, strict=True)]
    return float(np.mean(overlap)), percentiles(ms)


class ScaleBench:
    """The scale section's state: sizes, product settings, and the section being filled."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.vector_rows = ctx.scale_rows
        self.lexical_rows = 50_000 if ctx.quick else 1_000_000
        self.settings = product_settings()
        self.folder = ctx.work / "scale"
        self.questions = [q.question for q in read_questions(SQUAD / "questions.jsonl")]
        self.section = Section(f"Scale: search over {self.vector_rows:,} vectors (HNSW) and "
                               f"{self.lexical_rows:,} BM25 texts")

    def dense(self) -> tuple[FaissVectorStore, np.ndarray]:
        generator = VectorGenerator(VectorSpec(self.vector_rows))
        vectors, queries = generator.vectors(), generator.queries(100 if self.ctx.quick else 300)
        store, meta = cached_hnsw(generator.spec, vectors, self.settings.hnsw_ef_search)
        exact = faiss.IndexFlatIP(DIMENSION)
        exact.add(vectors)
        del vectors
        truth = exact.search(queries, RECALL_K)[1]
        k, s = self.settings.candidates_k, self.section
        exact_ms = percentiles(_time_each(lambda q: exact.search(q.reshape(1, -1), k), queries[:50])[1])
        s.add(f"HNSW build ({'cached; its first build took' if meta['cached'] else 'this run'})",
              meta["build_seconds"], "s")
        served = store.index.hnsw.efSearch  # what the product's loader chose for an index of this size
        for ef in sorted({self.settings.hnsw_ef_search, WIDER_EF_SEARCH, served}):
            recall, ms = hnsw_recall(store, queries, truth, k, ef)
            label = " (as served)" if ef == served else ""
            s.add(f"HNSW recall@{RECALL_K} vs exact, efSearch {ef}{label}", recall, "",
                  RECALL_TARGET if ef == served else None)
            s.add(f"HNSW search k={k}, efSearch {ef}: p95", ms["p95"], "ms")
            s.details[f"ef_search_{ef}"] = {"recall_at_10": round(recall, 4), "search_ms": ms}
        store.index.hnsw.efSearch = served
        s.details["served_ef_search"] = served
        s.add(f"exact (IndexFlatIP) search k={k}: p95", exact_ms["p95"], "ms")
        s.details.update(hnsw=meta, exact_ms=exact_ms, vector_spec=asdict(generator.spec))
        log(f"scale: HNSW over {self.vector_rows:,} vectors, recall@10 "
            f"{s.details[f'ef_search_{served}']['recall_at_10']} at efSearch {served}")
        return store, queries

    def lexical(self, rows: int) -> LexicalIndex:
        texts = synthetic_texts(rows)
        started = time.perf_counter()
        index = LexicalIndex.build(texts)
        seconds = time.perf_counter() - started
        del texts
        analyzer = Analyzer()
        _, ms = _time_each(lambda terms: index.search(terms, self.settings.candidates_k),
                           [analyzer.terms(q) for q in self.questions])
        stats = percentiles(ms)
        self.section.add(f"BM25 build, {rows:,} texts", seconds, "s")
        self.section.add(f"BM25 search, {rows:,} texts: p95", stats["p95"], "ms")
        self.section.details[f"bm25_{rows}"] = {"build_seconds": round(seconds, 2), "search_ms": stats}
        log(f"scale: BM25 {rows:,} texts built in {seconds:.1f} s, p95 {stats['p95']} ms")
        return index

    def hybrid(self, store: FaissVectorStore, lexical: LexicalIndex, queries: np.ndarray) -> None:
        ms = percentiles(hybrid_search_ms(self.settings, scale_snapshot(store, lexical, self.folder),
                                          self.questions, queries))
        self.section.add(f"hybrid search (HNSW + BM25 + fusion), {store.size:,} chunks: p50", ms["p50"], "ms")
        self.section.add(f"hybrid search (HNSW + BM25 + fusion), {store.size:,} chunks: p95", ms["p95"], "ms",
                         SEARCH_TARGET)
        self.section.details["hybrid_ms"] = ms
        self.folder.mkdir(parents=True, exist_ok=True)
        lexical.save(self.folder / "bm25")
        np.save(self.folder / "queries.npy", queries)
        self.section.details["files"] = {"hnsw": self.section.details["hnsw"]["path"],
                                         "bm25": str(self.folder / "bm25"), "queries": str(self.folder / "queries.npy")}


def run(ctx: Context) -> Section:
    bench = ScaleBench(ctx)
    store, queries = bench.dense()
    lexical = bench.lexical(bench.vector_rows)
    bench.hybrid(store, lexical, queries)
    del lexical
    if bench.lexical_rows > bench.vector_rows:
        bench.lexical(bench.lexical_rows)
    if bench.vector_rows < 1_000_000:
        bench.section.notes.append(
            f"HNSW measured at {bench.vector_rows:,} vectors, not 1,000,000, so that a first run stays under 10 "
            f"minutes (its build took {bench.section.details['hnsw']['build_seconds']:.0f} s and grows a little "
            "faster than linearly); `--scale-rows 1000000` measures 1M, built once and then cached")
    return bench.section
