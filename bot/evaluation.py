"""`python -m bot eval`: how far Footnote's answers can be trusted.

Every question is answered once without abstaining, so one run gives the answers shown at the configured
threshold and the whole risk–coverage curve: accuracy, precision of shown answers, abstention on
unanswerable questions and how often an abstention is one, how often the closest passages shown for a declined
answerable question hold its answer, gold article cited, short-answer accuracy, retrieval recall@1/@5, and the
AUROC of the confidence. Quotes are checked against the corpus files loaded afresh, not against the snapshot that
produced them. A plain baseline (`bot.baseline`) is scored in the same run for reference.
"""

from __future__ import annotations

import json
import re
import statistics
import unicodedata
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.answer import Answer, AnswerConfig
from index.documents import Document

SPLITS_PATH = Path(__file__).resolve().parents[1] / "eval" / "splits.json"
RISK_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
_QUOTE_STYLES = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})
_FOOTNOTE_MARKER = re.compile(r"\[\d+\]")


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
    correct: bool  # the answer would be right if shown (an unanswerable question: never)
    abstained: bool
    unanswerable: bool
    confidence: float
    evidence_cited: bool | None
    gold_cited: bool | None
    verbatim: bool
    has_gold: bool  # the question names its gold articles and the run ranked documents for it
    gold_rank: int | None
    latency_ms: float
    answer: str
    short_answer: str | None = None
    short_correct: bool | None = None
    nearby: bool | None = None  # declined, answerable: the closest passages shown hold the answer


@dataclass
class EvalReport:
    label: str
    questions: int
    answerable: int
    correct: int
    accuracy: float
    answered: int
    precision: float | None
    abstention_recall: float | None
    abstention_precision: float | None
    declined_nearby: float | None
    gold_cited: float | None
    evidence_cited: float | None
    short_given: int
    short_accuracy: float | None
    citations_verbatim: float
    recall_at_1: float | None
    recall_at_5: float | None
    auroc: float | None
    risk_coverage: list[dict]
    reliability: list[dict]
    latency_p50_ms: float
    latency_p95_ms: float
    rows: list[EvalRow]

    def to_json(self) -> dict:
        return asdict(self)

    def lines(self) -> list[str]:
        return [f"{name:22}{value}" for name, value in self.figures()]

    def figures(self) -> list[tuple[str, str]]:
        """(metric, value) pairs, in the order `eval` prints them."""
        return [
            ("accuracy", f"{self.correct}/{self.answerable} ({pct(self.accuracy)})"),
            ("precision when shown", f"{pct(self.precision)} of {self.answered} shown"),
            ("abstained unanswerable", pct(self.abstention_recall)),
            ("abstention precision", pct(self.abstention_precision)),
            ("declined, answer nearby", f"{pct(self.declined_nearby)} of declined answerable"),
            ("gold article cited", f"{pct(self.gold_cited)} of correct answers"),
            ("evidence cited", pct(self.evidence_cited)),
            ("short answers", f"{pct(self.short_accuracy)} right of {self.short_given} given"),
            ("citations verbatim", pct(self.citations_verbatim)),
            ("retrieval", f"recall@1 {pct(self.recall_at_1)}, recall@5 {pct(self.recall_at_5)}"),
            ("confidence AUROC", "n/a" if self.auroc is None else f"{self.auroc:.3f}"),
            ("latency", f"p50 {self.latency_p50_ms:.1f} ms, p95 {self.latency_p95_ms:.1f} ms"),
        ]

    def reliability_lines(self) -> list[str]:
        rows = [(f"{b['low']:.1f}–{b['high']:.1f}", b["questions"], f"{b['mean_confidence']:.2f}", pct(b["right"]))
                for b in self.reliability]
        return table(("confidence", "questions", "mean confidence", "right"), rows)

    def risk_lines(self) -> list[str]:
        rows = [(f"{r['threshold']:.2f}", r["answered"], pct(r["precision"]), pct(r["accuracy"]))
                for r in self.risk_coverage]
        return table(("confidence ≥", "answered", "precision", "accuracy"), rows)


def table(header: tuple[str, ...], rows: list[tuple]) -> list[str]:
    """Right-aligned columns, each as wide as its header."""
    return ["   ".join(header), *("   ".join(f"{value!s:>{len(name)}}" for name, value in zip(header, row, strict=True))
                                 for row in rows)]


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def side_by_side(reports: list[EvalReport]) -> str:
    """Several reports' figures in columns: metric, then one value per report."""
    header = f"{'':24}" + "".join(f"{r.label:34}" for r in reports)
    rows = [header.rstrip()]
    for i, (name, _) in enumerate(reports[0].figures()):
        rows.append((f"{name:24}" + "".join(f"{r.figures()[i][1]:34}" for r in reports)).rstrip())
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


