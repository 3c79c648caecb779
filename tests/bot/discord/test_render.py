"""Embeds stay within every Discord limit whatever the answer, and quotes are only ever shortened."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.answer import ABSTAIN_TEXT, Answer, Citation, ShortAnswer
from bot.discord.render import ABSTAIN_TITLE, answer_embed, citation_field, shorten
from bot.untrusted import source_link


def citation(n: int, quote: str, title: str = "Title", url: str = "https://example.org/a") -> Citation:
    return Citation(n=n, doc_id="d", title=title, url=url, quote=quote, start=0, end=len(quote),
                    chunk_id="d#0", score=0.5, paragraph=n)


def test_shorten_cuts_at_a_word_and_marks_it() -> None:
    assert shorten("short", 10) == "short"
    cut = shorten("one two three four five six", 15)
    assert cut == "one two three…" and len(cut) <= 15


def test_huge_answer_fits_every_limit() -> None:
    quotes = [f"quote {n} " + "word " * 500 for n in range(30)]
    answer = Answer("q" * 400, "answer " * 1000, False, [citation(n, q, "T" * 300) for n, q in enumerate(quotes, 1)],
                    timings_ms={"embed": 1, "search": 2, "compose": 3, "total": 6})
    embed = answer_embed(answer)
    assert len(embed.title) <= 256 and len(embed.description) <= 4096
    assert 10 <= len(embed.fields) <= 25
    assert [f.name[:4] for f in embed.fields] == [f"[{n}] "[:4] for n in range(1, len(embed.fields) + 1)]
    assert all(len(f.name) <= 256 and len(f.value) <= 1024 for f in embed.fields)
    assert len(embed) <= 6000
    for field, quote in zip(embed.fields, quotes, strict=False):
        shown = field.value.split("”")[0].lstrip("“").rstrip("…")
        assert quote.startswith(shown)


def test_field_keeps_the_quote_and_link_when_they_fit() -> None:
    name, value = citation_field(citation(2, "Maduro met Raisi."))
    assert name == "[2] Title — paragraph 2"
    assert value == "“Maduro met Raisi.”\nhttps://example.org/a"


def test_titles_and_quotes_from_articles_are_shown_literally() -> None:
    source = replace(citation(1, "Read **this** at [x](https://evil.example) @everyone"), title="# [Win](https://evil.example)")
    name, value = citation_field(source)
    assert name == r"[1] \# \[Win\](https://evil.example) — paragraph 1"
    assert value.startswith(r"“Read \*\*this\*\* at \[x\](https://evil.example) @" + "\u200beveryone”")


def test_abstention_looks_different_and_lists_closest_passages() -> None:
    answer = Answer("Who?", ABSTAIN_TEXT, True, [], [citation(1, "Nearby text.")])
    embed = answer_embed(answer)
    assert embed.title == ABSTAIN_TITLE and embed.fields[0].name.startswith("Closest: [1]")
    assert embed.colour != answer_embed(Answer("Who?", "A [1]", False, [citation(1, "A")])).colour


def test_short_answer_is_bold_before_the_sentences_and_sources_show_their_date() -> None:
    dated = Citation(n=1, doc_id="d", title="Bills update", url="", quote="The Buffalo Bills player", start=4,
                     end=28, chunk_id="d#0", score=0.9, paragraph=2, published="2023/01/05")
    answer = Answer("Which team?", "The Buffalo Bills player [1]", False, [dated],
                    short_answer=ShortAnswer("Buffalo *Bills*", 4, 19, 1))
    embed = answer_embed(answer)
    assert embed.description == "**Buffalo \\*Bills\\***\nThe Buffalo Bills player [1]"
    assert embed.fields[0].name == "[1] Bills update — 2023/01/05 — paragraph 2"
    assert answer_embed(Answer("Which team?", "A [1]", False, [citation(1, "A")])).description == "A [1]"


def test_an_extractive_answer_is_shown_literally_with_readable_footnotes() -> None:
    quote = "# Results: [official results](https://evil.example/x) @everyone"
    embed = answer_embed(Answer("Results?", f"{quote} [1]", False, [citation(1, quote)]))
    assert embed.description == r"\# Results: \[official results\](https://evil.example/x) @" + "\u200beveryone [1]"
    generated = Answer("Results?", "See <https://example.org/a>. [1]", False, [citation(1, "x")], mode="generated")
    assert answer_embed(generated).description == "See <https://example.org/a>. [1]"


@pytest.mark.parametrize("url", [
    "https://news.example/bridge [Refund form](https://evil.example/phish)",  # a page's own url: field
    "https://news.example/a||spoiler||", "javascript:alert(1)", "https://", "https://discord.gg/abc",
])
def test_a_sources_url_that_would_be_markup_is_not_shown(url: str) -> None:
    """A source's URL comes from its page: one that is no plain link is left out, so the page's author cannot
    plant a masked link in every answer that cites it."""
    assert source_link(url) is None
    assert citation_field(replace(citation(1, "Join us."), url=url))[1] == "“Join us.”"


def test_an_invite_is_never_shown_as_a_sources_link() -> None:
    invited = replace(citation(1, "Join us."), url="https://discord.gg/abc")
    assert "discord.gg" not in citation_field(invited)[1]
    assert citation_field(replace(invited, url="https://news.example/a"))[1].endswith("\nhttps://news.example/a")
