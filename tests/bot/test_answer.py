"""Extractive answers: verifiable citations, limits, abstention, follow-ups and bad input."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.answer import ABSTAIN_TEXT, Answerer, Turn, answer_kind, build_query
from bot.evaluation import evaluate, read_questions
from bot.service import load_answerer, make_builder
from index.documents import load_corpus
from index.embedding import Embedder
from tests.conftest import SEED_CORPUS, SHARED, make_settings

FOOTNOTE_END = re.compile(r"\[\d+\]$")


def assert_verifiable(answerer: Answerer, answer) -> None:
    for citation in [*answer.citations, *answer.suggestions]:
        document = answerer.snapshot.documents[citation.doc_id]
        assert document.text[citation.start : citation.end] == citation.quote
        assert citation.chunk_id.startswith(citation.doc_id + "#")


def test_dev_questions_meet_the_quality_bar(seed_answerer: Answerer) -> None:
    documents = {d.doc_id: d for d in load_corpus(SEED_CORPUS).documents}
    report = evaluate(seed_answerer, read_questions(SHARED / "eval" / "dev_questions.jsonl"), documents)
    assert report.answerable == 12 and report.correct >= 11, report.lines()
    assert report.abstention_recall == 1.0
    assert report.citations_verbatim == 1.0


def test_answer_is_short_footnoted_and_cites_verbatim_spans(seed_answerer: Answerer) -> None:
    answer = seed_answerer.ask("How much has bilateral trade grown since 2021?")
    assert not answer.abstained and "$600 million" in answer.answer
    assert len(answer.answer) <= 400
    sentences = [s for s in re.split(r"(?<=\])\s+", answer.answer) if s]
    assert all(FOOTNOTE_END.search(s) for s in sentences)
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert len({(c.doc_id, c.start, c.end) for c in answer.citations}) == len(answer.citations)
    assert_verifiable(seed_answerer, answer)
    assert set(answer.timings_ms) == {"embed", "search", "compose", "total"}


def test_unanswerable_question_abstains_with_closest_passages(seed_answerer: Answerer) -> None:
    answer = seed_answerer.ask("What is the GDP of Nicaragua?")
    assert answer.abstained and answer.answer == ABSTAIN_TEXT and answer.citations == []
    assert 1 <= len(answer.suggestions) <= 3
    assert_verifiable(seed_answerer, answer)


def test_follow_up_is_answered_in_context(seed_answerer: Answerer) -> None:
    first = "Which country does Raisi visit on Tuesday?"
    assert "Nicaragua" in seed_answerer.ask(first).answer
    follow_up = seed_answerer.ask("And on Wednesday?", [Turn(first, "")])
    assert not follow_up.abstained and "Cuba" in follow_up.answer
    assert build_query("And on Wednesday?", [Turn(first)]).text.startswith(first)
    assert build_query("Who met Maduro in Caracas?", [Turn(first)]).text == "Who met Maduro in Caracas?"


@pytest.mark.parametrize(("question", "kind"), [
    ("Who did Raisi meet?", "person"), ("When does the tour end?", "date"), ("What day is it?", "date"),
    ("How much did trade grow?", "quantity"), ("Where did Maduro sign it?", "place"), ("What was signed?", None),
])
def test_answer_kind(question: str, kind: str | None) -> None:
    assert answer_kind(question) == kind


@pytest.mark.parametrize(("question", "refusal"), [
    ("", "Please ask a question"), ("   \n\t ", "Please ask a question"),
    ("?!…", "doesn't look like a question"), ("🤔🤔🔥", "doesn't look like a question"),
    ("x" * 10_000, "limited to 500 characters (this one has 10000)"),
])
def test_bad_questions_are_refused_clearly(seed_answerer: Answerer, question: str, refusal: str) -> None:
    answer = seed_answerer.ask(question)
    assert answer.refusal and refusal in answer.refusal and answer.citations == []


@pytest.mark.parametrize("question", [
    "Who did\x00 Raisi\x1b[31m meet?", "¿Con quién se reunió Raisi en Caracas?", "Райси встретился с кем?",
    "maduro", "<@123> @everyone what happened?",
])
def test_odd_questions_get_an_answer_or_an_abstention(seed_answerer: Answerer, question: str) -> None:
    answer = seed_answerer.ask(question)
    assert answer.refusal is None and answer.answer
    assert_verifiable(seed_answerer, answer)


def test_over_long_sentence_is_cut_to_a_verbatim_clause(tmp_path: Path, embedder: Embedder) -> None:
    clauses = ", ".join(f"the delegation from province {n} brought {n} tonnes of grain" for n in range(12))
    text = f"The summit opened in Lagos, {clauses}, and the treaty was signed by Amara Okafor on Friday."
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "summit.md").write_text(f"---\ntitle: Summit\n---\n{text}\n", encoding="utf-8")
    settings = make_settings(tmp_path, corpus)
    make_builder(settings, embedder).build(corpus)
    answerer = load_answerer(settings, embedder)
    answer = answerer.ask("Who signed the treaty?")
    assert not answer.abstained and len(answer.answer) <= 400
    assert "Amara Okafor" in answer.answer and answer.answer.startswith("…")
    assert_verifiable(answerer, answer)
