"""Sentences and chunks are exact spans of the text and always fit the embedder."""

from __future__ import annotations

from itertools import pairwise

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
    chunker = Chunker(embedder.count_tokens, ChunkingConfig(max_tokens=embedder.max_seq_length))
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
    chunker = Chunker(embedder.count_tokens, ChunkingConfig(max_tokens=embedder.max_seq_length))
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
    chunker = Chunker(embedder.count_tokens, ChunkingConfig(target, overlap, limit))
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
