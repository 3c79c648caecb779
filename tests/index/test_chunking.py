"""Sentences and chunks are exact spans of the text and always fit the embedder."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from index.chunking import Chunker, ChunkingConfig, split_sentences
from index.documents import load_corpus, normalise_text
from index.embedding import Embedder
from tests.conftest import SEED_CORPUS


def seed_text() -> str:
    return load_corpus(SEED_CORPUS).documents[0].text


def test_seed_sentences_round_trip_and_handle_abbreviations() -> None:
    text = seed_text()
    sentences = split_sentences(text)
    assert len(sentences) == 20
    for sentence in sentences:
        piece = text[sentence.start : sentence.end]
        assert piece == piece.strip() and piece
    assert text[sentences[-2].start : sentences[-2].end] == (
        "Christian K. Caruzo is a Venezuelan writer and documents life under socialism.")


def test_abbreviations_and_decimals_do_not_end_sentences() -> None:
    text = "Dr. Smith flew to the U.S. on Monday. He paid $3.5 million. “We won!” he said."
    pieces = [text[s.start : s.end] for s in split_sentences(text)]
    assert pieces == ["Dr. Smith flew to the U.S. on Monday.", "He paid $3.5 million.", "“We won!” he said."]


def test_seed_chunks_round_trip_fit_and_overlap(embedder: Embedder) -> None:
    text = seed_text()
    chunker = Chunker(embedder.tokenize_texts, embedder.special_tokens,
                      ChunkingConfig(max_tokens=embedder.max_seq_length))
    sentences, chunks = chunker.split("seed", text)
    assert [c.chunk_id for c in chunks] == [f"seed#{n}" for n in range(len(chunks))]
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    for before, after in pairwise(chunks):
        assert after.first_sentence == before.last_sentence  # one sentence of overlap
    for chunk in chunks:
        assert chunk.start == sentences[chunk.first_sentence].start
        assert chunk.end == sentences[chunk.last_sentence].end
        assert embedder.count_tokens([text[chunk.start : chunk.end]])[0] <= embedder.max_seq_length
        assert len(text[chunk.start : chunk.end].split()) <= 120 or chunk.first_sentence == chunk.last_sentence


def test_chunks_of_long_words_never_exceed_the_limit(embedder: Embedder) -> None:
    """200-word sentences of rare words (many word pieces each) must be split, never truncated."""
    sentence = " ".join(f"Xylophonization{n}q" for n in range(200)) + "."
    text = normalise_text(f"{sentence} A short one. {sentence}")
    chunker = Chunker(embedder.tokenize_texts, embedder.special_tokens,
                      ChunkingConfig(max_tokens=embedder.max_seq_length))
    sentences, chunks = chunker.split("long", text)
    assert len(sentences) > 3
    covered = "".join(text[s.start : s.end] for s in sentences).replace(" ", "")
    assert covered == text.replace(" ", "")
    for chunk in chunks:
        assert embedder.count_tokens([text[chunk.start : chunk.end]])[0] <= embedder.max_seq_length


_word = st.text(alphabet=st.characters(codec="utf-8", categories=("L", "N")), min_size=1, max_size=12)
_sentence = st.lists(_word, min_size=1, max_size=30).map(lambda words: " ".join(words) + ".")
_paragraph = st.lists(_sentence, min_size=1, max_size=6).map(" ".join)
_article = st.lists(_paragraph, min_size=1, max_size=5).map("\n\n".join)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=_article, target=st.integers(5, 150), overlap=st.integers(0, 2), limit=st.integers(24, 256))
def test_generated_text_round_trips(embedder: Embedder, raw: str, target: int, overlap: int, limit: int) -> None:
    text = normalise_text(raw)
    chunker = Chunker(embedder.tokenize_texts, embedder.special_tokens, ChunkingConfig(target, overlap, limit))
    sentences, chunks = chunker.split("doc", text)
    assert sentences and chunks
    for sentence in sentences:
        piece = text[sentence.start : sentence.end]
        assert piece and piece == piece.strip()
        assert sentence.paragraph == text[: sentence.start].count("\n\n")
    assert chunks[-1].last_sentence == len(sentences) - 1
    for chunk in chunks:
        assert text[chunk.start : chunk.end].startswith(text[sentences[chunk.first_sentence].start :
                                                             sentences[chunk.first_sentence].end])
        assert embedder.count_tokens([text[chunk.start : chunk.end]])[0] <= limit


TRICKY = normalise_text(
    "Raisi (62) met Nicolás Maduro—again—in Caracas.It was his first visit; “Welcome!” said Maduro. "
    "They signed 25 agreements worth $3.5bn on 12/06/2023... Next: Managua, then Havana 🇨🇺. "
    "Ünïcödé wörds, e-mail@example.com and C++ stay intact.\n\nA new paragraph follows here.")


@pytest.mark.parametrize("text", [seed_text(), TRICKY], ids=["seed", "tricky"])
def test_chunk_inputs_cut_from_the_document_tokens_equal_tokenizing_each_chunk(embedder: Embedder,
                                                                             text: str) -> None:
    chunker = Chunker(embedder.tokenize_texts, embedder.special_tokens,
                      ChunkingConfig(target_words=12, max_tokens=embedder.max_seq_length))
    split = chunker.split_many([("doc", text)])[0]
    starts = split.tokens.offsets[:, 0]
    slices = [(split.tokens, *np.searchsorted(starts, [c.start, c.end]), c.start) for c in split.chunks]
    ours = embedder.inputs_from_slices(slices)
    theirs = embedder.tokenize([text[c.start : c.end] for c in split.chunks], offsets=True)
    assert len(split.chunks) > 2
    for row in range(len(split.chunks)):
        assert ours["input_ids"][row].tolist() == theirs["input_ids"][row]
        assert ours["offset_mapping"][row].tolist() == [list(o) for o in theirs["offset_mapping"][row]]
    counted = embedder.count_tokens([text[s.start : s.end] for s in split.sentences])
    assert chunker._counts_from_offsets(split.tokens.offsets, split.sentences) == counted
