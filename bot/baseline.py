"""The plain reference `eval` prints beside Footnote's figures.

Sentence-level hybrid retrieval: BM25 over single sentences and MiniLM cosine against the snapshot's sentence
vectors, fused by reciprocal rank; the answer is the top two sentences, and one threshold on the best
sentence's cosine decides abstention. No learned parts, no answer types.
"""

from __future__ import annotations

import time

import numpy as np

from bot.answer import ABSTAIN_TEXT, Answer, Citation
from index.embedding import Embedder
from index.lexical import Analyzer, LexicalIndex
from index.store import Snapshot

CANDIDATES = 50
RRF_K = 60
SENTENCES = 2


class SentenceBaseline:
    """Answers with the two best sentences by fused BM25 and dense rank; `confidence` is the best cosine."""

    def __init__(self, snapshot: Snapshot, embedder: Embedder, analyzer: Analyzer | None = None) -> None:
        self.snapshot = snapshot
        self.embedder = embedder
        self.analyzer = analyzer or Analyzer()
        texts = [snapshot.sentence_text(row) for row in range(len(snapshot.sentences))]
        self.lexical = LexicalIndex.build(self.analyzer.terms_many(texts))

    def ask(self, question: str) -> Answer:
        started = time.perf_counter()
        vector = self.embedder.encode([question])[0]
        cosine = np.asarray(self.snapshot.sentence_vectors) @ vector
        k = min(CANDIDATES, len(cosine))
        if k == 0:
            return Answer(question, ABSTAIN_TEXT, True, [])
        dense = np.argpartition(-cosine, k - 1)[:k]
        dense = dense[np.argsort(-cosine[dense])]
        lexical = [row for row, _ in self.lexical.search(self.analyzer.terms(question), CANDIDATES)]
        fused: dict[int, float] = {}
        for ranking in (dense.tolist(), lexical):
            for rank, row in enumerate(ranking, start=1):
                fused[row] = fused.get(row, 0.0) + 1.0 / (RRF_K + rank)
        best = sorted(fused, key=lambda row: -fused[row])[:SENTENCES]
        citations = [self._citation(n, row, float(cosine[row])) for n, row in enumerate(best, start=1)]
        text = " ".join(f"{c.quote} [{c.n}]" for c in citations)
        total = round((time.perf_counter() - started) * 1000, 2)
        return Answer(question, text, False, citations, confidence=float(cosine[best[0]]), timings_ms={"total": total})

    def _citation(self, n: int, row: int, score: float) -> Citation:
        doc_row, start, end, paragraph = (int(x) for x in self.snapshot.sentences[row])
        document = self.snapshot.documents[self.snapshot.doc_ids[doc_row]]
        return Citation(n=n, doc_id=document.doc_id, title=document.title, url=document.url,
                        quote=document.text[start:end], start=start, end=end, chunk_id=f"{document.doc_id}#s{row}",
                        score=round(score, 4), paragraph=paragraph + 1, published=document.published)
