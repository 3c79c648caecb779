"""Extractive answers: verifiable citations, answer-bearing sentences, short answers, abstention, follow-ups."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from bot.answer import ABSTAIN_TEXT, Answerer, Turn, dates_conflict
from bot.evaluation import evaluate, read_questions
from bot.scorer import MODEL_PATH
from bot.service import load_answerer, make_builder
from index.documents import load_corpus
from index.embedding import Embedder
from tests.conftest import DATA, NEWS, SEED_CORPUS, make_settings

FOOTNOTE_END = re.compile(r"\[\d+\]$")


def one_article(tmp_path: Path, embedder: Embedder, name: str, title: str, text: str):
    """Settings whose index, built in `tmp_path`, holds one Markdown article."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / f"{name}.md").write_text(f"---\ntitle: {title}\n---\n{text}\n", encoding="utf-8")
    settings = make_settings(tmp_path, corpus)
    make_builder(settings, embedder).build(corpus)
    return settings


def assert_verifiable(answerer: Answerer, answer) -> None:
    for citation in [*answer.citations, *answer.suggestions, *answer.evidence]:
        document = answerer.snapshot.documents[citation.doc_id]
        assert isinstance(citation.start, int) and isinstance(citation.end, int)  # text[None:end] would pass
        assert 0 <= citation.start < citation.end <= len(document.text)
        assert document.text[citation.start : citation.end] == citation.quote
        assert citation.chunk_id.startswith(citation.doc_id + "#")
    if answer.short_answer:
        short = answer.short_answer
        cited = answer.citations[short.n - 1]
        assert answerer.snapshot.documents[cited.doc_id].text[short.start : short.end] == short.text
        assert cited.start <= short.start and short.end <= cited.end


def test_shipped_model_matches_the_features_and_names_its_training_data(seed_answerer: Answerer) -> None:
    model = seed_answerer.model
    assert MODEL_PATH.is_file() and 0.0 < model.abstain_below < 1.0
    sets = {entry["set"] for entry in model.provenance["sentence_and_confidence_models"]}
    assert "news_2024" in sets and "news_2023h1" not in sets
    assert all(entry["split"] == "tune" for entry in model.provenance["thresholds"]["sets"])


