"""Extractive answers: pick the corpus sentences that answer a question and footnote each one.

No reader model ships offline, so the answer is made of the articles' own sentences. Each candidate
sentence (from the retrieved chunks) is scored on
- coverage: how much of the question's salient vocabulary (IDF-weighted) it contains, exactly (stems)
  or softly (embedding similarity of single words, precomputed for the corpus vocabulary);
- similarity: cosine between the question and the sentence embeddings;
- answer kind: whether it holds the kind of thing a who / when / where / how-much question wants
  (a name, a date or day, a place, an amount) that the question itself does not already say.
The best one to three sentences, in article order, make the answer; weak evidence means abstaining.
"""

from __future__ import annotations

import re
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from index.documents import normalise_text
from index.embedding import Embedder
from index.lexical import Analyzer, content_words
from index.search import Hit, HybridRetriever, SearchConfig
from index.store import Snapshot

ABSTAIN_TEXT = "The indexed articles don't say."
QUESTION_WORDS = frozenset(
    "who whom whose what which when where why how many much did does do is are was were has have had "
    "article articles mentioned mention say says said according tell kind type sort name named called "
    "describe described happen happened".split()
)
_CAPITALISED = re.compile(r"\b[A-Z][\w’'\-]*[a-z][\w’'\-]*|\b[A-Z]{2,}\b")
_DATE = re.compile(
    r"\b(monday|tuesday|wednesday|thursday|friday|saturday|sunday|january|february|march|april|may|june|"
    r"july|august|september|october|november|december|today|yesterday|tomorrow|tonight|week|month|year|"
    r"decade|century|(?:1[5-9]|20)\d\d(?:s)?)\b",
    re.IGNORECASE,
)
_QUANTITY = re.compile(
    r"\d|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|hundred|thousand|"
    r"million|billion|trillion|dozen|percent|half|quarter|several|multimillion)\b|[$€£%]",
    re.IGNORECASE,
)
_CLAUSE_BREAK = re.compile(r"(?<=[,;:—–])\s+|\s+(?=[—–]\s)")
_ANAPHORA = re.compile(r"^[“\"']?(?:\S+[”\"']?\s+){0,6}?(he|she|they|it|this|these|that|those|his|her|their)\b"
                      r"|^(the result|as a result|however|but|also)\b", re.I)
_FOLLOW_UP_START = re.compile(r"^\s*(and|but|also|then|so|what about|how about|and what about)\b", re.I)
_PRONOUN = re.compile(r"\b(he|she|they|it|him|her|them|his|hers|their|its|there|that|this|those)\b", re.I)


@dataclass(frozen=True)
class AnswerConfig:
    max_chars: int = 400
    max_sentences: int = 3
    abstain_threshold: float = 0.40
    companion_ratio: float = 0.9
    neighbour_ratio: float = 0.6
    soft_match_floor: float = 0.45
    soft_match_full: float = 0.8
    suggestions: int = 3
    max_question_chars: int = 500
    evidence: int = 8


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation (for follow-up questions)."""

    question: str
    answer: str = ""


@dataclass
class Citation:
    n: int
    doc_id: str
    title: str
    url: str
    quote: str
    start: int
    end: int
    chunk_id: str
    score: float
    paragraph: int = 0


@dataclass
class Answer:
    question: str
    answer: str
    abstained: bool
    citations: list[Citation]
    suggestions: list[Citation] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    mode: str = "extractive"
    refusal: str | None = None
    confidence: float = 0.0
    removed: list[dict] = field(default_factory=list)
    evidence: list[Citation] = field(default_factory=list, repr=False)

    def to_json(self, qid: str | None = None) -> dict:
        data = {"qid": qid, "question": self.question, "answer": self.answer, "abstained": self.abstained,
                "citations": [asdict(c) for c in self.citations],
                "suggestions": [asdict(c) for c in self.suggestions],
                "timings_ms": self.timings_ms, "mode": self.mode, "confidence": round(self.confidence, 4),
                "removed": self.removed}
        if self.refusal:
            data["refusal"] = self.refusal
        return data


@dataclass(frozen=True)
class Query:
    """What the answerer looks for: the retrieval text, weighted question words and the answer kind."""

    text: str
    words: dict[str, float]
    kind: str | None


@dataclass(frozen=True)
class QuestionTerms:
    """A question's content words, their stems, IDF × turn weights and embeddings (one row each)."""

    words: list[str]
    stems: list[str]
    weights: np.ndarray
    vectors: np.ndarray


@dataclass
class Candidate:
    row: int
    doc_id: str
    start: int
    end: int
    paragraph: int
    chunk: Hit
    score: float = 0.0
    coverage: float = 0.0
    kind: float = 0.0
    covered: frozenset[str] = frozenset()


