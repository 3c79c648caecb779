"""A server's own sources: `/add` a link or a file, `/remove` one (autocompleted), `/sources` lists them."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.app import NO_MENTIONS, Cooldown, error_id
from bot.discord.cogs.admin import PageView, is_admin, is_admin_member
from bot.discord.render import shorten, untrusted
from bot.library import SourceRefused, check_file_size, read_link
from bot.sources import Adder, Source
from bot.untrusted import source_link
from index.builder import BuildError, BuildInProgress
from index.documents import CorpusError
from index.extract import Extracted
from index.fetch import FetchRefused

if TYPE_CHECKING:
    from bot.discord.app import FootnoteBot

log = logging.getLogger("footnote.discord.sources")

SOURCES_PER_PAGE = 10
AUTOCOMPLETE_CHOICES = 25


class SourcesCog(commands.Cog):
    """Adding and removing a server's own articles; answers in that server draw on them."""

    def __init__(self, bot: FootnoteBot) -> None:
        self.bot = bot
        self.changes = Cooldown(3600, rate=bot.settings.adds_per_hour)

    @app_commands.command(name="add", description="Add an article to this server's sources: a link or a file (admins)")
    @app_commands.describe(url="A link to the article (http or https)",
                           file="An article file: .md, .txt, .html, .jsonl or .pdf")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @is_admin()
    async def add(self, interaction: discord.Interaction, url: str | None = None,
                  file: discord.Attachment | None = None) -> None:
        if (url is None) == (file is None):
            await _tell(interaction, "Give either a link (`url`) or a file (`file`), one of the two.")
            return
        if wait := self._rate_limited(interaction):
            await _tell(interaction, wait)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        by = Adder(interaction.user.id, str(interaction.user))
        try:
            extracted, origin = await self._read(url, file)
            added = await self.bot.service.add_source(interaction.guild_id, extracted, by, origin)
        except (FetchRefused, CorpusError, SourceRefused) as refusal:
            await _reply(interaction, f"Not added: {_sentence(str(refusal))}")
            return
        except BuildInProgress:
            await _reply(interaction, "Not added: the index is being rebuilt; try again when it is done.")
            return
        except BuildError as exc:  # its message names this machine's folders: for the log, not the server
            ident = error_id()
            log.error("adding a source to server %s failed (error id %s): %s", interaction.guild_id, ident, exc)
            await _reply(interaction, f"Not added: the article could not be indexed (error id `{ident}`).")
            return
        sample = await self.bot.service.ask(added.source.title, guild_id=interaction.guild_id)
        embed = discord.Embed(title=shorten(untrusted(added.source.title), 256),
                              url=source_link(added.source.url),
                              description=f"{'Updated' if added.updated else 'Added'}: {added.sentences} sentences "
                                          "indexed. Questions in this server now draw on it.")
        if not sample.abstained:
            embed.add_field(name=shorten(f"Try: {untrusted(added.source.title)}?", 256),
                            value=shorten(untrusted(sample.answer), 1024), inline=False)
        await interaction.edit_original_response(embed=embed, allowed_mentions=NO_MENTIONS)

    async def _read(self, url: str | None, file: discord.Attachment | None) -> tuple[list[Extracted], str]:
        """Fetch the link, or the attachment from Discord's CDN by the same rules, and extract its articles."""
        settings = self.bot.settings
        if file is None:
            return await read_link(url, settings)
        check_file_size(file.size, settings)
        return await read_link(file.url, settings, upload_name=file.filename)

    def _rate_limited(self, interaction: discord.Interaction) -> str | None:
        retry_after = self.changes.retry_after(interaction.user.id)
        if not retry_after:
            return None
        return (f"You have added or removed {self.bot.settings.adds_per_hour} sources in the last hour; "
                f"try again in {max(1, round(retry_after / 60))} minutes.")

    @app_commands.command(name="remove", description="Remove one of this server's sources (admins)")
    @app_commands.describe(source="The source to remove (start typing its title)")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @is_admin()
    async def remove(self, interaction: discord.Interaction, source: str) -> None:
        source_id = _source_id(source)
        if source_id is None:
            await _tell(interaction, "Pick a source from the list as you type its title.")
            return
        if wait := self._rate_limited(interaction):
            await _tell(interaction, wait)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            removed = await self.bot.service.remove_source(interaction.guild_id, source_id,
                                                           Adder(interaction.user.id, str(interaction.user)))
        except SourceRefused as refusal:
            await _reply(interaction, f"Not removed: {refusal}")
            return
        except BuildInProgress:
            await _reply(interaction, "Not removed: the index is being rebuilt; try again when it is done.")
            return
        await _reply(interaction, f"Removed “{shorten(untrusted(removed.title), 200)}”; "
                                  "answers in this server no longer draw on it.")

    @remove.autocomplete("source")
    async def remove_choices(self, interaction: discord.Interaction, typed: str) -> list[app_commands.Choice[str]]:
        """This server's sources whose title holds what was typed, most recent first (for admins only)."""
        if interaction.guild_id is None or not is_admin_member(interaction):
            return []
        wanted = typed.casefold().strip()
        sources = await asyncio.to_thread(self.bot.service.sources, interaction.guild_id)
        sources = [s for s in sources if wanted in s.title.casefold()]
        return [app_commands.Choice(name=shorten(s.title, 100) or s.name[:100], value=str(s.source_id))
                for s in sources[:AUTOCOMPLETE_CHOICES]]

    @app_commands.command(name="sources", description="List this server's sources and the shared articles (admins)")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @is_admin()
    async def sources(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # the database, maybe the server's index
        pages = await asyncio.to_thread(self.source_pages, interaction.guild_id)
        view = PageView(interaction.user.id, pages)
        await interaction.edit_original_response(embed=pages[0], view=view if len(pages) > 1 else discord.utils.MISSING,
                                                 allowed_mentions=NO_MENTIONS)

    def source_pages(self, guild_id: int) -> list[discord.Embed]:
        """The server's own sources (who added them, when), then the shared articles, ten a page."""
        lines = [_own_line(source) for source in self.bot.service.sources(guild_id)]
        answerer = self.bot.service.answerer
        if answerer is not None:
            lines += [f"**{shorten(untrusted(d.title), 120)}** — shared" for d in answerer.snapshot.documents.values()]
        pages = []
        for first in range(0, len(lines), SOURCES_PER_PAGE):
            page = discord.Embed(title=f"Sources ({len(lines)})",
                                 description=shorten("\n".join(lines[first : first + SOURCES_PER_PAGE]), 4096))
            page.set_footer(text=f"Page {first // SOURCES_PER_PAGE + 1}/{-(-len(lines) // SOURCES_PER_PAGE)}")
            pages.append(page)
        return pages or [discord.Embed(title="Sources", description="Nothing is indexed yet.")]


def _own_line(source: Source) -> str:
    when = dt.datetime.fromtimestamp(source.added_at, dt.UTC).strftime("%Y-%m-%d")
    link = f" <{url}>" if (url := source_link(source.url)) else ""
    return f"**{shorten(untrusted(source.title), 120)}**{link} — added by {untrusted(source.added_by_name)} on {when}"


def _sentence(text: str) -> str:
    """A refusal as a sentence: a capital first letter and a full stop."""
    text = text.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else text + "."


def _source_id(value: str) -> int | None:
    """The source id an autocomplete choice carries (ASCII digits, a positive 64-bit integer), else None: "²" is a
    digit to `str.isdigit` but no number to `int`, and twenty digits overflow the database's integer."""
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) < 2**63:
        return None
    return int(value)


async def _tell(interaction: discord.Interaction, text: str) -> None:
    await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


async def _reply(interaction: discord.Interaction, text: str) -> None:
    await interaction.edit_original_response(content=shorten(text, 2000), allowed_mentions=NO_MENTIONS)


async def setup(bot: FootnoteBot) -> None:
    await bot.add_cog(SourcesCog(bot))
