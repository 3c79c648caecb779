"""Signals that tell a sentence that answers a question from one that only shares its words.

For every candidate sentence (the sentences of the retrieved chunks) `FeatureExtractor` computes one row of
`FEATURES`: how much of the question it and its neighbours cover, whether it holds a new name, number or date
of the wanted kind, how many other articles agree on that span, whether it is itself a question, where it
sits in its article, how on-topic and how recent its article is. A learned model (`bot/scorer.py`) turns the
rows into probabilities. Everything here reads the snapshot; nothing goes through the encoder.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import numpy as np

from bot.question import Question
from index.lexical import Analyzer, fold_accents
from index.search import Hit
from index.spans import PLACES, Span
from index.store import Snapshot

FEATURES = (
    "dense_sentence", "dense_sentence_gap", "dense_rank", "coverage_rank", "dense_chunk", "chunk_rank", "doc_rank",
    "bm25_chunk",
    "coverage", "coverage_gap", "coverage_exact", "coverage_focus", "coverage_context", "context_gap",
    "coverage_doc", "coverage_title", "doc_best_context",
    "is_question", "new_words", "wanted_span", "type_fit", "span_near", "span_in_title", "partial_name",
    "span_votes", "kind_known",
    "position", "lead", "length", "doc_quiz", "doc_recency", "recent_x_recency", "date_known",
)
SPAN_FEATURES = (
    "support", "sentence_logit", "type_fit", "near", "type_word_near", "in_title", "mentions", "words",
    "is_name", "is_number", "is_date", "position",
)
SPAN_WINDOW = 8  # terms either side of an answer span that count as its neighbourhood
TYPE_WORD_WINDOW = 3
NAME_KINDS = frozenset({"person", "organisation", "place", "work", "name"})
TERMS_CACHE_LIMIT = 20_000
"""Sentences whose decoded terms are kept (about 3 KB each); 300 news questions read 14,600 of 32,600 sentences."""
_DAY_NEWS_HALF_LIFE = 7.0


@dataclass(frozen=True)
class QuestionTerms:
    """A question's content words, their stems, IDF × turn weights and embeddings (one row each)."""

    words: list[str]
    stems: list[str]
    weights: np.ndarray
    vectors: np.ndarray
    _by_stem: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def share(self, stems: Iterable[str], words: frozenset[str] | None = None) -> float:
        """IDF-weighted share of the question's terms (or of those among `words`) found in `stems`."""
        weight_of, total = self._weights(words)
        return sum(weight_of[stem] for stem in weight_of.keys() & stems) / total if total > 0 else 0.0

    def _weights(self, words: frozenset[str] | None) -> tuple[dict[str, float], float]:
        """Each stem's summed weight (over the question's words, or those among `words`), and their total."""
        cached = self._by_stem.get(words)
        if cached is None:
            weight_of: dict[str, float] = defaultdict(float)
            for word, stem, weight in zip(self.words, self.stems, self.weights, strict=True):
                if words is None or word in words:
                    weight_of[stem] += float(weight)
            cached = self._by_stem[words] = (dict(weight_of), sum(weight_of.values()))
        return cached


@dataclass
class Candidate:
    """One sentence that might answer, with the chunk hit that brought it."""

    row: int
    doc_row: int
    doc_id: str
    start: int
    end: int
    paragraph: int
    hit: Hit
    hit_rank: int
    text: str
    spans: list[Span] = field(default_factory=list)
    answer_spans: list[Span] = field(default_factory=list)
    covered: frozenset[str] = frozenset()
    probability: float = 0.0


@dataclass(frozen=True)
class SentenceTerms:
    """A sentence's stems, the vocabulary rows of its words, its terms in order with their offsets, and its
    spans (cached per sentence row: snapshots never change)."""

    stems: frozenset[str]
    word_rows: np.ndarray
    offsets: tuple[int, ...]
    positioned_stems: tuple[str, ...]
    spans: tuple[Span, ...]