def question_week(qid: str) -> str:
    """The quiz week of a news question id ("20230106_3", "u-20210507_22" → "20230106", "20210507")."""
    return qid.removeprefix("u-").split("_")[0]


def select_split(questions: list[EvalQuestion], dataset: str, split: str | None,
                 splits_path: Path = SPLITS_PATH) -> list[EvalQuestion]:
    """The questions of one fixed split (eval/splits.json) of a dataset; all of them when `split` is None."""
    if split is None or split == "all":
        return questions
    splits = json.loads(splits_path.read_text(encoding="utf-8"))
    if dataset not in splits or split not in splits[dataset]:
        known = ", ".join(f"{name}: {', '.join(k for k in parts if k != 'about')}" for name, parts in splits.items())
        raise ValueError(f"no split {split!r} for {dataset!r} (known: {known})")
    weeks = set(splits[dataset][split])
    return [q for q in questions if question_week(q.qid) in weeks]


def matches(question: EvalQuestion, text: str) -> bool:
    """Whether `text` holds the question's answer strings as whole words (all, or any one for answer_mode "any"):
    "23" is not in "2023", nor "May" in "mayor", and the footnote markers ("[2]") hold no answer."""
    folded = fold(_FOOTNOTE_MARKER.sub(" ", text))
    found = [_holds(folded, fold(expected)) for expected in question.answers]
    return bool(found) and (any(found) if question.answer_mode == "any" else all(found))


def _holds(folded: str, expected: str) -> bool:
    """Whether `expected` is in `folded` as whole words (a number also with an ordinal's ending: "23rd")."""
    ordinal = "(?:st|nd|rd|th)?" if expected.isdigit() else ""
    return bool(expected) and re.search(rf"(?<!\w){re.escape(expected)}{ordinal}(?!\w)", folded) is not None


def is_correct(question: EvalQuestion, answer: Answer) -> bool:
    if question.unanswerable:
        return answer.abstained
    return not answer.abstained and matches(question, answer.answer)


def short_answer_correct(question: EvalQuestion, answer: Answer) -> bool | None:
    """None without a short answer; else whether it names the answer (`names_answer`)."""
    if answer.short_answer is None:
        return None
    return names_answer(question, answer.short_answer.text)


def names_answer(question: EvalQuestion, short: str) -> bool:
    """Whether a short answer names the answer: it holds an answer string as whole words ("2" does not name
    "2023"), or its words all belong to one and cover at least half of it ("Bills" or "Buffalo" for "Buffalo
    Bills", not "Bills player")."""
    if question.unanswerable:
        return False
    words = fold(short).split()
    for expected in map(fold, question.answers):
        expected_words = expected.split()
        if _holds(fold(short), expected) or (words and set(words) <= set(expected_words)
                                             and 2 * len(words) >= len(expected_words)):
            return True
    return False


def citations_verbatim(answer: Answer, documents: dict[str, Document]) -> bool:
    for citation in [*answer.citations, *answer.suggestions]:
        document = documents.get(citation.doc_id)
        if document is None or document.text[citation.start : citation.end] != citation.quote:
            return False
    return True


def evidence_cited(question: EvalQuestion, answer: Answer) -> bool | None:
    """Whether a citation is the gold evidence: evidence text, gold document, or the answer string."""
    if question.unanswerable or answer.abstained:
        return None
    quotes = [fold(c.quote) for c in answer.citations]
    if question.evidence:
        return any(fold(e) in q or q in fold(e) for e in question.evidence for q in quotes)
    if question.doc_ids:
        return any(c.doc_id in question.doc_ids for c in answer.citations)
    return any(fold(expected) in q for expected in question.answers for q in quotes)


def gold_cited(question: EvalQuestion, answer: Answer) -> bool | None:
    """Whether the answer cites a gold article (None when the question names none or nothing is shown)."""
    if not question.doc_ids or answer.abstained:
        return None
    return any(c.doc_id in question.doc_ids for c in answer.citations)


def gold_rank(question: EvalQuestion, ranked_doc_ids: list[str]) -> int | None:
    for rank, doc_id in enumerate(ranked_doc_ids, start=1):
        if doc_id in question.doc_ids:
            return rank
    return None


