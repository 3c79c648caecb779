"""The embedder: same vectors as sentence-transformers, token-budget batches, pooled spans."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from index.embedding import Embedder, SpanSums, cpu_has_amx, pooled_vectors

TEXTS = [
    "Iranian President Ebrahim Raisi arrived in Caracas on Monday.",
    "He signed agreements on oil, petrochemicals and defence with Nicolás Maduro, and said the two countries "
    "would raise their trade to 20 billion dollars.",
    "Caracas",
    "The visit was the first stop of a tour of Latin America that also took him to Nicaragua and Cuba.",
]


def test_vectors_match_sentence_transformers_encode(embedder: Embedder) -> None:
    ours = embedder.encode(TEXTS)
    theirs = embedder.model.encode(TEXTS, convert_to_tensor=True).float().numpy()
    theirs /= np.linalg.norm(theirs, axis=1, keepdims=True)  # in bfloat16, the model's own output is rounded
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


def test_a_span_pools_the_tokens_it_covers(embedder: Embedder) -> None:
    text = TEXTS[1]
    comma = text.index(", and") + 1
    spans = [(0, comma), (comma + 1, len(text)), (len(text), len(text))]
    vectors, sums = embedder.encode_with_spans([text, TEXTS[0]], [spans, []])
    assert np.allclose(vectors, embedder.encode([text, TEXTS[0]]), atol=1e-6)
    token_vectors = embedder.model.encode([text], output_value="token_embeddings")[0].float().numpy()
    encoded = embedder.tokenizer(text, return_offsets_mapping=True)
    inside = [i for i, (s, e) in enumerate(encoded["offset_mapping"]) if e > s and s < comma]
    assert sums.counts[0] == len(inside) and sums.counts[2] == 0
    assert sums.counts[0] + sums.counts[1] == len(encoded["input_ids"]) - 2  # every word token, once
    expected = token_vectors[inside].sum(axis=0)
    assert np.allclose(sums.sums[0], expected, rtol=2e-2, atol=2e-2)
    pooled = pooled_vectors(sums)
    assert np.allclose(np.linalg.norm(pooled[:2], axis=1), 1.0, atol=1e-5) and not pooled[2].any()
    alone = embedder.encode([text[:comma]])[0]
    assert pooled[0] @ alone > 0.7  # a clause in context still resembles the clause embedded alone


def test_small_batches_run_on_one_thread_without_changing_the_callers_setting(embedder: Embedder) -> None:
    before = torch.get_num_threads()
    seen: list[int] = []
    original = embedder.model.forward
    embedder.model.forward = lambda features: (seen.append(torch.get_num_threads()), original(features))[1]
    try:
        embedder.encode(["Who visited Caracas?"])
        embedder.encode(TEXTS * 20)
    finally:
        del embedder.model.forward
    assert seen[0] == 1 and seen[-1] == before and torch.get_num_threads() == before


def test_empty_input_gives_empty_arrays(embedder: Embedder) -> None:
    vectors, sums = embedder.encode_with_spans([], [])
    assert vectors.shape == (0, embedder.dimension) and isinstance(sums, SpanSums) and sums.sums.shape[0] == 0


@pytest.mark.skipif(not cpu_has_amx(), reason="bfloat16 is the default only on CPUs with AMX")
def test_bfloat16_vectors_stay_close_to_float32(embedder: Embedder) -> None:
    assert embedder.bfloat16
    full = Embedder(precision="float32")
    assert not full.bfloat16
    assert (embedder.encode(TEXTS) * full.encode(TEXTS)).sum(axis=1).min() > 0.999


def test_tokenize_accepts_no_texts(embedder: Embedder) -> None:
    assert embedder.tokenize([], offsets=True)["input_ids"] == []


def test_whole_text_tokens_are_never_truncated_by_another_threads_encode(embedder: Embedder) -> None:
    """sentence-transformers sets truncation on its tokenizer for every encode; document tokens must not see it."""
    long_text = " ".join(["Caracas"] * 400)
    lengths: list[int] = []
    worker = threading.Thread(target=lambda: lengths.extend(
        len(tokens.ids) for _ in range(100) for tokens in embedder.tokenize_texts([long_text] * 8)))
    worker.start()
    while worker.is_alive():
        embedder.model.encode([long_text, TEXTS[0]])
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
