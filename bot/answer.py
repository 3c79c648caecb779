"""Extractive answers: find the corpus sentences that answer a question, footnote them, or abstain.

No reader model ships offline, so an answer is made of the articles' own sentences:
1. retrieval (dense + BM25 over chunks) brings the sentences of the best chunks (`SentenceFinder`);
2. each sentence gets the signals of `bot.features` and a learned probability that it holds the answer;
   a sentence that is itself a question, or adds nothing the question lacks, never answers;
3. the best sentence, with its article's next most likely ones (one passage of one article), is the answer,
   led by the exact span that answers (a name, number or date) when a third model is sure of it;
4. a second model turns the answer's signals into `confidence`, the calibrated probability that it is right;
   below the threshold chosen on tuning data Footnote abstains and lists the closest passages.
The models and thresholds are one JSON file (`bot/scorer.py`, trained by `eval/train_scorer.py`).
"""

from __future__ import annotations

import functools
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

import numpy as np

from bot.features import FEATURES, SPAN_FEATURES, Candidate, FeatureExtractor, QuestionTerms, span_support
from bot.question import Question, Turn, analyse
from bot.scorer import AnswerModel, LinearModel, load_model
from bot.support import WordVectors
from index.documents import normalise_text
from index.embedding import Embedder
from index.lexical import Analyzer
from index.search import HybridRetriever, SearchConfig
from index.spans import Span
from index.store import Snapshot

ABSTAIN_TEXT = "No sure answer in the indexed articles; the closest passages may help."
"""Said below the confidence threshold. Not "the articles don't say": the closest passages shown often hold the
answer (`eval`'s "declined, answer nearby"), and no confidence threshold makes that claim right 85 % of the time
(on news_2023h1's tune weeks the best is 10 unanswerable of the 12 questions below 0.056: 0.70 by the Wilson
lower bound that sets the answers' threshold)."""
CONFIDENCE_FEATURES = (
    "top_logit", "margin_logit", "runner_up_logit", "agreement", "document_share", "shown_any", "entropy",
    "top_coverage_doc", "top_coverage_context", "top_dense", "top_wanted", "top_type_fit", "top_span_near",
    "top_doc_best_context", "best_dense", "best_coverage_doc", "kind_known", "sentences", "articles",
)
_CLAUSE_BREAK = re.compile(r"(?<=[,;:—–])\s+|\s+(?=[—–]\s)")
_ANAPHORA = re.compile(r"^[“\"']?(?:\S+[”\"']?\s+){0,6}?(he|she|they|it|his|her|their)\b"
                       r"|^[“\"']?(this|these|that|those|the result|as a result|however|but|also)\b", re.I)
"""A sentence that leans on the one before it: a personal pronoun in its first words, or a demonstrative or
connective as its first word ("explained that …" is a complement, not a reference back)."""

__all__ = ["ABSTAIN_TEXT", "Answer", "AnswerConfig", "Answerer", "Citation", "QuestionRejected", "ShortAnswer",
           "Turn", "clean_question"]


@dataclass(frozen=True)
class AnswerConfig:
    max_chars: int = 400
    max_sentences: int = 3
    abstain_threshold: float | None = None  # None: the model's calibrated threshold
    companion_ratio: float = 0.3
    soft_match_floor: float = 0.45
    soft_match_full: float = 0.8
    suggestions: int = 3
    max_question_chars: int = 500
    evidence: int = 8


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
    published: str = ""

    def label(self) -> str:
        """`[n] Title — 2023-01-05 — paragraph k` (the date when the article has one)."""
        dated = f" — {self.published[:10]}" if self.published else ""
        return f"[{self.n}] {self.title}{dated} — paragraph {self.paragraph}"


