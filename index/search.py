"""Hybrid retrieval: dense (FAISS) and BM25 rankings fused by reciprocal rank, near-duplicates collapsed."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from index.chunking import Chunk
from index.lexical import Analyzer
from index.store import Snapshot


@dataclass(frozen=True)
class SearchConfig:
    k: int = 8
    candidates: int = 30
    rrf_k: int = 60
    dense_weight: float = 1.0
    bm25_weight: float = 1.0
    duplicate_cosine: float = 0.97


@dataclass(frozen=True)
class Hit:
    row: int
    chunk: Chunk
    score: float
    dense_score: float | None
    bm25_score: float | None
    dense_rank: int | None
    bm25_rank: int | None


class HybridRetriever:
    """Ranks a snapshot's chunks for a query whose embedding the caller computed."""

    def __init__(self, snapshot: Snapshot, config: SearchConfig | None = None,
                 analyzer: Analyzer | None = None) -> None:
        self.snapshot = snapshot
        self.config = config or SearchConfig()
        self.analyzer = analyzer or Analyzer()

    def search(self, query: str, query_vector: np.ndarray, k: int | None = None) -> list[Hit]:
        """The top `k` chunks by weighted reciprocal-rank fusion of the dense and BM25 rankings."""
        k = k or self.config.k
        dense = self.dense(query_vector, self.config.candidates)
        lexical = self.snapshot.lexical.search(self.analyzer.terms(query), self.config.candidates)
        fused = self._fuse(dense, lexical)
        return self._collapse_duplicates(fused)[:k]

    def dense(self, query_vector: np.ndarray, k: int) -> list[tuple[int, float]]:
        scores, rows = self.snapshot.vectors.search(query_vector.reshape(1, -1), k)
        return [(int(r), float(s)) for r, s in zip(rows[0], scores[0], strict=True) if r >= 0]

    def _fuse(self, dense: list[tuple[int, float]], lexical: list[tuple[int, float]]) -> list[Hit]:
        c = self.config
        dense_by_row = {row: (rank, score) for rank, (row, score) in enumerate(dense, start=1)}
        lexical_by_row = {row: (rank, score) for rank, (row, score) in enumerate(lexical, start=1)}
        hits = []
        for row in dense_by_row.keys() | lexical_by_row.keys():
            dense_rank, dense_score = dense_by_row.get(row, (None, None))
            bm25_rank, bm25_score = lexical_by_row.get(row, (None, None))
            score = (c.dense_weight / (c.rrf_k + dense_rank) if dense_rank else 0.0) + (
                c.bm25_weight / (c.rrf_k + bm25_rank) if bm25_rank else 0.0)
            hits.append(Hit(row, self.snapshot.chunks[row], score, dense_score, bm25_score,
                            dense_rank, bm25_rank))
        return sorted(hits, key=lambda h: (-h.score, h.row))

    def _collapse_duplicates(self, hits: list[Hit]) -> list[Hit]:
        """Drop a hit whose vector is nearly identical to a better one (syndicated copies)."""
        if len(hits) < 2:
            return hits
        vectors = self.snapshot.vectors.reconstruct(np.array([h.row for h in hits]))
        similarity = vectors @ vectors.T
        kept: list[int] = []
        for i in range(len(hits)):
            if all(similarity[i, j] < self.config.duplicate_cosine for j in kept):
                kept.append(i)
        return [hits[i] for i in kept]