class FeatureExtractor:
    """Per-snapshot facts computed once (article dates, first sentences, quiz pages) and the features."""

    def __init__(self, snapshot: Snapshot, analyzer: Analyzer, soft_floor: float = 0.45,
                 soft_full: float = 0.8) -> None:
        self.snapshot = snapshot
        self.analyzer = analyzer
        self.soft_floor, self.soft_full = soft_floor, soft_full
        documents = [snapshot.documents[doc_id] for doc_id in snapshot.doc_ids]
        self.doc_row = {doc_id: row for row, doc_id in enumerate(snapshot.doc_ids)}
        sentence_docs = np.asarray(snapshot.sentences[:, 0]) if len(snapshot.sentences) else np.zeros(0, np.int64)
        self.doc_first_sentence = np.searchsorted(sentence_docs, np.arange(len(documents) + 1))
        self.chunk_doc = np.array([self.doc_row[c.doc_id] for c in snapshot.chunks], dtype=np.int64)
        self.doc_day = np.array([_day(d.published) for d in documents], dtype=np.float64)
        counts = np.diff(self.doc_first_sentence)
        self.doc_quiz = np.array([d.text.count("?") for d in documents]) / np.maximum(counts, 1)
        self._title_stems = [frozenset(analyzer.terms(d.title)) for d in documents]
        self._folded_titles = [fold_accents(d.title.lower()).replace("’", "'") for d in documents]
        self._terms: dict[int, SentenceTerms] = {}

    def candidates(self, hits: list[Hit]) -> list[Candidate]:
        """Every sentence of the retrieved chunks once, with its text and spans."""
        seen: set[int] = set()
        found = []
        for rank, hit in enumerate(hits):
            for row in hit.chunk.sentence_range:
                if row in seen:
                    continue
                seen.add(row)
                doc_row, start, end, paragraph = (int(x) for x in self.snapshot.sentences[row])
                doc_id = self.snapshot.doc_ids[doc_row]
                text = self.snapshot.documents[doc_id].text[start:end]
                found.append(Candidate(row, doc_row, doc_id, start, end, paragraph, hit, rank, text,
                                       list(self.sentence_terms(row, text).spans)))
        return found

    def features(self, question: Question, question_vector: np.ndarray, terms: QuestionTerms,
                 candidates: list[Candidate]) -> np.ndarray:
        """One row of FEATURES per candidate."""
        n = len(candidates)
        out = np.zeros((n, len(FEATURES)), dtype=np.float64)
        if n == 0:
            return out
        column = {name: i for i, name in enumerate(FEATURES)}
        rows = np.array([c.row for c in candidates])
        dense = np.asarray(self.snapshot.sentence_vectors[rows]) @ question_vector
        hit_rows = np.array([c.hit.row for c in candidates])
        chunk_dense = self.snapshot.vectors.reconstruct(hit_rows) @ question_vector
        bm25 = np.array([c.hit.bm25_score or 0.0 for c in candidates])
        exact, soft = self._coverage(candidates, terms)
        context = self._context_coverage(candidates, terms, exact)
        doc_coverage = self._document_coverage(candidates, terms)
        out[:, column["dense_sentence"]] = dense
        out[:, column["dense_sentence_gap"]] = dense - dense.max()
        out[:, column["dense_rank"]] = 1.0 / (1.0 + _ranks(dense))
        out[:, column["dense_chunk"]] = chunk_dense
        out[:, column["chunk_rank"]] = 1.0 / (1.0 + np.array([c.hit_rank for c in candidates]))
        doc_rank = {doc: rank for rank, doc in enumerate(dict.fromkeys(c.doc_row for c in candidates))}
        out[:, column["doc_rank"]] = [1.0 / (1.0 + doc_rank[c.doc_row]) for c in candidates]
        out[:, column["bm25_chunk"]] = bm25 / bm25.max() if bm25.max() > 0 else 0.0
        out[:, column["coverage"]] = soft
        out[:, column["coverage_gap"]] = soft - soft.max()
        out[:, column["coverage_rank"]] = 1.0 / (1.0 + _ranks(soft))
        out[:, column["coverage_exact"]] = exact
        out[:, column["coverage_focus"]] = [terms.share(self.sentence_terms(c.row, c.text).stems, question.focus)
                                            for c in candidates]
        out[:, column["coverage_context"]] = context
        out[:, column["context_gap"]] = context - context.max()
        out[:, column["coverage_doc"]] = doc_coverage
        out[:, column["coverage_title"]] = self._title_coverage(candidates, terms)
        best_context: dict[int, float] = defaultdict(float)
        for candidate, value in zip(candidates, context, strict=True):
            best_context[candidate.doc_row] = max(best_context[candidate.doc_row], value)
        out[:, column["doc_best_context"]] = [best_context[c.doc_row] for c in candidates]
        out[:, column["is_question"]] = [float("?" in c.text) for c in candidates]
        out[:, column["new_words"]] = [self._new_words(c, terms) for c in candidates]
        self._answer_spans(question, candidates)
        out[:, column["wanted_span"]] = [_wanted(question, c) for c in candidates]
        out[:, column["type_fit"]] = [max((type_fit(s, question.kind) for s in c.answer_spans), default=0.0)
                                      for c in candidates]
        out[:, column["span_near"]] = [self._span_near(c, terms) for c in candidates]
        out[:, column["span_in_title"]] = [self._span_in_title(c) for c in candidates]
        out[:, column["partial_name"]] = _partial_names(candidates)
        votes = span_support(candidates, context)
        out[:, column["span_votes"]] = [max((votes.get(s.key, 0.0) for s in c.answer_spans), default=0.0)
                                        for c in candidates]
        out[:, column["kind_known"]] = float(question.kind is not None)
        index_in_doc = rows - self.doc_first_sentence[[c.doc_row for c in candidates]]
        out[:, column["position"]] = 1.0 / (1.0 + index_in_doc)
        out[:, column["lead"]] = (index_in_doc < 3).astype(float)
        out[:, column["length"]] = [math.log1p(len(c.text.split())) for c in candidates]
        out[:, column["doc_quiz"]] = self.doc_quiz[[c.doc_row for c in candidates]]
        recency, known = self._recency(candidates)
        out[:, column["doc_recency"]] = recency
        out[:, column["recent_x_recency"]] = recency * float(question.recent)
        out[:, column["date_known"]] = known
        return out

    def _coverage(self, candidates: list[Candidate], terms: QuestionTerms) -> tuple[np.ndarray, np.ndarray]:
        """IDF-weighted share of the question's words each sentence holds: exactly (stems), and with soft
        credit for close words (embedding similarity of single words, precomputed for the vocabulary)."""
        n, total = len(candidates), float(terms.weights.sum())
        if not terms.words or total <= 0:
            return np.zeros(n), np.zeros(n)
        sentence_terms = [self.sentence_terms(c.row, c.text) for c in candidates]
        hits = np.array([[stem in t.stems for stem in terms.stems] for t in sentence_terms], dtype=bool)
        credit = hits.astype(np.float64)
        lengths = np.array([len(t.word_rows) for t in sentence_terms])
        if lengths.sum() and not hits.all():
            unique, inverse = np.unique(np.concatenate([t.word_rows for t in sentence_terms]), return_inverse=True)
            similarity = (self.snapshot.vocabulary_vectors[unique] @ terms.vectors.T)[inverse]
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
            nonempty = lengths > 0
            best = np.zeros((n, len(terms.words)))
            best[nonempty] = np.maximum.reduceat(similarity, starts[nonempty], axis=0)
            soft = np.clip((best - self.soft_floor) / (self.soft_full - self.soft_floor), 0.0, 1.0) * 0.8
            credit = np.where(hits, 1.0, soft)
        for candidate, row in zip(candidates, hits, strict=True):
            candidate.covered = frozenset(w for w, hit in zip(terms.words, row, strict=True) if hit)
        return hits @ terms.weights / total, credit @ terms.weights / total

    def _context_coverage(self, candidates: list[Candidate], terms: QuestionTerms, exact: np.ndarray) -> np.ndarray:
        """Exact coverage of the sentence with the sentences either side of it in the same article."""
        total = float(terms.weights.sum())
        if not terms.words or total <= 0:
            return exact
        values = np.zeros(len(candidates))
        for i, candidate in enumerate(candidates):
            stems = set(self.sentence_terms(candidate.row, candidate.text).stems)
            for row in (candidate.row - 1, candidate.row + 1):
                if self._same_document(row, candidate.doc_row):
                    stems |= self.sentence_terms(row).stems
            values[i] = sum(w for stem, w in zip(terms.stems, terms.weights, strict=True) if stem in stems) / total
        return values

    def _same_document(self, row: int, doc_row: int) -> bool:
        return self.doc_first_sentence[doc_row] <= row < self.doc_first_sentence[doc_row + 1]

    def _document_coverage(self, candidates: list[Candidate], terms: QuestionTerms) -> np.ndarray:
        """IDF-weighted share of the question's words found anywhere in each candidate's article."""
        total = float(terms.weights.sum())
        if not terms.words or total <= 0:
            return np.zeros(len(candidates))
        docs = sorted({c.doc_row for c in candidates})
        position = {doc: i for i, doc in enumerate(docs)}
        held = np.zeros((len(docs), len(terms.stems)))
        for t, stem in enumerate(terms.stems):
            doc_rows = np.unique(self.chunk_doc[self.snapshot.lexical.chunks_with(stem)])
            for doc in doc_rows[np.isin(doc_rows, docs)]:
                held[position[int(doc)], t] = 1.0
        per_doc = held @ terms.weights / total
        return np.array([per_doc[position[c.doc_row]] for c in candidates])

    def _title_coverage(self, candidates: list[Candidate], terms: QuestionTerms) -> np.ndarray:
        total = float(terms.weights.sum())
        if not terms.words or total <= 0:
            return np.zeros(len(candidates))
        per_doc = {c.doc_row: sum(w for stem, w in zip(terms.stems, terms.weights, strict=True)
                                  if stem in self._title_stems[c.doc_row]) / total for c in candidates}
        return np.array([per_doc[c.doc_row] for c in candidates])

    def _span_near(self, candidate: Candidate, terms: QuestionTerms) -> float:
        """The largest IDF-weighted share of the question's terms within SPAN_WINDOW terms of an answer span
        (the words around the answer are the question's own: "… *90 seconds* to midnight")."""
        sentence = self.sentence_terms(candidate.row, candidate.text)
        return max((terms.share(_window(sentence, span, SPAN_WINDOW)) for span in candidate.answer_spans),
                   default=0.0)

    def span_features(self, question: Question, terms: QuestionTerms, candidate: Candidate,
                      support: dict[str, float], mentions: Mapping[str, int]) -> np.ndarray:
        """One row of SPAN_FEATURES per answer span of a candidate sentence: how much of the probability mass
        agrees with it, its sentence's logit, its fit to the wanted kind, the question's words and wh-phrase
        words around it, whether the article's title names it, how often the candidates mention it, and its
        form and place in the sentence."""
        sentence = self.sentence_terms(candidate.row, candidate.text)
        type_stems = {self.analyzer.stem(w) for w in question.type_words}
        title = self._folded_titles[candidate.doc_row]
        probability = min(max(candidate.probability, 1e-6), 1 - 1e-6)
        rows = []
        for span in candidate.answer_spans:
            rows.append([
                support.get(span.key, 0.0), math.log(probability / (1 - probability)), type_fit(span, question.kind),
                terms.share(_window(sentence, span, SPAN_WINDOW)),
                float(bool(type_stems.intersection(_window(sentence, span, TYPE_WORD_WINDOW)))),
                float(span.key in title),
                math.log1p(mentions.get(span.key, 0)), math.log1p(len(span.text.split())),
                float(span.kind == "name"), float(span.kind == "number"), float(span.kind == "date"),
                span.start / max(len(candidate.text), 1),
            ])
        return np.array(rows, dtype=np.float64).reshape(-1, len(SPAN_FEATURES))

    def _span_in_title(self, candidate: Candidate) -> float:
        """1 when an answer span of the sentence is also in its article's title (headlines name the news)."""
        title = self._folded_titles[candidate.doc_row]
        return float(any(span.key in title for span in candidate.answer_spans))

    def _new_words(self, candidate: Candidate, terms: QuestionTerms) -> float:
        """Share of the sentence's content stems that the question does not have."""
        stems = self.sentence_terms(candidate.row, candidate.text).stems
        if not stems:
            return 0.0
        return len(stems - set(terms.stems)) / len(stems)

    def _answer_spans(self, question: Question, candidates: list[Candidate]) -> None:
        """Each candidate's spans of the wanted kind that add a word or number the question lacks."""
        wanted = _span_kind(question.kind)
        for candidate in candidates:
            candidate.answer_spans = [s for s in candidate.spans
                                      if (wanted is None or s.kind == wanted) and is_new(s, question)]

    def _recency(self, candidates: list[Candidate]) -> tuple[np.ndarray, np.ndarray]:
        """How close each article's date is to the newest article among the candidates (1 = newest, halving
        every week behind), and whether the date is known."""
        days = self.doc_day[[c.doc_row for c in candidates]]
        known = ~np.isnan(days)
        if not known.any():
            return np.zeros(len(candidates)), known.astype(float)
        behind = np.nanmax(days) - np.where(known, days, np.nan)
        recency = np.where(known, np.exp2(-np.nan_to_num(behind) / _DAY_NEWS_HALF_LIFE), 0.0)
        return recency, known.astype(float)

    def sentence_terms(self, row: int, text: str | None = None) -> SentenceTerms:
        """A sentence's terms and spans as the snapshot stores them, decoded once per row."""
        cached = self._terms.get(row)
        if cached is None:
            if len(self._terms) >= TERMS_CACHE_LIMIT:
                self._terms.clear()
            if text is None:
                text = self.snapshot.sentence_text(row)
            stored = self.snapshot.sentence_terms(row)
            vocabulary = self.snapshot.vocabulary
            word_rows = np.array([vocabulary[w] for w in stored.words if w in vocabulary], dtype=np.int64)
            cached = self._terms[row] = SentenceTerms(frozenset(stored.stems), word_rows, stored.offsets,
                                                      stored.stems, tuple(self.snapshot.sentence_spans(row, text)))
        return cached