@dataclass
class ShortAnswer:
    """The exact words that answer (a name, number or date) inside the quote of citation `n`."""

    text: str
    start: int
    end: int
    n: int


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
    short_answer: ShortAnswer | None = None
    evidence: list[Citation] = field(default_factory=list, repr=False)

    def to_json(self, qid: str | None = None) -> dict:
        data = {"qid": qid, "question": self.question, "answer": self.answer, "abstained": self.abstained,
                "short_answer": asdict(self.short_answer) if self.short_answer else None,
                "citations": [asdict(c) for c in self.citations],
                "suggestions": [asdict(c) for c in self.suggestions],
                "timings_ms": self.timings_ms, "mode": self.mode, "confidence": round(self.confidence, 4),
                "removed": self.removed}
        if self.refusal:
            data["refusal"] = self.refusal
        return data


_CALENDAR_NAMES = (
    re.compile(r"\b(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b"),
    re.compile(r"\b(January|February|March|April|(?<=\s)May|June|July|August|September|October|November|December)\b"),
)
"""Weekday and month names; "May" only after a space, since at the start of a sentence it is the modal verb."""


def dates_conflict(question: str, sentences: list[str]) -> bool:
    """Whether the question names a weekday (or month) and the answer's sentences name only other ones."""
    shown = " ".join(sentences)
    for names in _CALENDAR_NAMES:
        asked, told = set(names.findall(question)), set(names.findall(shown))
        if asked and told and not asked & told:
            return True
    return False


class QuestionRejected(ValueError):
    """A question that cannot be answered as asked; the message is shown to the user."""


def readable(raw: str) -> str:
    """Text as the tokenizer can read it: lone surrogates become "?", then normalised (`normalise_text`)."""
    return normalise_text(raw.encode("utf-8", "replace").decode("utf-8") if raw else "").replace("\n\n", " ")


def clean_question(raw: str, max_chars: int) -> str:
    """Normalise a question, or raise QuestionRejected with a clear reason."""
    question = readable(raw)
    if not question:
        raise QuestionRejected("Please ask a question about the articles.")
    if len(question) > max_chars:
        raise QuestionRejected(f"Questions are limited to {max_chars} characters (this one has {len(question)}).")
    if not any(ch.isalnum() for ch in question):
        raise QuestionRejected("That doesn't look like a question: please ask in words.")
    return question


@dataclass
class Draft:
    """What an answer would show before the abstention decision: candidate indices best first, the
    eligible ones, the chosen ones (best first), the confidence signals and the confidence."""

    ranked: list[int]
    eligible: list[int]
    chosen: list[int]
    signals: np.ndarray | None
    confidence: float


@dataclass
class Examined:
    """A question with its candidate sentences and their features (what the models read)."""

    text: str
    question: Question
    candidates: list[Candidate]
    features: np.ndarray
    timings_ms: dict[str, float]
    terms: QuestionTerms


