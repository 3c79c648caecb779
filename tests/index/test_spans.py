"""Candidate short answers: names, numbers and dates found without a tagger, stored per sentence."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from index.spans import KINDS, find_spans, span_rows, spans_from_rows


def found(text: str) -> list[tuple[str, str]]:
    return [(span.kind, span.text) for span in find_spans(text)]


def test_names_numbers_and_dates() -> None:
    text = "Fox News agreed on April 18, 2023 to pay $787.5 million to Dominion Voting Systems, officials said."
    assert found(text) == [("name", "Fox News"), ("date", "April 18, 2023"), ("number", "$787.5 million"),
                           ("name", "Dominion Voting Systems")]
    assert found("It rose to 6.6% from 6.5 percent, and the vote was 352-65.") == [
        ("number", "6.6%"), ("number", "6.5 percent"), ("number", "352-65")]


def test_a_range_of_years_is_one_date() -> None:
    """"(1999-2013)" answers "When did he rule?" whole: its end year alone would be a wrong short answer."""
    assert found("Hugo Chávez (1999-2013) ruled Venezuela.") == [
        ("name", "Hugo Chávez"), ("date", "1999-2013"), ("name", "Venezuela")]
    assert found("He served 1977–81, then in 2015 and between 2010 and 2012.") == [
        ("date", "1977–81"), ("date", "2015"), ("date", "2010"), ("date", "2012")]
    assert found("The vote was 352-65 in 2019-20.") == [("number", "352-65"), ("date", "2019-20")]


def test_a_word_the_article_writes_in_lower_case_starts_no_name() -> None:
    text = "Rates rose again. Traders expect rates to fall, say traders. Maduro met Raisi."
    rows = span_rows(text, [(0, 17), (18, 60), (61, len(text))])
    assert [(int(r[0]), text[[0, 18, 61][r[0]] + r[1] : [0, 18, 61][r[0]] + r[2]]) for r in rows] == [
        (2, "Maduro"), (2, "Raisi")]
    assert found("Rates rose again.") == [("name", "Rates")]  # without the article, nothing says it is common


def test_names_join_connectors_and_trailing_numbers_and_drop_opening_common_words() -> None:
    assert found("Officials said Title 42 ends, and Bank of America agreed.") == [
        ("name", "Title 42"), ("name", "Bank of America")]
    assert found("The Apollo hosted Three 6 Mafia in the 1990s.") == [
        ("name", "Apollo"), ("name", "Three 6 Mafia"), ("date", "1990s")]
    assert found("New York Mayor Eric Adams spoke.") == [("name", "New York"), ("name", "Eric Adams")]
    assert found("New rules apply.") == []


def test_titles_split_a_place_from_the_person() -> None:
    assert found("Florida Gov. Ron DeSantis met President Joe Biden and the Department of Justice.") == [
        ("name", "Florida"), ("name", "Ron DeSantis"), ("name", "Joe Biden"), ("name", "Department of Justice")]


def test_keys_fold_case_accents_determiners_and_possessives() -> None:
    bolivar, apollo = find_spans("Simón Bolívar’s tomb drew a crowd, like The Apollo did.")
    assert bolivar.text == "Simón Bolívar" and bolivar.key == "simon bolivar"
    assert apollo.key == "apollo"


def test_stored_rows_round_trip() -> None:
    text = "Raisi met Maduro in Caracas on Monday. Trade grew to $3 billion."
    sentences = [(0, 38), (39, len(text))]
    rows = span_rows(text, sentences)
    assert rows.dtype.name == "int32" and set(rows[:, 0]) == {0, 1} and set(rows[:, 3]) <= set(range(len(KINDS)))
    for index, (start, end) in enumerate(sentences):
        assert spans_from_rows(text[start:end], rows[rows[:, 0] == index]) == find_spans(text[start:end])


PIECES = st.sampled_from([*"aAbZ’'\".,;:!?()- 09$%&\n—“”é", "New York ", "The ", "Gov. ", "'s ", "May ", "12 "])


@settings(max_examples=300, deadline=None)
@given(st.lists(PIECES, max_size=40).map("".join))
def test_spans_are_ordered_disjoint_verbatim_slices(text: str) -> None:
    end = 0
    for span in find_spans(text):
        assert end <= span.start < span.end <= len(text)
        assert text[span.start : span.end] == span.text and span.kind in KINDS
        end = span.end
