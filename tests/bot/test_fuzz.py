"""Fuzzing the inputs users control: questions, `ask --jsonl` lines. Nothing escapes, citations stay verbatim.

`FOOTNOTE_FUZZ=1 pytest tests/bot/test_fuzz.py tests/index/test_documents.py` runs 10,000 cases each.
"""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from bot import cli
from bot.answer import Answer, Answerer, QuestionRejected, clean_question
from tests.conftest import examples

ANY_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=300)  # lone surrogates too
SEED_WORDS = st.sampled_from("Who What When Where Which How many did Raisi Maduro meet visit Caracas Venezuela "
                             "Cuba Nicaragua tour Tuesday billion trade Iran oil ? , . he she it and".split())
QUESTIONS = st.one_of(ANY_TEXT, st.lists(st.one_of(SEED_WORDS, ANY_TEXT.filter(lambda t: len(t) < 8)),
                                         max_size=25).map(" ".join))
JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
                           max_leaves=8)
LINES = st.one_of(
    ANY_TEXT,
    st.builds(lambda qid, question: json.dumps({"qid": qid, "question": question}), JSON_VALUES, QUESTIONS),
    JSON_VALUES.map(json.dumps),
)


@settings(max_examples=examples(500), deadline=None)
@given(raw=ANY_TEXT, limit=st.integers(1, 600))
def test_clean_question_returns_clean_text_or_a_reason(raw: str, limit: int) -> None:
    try:
        question = clean_question(raw, limit)
    except QuestionRejected as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert question == question.strip() and 0 < len(question) <= limit
    question.encode("utf-8")  # no lone surrogate survives
    assert any(ch.isalnum() for ch in question)


def _echo(question: str) -> Answer:
    return Answer(question, f"{question} [1]", False, [])


@settings(max_examples=examples(500), deadline=None)
@given(line=LINES)
def test_every_jsonl_line_gets_one_ascii_json_object(line: str) -> None:
    result = cli.answer_line(line, _echo)
    text = json.dumps(result)
    assert text.isascii() and "\n" not in text and json.loads(text) == json.loads(text)
    assert set(result) >= {"qid"} and ("error" in result) != ("answer" in result)


@settings(max_examples=examples(150), deadline=None)
@given(question=QUESTIONS)
def test_real_answers_to_any_question_cite_verbatim_spans(seed_answerer: Answerer, question: str) -> None:
    answer = seed_answerer.ask(question, threshold=0.0)
    documents = seed_answerer.snapshot.documents
    for citation in [*answer.citations, *answer.suggestions]:
        assert documents[citation.doc_id].text[citation.start : citation.end] == citation.quote
    if short := answer.short_answer:
        citation = answer.citations[short.n - 1]
        assert documents[citation.doc_id].text[short.start : short.end] == short.text
        assert citation.start <= short.start and short.end <= citation.end
    json.dumps(answer.to_json(), ensure_ascii=True)
