"""`eval`'s arithmetic: answer matching, splits, precision when shown, risk–coverage and AUROC."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.answer import ABSTAIN_TEXT, Answer, Citation, ShortAnswer
from bot.evaluation import (
    EvalQuestion,
    EvalRow,
    auroc,
    evaluate,
    is_correct,
    names_answer,
    read_questions,
    reliability,
    risk_coverage,
    select_split,
    summarise,
)

DATA = Path(__file__).resolve().parents[1] / "data" / "news"


def question(answers: list[str], mode: str = "any", unanswerable: bool = False) -> EvalQuestion:
    return EvalQuestion("q", "?", answers, mode, unanswerable)


def test_answers_match_case_accent_and_quote_insensitively() -> None:
    shown = Answer("?", "Simón Bolívar’s “bust” was unveiled [1]", False, [])
    assert is_correct(question(["simon bolivar's"]), shown)
    assert is_correct(question(["Bolívar", "bust"], mode="all"), shown)
    assert not is_correct(question(["Bolívar", "statue"], mode="all"), shown)
    assert not is_correct(question(["Bolívar"]), Answer("?", ABSTAIN_TEXT, True, []))
    assert is_correct(question([], unanswerable=True), Answer("?", "…", True, []))


@pytest.mark.parametrize(("gold", "text", "right"), [
    ("23", "He won in 2023 [1]", False), ("0", "the Daytona 500 [1]", False), ("May", "the mayor said [1]", False),
    ("2", "Talks went on. [1] They ended. [2]", False),  # a footnote marker holds no answer
    ("23", "his 23rd title [1]", True), ("$3 billion", "more than $3 billion. [1]", True),
    ("Biden", "Biden's plan [1]", True), ("2023", "the 2023-24 season [1]", True),
])
def test_answers_match_whole_words_only(gold: str, text: str, right: bool) -> None:
    assert is_correct(question([gold]), Answer("?", text, False, [])) is right


@pytest.mark.parametrize(("gold", "short", "right"), [("23", "2023", False), ("May", "mayor", False),
                                                       ("23", "23rd", True), ("New York", "New York City", True)])
def test_a_short_answer_holds_the_answer_as_whole_words(gold: str, short: str, right: bool) -> None:
    assert names_answer(question([gold]), short) is right


@pytest.mark.parametrize(("short", "right"), [
    ("Buffalo Bills", True), ("the Buffalo Bills", True), ("Bills", True), ("Buffalo", True),
    ("Bills player", False), ("Cincinnati", False),
])
def test_a_short_answer_names_the_answer_with_at_least_half_its_words(short: str, right: bool) -> None:
    assert names_answer(question(["Buffalo Bills"]), short) is right


def test_short_answer_of_an_unanswerable_question_is_wrong() -> None:
    assert not names_answer(question(["Bills"], unanswerable=True), "Bills")
    assert ShortAnswer("Bills", 0, 5, 1).text == "Bills"


def test_splits_select_whole_weeks(tmp_path: Path) -> None:
    questions = read_questions(DATA / "questions.jsonl")
    splits = DATA / "splits.json"
    tune = select_split(questions, "news", "tune", splits)
    heldout = select_split(questions, "news", "heldout", splits)
    assert {q.qid for q in tune} | {q.qid for q in heldout} == {q.qid for q in questions}
    assert not {q.qid for q in tune} & {q.qid for q in heldout}
    assert {q.qid.removeprefix("u-")[:8] for q in heldout} == {"20240315", "20230108"}
    assert select_split(questions, "news", None, splits) == questions
    with pytest.raises(ValueError, match="no split 'dev'"):
        select_split(questions, "news", "dev", splits)


def row(confidence: float, correct: bool, unanswerable: bool = False, abstained: bool = False) -> EvalRow:
    return EvalRow(qid="q", correct=correct, abstained=abstained, unanswerable=unanswerable, confidence=confidence,
                   evidence_cited=None, gold_cited=True if correct else None, verbatim=True, has_gold=False,
                   gold_rank=None, latency_ms=1.0, answer="")


def test_precision_counts_shown_answers_to_unanswerable_questions_as_wrong() -> None:
    rows = [row(0.9, True), row(0.8, False), row(0.7, False, unanswerable=True), row(0.1, False, abstained=True),
            row(0.2, False, unanswerable=True, abstained=True)]
    report = summarise(rows)
    assert (report.answerable, report.correct, report.answered) == (3, 1, 3)
    assert report.accuracy == pytest.approx(1 / 3) and report.precision == pytest.approx(1 / 3)
    assert report.abstention_recall == pytest.approx(0.5) and report.abstention_precision == pytest.approx(0.5)
    assert report.gold_cited == 1.0


def test_risk_coverage_and_auroc() -> None:
    rows = [row(0.95, True), row(0.85, True), row(0.75, False), row(0.55, True), row(0.15, False, unanswerable=True)]
    table = {level["threshold"]: level for level in risk_coverage(rows, (0.0, 0.5, 0.8, 0.9))}
    assert table[0.8]["answered"] == 2 and table[0.8]["precision"] == 1.0 and table[0.8]["accuracy"] == 0.5
    assert table[0.5]["answered"] == 4 and table[0.5]["precision"] == 0.75
    assert table[0.0]["answered"] == 5
    assert auroc([0.9, 0.8, 0.3], [True, True, False]) == 1.0
    assert auroc([0.2, 0.8], [True, False]) == 0.0
    assert auroc([0.5, 0.5], [True, False]) == 0.5
    assert auroc([0.5], [True]) is None


def test_reliability_bins_compare_confidence_with_how_often_answers_were_right() -> None:
    rows = [row(0.95, True), row(0.9, False), row(0.15, False), row(0.1, False), row(0.12, True), row(1.0, True)]
    table = {level["low"]: level for level in reliability(rows)}
    assert set(table) == {0.0, 0.8}
    assert table[0.8]["questions"] == 3 and table[0.8]["right"] == pytest.approx(2 / 3)
    assert table[0.0]["questions"] == 3 and table[0.0]["mean_confidence"] == pytest.approx(0.1233, abs=1e-3)


def test_a_declined_question_counts_as_answer_nearby_when_the_closest_passages_shown_hold_the_answer() -> None:
    def citation(n: int, quote: str) -> Citation:
        return Citation(n, "d", "Title", "", quote, 0, len(quote), "d#0", 0.5)

    filler = [citation(n, "Nothing of use here.") for n in (1, 2, 3)]
    answers = {
        "In the top passage?": Answer("?", "…", False, [], evidence=[citation(1, "Bolívar's bust."), *filler]),
        "Only in the fourth?": Answer("?", "…", False, [], evidence=[*filler, citation(4, "Bolívar's bust.")]),
        "Shown?": Answer("?", "Bolívar [1]", False, [], evidence=[citation(1, "Bolívar's bust.")], confidence=0.9),
        "Unanswerable?": Answer("?", "…", False, [], evidence=filler),
        "No passages?": Answer("?", "…", False, []),
    }
    questions = [EvalQuestion(f"q{i}", text, ["Bolívar"], "any", text == "Unanswerable?")
                 for i, text in enumerate(answers)]
    report = evaluate(answers.__getitem__, questions, {}, threshold=0.5, suggestions=3)
    assert [row.nearby for row in report.rows] == [True, False, None, None, None]
    assert report.declined_nearby == 0.5