def test_unseen_seed_questions_are_answered_and_unanswerable_ones_abstain(seed_answerer: Answerer) -> None:
    """Questions written for this test only (never tuned on): open answers, then the default threshold."""
    questions = read_questions(DATA / "seed_questions.jsonl")
    documents = {d.doc_id: d for d in load_corpus(SEED_CORPUS).documents}
    report = evaluate(lambda q: seed_answerer.ask(q, threshold=0.0), questions, documents, seed_answerer.threshold)
    right = sum(row.correct for row in report.rows)
    assert right >= 7, [(row.qid, row.answer[:80]) for row in report.rows if not row.correct and not row.unanswerable]
    assert report.citations_verbatim == 1.0 and report.abstention_recall == 1.0
    answerable = sorted(row.confidence for row in report.rows if not row.unanswerable)
    assert max(row.confidence for row in report.rows if row.unanswerable) < answerable[len(answerable) // 2]


def test_answer_is_short_footnoted_and_cites_verbatim_spans(seed_answerer: Answerer) -> None:
    answer = seed_answerer.ask("How much has bilateral trade grown since 2021?", threshold=0.0)
    assert not answer.abstained and "$600 million" in answer.answer
    assert len(answer.answer) <= 400
    sentences = [s for s in re.split(r"(?<=\])\s+", answer.answer) if s]
    assert all(FOOTNOTE_END.search(s) for s in sentences)
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert len({(c.doc_id, c.start, c.end) for c in answer.citations}) == len(answer.citations)
    assert len({c.doc_id for c in answer.citations}) == 1  # one passage of one article
    assert_verifiable(seed_answerer, answer)
    assert set(answer.timings_ms) == {"embed", "search", "compose", "total"}
    assert 0.0 < answer.confidence < 1.0


def test_unanswerable_question_abstains_with_closest_passages(seed_answerer: Answerer) -> None:
    answer = seed_answerer.ask("What is the GDP of Nicaragua?")
    assert answer.abstained and answer.answer == ABSTAIN_TEXT and answer.citations == []
    assert 1 <= len(answer.suggestions) <= 3 and answer.confidence < seed_answerer.threshold
    assert_verifiable(seed_answerer, answer)


def test_a_question_sentence_never_answers(news_answerer: Answerer) -> None:
    """The quiz page repeats the question word for word; the match report answers it."""
    answer = news_answerer.ask("Which team won the Northern Cup final this week?", threshold=0.0)
    assert all("?" not in c.quote for c in answer.citations)
    assert answer.citations[0].doc_id == "northern-cup" and "Riverton Hawks" in answer.answer
    assert_verifiable(news_answerer, answer)


def test_a_sentence_that_only_restates_the_question_never_answers(news_answerer: Answerer) -> None:
    answer = news_answerer.ask("Which flower will win the grand prize this year?", threshold=0.0)
    assert "Which flower will win" not in answer.answer
    assert "Blue Empress" in answer.answer


def test_the_newer_article_answers_a_question_about_this_week(news_answerer: Answerer) -> None:
    answer = news_answerer.ask("Harbor City opened a long-awaited bridge this week. How much did it cost?",
                               threshold=0.0)
    assert answer.citations[0].doc_id == "harbor-bridge-2024" and "$410 million" in answer.answer
    assert answer.citations[0].published == "2024/03/08"


def test_short_answer_is_the_exact_span_inside_its_citation(news_answerer: Answerer) -> None:
    eager = Answerer(news_answerer.finder, replace(news_answerer.model, short_answer_from=0.0))
    answer = eager.ask("Which runner won the Glacier Marathon in record time?", threshold=0.0)
    assert answer.short_answer is not None and answer.short_answer.text == "Amos Kipruto"
    assert_verifiable(eager, answer)
    assert answer.to_json()["short_answer"] == {"text": "Amos Kipruto", "start": answer.short_answer.start,
                                                "end": answer.short_answer.end, "n": answer.short_answer.n}
    assert eager.ask("What happened to the bridge in Harbor City?", threshold=0.0).short_answer is None  # no kind


def test_no_short_answer_below_its_threshold(news_answerer: Answerer) -> None:
    shy = Answerer(news_answerer.finder, replace(news_answerer.model, short_answer_from=1.01))
    answer = shy.ask("Which runner won the Glacier Marathon in record time?", threshold=0.0)
    assert answer.short_answer is None and answer.to_json()["short_answer"] is None


def test_follow_up_is_answered_in_context(seed_answerer: Answerer) -> None:
    first = "Which country does Raisi visit on Tuesday?"
    assert "Nicaragua" in seed_answerer.ask(first, threshold=0.0).answer
    follow_up = seed_answerer.ask("And on Wednesday?", [Turn(first, "")], threshold=0.0)
    assert not follow_up.abstained and "Cuba" in follow_up.answer
    stand_alone = seed_answerer.ask("Who is Maduro?", [Turn(first, "")], threshold=0.0)
    assert stand_alone.answer == seed_answerer.ask("Who is Maduro?", threshold=0.0).answer


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
    "maduro", "<@123> @everyone what happened?", "the the the", "2021",
])
def test_odd_questions_get_an_answer_or_an_abstention(seed_answerer: Answerer, question: str) -> None:
    answer = seed_answerer.ask(question)
    assert answer.refusal is None and answer.answer
    assert_verifiable(seed_answerer, answer)


def test_over_long_sentence_is_cut_to_a_verbatim_clause(tmp_path: Path, embedder: Embedder) -> None:
    clauses = ", ".join(f"the delegation from province {n} brought {n} tonnes of grain" for n in range(12))
    text = f"The summit opened in Lagos, {clauses}, and the treaty was signed by Amara Okafor on Friday."
    answerer = load_answerer(one_article(tmp_path, embedder, "summit", "Summit", text), embedder)
    answer = answerer.ask("Who signed the treaty?", threshold=0.0)
    assert not answer.abstained and len(answer.answer) <= 400
    assert "Amara Okafor" in answer.answer and answer.answer.startswith("…")
    assert_verifiable(answerer, answer)


def test_news_set_end_to_end(news_answerer: Answerer) -> None:
    """Open answers over the made-up news corpus: most right, citations verbatim, unanswerable abstain."""
    questions = read_questions(NEWS / "questions.jsonl")
    documents = {d.doc_id: d for d in load_corpus(NEWS / "corpus.jsonl").documents}
    report = evaluate(lambda q: news_answerer.ask(q, threshold=0.0), questions, documents, news_answerer.threshold,
                      news_answerer.ranked_documents)
    assert sum(row.correct for row in report.rows) >= 9, [row.answer[:60] for row in report.rows]
    assert report.citations_verbatim == 1.0 and report.abstention_recall == 1.0
    assert report.recall_at_5 == 1.0


def test_an_answer_about_another_day_is_no_answer(seed_answerer: Answerer) -> None:
    monday = seed_answerer.ask("Who did Raisi meet in Caracas on Monday?")
    assert not monday.abstained and "Maduro" in monday.answer
    wednesday = seed_answerer.ask("Who did Raisi meet in Caracas on Wednesday?")
    assert wednesday.abstained and wednesday.confidence == 0.0 and wednesday.suggestions
    follow_up = seed_answerer.ask("And on Wednesday?", [Turn("Who did Raisi meet in Caracas?", monday.answer)])
    assert follow_up.abstained