class QuestionRejected(ValueError):
    """A question that cannot be answered as asked; the message is shown to the user."""


def clean_question(raw: str, max_chars: int) -> str:
    """Normalise a question, or raise QuestionRejected with a clear reason."""
    question = normalise_text(raw).replace("\n\n", " ") if raw else ""
    if not question:
        raise QuestionRejected("Please ask a question about the articles.")
    if len(question) > max_chars:
        raise QuestionRejected(f"Questions are limited to {max_chars} characters (this one has {len(question)}).")
    if not any(ch.isalnum() for ch in question):
        raise QuestionRejected("That doesn't look like a question: please ask in words.")
    return question


def answer_kind(question: str) -> str | None:
    """The kind of answer a question wants: person, date, quantity, place, or None."""
    q = question.lower()
    if re.search(r"\b(how (much|many|long|old|far|big|large)|what (percentage|number|amount|share))\b", q):
        return "quantity"
    if re.search(r"\b(when|what (day|year|date|time|month)|which (day|year|month))\b", q):
        return "date"
    if re.search(r"\b(where|what (country|city|place)|which (country|city|place))\b", q):
        return "place"
    if re.search(r"\b(who|whom|whose)\b", q):
        return "person"
    return None


def build_query(question: str, history: list[Turn] | None = None) -> Query:
    """Rewrite a follow-up ("and on Wednesday?") with the previous question as context."""
    words = dict.fromkeys(w for w in content_words(question) if w not in QUESTION_WORDS)
    weights = {w: 1.0 for w in words}
    kind = answer_kind(question)
    previous = history[-1].question if history else ""
    if previous and is_follow_up(question, len(weights)):
        for word in content_words(previous):
            if word not in QUESTION_WORDS:
                weights.setdefault(word, 0.6)
        kind = kind or answer_kind(previous)
        return Query(f"{previous} {question}", weights, kind)
    return Query(question, weights, kind)


def is_follow_up(question: str, content_word_count: int) -> bool:
    return bool(_FOLLOW_UP_START.search(question)) or content_word_count <= 1 or (
        content_word_count <= 3 and bool(_PRONOUN.search(question)))