class SentenceFinder:
    """Retrieval and candidate features for one snapshot; the embedder is shared and loaded once."""

    def __init__(self, snapshot: Snapshot, embedder: Embedder, search: SearchConfig | None = None,
                 config: AnswerConfig | None = None) -> None:
        self.snapshot = snapshot
        self.embedder = embedder
        self.config = config or AnswerConfig()
        self.analyzer = Analyzer()
        self.retriever = HybridRetriever(snapshot, search or SearchConfig(), self.analyzer)
        self.extractor = FeatureExtractor(snapshot, self.analyzer, self.config.soft_match_floor,
                                          self.config.soft_match_full)

    def examine_many(self, questions: list[tuple[str, list[Turn]]]) -> list[Examined]:
        """Candidates and features for clean questions, with one embedding call for all of them."""
        return list(self.iter_examined(questions))

    def iter_examined(self, questions: list[tuple[str, list[Turn]]]) -> Iterator[Examined]:
        """`examine_many`, yielding each question's examination as soon as it is ready."""
        if not questions:
            return
        started = time.perf_counter()
        analysed = [analyse(q, h) for q, h in questions]
        unknown = sorted({w for q in analysed for w in q.words if w not in self.snapshot.vocabulary})
        vectors = self.embedder.encode([q.text for q in analysed])
        unknown_vectors = dict(zip(unknown, self.embedder.word_vectors(unknown), strict=True))
        embed_ms = (time.perf_counter() - started) * 1000 / len(analysed)
        for (text, _), question, vector in zip(questions, analysed, vectors, strict=True):
            yield self._examine(text, question, vector, unknown_vectors, embed_ms)

    def _examine(self, text: str, question: Question, vector: np.ndarray, unknown: dict[str, np.ndarray],
                 embed_ms: float) -> Examined:
        t0 = time.perf_counter()
        hits = self.retriever.search(question.text, vector)
        t1 = time.perf_counter()
        candidates = self.extractor.candidates(hits)
        terms = self._terms(question, unknown)
        features = self.extractor.features(question, vector, terms, candidates)
        timings = {"embed": embed_ms, "search": (t1 - t0) * 1000, "features": (time.perf_counter() - t1) * 1000}
        return Examined(text, question, candidates, features, timings, terms)

    def _terms(self, question: Question, unknown: dict[str, np.ndarray]) -> QuestionTerms:
        """The question's words with their stems, IDF weights and embeddings."""
        vocabulary = self.snapshot.vocabulary
        words = list(question.words)
        stems = [self.analyzer.stem(w) for w in words]
        weights = np.array([self.snapshot.lexical.idf(stem) * question.words[w]
                            for w, stem in zip(words, stems, strict=True)])
        vectors = np.zeros((len(words), self.embedder.dimension), dtype=np.float32)
        for row, word in enumerate(words):
            vectors[row] = unknown[word] if word in unknown else self.snapshot.vocabulary_vectors[vocabulary[word]]
        return QuestionTerms(words, stems, weights, vectors)

    def ranked_documents(self, question: str) -> list[str]:
        """Document ids in retrieval order, best first (for retrieval metrics)."""
        query = analyse(question)
        hits = self.retriever.search(query.text, self.embedder.encode([query.text])[0],
                                     k=self.retriever.config.candidates)
        return list(dict.fromkeys(hit.chunk.doc_id for hit in hits))