@pytest.mark.parametrize(("question", "sentences", "conflict"), [
    ("What happened on Wednesday?", ["It rained on Monday."], True),
    ("What happened on Wednesday?", ["It rained on Monday and Wednesday."], False),
    ("What happened on Wednesday?", ["It rained."], False),
    ("Who won in March?", ["She won in April."], True),
    ("Who won?", ["She won on Monday in April."], False),
    ("Who won in May?", ["She won in April."], True),
    ("Who won in April?", ["May she win again: she won in April."], False),
])
def test_dates_conflict(question: str, sentences: list[str], conflict: bool) -> None:
    assert dates_conflict(question, sentences) is conflict


def test_an_abstention_numbers_whole_sentences_and_keeps_its_question_and_confidence(seed_answerer: Answerer) -> None:
    """The closest passages shown with an abstention are whole sentences, numbered from 1 like footnotes, the same
    ones (best first) that the answer's evidence lists, and the abstention still says how confident it was."""
    question = "What is the GDP of Nicaragua?"
    answer = seed_answerer.ask(question)
    assert answer.abstained and answer.question == question
    assert [c.n for c in answer.suggestions] == list(range(1, len(answer.suggestions) + 1))
    assert answer.suggestions == answer.evidence[: len(answer.suggestions)]
    for citation in answer.suggestions:
        assert isinstance(citation.start, int) and isinstance(citation.end, int) and citation.start < citation.end
        assert len(citation.quote) < 400 and citation.quote.rstrip().endswith((".", "”", "!", "?"))
    assert 0.0 < answer.confidence < seed_answerer.threshold


def test_the_answer_is_its_quotes_in_order_each_with_its_footnote(seed_answerer: Answerer) -> None:
    """Whole sentences are shown verbatim, unmarked: no ellipsis where nothing was cut, one space between them."""
    answer = seed_answerer.ask("What agreements did Iran and Venezuela sign?", threshold=0.0)
    assert len(answer.citations) >= 2 and "…" not in answer.answer
    assert answer.answer == " ".join(f"{c.quote} [{c.n}]" for c in answer.citations)
    for citation in answer.citations:  # what the footnote links to, and the score shown with it
        document = seed_answerer.snapshot.documents[citation.doc_id]
        assert (citation.title, citation.url) == (document.title, document.url)
        assert 0.0 < citation.score < 1.0 and citation.score == round(citation.score, 4)


def test_a_sentence_cut_on_both_sides_is_marked_at_both_ends(tmp_path: Path, embedder: Embedder) -> None:
    """An over-long sentence is cut to the clauses that answer; each cut end shows "…", and no dangling comma."""
    clauses = ", ".join(f"the delegation from province {n} brought {n} tonnes of grain" for n in range(14))
    text = f"The summit closed in Lagos on Friday, the treaty was signed by Amara Okafor, {clauses}."
    answerer = load_answerer(one_article(tmp_path, embedder, "summit", "Summit", text), embedder)
    answer = answerer.ask("Who signed the treaty?", threshold=0.0)
    [citation] = answer.citations
    assert "Amara Okafor" in citation.quote and len(answer.answer) <= 400
    assert not citation.quote.endswith((",", " "))
    prefix = "…" if citation.start > 0 else ""
    assert answer.answer == f"{prefix}{citation.quote}… [1]"
    assert_verifiable(answerer, answer)


def test_a_follow_up_uses_its_thread_and_the_same_words_alone_do_not(news_answerer: Answerer) -> None:
    first = "Harbor City opened the Lantern Bridge this week."
    follow_up = news_answerer.ask("How much did it cost?", [Turn(first, "")])
    assert not follow_up.abstained and "$410 million" in follow_up.answer
    assert news_answerer.ask("How much did it cost?").abstained  # "it" is nothing without the thread


def test_the_sentence_a_pronoun_refers_to_is_shown_first(tmp_path: Path, embedder: Embedder) -> None:
    """"She signed…" is shown after the sentence that names her, in the article's order, whatever their scores."""
    text = ("The summit in Lagos lasted two days. Amara Okafor led the delegation from Accra. "
            "She signed the treaty on Friday after two days of talks. The treaty cuts tariffs on grain.")
    answerer = load_answerer(one_article(tmp_path, embedder, "summit", "Summit", text), embedder)
    answer = answerer.ask("When was the treaty signed?", threshold=0.0)
    first, second = answer.citations[:2]
    assert first.quote == "Amara Okafor led the delegation from Accra."
    assert second.quote.startswith("She signed the treaty") and first.end < second.start
    assert answer.answer.startswith(f"{first.quote} [1] {second.quote} [2]")
    assert_verifiable(answerer, answer)