def is_new(span: Span, question: Question) -> bool:
    """Whether a span says something the question does not: a word or a number it lacks."""
    if span.words:
        return any(w not in question.words for w in span.words)
    digits = "".join(ch for ch in span.text if ch.isdigit())
    return bool(digits) and digits not in "".join(ch for ch in question.text if ch.isdigit())


def type_fit(span: Span, kind: str | None) -> float:
    """How well a span fits the wanted kind, from its form alone (no tagger ships offline)."""
    if kind is None:
        return 0.5
    if kind == "quantity":
        return 0.3 if span.kind == "date" or _is_year(span.text) else 1.0
    if kind == "date":
        return 1.0 if span.kind == "date" else 0.0
    key = span.key
    is_place = key in PLACES or key.split(" ")[-1] in PLACES
    tokens = len(key.split())
    if kind == "place":
        return 1.0 if is_place else 0.3
    if kind == "person":
        return 0.0 if is_place else (1.0 if 2 <= tokens <= 4 else 0.5)
    if kind == "organisation":
        return 0.2 if is_place else 0.8
    return 1.0


def _window(terms: SentenceTerms, span: Span, width: int) -> list[str]:
    """The stems within `width` terms either side of a span (the span's own terms included)."""
    before = bisect_left(terms.offsets, span.start)
    after = bisect_left(terms.offsets, span.end)
    return list(terms.positioned_stems[max(0, before - width) : after + width])