class Answerer:
    """Answers questions from one snapshot with the learned answer model."""

    def __init__(self, finder: SentenceFinder, model: AnswerModel | None = None) -> None:
        self.finder = finder
        self.config = finder.config
        self.model = model or load_model(FEATURES, CONFIDENCE_FEATURES, SPAN_FEATURES)

    @property
    def snapshot(self) -> Snapshot:
        return self.finder.snapshot

    @property
    def embedder(self) -> Embedder:
        return self.finder.embedder

    @functools.cached_property
    def word_vectors(self) -> WordVectors:
        """Single-word vectors for checking generated sentences: the snapshot's vocabulary, else the model's
        token table."""
        snapshot = self.snapshot
        return WordVectors(snapshot.vocabulary, snapshot.vocabulary_vectors, self.embedder.word_vectors)

    @property
    def threshold(self) -> float:
        """The confidence below which the answerer abstains (configured, else the model's calibrated one)."""
        configured = self.config.abstain_threshold
        return self.model.abstain_below if configured is None else configured

    def ask(self, question: str, history: list[Turn] | None = None, threshold: float | None = None) -> Answer:
        """Answer one question (optionally a follow-up of `history`); `threshold` overrides the abstention
        threshold (0 answers whenever any sentence may answer, as `eval` does)."""
        return self.ask_many([(question, history or [])], threshold)[0]

    def ask_many(self, questions: list[tuple[str, list[Turn]]], threshold: float | None = None,
                 on_answer: Callable[[int, Answer], None] | None = None) -> list[Answer]:
        """Answer several questions with one embedding call (the service's micro-batches); `on_answer(i,
        answer)` hears of each answer as soon as it is composed, so no asker waits for the whole batch."""
        answers: list[Answer | None] = [None] * len(questions)
        valid = []
        for position, (question, history) in enumerate(questions):
            try:
                turns = [Turn(readable(turn.question), turn.answer) for turn in history]
                valid.append((position, clean_question(question, self.config.max_question_chars), turns))
            except QuestionRejected as exc:
                answers[position] = Answer(question, str(exc), True, [], refusal=str(exc))
                if on_answer:
                    on_answer(position, answers[position])
        examined = self.finder.iter_examined([(q, h) for _, q, h in valid])
        for (position, _, _), item in zip(valid, examined, strict=True):
            answers[position] = self.answer(item, threshold)
            if on_answer:
                on_answer(position, answers[position])
        return [a for a in answers if a is not None]

    def ranked_documents(self, question: str) -> list[str]:
        return self.finder.ranked_documents(question)

    def answer(self, examined: Examined, threshold: float | None = None) -> Answer:
        """Score an examined question's candidates, compose the answer and decide whether to show it."""
        started = time.perf_counter()
        draft = self.draft(examined)
        if not draft.chosen or draft.confidence < (self.threshold if threshold is None else threshold):
            answer = self._abstain(examined, draft)
        else:
            answer = self._compose(examined, draft)
        candidates = examined.candidates
        answer.evidence = [self._citation(n, candidates[i], candidates[i].start, candidates[i].end)
                           for n, i in enumerate(draft.ranked[: self.config.evidence], start=1)]
        timings = examined.timings_ms
        compose_ms = timings["features"] + (time.perf_counter() - started) * 1000
        answer.timings_ms = {"embed": round(timings["embed"], 2), "search": round(timings["search"], 2),
                             "compose": round(compose_ms, 2),
                             "total": round(timings["embed"] + timings["search"] + compose_ms, 2)}
        return answer

    def draft(self, examined: Examined) -> Draft:
        """The candidates' probabilities, the sentences an answer would show and its confidence."""
        candidates = examined.candidates
        if candidates:
            probabilities = self.model.sentence.probability(examined.features)
            for candidate, probability in zip(candidates, probabilities, strict=True):
                candidate.probability = float(probability)
        ranked = sorted(range(len(candidates)), key=lambda i: -candidates[i].probability)
        eligible = [i for i in ranked if is_eligible(candidates[i], examined.features[i])]
        if not eligible:
            return Draft(ranked, eligible, [], None, 0.0)
        chosen = self._choose(examined, eligible)
        signals = confidence_features(examined, chosen, eligible)
        confidence = float(self.model.confidence.probability(signals[None, :])[0])
        if dates_conflict(examined.question.text, [candidates[i].text for i in chosen]):
            confidence = 0.0  # "on Wednesday?" answered by what happened on Monday is not an answer
        return Draft(ranked, eligible, chosen, signals, confidence)

    def _compose(self, examined: Examined, draft: Draft) -> Answer:
        candidates, chosen = examined.candidates, draft.chosen
        short = self.best_span(examined, chosen)
        citations, parts, short_answer = [], [], None
        budget = self.config.max_chars
        for n, i in enumerate(_reading_order(candidates, chosen), start=1):
            candidate = candidates[i]
            keep = short[1] if short and short[0] == i else None
            start, end = self._fit(candidate, examined.question, budget - len(f" [{n}]") - 1, keep)
            if keep and start <= candidate.start + keep.start and candidate.start + keep.end <= end:
                short_answer = ShortAnswer(keep.text, candidate.start + keep.start, candidate.start + keep.end, n)
            prefix = "…" if start > candidate.start else ""
            suffix = "…" if end < candidate.end else ""
            quote = self.snapshot.documents[candidate.doc_id].text[start:end]
            parts.append(f"{prefix}{quote}{suffix} [{n}]")
            budget -= len(parts[-1]) + 1
            citations.append(self._citation(n, candidate, start, end))
        return Answer(examined.text, " ".join(parts), False, citations, confidence=draft.confidence,
                      short_answer=short_answer)

    def best_span(self, examined: Examined, chosen: list[int]) -> tuple[int, Span] | None:
        """The shown sentence (candidate index) and span that most likely name the answer, when the question
        wants a name, number or date and the span model is sure enough (`short_answer_from`)."""
        scored = scored_spans(self.finder.extractor, self.model.span, examined, chosen)
        if not scored or examined.question.kind is None:
            return None
        probability, index, span = max(scored, key=lambda item: item[0])
        return (index, span) if probability >= self.model.short_answer_from else None

    def _choose(self, examined: Examined, eligible: list[int]) -> list[int]:
        """The best sentence, the sentence before it when it opens on a pronoun, and the article's next best
        sentences while they are likely enough (`companion_ratio` of the best) and the answer stays short:
        one passage of one article, never a mix of articles. A sentence joins the best one only when both fit
        whole, so the best sentence is never cut short for another's sake."""
        candidates = examined.candidates
        best = candidates[eligible[0]]
        chosen = [eligible[0]]
        by_row = {c.row: i for i, c in enumerate(candidates)}
        before = by_row.get(best.row - 1)
        if (before is not None and candidates[before].doc_row == best.doc_row and self.config.max_sentences > 1
                and _ANAPHORA.match(best.text) and self._fits(examined, chosen, before)):
            chosen.append(before)
        for i in eligible[1:]:
            candidate = candidates[i]
            if len(chosen) >= self.config.max_sentences or (
                    candidate.probability < self.config.companion_ratio * best.probability):
                break
            if candidate.doc_row == best.doc_row and i not in chosen and self._fits(examined, chosen, i):
                chosen.append(i)
        return chosen

    def _fits(self, examined: Examined, chosen: list[int], added: int) -> bool:
        """Whether the chosen sentences and one more, each with its footnote, fit in the answer whole."""
        return sum(len(examined.candidates[i].text) + 5 for i in [*chosen, added]) <= self.config.max_chars

    def _fit(self, candidate: Candidate, question: Question, budget: int, keep: Span | None) -> tuple[int, int]:
        """The sentence's span, or, when it is over budget, its run of clauses that holds the short answer
        (`keep`) and most question words, the longest of equals."""
        if candidate.end - candidate.start <= budget:
            return candidate.start, candidate.end
        text = candidate.text
        cuts = [0, *(m.end() for m in _CLAUSE_BREAK.finditer(text)), len(text)]
        best, best_score = (0, len(text[:budget].rsplit(" ", 1)[0])), (-1.0, 0)
        stems_wanted = {self.finder.analyzer.stem(w) for w in question.words}
        for i in range(len(cuts) - 1):
            for j in range(i + 1, len(cuts)):
                piece = text[cuts[i] : cuts[j]].rstrip(" ,;:—–")
                if len(piece) + 2 > budget:
                    break
                kept = keep is not None and cuts[i] <= keep.start and keep.end <= cuts[i] + len(piece)
                score = (len(stems_wanted & set(self.finder.analyzer.terms(piece))) + 3.0 * kept, len(piece))
                if score > best_score:
                    best, best_score = (cuts[i], cuts[i] + len(piece)), score
        return candidate.start + best[0], candidate.start + best[1]

    def _citation(self, n: int, candidate: Candidate, start: int, end: int) -> Citation:
        document = self.snapshot.documents[candidate.doc_id]
        return Citation(n=n, doc_id=document.doc_id, title=document.title, url=document.url,
                        quote=document.text[start:end], start=start, end=end,
                        chunk_id=candidate.hit.chunk.chunk_id, score=round(candidate.probability, 4),
                        paragraph=candidate.paragraph + 1, published=document.published)

    def _abstain(self, examined: Examined, draft: Draft) -> Answer:
        candidates = examined.candidates
        suggestions = [self._citation(n, candidates[i], candidates[i].start, candidates[i].end)
                       for n, i in enumerate(draft.ranked[: self.config.suggestions], start=1)]
        return Answer(examined.text, ABSTAIN_TEXT, True, [], suggestions, confidence=draft.confidence)