def test_a_long_sentence_before_a_pronoun_never_crowds_out_the_answer(tmp_path: Path, embedder: Embedder) -> None:
    """The sentence a pronoun refers to joins the answer only when both fit whole: a 390-character one would
    leave the answering sentence an empty or one-word quote."""
    before = ("Members of the Harbor Authority board met on Tuesday evening in the old customs house after a long "
              "delay caused by a storm that closed roads across the region")
    before += ", and again" * ((389 - len(before)) // 11) + "."
    text = f"{before} The new ferry terminal, they said, will cost $85 million and open in 2027."
    answerer = load_answerer(one_article(tmp_path, embedder, "ferry", "Ferry", text), embedder)
    answer = answerer.ask("How much will the new ferry terminal cost?", threshold=0.0)
    assert "$85 million" in answer.answer and len(answer.answer) <= answerer.config.max_chars
    assert [c.quote for c in answer.citations] == [text[len(before) + 1:]]
    assert_verifiable(answerer, answer)


def test_when_no_sentence_may_answer_it_abstains_at_zero_confidence(tmp_path: Path, embedder: Embedder) -> None:
    """A page of questions holds no answer: Footnote abstains (even at threshold 0) and lists the closest ones."""
    text = ("Which team won the Northern Cup final this week? Who scored twice for the winners? "
            "How many fans watched the final?")
    answerer = load_answerer(one_article(tmp_path, embedder, "quiz", "Quiz", text), embedder)
    answer = answerer.ask("Which team won the Northern Cup final this week?", threshold=0.0)
    assert answer.abstained and answer.answer == ABSTAIN_TEXT and answer.citations == []
    assert answer.confidence == 0.0 and answer.to_json()["confidence"] == 0.0
    assert answer.suggestions[0].quote == "Which team won the Northern Cup final this week?"
    assert [c.n for c in answer.suggestions] == [1, 2, 3]


def test_an_unreadable_earlier_turn_fails_no_question(seed_answerer: Answerer) -> None:
    """An earlier turn holding a lone surrogate (a terminal's undecodable byte) is read as "?", as a question
    is: it neither crashes its follow-up nor the other questions embedded with it."""
    history = [Turn("Who did Raisi meet \udcff in Caracas?")]
    follow_up, other = seed_answerer.ask_many([("and on Monday?", history), ("Who did Raisi meet in Caracas?", [])],
                                              threshold=0.0)
    assert follow_up.refusal is None and follow_up.citations
    assert "Maduro" in other.answer
    assert_verifiable(seed_answerer, follow_up)


def test_a_question_of_exactly_the_limit_is_accepted(seed_answerer: Answerer) -> None:
    limit = seed_answerer.config.max_question_chars
    question = "Who did Raisi meet in Caracas? " + "x" * (limit - 31)
    assert len(question) == limit and seed_answerer.ask(question).refusal is None
    over = seed_answerer.ask(question + "y")
    assert over.refusal == f"Questions are limited to {limit} characters (this one has {limit + 1})."


def test_a_refused_question_in_a_batch_is_answered_in_place_and_heard_at_once(seed_answerer: Answerer) -> None:
    """The service's micro-batches: a refusal keeps its place, is an abstention with the reason, and its asker
    hears of it like every other asker (position and answer)."""
    too_long = "Why? " * 200
    heard = []
    answers = seed_answerer.ask_many([(too_long, []), ("Who did Raisi meet in Caracas?", [])], threshold=0.0,
                                     on_answer=lambda position, answer: heard.append((position, answer)))
    refused, answered = answers
    assert refused.question == too_long and refused.abstained and refused.citations == []
    assert refused.answer == refused.refusal and refused.refusal.startswith("Questions are limited to 500 characters")
    assert not answered.abstained and "Maduro" in answered.answer
    assert heard == [(0, refused), (1, answered)]


def test_a_complement_that_is_not_a_reference_back_and_the_sentence_limit_holds(
        tmp_path: Path, embedder: Embedder) -> None:
    """"explained that …" does not pull in the sentence before it; with one sentence allowed, one is shown."""
    text = ("“Together we will be invincible!” he added at the ceremony. Raisi explained that bilateral trade "
            "volume has increased from $600 million in 2021 to more than $3 billion today.")
    settings = one_article(tmp_path, embedder, "trade", "Trade", text)
    answer = load_answerer(settings, embedder).ask("How much has bilateral trade grown since 2021?", threshold=0.0)
    assert answer.citations[0].quote.startswith("Raisi explained that bilateral trade")
    assert "invincible" not in answer.answer
    single = load_answerer(settings.model_copy(update={"max_answer_sentences": 1}), embedder)
    pronoun = single.ask("When was the ceremony where he said they would be invincible?", threshold=0.0)
    assert len(pronoun.citations) == 1