def evaluate(ask_open: Callable[[str], Answer], questions: Iterable[EvalQuestion], documents: dict[str, Document],
             threshold: float, ranked_documents: Callable[[str], list[str]] | None = None,
             label: str = "footnote", suggestions: int = AnswerConfig.suggestions) -> EvalReport:
    """Score answers given with no abstention (`ask_open`); an answer counts as shown when its confidence
    reaches `threshold`, else the first `suggestions` of its evidence are the closest passages shown.
    `documents` are loaded from the corpus files."""
    rows = []
    for question in questions:
        answer = ask_open(question.question)
        shown = not answer.abstained and answer.confidence >= threshold
        closest = answer.evidence[:suggestions]
        ranked = ranked_documents(question.question) if ranked_documents and question.doc_ids else []
        rows.append(EvalRow(
            qid=question.qid, correct=not question.unanswerable and is_correct(question, answer),
            abstained=not shown, unanswerable=question.unanswerable, confidence=answer.confidence,
            evidence_cited=evidence_cited(question, answer) if shown else None,
            gold_cited=gold_cited(question, answer) if shown else None,
            verbatim=citations_verbatim(answer, documents), has_gold=bool(question.doc_ids and ranked_documents),
            gold_rank=gold_rank(question, ranked), latency_ms=answer.timings_ms.get("total", 0.0),
            answer=answer.answer, short_answer=answer.short_answer.text if answer.short_answer and shown else None,
            short_correct=short_answer_correct(question, answer) if shown else None,
            nearby=None if shown or question.unanswerable or not closest
            else matches(question, " ".join(c.quote for c in closest)),
        ))
    return summarise(rows, label)


def summarise(rows: list[EvalRow], label: str = "footnote") -> EvalReport:
    answerable = [r for r in rows if not r.unanswerable]
    unanswerable = [r for r in rows if r.unanswerable]
    shown = [r for r in rows if not r.abstained]
    abstained = [r for r in rows if r.abstained]
    nearby = [r.nearby for r in abstained if r.nearby is not None]
    right = [r for r in shown if r.correct]
    cited = [r.evidence_cited for r in right if r.evidence_cited is not None]
    gold = [r.gold_cited for r in right if r.gold_cited is not None]
    shorts = [r.short_correct for r in shown if r.short_correct is not None]
    with_gold = [r for r in answerable if r.has_gold]
    latencies = sorted(r.latency_ms for r in rows) or [0.0]
    return EvalReport(
        label=label, questions=len(rows), answerable=len(answerable), correct=len(right),
        accuracy=len(right) / len(answerable) if answerable else 0.0,
        answered=len(shown), precision=_ratio(len(right), len(shown)),
        abstention_recall=_ratio(sum(r.abstained for r in unanswerable), len(unanswerable)),
        abstention_precision=_ratio(sum(r.unanswerable for r in abstained), len(abstained)),
        declined_nearby=_ratio(sum(nearby), len(nearby)),
        gold_cited=_ratio(sum(gold), len(gold)), evidence_cited=_ratio(sum(cited), len(cited)),
        short_given=len(shorts), short_accuracy=_ratio(sum(shorts), len(shorts)),
        citations_verbatim=sum(r.verbatim for r in rows) / len(rows) if rows else 1.0,
        recall_at_1=_ratio(sum(r.gold_rank == 1 for r in with_gold), len(with_gold)),
        recall_at_5=_ratio(sum(r.gold_rank is not None and r.gold_rank <= 5 for r in with_gold), len(with_gold)),
        auroc=auroc([r.confidence for r in rows], [r.correct for r in rows]),
        risk_coverage=risk_coverage(rows), reliability=reliability(rows), latency_p50_ms=statistics.median(latencies),
        latency_p95_ms=latencies[int(0.95 * (len(latencies) - 1))], rows=rows,
    )


def risk_coverage(rows: list[EvalRow], levels: tuple[float, ...] = RISK_LEVELS) -> list[dict]:
    """At each confidence level: how many questions would be answered, and how many of those rightly."""
    answerable = sum(not r.unanswerable for r in rows)
    table = []
    for level in levels:
        answered = [r for r in rows if r.confidence >= level and r.confidence > 0]
        right = sum(r.correct for r in answered)
        table.append({"threshold": level, "answered": len(answered), "precision": _ratio(right, len(answered)),
                      "accuracy": _ratio(right, answerable)})
    return table


def reliability(rows: list[EvalRow], bins: int = 5) -> list[dict]:
    """Calibration: in each confidence bin, the mean confidence beside how often the answer was right."""
    table = []
    for k in range(bins):
        low, high = k / bins, (k + 1) / bins
        inside = [r for r in rows if low <= r.confidence < high or (k == bins - 1 and r.confidence == 1.0)]
        if inside:
            table.append({"low": low, "high": high, "questions": len(inside),
                          "mean_confidence": statistics.fmean(r.confidence for r in inside),
                          "right": sum(r.correct for r in inside) / len(inside)})
    return table


def auroc(scores: list[float], positives: list[bool]) -> float | None:
    """Probability that a right answer has a higher confidence than a wrong one (ties count half)."""
    pos = [s for s, p in zip(scores, positives, strict=True) if p]
    neg = [s for s, p in zip(scores, positives, strict=True) if not p]
    if not pos or not neg:
        return None
    ordered = sorted(neg)
    wins = sum(bisect_left(ordered, s) + 0.5 * (bisect_right(ordered, s) - bisect_left(ordered, s)) for s in pos)
    return wins / (len(pos) * len(neg))


def _ratio(numerator: float, denominator: int) -> float | None:
    return numerator / denominator if denominator else None