def _reading_order(candidates: list[Candidate], chosen: list[int]) -> list[int]:
    """The chosen sentences best first, except that the sentence just before the best one precedes it."""
    best = chosen[0]
    before = next((j for j in chosen[1:] if candidates[j].row == candidates[best].row - 1), None)
    return list(chosen) if before is None else [before, best, *(j for j in chosen[1:] if j != before)]


def is_eligible(candidate: Candidate, features: np.ndarray) -> bool:
    """A sentence may answer unless it is a question or adds no word, name or number the question lacks."""
    new_words = features[FEATURES.index("new_words")]
    return "?" not in candidate.text and (new_words > 0 or bool(candidate.answer_spans))


def span_rows(extractor: FeatureExtractor, examined: Examined,
              chosen: list[int]) -> tuple[np.ndarray, list[tuple[int, Span]]]:
    """SPAN_FEATURES rows of every answer span of the chosen sentences, with each one's (candidate, span)."""
    support = span_support(examined.candidates, [c.probability for c in examined.candidates])
    mentions = Counter(span.key for candidate in examined.candidates for span in candidate.answer_spans)
    rows, spans = [np.zeros((0, len(SPAN_FEATURES)))], []
    for index in chosen:
        candidate = examined.candidates[index]
        rows.append(extractor.span_features(examined.question, examined.terms, candidate, support, mentions))
        spans += [(index, span) for span in candidate.answer_spans]
    return np.vstack(rows), spans


