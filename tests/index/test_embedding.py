"""The embedder: same vectors as sentence-transformers, token-budget batches, pooled spans."""

from __future__ import annotations

import json
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from index.backends import ONNX_FLOAT32, TORCH_BFLOAT16, TORCH_FLOAT32, cpu_has_amx
from index.embedding import Embedder, EmbedderError, SpanSums, pooled_vectors

TEXTS = [
    "Iranian President Ebrahim Raisi arrived in Caracas on Monday.",
    "He signed agreements on oil, petrochemicals and defence with Nicolás Maduro, and said the two countries "
    "would raise their trade to 20 billion dollars.",
    "Caracas",
    "The visit was the first stop of a tour of Latin America that also took him to Nicaragua and Cuba.",
]


@pytest.fixture(scope="module")
def reference(embedder: Embedder):
    """sentence-transformers' own float32 model from the same folder: what every runtime must agree with."""
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(embedder.path), device="cpu", local_files_only=True)


def test_vectors_match_sentence_transformers_encode(embedder: Embedder, reference) -> None:
    ours = embedder.encode(TEXTS)
    theirs = reference.encode(TEXTS, normalize_embeddings=True)
    assert ours.shape == (len(TEXTS), embedder.dimension) and ours.dtype == np.float32
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert (ours * theirs).sum(axis=1).min() > 0.9999


def test_batches_stay_within_the_token_budget_and_batch_size(embedder: Embedder) -> None:
    lengths = [3] * 500 + [40] * 300 + [250] * 70
    batches = embedder._batches(lengths)
    assert sorted(row for batch in batches for row in batch) == list(range(len(lengths)))
    for batch in batches:
        widest = max(lengths[row] for row in batch)
        assert len(batch) <= embedder.batch_size
        assert len(batch) == 1 or widest * len(batch) <= embedder.batch_tokens
    assert len(batches) < 40  # short texts share large batches, not one batch per 64


def test_a_span_pools_the_tokens_it_covers(embedder: Embedder, reference) -> None:
    text = TEXTS[1]
    comma = text.index(", and") + 1
    spans = [(0, comma), (comma + 1, len(text)), (len(text), len(text))]
    vectors, sums = embedder.encode_with_spans([text, TEXTS[0]], [spans, []])
    assert np.allclose(vectors, embedder.encode([text, TEXTS[0]]), atol=1e-6)
    token_vectors = reference.encode([text], output_value="token_embeddings")[0].float().numpy()
    encoded = reference.tokenizer(text, return_offsets_mapping=True)
    inside = [i for i, (s, e) in enumerate(encoded["offset_mapping"]) if e > s and s < comma]
    assert sums.counts[0] == len(inside) and sums.counts[2] == 0
    assert sums.counts[0] + sums.counts[1] == len(encoded["input_ids"]) - 2  # every word token, once
    expected = token_vectors[inside].sum(axis=0)
    assert np.allclose(sums.sums[0], expected, rtol=2e-2, atol=2e-2)
    pooled = pooled_vectors(sums)
    assert np.allclose(np.linalg.norm(pooled[:2], axis=1), 1.0, atol=1e-5) and not pooled[2].any()
    alone = embedder.encode([text[:comma]])[0]
    assert pooled[0] @ alone > 0.7  # a clause in context still resembles the clause embedded alone


def test_small_batches_run_on_the_question_runtime_and_large_ones_on_the_build_runtime(embedder: Embedder) -> None:
    seen: list[tuple[str, int]] = []
    roles = {embedder.choice.query, embedder.choice.build}
    originals = {name: embedder.runtime(name).token_embeddings for name in roles}
    for name in roles:
        embedder.runtime(name).token_embeddings = (
            lambda batch, n=name: (seen.append((n, batch["input_ids"].size)), originals[n](batch))[1])
    try:
        embedder.encode(["Who visited Caracas?"])
        embedder.encode(TEXTS * 40)
    finally:
        for name in roles:
            del embedder.runtime(name).token_embeddings
    assert seen[0] == (embedder.choice.query, seen[0][1]) and seen[0][1] <= 1024
    assert seen[1][0] == embedder.choice.build and seen[1][1] > 1024


def test_every_candidate_runtime_agrees_with_torch_and_the_choice_is_cached(embedder: Embedder) -> None:
    choice = embedder.choice
    assert {choice.query, choice.build} <= set(choice.timings) and TORCH_FLOAT32 in choice.timings
    for name, check in choice.checks.items():
        assert check["min_cosine"] >= 0.999 and check["same_neighbours"], name
    stored = json.loads((embedder.cache_folder / "choice.json").read_text(encoding="utf-8"))
    assert (stored["query"], stored["build"]) == (choice.query, choice.build)
    again = Embedder(cache_dir=embedder.cache_folder.parent)
    again._encode_through = lambda name, texts: pytest.fail("a cached choice is not measured again")
    assert again.choice == choice


