"""Answers as Discord embeds, within every Discord limit; quotes are shortened, never reworded."""

from __future__ import annotations

import re
from dataclasses import replace

import discord

from bot.answer import Answer, Citation
from bot.untrusted import source_link

CONTENT_LIMIT = 2000
TITLE_LIMIT = 256
DESCRIPTION_LIMIT = 4096
FIELD_NAME_LIMIT = 256
FIELD_VALUE_LIMIT = 1024
FIELD_COUNT_LIMIT = 25
EMBED_TOTAL_LIMIT = 6000
FOOTER_LIMIT = 2048
MIN_QUOTE_CHARS = 80
MIN_NAME_CHARS = 60

_MARKDOWN = re.compile(r"([\\*_~|`>#\[\]])")
_FOOTNOTE = re.compile(r"(\[\d+\])")

ANSWER_COLOUR = discord.Colour.from_rgb(67, 160, 71)
ABSTAIN_COLOUR = discord.Colour.from_rgb(240, 160, 32)
ABSTAIN_TITLE = "No sure answer"


def shorten(text: str, limit: int) -> str:
    """`text` cut at a word boundary with "…" when longer than `limit` characters."""
    if len(text) <= limit:
        return text
    cut = text[: max(limit - 1, 0)]
    if " " in cut[limit // 2 :]:
        cut = cut.rsplit(" ", 1)[0]
    return cut + "…"


def untrusted(text: str) -> str:
    """Article-supplied text (a title, a quote) shown literally: no markdown, masked link or mention takes
    effect (every markdown character is escaped, mentions get a zero-width space)."""
    return discord.utils.escape_mentions(_MARKDOWN.sub(r"\\\1", text))


def answer_text(answer: Answer) -> str:
    """The answer as the description shows it. An extractive answer is article text, shown literally as quotes are
    (an added page's masked link or heading must not take effect), its footnote markers left readable; a
    generated one is already plain text (`bot.untrusted`), its kept links in <> that escaping would break."""
    if answer.mode == "generated":
        return answer.answer
    pieces = _FOOTNOTE.split(answer.answer)
    return "".join(piece if _FOOTNOTE.fullmatch(piece) else untrusted(piece) for piece in pieces)


def citation_field(citation: Citation, value_limit: int = FIELD_VALUE_LIMIT) -> tuple[str, str]:
    """(name, value): the source label over the quote and the source link (none unless `source_link` shows it)."""
    name = shorten(replace(citation, title=untrusted(citation.title)).label(), FIELD_NAME_LIMIT)
    url = source_link(citation.url)
    link = f"\n{url}" if url and len(url) < value_limit // 2 else ""
    quote = shorten(untrusted(citation.quote), value_limit - len(link) - 2)
    return name, f"“{quote}”{link}"


def footer_text(answer: Answer) -> str:
    t = answer.timings_ms
    parts = [f"{key} {t[key]:.0f} ms" for key in ("embed", "search", "compose", "total") if key in t]
    mode = "" if answer.mode == "extractive" else f"{answer.mode} · "
    return shorten(mode + " · ".join(parts), FOOTER_LIMIT)


def answer_embed(answer: Answer) -> discord.Embed:
    """The answer (or the abstention with its closest passages) as one embed within Discord's limits."""
    abstained = answer.abstained
    short = f"**{discord.utils.escape_markdown(answer.short_answer.text)}**\n" if answer.short_answer else ""
    embed = discord.Embed(
        title=ABSTAIN_TITLE if abstained else shorten(answer.question, TITLE_LIMIT),
        description=short + shorten(answer_text(answer), DESCRIPTION_LIMIT - len(short)),
        colour=ABSTAIN_COLOUR if abstained else ANSWER_COLOUR,
    )
    citations = (answer.suggestions if abstained else answer.citations)[:FIELD_COUNT_LIMIT]
    budget = EMBED_TOTAL_LIMIT - len(embed.title or "") - len(embed.description or "") - FOOTER_LIMIT // 8
    fields = _fields_within(citations, budget, closest=abstained)
    for name, value in fields:
        embed.add_field(name=name, value=value, inline=False)
    embed.set_footer(text=shorten(footer_text(answer), FOOTER_LIMIT // 8))
    return embed


def _fields_within(citations: list[Citation], budget: int, closest: bool) -> list[tuple[str, str]]:
    """Citation fields whose total length fits `budget`: quotes shortened evenly first, then titles,
    then the last fields dropped."""
    value_limit, name_limit = FIELD_VALUE_LIMIT, FIELD_NAME_LIMIT
    while citations:
        fields = [citation_field(c, value_limit) for c in citations]
        prefix = "Closest: " if closest else ""
        fields = [(shorten(prefix + name, name_limit), value) for name, value in fields]
        if sum(len(n) + len(v) for n, v in fields) <= budget:
            return fields
        if value_limit > MIN_QUOTE_CHARS:
            value_limit = max(MIN_QUOTE_CHARS, int(value_limit * 0.8))
        elif name_limit > MIN_NAME_CHARS:
            name_limit = MIN_NAME_CHARS
        else:
            citations = citations[:-1]
    return []


def plain_text(text: str) -> str:
    """Message content within the 2,000-character limit."""
    return shorten(text, CONTENT_LIMIT)
