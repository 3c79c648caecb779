"""Sentence-aligned chunks: paragraphs, then sentences (nupunkt), then windows of whole sentences.

Every sentence and chunk is a `(start, end)` span of the document's normalised text, so
`text[start:end]` is always exactly what was embedded and what a citation quotes.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import nupunkt

if TYPE_CHECKING:
    from index.embedding import TextTokens

TextTokenizer = Callable[[Sequence[str]], list["TextTokens"]]
"""Tokenizes whole texts as the embedder does, without special tokens (`Embedder.tokenize_texts`)."""

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Sentence:
    start: int
    end: int
    paragraph: int


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    doc_id: str
    start: int
    end: int
    first_sentence: int
    last_sentence: int

    @property
    def sentence_range(self) -> range:
        return range(self.first_sentence, self.last_sentence + 1)


@dataclass(frozen=True)
class ChunkingConfig:
    target_words: int = 120
    overlap_sentences: int = 1
    max_tokens: int = 256


def split_sentences(text: str) -> list[Sentence]:
    """Sentences of every paragraph (blocks split by a blank line), trimmed of surrounding space."""
    sentences: list[Sentence] = []
    offset = 0
    for paragraph_number, block in enumerate(text.split("\n\n")):
        for start, end in nupunkt.sent_spans(block) if block.strip() else []:
            piece = block[start:end]
            lead = len(piece) - len(piece.lstrip())
            trail = len(piece) - len(piece.rstrip())
            if end - trail > start + lead:
                sentences.append(Sentence(offset + start + lead, offset + end - trail, paragraph_number))
        offset += len(block) + 2
    return sentences


TOKEN_MARGIN = 16
"""A window whose summed sentence tokens come this close to the limit is tokenized whole to check it fits
(joining sentences at whitespace rarely changes WordPiece counts, but other tokenizers may differ)."""


@dataclass
class DocumentSplit:
    sentences: list[Sentence]
    chunks: list[Chunk]
    tokens: TextTokens  # the whole document's tokens, kept for the encoder


class Chunker:
    """Cuts a document into windows of whole sentences that fit the embedder's sequence length.

    Each document is tokenized once; sentence lengths are read off its token offsets, plus the
    `special_tokens` the model adds around every text."""

    def __init__(self, tokenize: TextTokenizer, special_tokens: int, config: ChunkingConfig | None = None) -> None:
        self.tokenize = tokenize
        self.special_tokens = special_tokens
        self.config = config or ChunkingConfig()

    def split(self, doc_id: str, text: str) -> tuple[list[Sentence], list[Chunk]]:
        """The document's sentences (any over the token limit split at word boundaries) and its chunks."""
        split = self.split_many([(doc_id, text)])[0]
        return split.sentences, split.chunks

    def split_many(self, documents: Sequence[tuple[str, str]]) -> list[DocumentSplit]:
        """`split` for several (doc_id, text) documents, tokenized in one call."""
        tokens = self.tokenize([text for _, text in documents])
        results = []
        for (doc_id, text), document_tokens in zip(documents, tokens, strict=True):
            sentences = split_sentences(text)
            kept, counts = self._fit_sentences(text, sentences, self._counts_from_offsets(document_tokens.offsets,
                                                                                          sentences))
            results.append(DocumentSplit(kept, self._chunk(doc_id, text, kept, counts), document_tokens))
        return results

    def _counts_from_offsets(self, offsets: np.ndarray, sentences: list[Sentence]) -> list[int]:
        """Each sentence's tokens: those of the document starting inside it, plus the special tokens."""
        token_starts = offsets[:, 0]
        firsts = np.searchsorted(token_starts, [s.start for s in sentences])
        ends = np.searchsorted(token_starts, [s.end for s in sentences])
        return (ends - firsts + self.special_tokens).tolist()

    def _count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(tokens.ids) + self.special_tokens for tokens in self.tokenize(texts)]

    def _fit_sentences(self, text: str, sentences: list[Sentence],
                       counts: list[int]) -> tuple[list[Sentence], list[int]]:
        result: list[Sentence] = []
        result_counts: list[int] = []
        for sentence, tokens in zip(sentences, counts, strict=True):
            if tokens <= self.config.max_tokens:
                result.append(sentence)
                result_counts.append(tokens)
            else:
                pieces = self._split_long(text, sentence)
                result.extend(pieces)
                result_counts.extend(self._count_tokens([text[p.start : p.end] for p in pieces]))
        return result, result_counts

    def _split_long(self, text: str, sentence: Sentence) -> list[Sentence]:
        words = [m.span() for m in _WORD.finditer(text, sentence.start, sentence.end)]
        pieces: list[Sentence] = []
        first = 0
        while first < len(words):
            last = self._longest_fit(text, words, first)
            pieces.append(Sentence(words[first][0], words[last][1], sentence.paragraph))
            first = last + 1
        return pieces

    def _longest_fit(self, text: str, words: list[tuple[int, int]], first: int) -> int:
        """Index of the last word such that words[first..last] fit the token limit (at least one word)."""
        low, high = first, len(words) - 1
        while low < high:
            middle = (low + high + 1) // 2
            if self._too_long(text, words[first][0], words[middle][1]):
                high = middle - 1
            else:
                low = middle
        return low

    def _chunk(self, doc_id: str, text: str, sentences: list[Sentence], token_counts: list[int]) -> list[Chunk]:
        """Windows of about `target_words` words, overlapping by whole sentences, within max_tokens."""
        word_counts = [len(_WORD.findall(text, s.start, s.end)) for s in sentences]
        chunks: list[Chunk] = []
        first = 0
        while first < len(sentences):
            last, estimate = self._window_end(first, word_counts, token_counts)
            if estimate > self.config.max_tokens - TOKEN_MARGIN:  # near the limit: count the window itself
                while last > first and self._too_long(text, sentences[first].start, sentences[last].end):
                    last -= 1
            chunks.append(Chunk(f"{doc_id}#{len(chunks)}", doc_id, sentences[first].start,
                                sentences[last].end, first, last))
            if last == len(sentences) - 1:
                break
            first = max(first + 1, last + 1 - self.config.overlap_sentences)
        return chunks

    def _window_end(self, first: int, words: list[int], tokens: list[int]) -> tuple[int, int]:
        """The window's last sentence and its estimated tokens (the sentences' own, special tokens once)."""
        last, total_words, total_tokens = first, words[first], tokens[first]
        while last + 1 < len(words):
            more_words = total_words + words[last + 1]
            more_tokens = total_tokens + tokens[last + 1] - self.special_tokens
            if more_words > self.config.target_words or more_tokens > self.config.max_tokens:
                break
            last, total_words, total_tokens = last + 1, more_words, more_tokens
        return last, total_tokens

    def _too_long(self, text: str, start: int, end: int) -> bool:
        return self._count_tokens([text[start:end]])[0] > self.config.max_tokens