def _ranks(values: np.ndarray) -> np.ndarray:
    """0 for the largest value, 1 for the next, … (ties share the better rank)."""
    ordered = np.sort(values)[::-1]
    return np.searchsorted(-ordered, -values, side="left").astype(float)


def _partial_names(candidates: list[Candidate]) -> list[float]:
    """1 for a sentence whose answer spans are all part of a longer span elsewhere ("Bills" when another
    sentence says "Buffalo Bills"): the fuller sentence names the answer better."""
    keys = {s.key for c in candidates for s in c.answer_spans}
    holding: dict[str, set[str]] = defaultdict(set)  # word -> the keys that hold it
    for key in keys:
        for word in key.split():
            holding[word].add(key)
    partial = set()
    for key in keys:
        words = key.split()
        if words and len(set.intersection(*(holding[w] for w in words))) > 1:
            partial.add(key)
    return [float(bool(c.answer_spans) and all(s.key in partial for s in c.answer_spans)) for c in candidates]


def _wanted(question: Question, candidate: Candidate) -> float:
    if question.kind is None:
        return 0.5
    return 1.0 if candidate.answer_spans else 0.0


def _span_kind(kind: str | None) -> str | None:
    if kind in NAME_KINDS:
        return "name"
    return {"quantity": "number", "date": "date"}.get(kind or "")


def span_support(candidates: list[Candidate], weights: Sequence[float]) -> dict[str, float]:
    """Each answer span's share of support among the candidates: per article, the best weight of a sentence
    holding it, summed over articles, over that sum for all spans (agreeing articles vote, copies do not)."""
    best: dict[tuple[str, int], float] = {}
    for candidate, weight in zip(candidates, weights, strict=True):
        for span in candidate.answer_spans:
            key = (span.key, candidate.doc_row)
            best[key] = max(best.get(key, 0.0), float(weight))
    support: dict[str, float] = defaultdict(float)
    for (key, _), weight in best.items():
        support[key] += weight
    total = sum(support.values())
    return {key: value / total for key, value in support.items()} if total > 0 else {}


def _is_year(text: str) -> bool:
    return len(text) == 4 and text.isdigit() and text[:2] in ("19", "20")


def _day(published: str) -> float:
    """Days since 1 January 1 of an article's date ("2023/01/05", "2023-01-05T10:00Z"), or NaN."""
    try:
        return float(date.fromisoformat(published[:10].replace("/", "-")).toordinal())
    except ValueError:
        return math.nan
