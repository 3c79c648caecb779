"""`python -m bot eval`: answer accuracy, cited evidence, verbatim quotes, abstention and retrieval.

Quotes are checked against the corpus files loaded afresh, not against the snapshot that produced them.
"""

from __future__ import annotations

import json
import statistics
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.answer import Answer, Answerer
from index.documents import Document

_QUOTE_STYLES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


@dataclass
class EvalQuestion:
    qid: str
    question: str
    answers: list[str]
    answer_mode: str = "all"
    unanswerable: bool = False
    doc_ids: list[str] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)


@dataclass
class EvalRow:
    qid: str
    correct: bool
    abstained: bool
    unanswerable: bool
    evidence_cited: bool | None
    verbatim: bool
    has_gold: bool
    gold_rank: int | None
    latency_ms: float
    answer: str
    confidence: float = 0.0


@dataclass
class EvalReport:
    questions: int
    answerable: int
    accuracy: float
    correct: int
    evidence_cited: float | None
    citations_verbatim: float
    abstention_precision: float | None
    abstention_recall: float | None
    recall_at_1: float | None
    recall_at_5: float | None
    latency_p50_ms: float
    latency_p95_ms: float
    rows: list[EvalRow]

    def to_json(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        def pct(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.1%}"

        return [
            f"answer accuracy     {self.correct}/{self.answerable} ({pct(self.accuracy)})",
            f"evidence cited      {pct(self.evidence_cited)}",
            f"citations verbatim  {pct(self.citations_verbatim)}",
            f"abstention          precision {pct(self.abstention_precision)}, recall {pct(self.abstention_recall)}",
            f"retrieval           recall@1 {pct(self.recall_at_1)}, recall@5 {pct(self.recall_at_5)}",
            f"latency             p50 {self.latency_p50_ms:.1f} ms, p95 {self.latency_p95_ms:.1f} ms",
        ]


def side_by_side(extractive: list[str], generated: list[str]) -> str:
    """Two reports' lines in columns: metric, extractive value, generated value."""
    rows = [f"{'':20}{'extractive':36}generated"]
    for left, right in zip(extractive, generated, strict=True):
        rows.append(f"{left[:20]}{left[20:]:36}{right[20:]}")
    return "\n".join(rows)


def fold(text: str) -> str:
    """Case-, accent- and quote-style-insensitive form for answer matching."""
    decomposed = unicodedata.normalize("NFKD", text.lower().translate(_QUOTE_STYLES))
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).split())


def read_questions(path: Path) -> list[EvalQuestion]:
    questions = []
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                fields = EvalQuestion.__dataclass_fields__
                questions.append(EvalQuestion(**{k: v for k, v in record.items() if k in fields}))
    return questions


def is_correct(question: EvalQuestion, answer: Answer) -> bool:
    if question.unanswerable:
        return answer.abstained
    if answer.abstained:
        return False
    text = fold(answer.answer)
    found = [fold(expected) in text for expected in question.answers]
    return any(found) if question.answer_mode == "any" else all(found)


def citations_verbatim(answer: Answer, documents: dict[str, Document]) -> bool:
    for citation in [*answer.citations, *answer.suggestions]:
        document = documents.get(citation.doc_id)
        if document is None or document.text[citation.start : citation.end] != citation.quote:
            return False
    return True


def evidence_cited(question: EvalQuestion, answer: Answer) -> bool | None:
    """Whether a citation is the gold evidence: gold document, evidence text, or the answer string."""
    if question.unanswerable or answer.abstained:
        return None
    quotes = [fold(c.quote) for c in answer.citations]
    if question.evidence:
        return any(fold(e) in q or q in fold(e) for e in question.evidence for q in quotes)
    if question.doc_ids:
        return any(c.doc_id in question.doc_ids for c in answer.citations)
    return any(fold(expected) in q for expected in question.answers for q in quotes)


def gold_rank(question: EvalQuestion, ranked_doc_ids: list[str]) -> int | None:
    for rank, doc_id in enumerate(ranked_doc_ids, start=1):
        if doc_id in question.doc_ids:
            return rank
    return None


def evaluate(answerer: Answerer, questions: Iterable[EvalQuestion], documents: dict[str, Document],
             ask: Callable[[str], Answer] | None = None) -> EvalReport:
    """Answer every question and score the answers; `documents` are loaded from the corpus files."""
    ask = ask or answerer.ask
    rows = []
    for question in questions:
        answer = ask(question.question)
        ranked = answerer.ranked_documents(question.question) if question.doc_ids else []
        rows.append(EvalRow(
            qid=question.qid, correct=is_correct(question, answer), abstained=answer.abstained,
            unanswerable=question.unanswerable, evidence_cited=evidence_cited(question, answer),
            verbatim=citations_verbatim(answer, documents), has_gold=bool(question.doc_ids),
            gold_rank=gold_rank(question, ranked),
            latency_ms=answer.timings_ms.get("total", 0.0), answer=answer.answer, confidence=answer.confidence,
        ))
    return summarise(rows)


def summarise(rows: list[EvalRow]) -> EvalReport:
    answerable = [r for r in rows if not r.unanswerable]
    abstained = [r for r in rows if r.abstained]
    unanswerable = [r for r in rows if r.unanswerable]
    cited = [r.evidence_cited for r in answerable if r.evidence_cited is not None]
    with_gold = [r for r in answerable if r.has_gold]
    latencies = sorted(r.latency_ms for r in rows) or [0.0]
    correct = sum(r.correct for r in answerable)
    return EvalReport(
        questions=len(rows), answerable=len(answerable), correct=correct,
        accuracy=correct / len(answerable) if answerable else 0.0,
        evidence_cited=sum(cited) / len(cited) if cited else None,
        citations_verbatim=sum(r.verbatim for r in rows) / len(rows) if rows else 1.0,
        abstention_precision=_ratio(sum(r.unanswerable for r in abstained), len(abstained)),
        abstention_recall=_ratio(sum(r.abstained for r in unanswerable), len(unanswerable)),
        recall_at_1=_ratio(sum(r.gold_rank == 1 for r in with_gold), len(with_gold)),
        recall_at_5=_ratio(sum(r.gold_rank is not None and r.gold_rank <= 5 for r in with_gold), len(with_gold)),
        latency_p50_ms=statistics.median(latencies),
        latency_p95_ms=latencies[int(0.95 * (len(latencies) - 1))],
        rows=rows,
    )


def sweep(rows: list[EvalRow], thresholds: list[float]) -> list[str]:
    """Outcomes at each abstention threshold, from rows answered with no threshold at all."""
    answerable = [r for r in rows if not r.unanswerable]
    unanswerable = [r for r in rows if r.unanswerable]
    lines = ["threshold  answered correctly  abstained when unanswerable  abstained when answerable"]
    for t in thresholds:
        correct = sum(r.correct and r.confidence >= t for r in answerable)
        abstained = sum(r.confidence < t for r in unanswerable)
        wrongly = sum(r.confidence < t for r in answerable)
        lines.append(f"{t:9.2f}  {correct:>8}/{len(answerable):<9}  {abstained:>13}/{len(unanswerable):<13}"
                     f"  {wrongly:>13}")
    return lines


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None
