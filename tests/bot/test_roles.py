"""Who did what: doers of shared verbs, numbers and their names, names' order."""

from __future__ import annotations

import pytest

from bot.roles import agents_differ, items_traded, names_reordered, numbers_rebound, predicates_traded


@pytest.mark.parametrize(("sentence", "passage", "differ"), [
    ("Lewes responded to MERR.", "MERR, a Lewes-based nonprofit, responded to the area.", True),  # aside skipped
    ("MERR responded to the area.", "MERR, a Lewes-based nonprofit, responded to the area.", False),
    ("Raisi was welcomed by Maduro.", "Maduro welcomed Raisi.", False),  # the agent after "by"
    ("Maduro was welcomed by Raisi.", "Maduro welcomed Raisi.", True),
    ("Twitter filed a complaint against Columbia Reit.", "According to a complaint filed by landlord Columbia Reit, "
     "Twitter is late.", True),  # a reduced passive: "filed by"
    ("The two women who rode with Caleb reached settlements.", "Caleb's family reached settlements.", False),  # the
    # passage's doer is not in the sentence, and neither doer is a name
    ("When Mauna Loa erupted, lava spread.", "When Kilauea erupted, lava spread near Mauna Loa.", True),  # names
    ("Merlin said Tuesday it will open the park.", "The park will open, Merlin announced Tuesday.", False),  # "it"
    ("Maduro signed an agreement.", "In Tehran, the socialist dictator signed an agreement with Maduro.", False),
    ("Before the Vikings dominated the region.", "Before the Vikings or Norse dominated the region.", False),  # joined
    ("Hendricks, born Nov. 7, 1907, taught at a school.", "Hendricks, who was born Nov. 7, 1907, taught at a "
     "school.", False),  # a participle aside and a date are no doers
])
def test_a_shared_verb_keeps_its_doer(sentence: str, passage: str, differ: bool) -> None:
    assert agents_differ(sentence, [passage]) is differ


@pytest.mark.parametrize(("sentence", "passages", "rebound"), [
    ("Swayman has 39 wins, while Ullmark has 23.", ["Ullmark has 39 wins and Swayman has 23."], True),
    ("Ullmark has 39 wins, while Swayman has 23.", ["Ullmark has 39 wins and Swayman has 23."], False),
    ("American was fined $50 million by the DOT.", ["The DOT fined American $50 million."], False),  # no trade
    ("In 2022, Maduro visited Tehran.", ["Maduro visited Tehran in 2022."], False),  # years say when, not whose
    ("Fewer than 30 Grauer's gorillas remain, while the Hainan gibbons fell from 17,000 to 3,800.",
     ["Fewer than 30 Hainan gibbons remain. The Grauer's gorillas fell from 17,000 to 3,800."], True),  # "Fewer"
    # opens the sentence: no name
])
def test_numbers_keep_their_names(sentence: str, passages: list[str], rebound: bool) -> None:
    assert numbers_rebound(sentence, passages) is rebound


def test_two_names_keep_their_order_unless_one_clause_is_passive() -> None:
    assert names_reordered("Maduro fired Raisi", "Raisi fired Maduro")
    assert not names_reordered("Raisi fired Maduro", "Raisi fired Maduro")
    assert not names_reordered("Maduro was fired by Raisi", "Raisi fired Maduro")


@pytest.mark.parametrize(("sentence", "passage", "traded"), [
    ("Mice and rodents are the most likely carriers of the disease, though squirrels can be infected.",
     "Squirrels and chipmunks are the most likely carriers of the disease, but mice and rodents can be infected.",
     True),
    ("Squirrels and chipmunks are the most likely carriers of the disease.",
     "Squirrels and chipmunks are the most likely carriers of the disease, but mice and rodents can be infected.",
     False),
    ("The helmets were placed in the bog.", "The swords were placed in the bog near the helmets.", False),  # passive
])
def test_a_predicate_stays_with_its_subject(sentence: str, passage: str, traded: bool) -> None:
    assert predicates_traded(sentence, [passage]) is traded


AUTISM = "Around 1% of people worldwide have autism, while roughly 5% of people have ADHD, surveys found."
GOLF = "CEO Greg Norman told Fox News that LIV Golf had offered Tiger Woods about $700 million, which he turned down."


@pytest.mark.parametrize(("sentence", "passage", "traded"), [
    ("About 5% of people worldwide have autism and roughly 1% have ADHD.", AUTISM, True),
    ("About 1% of people worldwide have autism and roughly 5% have ADHD.", AUTISM, False),
    ("Roughly 5% of people have ADHD, against about 1% with autism.", AUTISM, False),  # reordered, same pairs
    ("Tiger Woods told Fox News that LIV Golf had offered Greg Norman about $700 million.", GOLF, True),
    ("Greg Norman told Fox News that Tiger Woods turned down about $700 million from LIV Golf.", GOLF, False),
    ("This season he averages 21.8 points, 3.1 rebounds and 10.3 blocks.",
     "This season he is averaging 21.8 points, 10.3 rebounds and 3.1 blocks.", True),
    ("This season he averages 21.8 points and 10.3 rebounds.",
     "This season he is averaging 21.8 points, 10.3 rebounds and 3.1 blocks.", False),
])
def test_names_and_numbers_keep_what_follows_them(sentence: str, passage: str, traded: bool) -> None:
    assert items_traded(sentence, [passage]) is traded
