"""What answering needs from every sentence, computed once at build time and stored in the snapshot.

For each sentence: its names, numbers and dates (`index.spans`), and its terms: every stem with its offset
(for coverage and for the words around an answer) and its content words (for soft matching through the
vocabulary vectors). Terms are stored as one UTF-8 line per sentence ("offset:stem … <TAB> word …"), so that
answering a question reads them instead of tokenizing and stemming its candidate sentences again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from index.lexical import Analyzer, content_words
from index.spans import span_rows

ANNOTATIONS_VERSION = 4
"""Recorded in snapshots: annotations made by another version are made again at the next build (the vectors
are reused)."""


@dataclass
class DocumentAnnotations:
    spans: np.ndarray  # int32 rows: sentence row (local to the document), start, end, kind
    terms: list[bytes]  # one encoded line per sentence

    def shifted(self, base: int) -> np.ndarray:
        """The span rows with sentence rows made global (the document's first sentence is row `base`)."""
        return self.spans + np.array([base, 0, 0, 0], dtype=np.int32)


@dataclass(frozen=True)
class StoredTerms:
    offsets: tuple[int, ...]  # of each stem in the sentence text
    stems: tuple[str, ...]
    words: tuple[str, ...]  # content words, for the vocabulary vectors


def annotate(text: str, sentences: Sequence[tuple[int, int]], analyzer: Analyzer) -> DocumentAnnotations:
    """The spans and terms of each (start, end) sentence of a document's text."""
    return DocumentAnnotations(span_rows(text, sentences),
                               [encode_terms(text[start:end], analyzer) for start, end in sentences])


def encode_terms(sentence: str, analyzer: Analyzer) -> bytes:
    positioned = " ".join(f"{offset}:{stem}" for offset, stem in analyzer.positioned_terms(sentence))
    return f"{positioned}\t{' '.join(content_words(sentence))}".encode()


def decode_terms(line: bytes) -> StoredTerms:
    positioned, _, words = line.decode().partition("\t")
    pairs = [pair.split(":", 1) for pair in positioned.split()]
    return StoredTerms(tuple(int(offset) for offset, _ in pairs), tuple(stem for _, stem in pairs),
                         tuple(words.split()))


@dataclass
class SentenceAnnotations:
    """Every sentence's annotations in snapshot row order, as stored."""

    spans: np.ndarray  # int32 rows: sentence row, start, end, kind
    terms: np.ndarray  # uint8: the encoded lines, one after another
    term_bounds: np.ndarray  # int64: where each sentence's line starts, and one past the last

    @classmethod
    def join(cls, documents: Sequence[DocumentAnnotations], first_rows: Sequence[int]) -> SentenceAnnotations:
        spans = [d.shifted(base) for d, base in zip(documents, first_rows, strict=True)]
        lines = [line for d in documents for line in d.terms]
        bounds = np.zeros(len(lines) + 1, dtype=np.int64)
        np.cumsum([len(line) for line in lines], out=bounds[1:])
        return cls(np.vstack(spans) if spans else np.zeros((0, 4), np.int32),
                   np.frombuffer(b"".join(lines), dtype=np.uint8), bounds)

    def document(self, first: int, end: int, span_bounds: np.ndarray) -> DocumentAnnotations:
        """The annotations of sentence rows [first, end) (one document's), with local rows."""
        spans = np.array(self.spans[span_bounds[first] : span_bounds[end]], dtype=np.int32)
        spans[:, 0] -= first
        return DocumentAnnotations(spans, [self.line(row) for row in range(first, end)])

    def line(self, row: int) -> bytes:
        return self.terms[self.term_bounds[row] : self.term_bounds[row + 1]].tobytes()