def scored_spans(extractor: FeatureExtractor, model: LinearModel, examined: Examined,
                 chosen: list[int]) -> list[tuple[float, int, Span]]:
    """(probability, candidate index, span) for every answer span of the chosen sentences."""
    rows, spans = span_rows(extractor, examined, chosen)
    if not spans:
        return []
    return [(float(p), index, span) for p, (index, span) in zip(model.probability(rows), spans, strict=True)]


def confidence_features(examined: Examined, chosen: list[int], eligible: list[int]) -> np.ndarray:
    """Signals of how likely the composed answer is right: the best sentence's logit, its margin over the best
    sentence naming another answer, the runner-up, how much of the probability mass agrees with its answer
    span and sits in its article, the chance that a shown sentence answers, how spread the probabilities are,
    the best sentence's own signals, how on-topic the retrieved articles are at all, and how many there are."""
    candidates, column = examined.candidates, {name: i for i, name in enumerate(FEATURES)}
    top = candidates[chosen[0]]
    features = examined.features[chosen[0]]
    probabilities = np.array([c.probability for c in candidates])
    support = span_support(examined.candidates, [c.probability for c in examined.candidates])
    top_keys = {s.key for s in top.answer_spans}
    rival = next((candidates[i].probability for i in eligible[1:]
                  if not top_keys & {s.key for s in candidates[i].answer_spans}), 1e-6)
    runner_up = np.partition(probabilities, -2)[-2] if len(probabilities) > 1 else 1e-6
    agreement = max((support.get(key, 0.0) for key in top_keys), default=0.0)
    document_share = probabilities[[c.doc_row == top.doc_row for c in candidates]].sum() / probabilities.sum()
    shown_any = 1.0 - float(np.prod([1.0 - candidates[i].probability for i in chosen]))
    spread = probabilities / probabilities.sum()
    return np.array([
        _logit(top.probability), _logit(top.probability) - _logit(rival), _logit(float(runner_up)), agreement,
        document_share, _logit(shown_any), -float(np.sum(spread * np.log(spread + 1e-12))),
        features[column["coverage_doc"]], features[column["coverage_context"]], features[column["dense_sentence"]],
        features[column["wanted_span"]], features[column["type_fit"]], features[column["span_near"]],
        features[column["doc_best_context"]], examined.features[:, column["dense_sentence"]].max(),
        examined.features[:, column["coverage_doc"]].max(), features[column["kind_known"]], float(len(chosen)),
        np.log(len({c.doc_row for c in candidates})),
    ])


def _logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return float(np.log(p / (1 - p)))
