"""Lexical side of retrieval: one analyzer (lower-case, stop words, Snowball stems) and a BM25 index."""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

_TOKEN = re.compile(r"\w+", re.UNICODE)
_WORD = re.compile(r"[^\W\d_]{3,}", re.UNICODE)

STOPWORDS = frozenset(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me more
    most my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves s t don""".split()
)


def fold_accents(text: str) -> str:
    """'Bolívar' -> 'Bolivar', so that questions typed without accents still match."""
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


class Analyzer:
    """Turns text into the stemmed terms that BM25 and term statistics share."""

    def __init__(self, language: str = "english") -> None:
        self._stemmer = Stemmer.Stemmer(language)

    def terms(self, text: str) -> list[str]:
        words = _TOKEN.findall(fold_accents(text.lower()))
        return self._stemmer.stemWords([w for w in words if w not in STOPWORDS])

    def positioned_terms(self, text: str) -> list[tuple[int, str]]:
        """(character offset, stem) of each term of `text`, in order (offsets index `text` itself)."""
        words = ((m.start(), m.group(0).lower()) for m in _TOKEN.finditer(text))
        found = [(offset, word) for offset, word in words if word not in STOPWORDS]
        stems = self._stemmer.stemWords([fold_accents(word) for _, word in found])
        return [(offset, stem) for (offset, _), stem in zip(found, stems, strict=True)]

    def terms_many(self, texts: Sequence[str]) -> list[list[str]]:
        return [self.terms(text) for text in texts]

    def stem(self, word: str) -> str:
        return self._stemmer.stemWord(word)


def content_words(text: str) -> list[str]:
    """Lower-case, accent-folded words of three letters or more that are not stop words, in order."""
    return [w for w in _WORD.findall(fold_accents(text.lower())) if w not in STOPWORDS]


class LexicalIndex:
    """BM25 (bm25s) over chunk texts, plus document frequencies for term weighting."""

    def __init__(self, bm25: bm25s.BM25, document_frequency: dict[str, int], size: int) -> None:
        self.bm25 = bm25
        self.document_frequency = document_frequency
        self.size = size

    @classmethod
    def build(cls, chunk_terms: Sequence[Sequence[str]]) -> LexicalIndex:
        bm25 = bm25s.BM25()
        bm25.index([list(t) for t in chunk_terms], show_progress=False)
        frequency = Counter(term for terms in chunk_terms for term in set(terms))
        return cls(bm25, dict(frequency), len(chunk_terms))

    def idf(self, term: str) -> float:
        """Smoothed inverse document frequency; an unseen term is as rare as can be."""
        return float(np.log((self.size + 1) / (self.document_frequency.get(term, 0) + 0.5)))

    def search(self, terms: Sequence[str], k: int) -> list[tuple[int, float]]:
        """Top-k (chunk row, score) pairs with a positive score."""
        known = [t for t in terms if t in self.bm25.vocab_dict]
        if not known or self.size == 0:
            return []
        scores = self.bm25.get_scores(known)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [(int(i), float(scores[i])) for i in top if scores[i] > 0]

    def chunks_with(self, term: str) -> np.ndarray:
        """Rows of the chunks that hold `term` (its posting list; empty for an unknown term)."""
        token = self.bm25.vocab_dict.get(term)
        if token is None:
            return np.zeros(0, dtype=np.int64)
        indptr = self.bm25.scores["indptr"]
        return np.asarray(self.bm25.scores["indices"][indptr[token] : indptr[token + 1]], dtype=np.int64)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.bm25.save(str(folder), show_progress=False)
        stats = {"size": self.size, "document_frequency": self.document_frequency}
        (folder / "term_stats.json").write_text(json.dumps(stats, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        bm25 = bm25s.BM25.load(str(folder), mmap=True, show_progress=False, verbosity=0)
        stats = json.loads((folder / "term_stats.json").read_text(encoding="utf-8"))
        return cls(bm25, stats["document_frequency"], stats["size"])