def test_onnx_export_gives_torch_float32_vectors(embedder: Embedder) -> None:
    texts = [*TEXTS, "Who did Raisi meet?", " ".join(TEXTS) * 3]
    torch_vectors = embedder._encode_through(TORCH_FLOAT32, texts)
    onnx_vectors = embedder._encode_through(ONNX_FLOAT32, texts)
    assert (embedder.cache_folder / "model.onnx").is_file()
    assert (torch_vectors * onnx_vectors).sum(axis=1).min() > 0.9999


def test_a_forced_backend_is_used_without_measuring(embedder: Embedder, tmp_path: Path) -> None:
    forced = Embedder(backend="torch", precision="float32", cache_dir=tmp_path)
    assert (forced.choice.query, forced.choice.build) == (TORCH_FLOAT32, TORCH_FLOAT32)
    assert not (forced.cache_folder / "choice.json").exists()
    assert (forced.encode(TEXTS) * embedder.encode(TEXTS)).sum(axis=1).min() > 0.9999


def test_single_words_come_from_the_token_table_without_the_encoder(embedder: Embedder) -> None:
    batches: list[list[str]] = []
    embedder.token_table  # noqa: B018  (computed, or read from the cache, before counting batches)
    embedder.on_batch = lambda texts, seconds: batches.append(texts)
    try:
        words = embedder.word_vectors(["sanctions", "Caracas", "counterterrorism", ""])
    finally:
        embedder.on_batch = None
    assert batches == []
    encoded = embedder.encode(["sanctions", "counterterrorism"])
    assert words[0] @ encoded[0] > 0.999  # one token: the vector of encoding the word alone
    assert 0.3 < words[2] @ encoded[1] < 0.999  # several tokens: their mean, close but not equal
    assert np.allclose(np.linalg.norm(words[:3], axis=1), 1.0, atol=1e-3) and not words[3].any()


def test_the_token_table_is_float32_whichever_runtime_builds_the_index(embedder: Embedder, tmp_path: Path) -> None:
    forced = Embedder(backend="torch", precision="bfloat16", cache_dir=tmp_path)
    assert forced.choice.build == TORCH_BFLOAT16
    np.testing.assert_allclose(forced._encode_every_token(300), embedder.token_table[:300], atol=1e-3)


def test_a_folder_without_a_model_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmbedderError, match="no sentence-transformers model"):
        Embedder(tmp_path)


def test_empty_input_gives_empty_arrays(embedder: Embedder) -> None:
    vectors, sums = embedder.encode_with_spans([], [])
    assert vectors.shape == (0, embedder.dimension) and isinstance(sums, SpanSums) and sums.sums.shape[0] == 0


@pytest.mark.skipif(not cpu_has_amx(), reason="bfloat16 is a candidate only on CPUs with AMX")
def test_bfloat16_vectors_stay_close_to_float32(embedder: Embedder) -> None:
    bfloat16 = embedder._encode_through("torch-bfloat16", TEXTS)
    assert (bfloat16 * embedder._encode_through(TORCH_FLOAT32, TEXTS)).sum(axis=1).min() > 0.999


def test_tokenize_accepts_no_texts(embedder: Embedder) -> None:
    assert embedder.tokenize([], offsets=True)["input_ids"] == []


def test_whole_text_tokens_are_never_truncated_by_another_threads_encode(embedder: Embedder) -> None:
    """Encoding truncates to the model's length; document tokens must never be truncated."""
    long_text = " ".join(["Caracas"] * 400)
    lengths: list[int] = []
    worker = threading.Thread(target=lambda: lengths.extend(
        len(tokens.ids) for _ in range(100) for tokens in embedder.tokenize_texts([long_text] * 8)))
    worker.start()
    while worker.is_alive():
        embedder.encode([long_text, TEXTS[0]])
    worker.join()
    assert lengths == [400] * 800 and embedder.count_tokens([long_text]) == [402]


def test_inputs_cut_from_a_long_text_are_truncated_like_the_tokenizer_truncates(embedder: Embedder) -> None:
    text = " ".join(f"word{n}" for n in range(400))
    tokens = embedder.tokenize_texts([text])[0]
    ours = embedder.inputs_from_slices([(tokens, 0, len(tokens.ids), 0)])
    theirs = embedder.tokenize([text], offsets=True)
    assert len(tokens.ids) > embedder.max_seq_length
    assert ours["input_ids"][0].tolist() == theirs["input_ids"][0]
    assert ours["offset_mapping"][0].tolist() == [list(o) for o in theirs["offset_mapping"][0]]