class Answerer:
    """Answers questions from one snapshot; the embedder is shared and loaded once."""

    def __init__(self, snapshot: Snapshot, embedder: Embedder, search: SearchConfig | None = None,
                 config: AnswerConfig | None = None) -> None:
        self.snapshot = snapshot
        self.embedder = embedder
        self.config = config or AnswerConfig()
        self.analyzer = Analyzer()
        self.retriever = HybridRetriever(snapshot, search or SearchConfig(), self.analyzer)
        self._terms_cache: dict[int, tuple[set[str], np.ndarray]] = {}

    def ask(self, question: str, history: list[Turn] | None = None) -> Answer:
        """Answer one question (optionally a follow-up of `history`)."""
        return self.ask_many([(question, history or [])])[0]

    def ask_many(self, questions: list[tuple[str, list[Turn]]]) -> list[Answer]:
        """Answer several questions with one embedding call (the service's micro-batches)."""
        answers: list[Answer | None] = [None] * len(questions)
        valid = []
        for position, (question, history) in enumerate(questions):
            try:
                valid.append((position, clean_question(question, self.config.max_question_chars), history))
            except QuestionRejected as exc:
                answers[position] = Answer(question, str(exc), True, [], refusal=str(exc))
        for (position, _, _), answer in zip(valid, self._answer_valid([(q, h) for _, q, h in valid]), strict=True):
            answers[position] = answer
        return [a for a in answers if a is not None]

    def ranked_documents(self, question: str) -> list[str]:
        """Document ids in retrieval order, best first (for retrieval metrics)."""
        query = build_query(question)
        hits = self.retriever.search(query.text, self.embedder.encode([query.text])[0],
                                     k=self.retriever.config.candidates)
        return list(dict.fromkeys(hit.chunk.doc_id for hit in hits))

    def _answer_valid(self, questions: list[tuple[str, list[Turn]]]) -> list[Answer]:
        if not questions:
            return []
        started = time.perf_counter()
        queries = [build_query(q, h) for q, h in questions]
        unknown = sorted({w for q in queries for w in q.words if w not in self.snapshot.vocabulary})
        vectors = self.embedder.encode([q.text for q in queries] + unknown)
        unknown_vectors = dict(zip(unknown, vectors[len(queries):], strict=True))
        embed_ms = (time.perf_counter() - started) * 1000 / len(queries)
        answers = []
        for (question, _), query, vector in zip(questions, queries, vectors[: len(queries)], strict=True):
            answers.append(self._answer(question, query, vector, unknown_vectors, embed_ms))
        return answers

    def _answer(self, question: str, query: Query, vector: np.ndarray,
                unknown_vectors: dict[str, np.ndarray], embed_ms: float) -> Answer:
        t0 = time.perf_counter()
        hits = self.retriever.search(query.text, vector)
        t1 = time.perf_counter()
        candidates = self._candidates(hits)
        terms = self._question_terms(query, unknown_vectors)
        for candidate in candidates:
            self._score(candidate, query, vector, terms)
        candidates.sort(key=lambda c: -c.score)
        answer = self._compose(question, query, candidates)
        answer.confidence = candidates[0].score if candidates else 0.0
        answer.evidence = [self._citation(n, c, c.start, c.end)
                           for n, c in enumerate(candidates[: self.config.evidence], start=1)]
        t2 = time.perf_counter()
        search_ms, compose_ms = (t1 - t0) * 1000, (t2 - t1) * 1000
        answer.timings_ms = {"embed": round(embed_ms, 2), "search": round(search_ms, 2),
                             "compose": round(compose_ms, 2), "total": round(embed_ms + search_ms + compose_ms, 2)}
        return answer

    def _candidates(self, hits: list[Hit]) -> list[Candidate]:
        seen, candidates = set(), []
        for hit in hits:
            for row in hit.chunk.sentence_range:
                if row in seen:
                    continue
                seen.add(row)
                doc_row, start, end, paragraph = (int(x) for x in self.snapshot.sentences[row])
                candidates.append(Candidate(row, self.snapshot.doc_ids[doc_row], start, end, paragraph, hit))
        return candidates

    def _question_terms(self, query: Query, unknown: dict[str, np.ndarray]) -> QuestionTerms:
        """The query's words with their stems, IDF weights and embeddings, computed once per question."""
        vocabulary = self.snapshot.vocabulary
        words = list(query.words)
        stems = [self.analyzer.stem(w) for w in words]
        weights = np.array([self.snapshot.lexical.idf(stem) * query.words[w] for w, stem in zip(words, stems,
                                                                                              strict=True)])
        vectors = np.zeros((len(words), self.embedder.dimension), dtype=np.float32)
        for row, word in enumerate(words):
            vectors[row] = unknown[word] if word in unknown else self.snapshot.vocabulary_vectors[vocabulary[word]]
        return QuestionTerms(words, stems, weights, vectors)

    def _score(self, candidate: Candidate, query: Query, question_vector: np.ndarray, terms: QuestionTerms) -> None:
        text = self._text(candidate)
        similarity = float(self.snapshot.sentence_vectors[candidate.row] @ question_vector)
        candidate.coverage, candidate.covered = self._coverage(candidate.row, text, terms)
        candidate.kind = _kind_score(text, query)
        candidate.score = 0.5 * candidate.coverage + 0.3 * max(similarity, 0.0) + 0.2 * candidate.kind

    def _coverage(self, row: int, text: str, terms: QuestionTerms) -> tuple[float, frozenset[str]]:
        """IDF-weighted share of the question's words that the sentence contains (exactly or softly)."""
        total = float(terms.weights.sum())
        if not terms.words or total <= 0:
            return 0.0, frozenset()
        stems, word_rows = self._sentence_terms(row, text)
        exact = np.array([stem in stems for stem in terms.stems])
        credit = exact.astype(np.float64)
        if not exact.all() and len(word_rows):
            best = (self.snapshot.vocabulary_vectors[word_rows] @ terms.vectors[~exact].T).max(axis=0)
            floor, full = self.config.soft_match_floor, self.config.soft_match_full
            credit[~exact] = np.clip((best - floor) / (full - floor), 0.0, 1.0) * 0.8
        covered = frozenset(w for w, hit in zip(terms.words, exact, strict=True) if hit)
        return float(credit @ terms.weights) / total, covered

    def _sentence_terms(self, row: int, text: str) -> tuple[set[str], np.ndarray]:
        """A sentence's stems and the vocabulary rows of its words (cached: sentences never change)."""
        cached = self._terms_cache.get(row)
        if cached is None:
            vocabulary = self.snapshot.vocabulary
            rows = np.array([vocabulary[w] for w in content_words(text) if w in vocabulary], dtype=np.int64)
            cached = self._terms_cache[row] = (set(self.analyzer.terms(text)), rows)
        return cached

    def _text(self, candidate: Candidate) -> str:
        return self.snapshot.documents[candidate.doc_id].text[candidate.start : candidate.end]

    def _compose(self, question: str, query: Query, ranked: list[Candidate]) -> Answer:
        if not ranked or ranked[0].score < self.config.abstain_threshold:
            return self._abstain(question, ranked)
        chosen = self._choose(ranked)
        chosen.sort(key=lambda c: (c.doc_id, c.start))
        citations, parts = [], []
        budget = self.config.max_chars
        for n, candidate in enumerate(chosen, start=1):
            start, end = self._fit(candidate, query, budget - len(f" [{n}]") - 1)
            quote = self.snapshot.documents[candidate.doc_id].text[start:end]
            prefix = "…" if start > candidate.start else ""
            suffix = "…" if end < candidate.end else ""
            parts.append(f"{prefix}{quote}{suffix} [{n}]")
            budget -= len(parts[-1]) + 1
            citations.append(self._citation(n, candidate, start, end))
        return Answer(question, " ".join(parts), False, citations)

    def _choose(self, ranked: list[Candidate]) -> list[Candidate]:
        """The best sentence, plus close runners-up or neighbours that add what the best one lacks."""
        best = ranked[0]
        chosen = [best]
        by_row = {c.row: c for c in ranked}
        neighbours = [by_row[r] for r in (best.row - 1, best.row + 1)
                      if r in by_row and by_row[r].doc_id == best.doc_id]
        for candidate in ranked[1:]:
            if len(chosen) >= self.config.max_sentences:
                break
            if self._length(chosen) + candidate.end - candidate.start + 5 > self.config.max_chars:
                continue
            if self._completes(candidate, chosen, candidate in neighbours):
                chosen.append(candidate)
        return chosen

    def _completes(self, candidate: Candidate, chosen: list[Candidate], neighbour: bool) -> bool:
        """Whether a sentence adds what the chosen ones lack: the antecedent of the best one's opening
        pronoun, question words, or (next to the best one) the kind of answer wanted."""
        best = chosen[0]
        if neighbour and candidate.row == best.row - 1 and _ANAPHORA.match(self._text(best)):
            return True
        ratio = self.config.neighbour_ratio if neighbour else self.config.companion_ratio
        if candidate.score < ratio * best.score:
            return False
        if candidate.covered - set().union(*(c.covered for c in chosen)):
            return True
        return neighbour and max(c.kind for c in chosen) == 0.0 and candidate.kind == 1.0

    @staticmethod
    def _length(chosen: list[Candidate]) -> int:
        return sum(c.end - c.start + 5 for c in chosen)

    def _fit(self, candidate: Candidate, query: Query, budget: int) -> tuple[int, int]:
        """The sentence's span, or its best run of clauses when the sentence is over budget."""
        if candidate.end - candidate.start <= budget:
            return candidate.start, candidate.end
        text = self._text(candidate)
        cuts = [0, *(m.end() for m in _CLAUSE_BREAK.finditer(text)), len(text)]
        best, best_score = (0, len(text[:budget].rsplit(" ", 1)[0])), -1.0
        stems_wanted = {self.analyzer.stem(w) for w in query.words}
        for i in range(len(cuts) - 1):
            for j in range(i + 1, len(cuts)):
                piece = text[cuts[i] : cuts[j]].rstrip(" ,;:—–")
                if len(piece) + 2 > budget:
                    break
                score = len(stems_wanted & set(self.analyzer.terms(piece))) + 0.5 * _kind_score(piece, query)
                if score > best_score:
                    best, best_score = (cuts[i], cuts[i] + len(piece)), score
        return candidate.start + best[0], candidate.start + best[1]

    def _citation(self, n: int, candidate: Candidate, start: int, end: int) -> Citation:
        document = self.snapshot.documents[candidate.doc_id]
        return Citation(n=n, doc_id=document.doc_id, title=document.title, url=document.url,
                        quote=document.text[start:end], start=start, end=end,
                        chunk_id=candidate.chunk.chunk.chunk_id, score=round(candidate.score, 4),
                        paragraph=candidate.paragraph + 1)

    def _abstain(self, question: str, ranked: list[Candidate]) -> Answer:
        suggestions = [self._citation(n, c, c.start, c.end)
                       for n, c in enumerate(ranked[: self.config.suggestions], start=1)]
        return Answer(question, ABSTAIN_TEXT, True, [], suggestions)


def _kind_score(text: str, query: Query) -> float:
    """1 when the text holds the wanted kind of answer that the question does not already give."""
    if query.kind is None:
        return 0.5
    if query.kind == "date":
        found = {m.group(0).lower() for m in _DATE.finditer(text)}
    elif query.kind == "quantity":
        found = {m.group(0).lower() for m in _QUANTITY.finditer(text)}
    else:
        found = {m.group(0).lower() for m in _CAPITALISED.finditer(text, 1)}
    new = {f for f in found if not any(part in query.words for part in content_words(f))}
    return 1.0 if new else 0.0
