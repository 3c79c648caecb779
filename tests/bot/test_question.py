"""Reading questions: the wanted kind of answer, the asking sentence, recency and follow-ups."""

from __future__ import annotations

import pytest

from bot.question import Turn, analyse, asking_sentence, is_follow_up, wanted_kind


@pytest.mark.parametrize(("question", "kind"), [
    ("Who did Raisi meet?", "person"),
    ("When does the tour end?", "date"),
    ("What day is it?", "date"),
    ("How much did trade grow?", "quantity"),
    ("Around how many union workers are on strike?", "quantity"),
    ("Where did Maduro sign it?", "place"),
    ("What was signed?", None),
    ("NFL player Damar Hamlin collapsed this week. He is a member of which team?", "organisation"),
    ("Which state's board of education voted to ban the lessons?", "place"),
    ("Which US college basketball player was the top pick?", "person"),
    ("Which social media platform said users can claim a share?", "organisation"),
    ("Which award show took place this week in New York City?", "work"),
    ("What is the name of the player who led Smyrna to the title?", "person"),
    ("What was the rocket's name?", "name"),
    ("What percentage of public toilets have closed?", "quantity"),
    ("Which type of bug will emerge this spring?", None),
    ("The man who founded the company retired. Which city hosts its headquarters?", "place"),
])
def test_wanted_kind(question: str, kind: str | None) -> None:
    assert wanted_kind(question)[0] == kind


def test_wh_phrase_words_stop_at_the_verb() -> None:
    assert wanted_kind("Which tech company confirmed layoffs?") == ("organisation", ("tech", "company"))
    assert wanted_kind("Which basketball star became the first to score 40,000 points?")[1] == ("basketball", "star")


def test_quiz_question_keeps_every_word_but_focuses_on_the_asking_sentence() -> None:
    question = analyse("Damar Hamlin collapsed during a game this week. He is a member of which team?")
    assert {"damar", "hamlin", "collapsed", "team"} <= set(question.words)
    assert question.focus == frozenset({"member", "team"})
    assert question.recent
    assert asking_sentence("Rose Zhang won on Sunday. Since when has no debutant won:") == (
        "Since when has no debutant won:")
    assert not analyse("Which team won the 2011 cup?").recent


def test_stand_alone_questions_are_not_merged_with_the_previous_one() -> None:
    history = [Turn("Which country does Raisi visit on Tuesday?", "Nicaragua [1]")]
    follow_up = analyse("And on Wednesday?", history)
    assert follow_up.follow_up and follow_up.text.startswith(history[0].question)
    assert follow_up.kind == "place" and follow_up.words["wednesday"] == 1.0 and follow_up.words["raisi"] == 0.6
    for stand_alone in ("Who is Maduro?", "Who met Maduro in Caracas?", "What did Iran export?"):
        question = analyse(stand_alone, history)
        assert not question.follow_up and question.text == stand_alone


@pytest.mark.parametrize(("question", "expected"), [
    ("Where did he go next?", True), ("What about Cuba?", True), ("When?", True),
    ("Who is Maduro?", False), ("Where did Raisi go next?", False), ("What did it cost Iran?", False),
])
def test_follow_up_needs_a_cue_an_unresolved_pronoun_or_no_words(question: str, expected: bool) -> None:
    words = len(analyse(question).words)
    assert is_follow_up(question, words) is expected
