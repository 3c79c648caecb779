"""The FAISS vector store on its own: what the snapshot tests reach only indirectly (found by mutation testing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bot.service import make_builder
from index import store
from index.store import FaissVectorStore
from tests.conftest import SEED_CORPUS, make_settings


def unit_vectors(count: int, dimension: int = 16, seed: int = 7) -> np.ndarray:
    vectors = np.random.default_rng(seed).normal(size=(count, dimension)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.mark.parametrize("threshold", [1000, 10])  # flat, then HNSW
def test_reconstruct_returns_the_stored_rows_even_one_or_none(threshold: int) -> None:
    vectors = unit_vectors(40)
    vectors_store = FaissVectorStore.build(vectors, hnsw_threshold=threshold)
    assert vectors_store.kind == ("flat" if threshold == 1000 else "hnsw") and vectors_store.size == 40
    np.testing.assert_allclose(vectors_store.reconstruct(np.array([3])), vectors[[3]], rtol=1e-6)
    np.testing.assert_allclose(vectors_store.reconstruct(np.array([5, 0, 39])), vectors[[5, 0, 39]], rtol=1e-6)
    assert vectors_store.reconstruct(np.array([], dtype=np.int64)).shape == (0, 16)


def test_search_ranks_by_inner_product_and_caps_k_at_the_size() -> None:
    vectors = unit_vectors(6)
    scores, rows = FaissVectorStore.build(vectors).search(vectors[[2]], k=10)
    assert rows.shape == (1, 6) and rows[0, 0] == 2 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert list(scores[0]) == sorted(scores[0], reverse=True)
    empty_scores, empty_rows = FaissVectorStore.build(np.zeros((0, 16), np.float32)).search(vectors[[2]], k=5)
    assert empty_scores.shape == empty_rows.shape == (1, 0)


def test_loaded_hnsw_uses_the_served_ef_search_and_more_past_the_large_size(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "vectors.faiss"
    FaissVectorStore.build(unit_vectors(50), hnsw_threshold=10, ef_search=16).save(path)
    assert FaissVectorStore.load(path).index.hnsw.efSearch == 128
    assert FaissVectorStore.load(path, ef_search=64).index.hnsw.efSearch == 64
    monkeypatch.setattr(store, "LARGE_HNSW_VECTORS", 49)
    assert FaissVectorStore.load(path, ef_search=64).index.hnsw.efSearch == store.LARGE_HNSW_EF_SEARCH


def test_a_loaded_snapshot_serves_with_the_asked_ef_search_and_has_every_part(tmp_path: Path, embedder) -> None:
    settings = make_settings(tmp_path, hnsw_threshold=1)  # the seed's few chunks in an HNSW index
    report = make_builder(settings, embedder).build(SEED_CORPUS)
    snapshot = store.SnapshotStore(settings.index_dir).load(embedder.name, embedder.dimension, ef_search=64)
    assert snapshot.path == report.path and snapshot.vectors.kind == "hnsw"
    assert snapshot.vectors.index.hnsw.efSearch == 64
    assert snapshot.lexical.size == snapshot.vectors.size == len(snapshot.chunks) == report.chunks
    assert len(snapshot.span_bounds) == len(snapshot.sentences) + 1


def test_a_publish_interrupted_just_after_the_pointer_swap_keeps_the_version_it_made_current(
        tmp_path: Path, monkeypatch) -> None:
    folder = store.SnapshotStore(tmp_path / "index")
    made = folder.new_build_folder("20261206T000000000000-abcdef")
    made.mkdir()
    (made / "manifest.json").write_text("{}", encoding="utf-8")
    replace = store.os.replace

    def interrupted(source, target) -> None:
        replace(source, target)
        if Path(target).name == store.POINTER:
            raise KeyboardInterrupt  # Ctrl-C as the swap returns

    monkeypatch.setattr(store.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        folder.publish(made)
    current = folder.current_path()
    assert current is not None and (current / "manifest.json").is_file()