def test_exporting_leaves_the_torch_model_in_inference_mode(embedder: Embedder, tmp_path: Path) -> None:
    from index.runtimes import export_onnx

    torch_runtime = embedder.runtime(TORCH_FLOAT32)
    before = embedder._encode_through(TORCH_FLOAT32, TEXTS)
    export_onnx(torch_runtime, tmp_path / "model.onnx")
    assert not torch_runtime.model.training
    assert np.allclose(embedder._encode_through(TORCH_FLOAT32, TEXTS), before, atol=1e-6)


def test_a_cached_export_that_does_not_load_is_made_again(embedder: Embedder, tmp_path: Path, monkeypatch) -> None:
    """A model.onnx cut off (a power cut, a copy of var/) is exported again instead of failing every start."""
    good = embedder.cache_folder / "model.onnx"
    expected = embedder._encode_through(ONNX_FLOAT32, TEXTS)  # the session's own export
    exports: list[Path] = []

    def export_by_copy(runtime, target: Path) -> None:
        exports.append(target)
        shutil.copy(good, target)

    monkeypatch.setattr("index.embedding.export_onnx", export_by_copy)
    fresh = Embedder(backend="onnx", cache_dir=tmp_path)
    fresh.cache_folder.mkdir(parents=True)
    (fresh.cache_folder / "model.onnx").write_bytes(b"cut off")
    np.testing.assert_allclose(fresh._encode_through(ONNX_FLOAT32, TEXTS), expected, atol=1e-5)
    assert exports == [fresh.cache_folder / "model.onnx"]


def test_an_empty_token_table_is_made_again(tmp_path: Path, monkeypatch) -> None:
    fresh = Embedder(backend="onnx", cache_dir=tmp_path)
    fresh.cache_folder.mkdir(parents=True)
    (fresh.cache_folder / "tokens-float32.npy").write_bytes(b"")
    monkeypatch.setattr(fresh, "_encode_every_token",
                        lambda size: np.ones((size, fresh.dimension), dtype=np.float16))
    assert fresh.token_table.shape[1] == fresh.dimension and fresh.token_table.all()
    assert np.load(fresh.cache_folder / "tokens-float32.npy").shape == fresh.token_table.shape
    assert not list(fresh.cache_folder.glob(".*partial"))


def test_a_token_table_the_cache_cannot_keep_still_serves_this_process(tmp_path: Path, monkeypatch,
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    fresh = Embedder(backend="onnx", cache_dir=tmp_path)
    fresh.cache_folder.write_text("a file where the cache folder should be")  # as a read-only or full disk
    monkeypatch.setattr(fresh, "_encode_every_token",
                        lambda size: np.ones((size, fresh.dimension), dtype=np.float16))
    assert fresh.token_table.shape[1] == fresh.dimension
    assert "cannot keep the token table" in caplog.text


def test_choice_and_token_table_first_used_by_two_threads_at_once_do_not_deadlock(
        embedder: Embedder, tmp_path: Path, monkeypatch) -> None:
    """On Python 3.11 `cached_property` holds a lock while it computes: the token table took the embedder's lock
    and then needed `choice`, whose computation held its own and wanted the embedder's."""
    embedder.choice  # noqa: B018 - the session's choice and export, copied below
    fresh = Embedder(cache_dir=tmp_path)
    fresh.cache_folder.mkdir(parents=True)
    for name in ("choice.json", "model.onnx"):
        if (embedder.cache_folder / name).is_file():
            (fresh.cache_folder / name).symlink_to(embedder.cache_folder / name)
    def encode_every_token(size: int) -> np.ndarray:  # as the real one, it encodes through the chosen runtime
        assert fresh.choice.query
        return np.ones((size, fresh.dimension), dtype=np.float16)

    monkeypatch.setattr(fresh, "_encode_every_token", encode_every_token)
    load = np.load

    def slow_load(*args, **kwargs):  # lines the two threads up
        time.sleep(0.3)
        return load(*args, **kwargs)

    monkeypatch.setattr(np, "load", slow_load)
    table = threading.Thread(target=lambda: fresh.token_table, daemon=True)
    choice = threading.Thread(target=lambda: fresh.choice, daemon=True)
    table.start()
    time.sleep(0.1)
    choice.start()
    table.join(30)
    choice.join(5)
    assert not table.is_alive() and not choice.is_alive()
