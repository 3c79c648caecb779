"""Administration: `/reindex` and `/stats`, for Manage Server or the admin roles."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord.app import NO_MENTIONS, Cooldown
from bot.discord.render import FIELD_VALUE_LIMIT, shorten
from index.builder import BuildError, BuildInProgress, BuildProgress

if TYPE_CHECKING:
    from bot.discord.app import FootnoteBot

T = TypeVar("T")
PROGRESS_EDIT_SECONDS = 1.0
NO_OWN_SOURCES = "This server has no sources of its own to rebuild; add one with /add."


def is_admin() -> Callable[[T], T]:
    """Runtime check (Discord's default permissions are only a hint admins can change)."""

    def predicate(interaction: discord.Interaction) -> bool:
        if is_admin_member(interaction):
            return True
        raise app_commands.CheckFailure("Only members with Manage Server or an admin role can do that.")

    return app_commands.check(predicate)


def is_admin_member(interaction: discord.Interaction) -> bool:
    """Whether the interaction's user may run admin commands here: Manage Server, or one of the admin roles.
    Autocompletes ask it themselves: discord.py runs a command's checks only when the command runs."""
    bot: FootnoteBot = interaction.client  # type: ignore[assignment]
    member = interaction.user
    return isinstance(member, discord.Member) and (
        member.guild_permissions.manage_guild or any(role.id in bot.settings.admin_role_ids for role in member.roles))


class ReindexProgress:
    """Collects build progress from the build thread; the event loop edits the reply at most once a second."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.latest: BuildProgress | None = None
        self.changed = asyncio.Event()

    def __call__(self, event: BuildProgress) -> None:
        self.loop.call_soon_threadsafe(self._update, event)

    def _update(self, event: BuildProgress) -> None:
        self.latest = event
        self.changed.set()

    def text(self) -> str:
        if self.latest is None:
            return "Reindexing: loading the corpus…"
        e = self.latest
        return f"Reindexing: {e.stage} {e.done}/{e.total}…"


class AdminCog(commands.Cog):
    """Reindexing and inspection commands for server admins."""

    def __init__(self, bot: FootnoteBot) -> None:
        self.bot = bot
        self.reindexes = Cooldown(bot.settings.reindex_cooldown_seconds)  # by server: one build lane serves all

    @app_commands.command(name="reindex", description="Rebuild this server's sources, or the shared articles (admins)")
    @app_commands.describe(full="Re-embed every article, not only the changed ones",
                           shared="Rebuild the shared articles instead (the bot's operators only)")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @is_admin()
    async def reindex(self, interaction: discord.Interaction, full: bool = False, shared: bool = False) -> None:
        if shared and interaction.user.id not in self.bot.settings.operator_ids:
            await interaction.response.send_message("Only the bot's operators can rebuild the shared articles.",
                                                    ephemeral=True, allowed_mentions=NO_MENTIONS)
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        if self.bot.service.building:
            await interaction.edit_original_response(content="A reindex is already running; try again when it ends.")
            return
        if not shared and (wait := self.reindexes.retry_after(interaction.guild_id)):
            await interaction.edit_original_response(
                content=f"This server's sources were rebuilt recently; try again in {max(1, round(wait / 60))} "
                        "minutes.")
            return
        progress = ReindexProgress(asyncio.get_running_loop())
        editor = asyncio.create_task(self._show_progress(interaction, progress))
        try:
            report = await self.bot.service.reindex(full, progress, None if shared else interaction.guild_id)
            text = ("Done: " + report.summary()) if report else NO_OWN_SOURCES
            if report and report.problems:
                text += "\nSkipped:\n" + "\n".join(f"• {p}" for p in report.problems[:10])
        except BuildInProgress:
            text = "A reindex is already running; try again when it ends."
        except BuildError as exc:
            text = f"Reindex failed: {exc}"
        finally:
            editor.cancel()
            await asyncio.gather(editor, return_exceptions=True)  # no progress edit can land after this
        await interaction.edit_original_response(content=shorten(text, 2000), allowed_mentions=NO_MENTIONS)

    async def _show_progress(self, interaction: discord.Interaction, progress: ReindexProgress) -> None:
        last_edit = 0.0
        while True:
            await progress.changed.wait()
            await asyncio.sleep(max(0.0, last_edit + PROGRESS_EDIT_SECONDS - time.monotonic()))
            progress.changed.clear()
            last_edit = time.monotonic()
            await interaction.edit_original_response(content=progress.text())

    @app_commands.command(name="stats", description="Index and answering statistics (admins)")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.guild_only()
    @is_admin()
    async def stats(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)  # loading the server's index takes time
        stats = await asyncio.to_thread(self.bot.service.stats, interaction.guild_id)
        feedback = (await asyncio.to_thread(self.bot.feedback.counts, interaction.guild_id)
                    if self.bot.feedback else None)
        rate = f"{stats.abstentions / stats.questions:.0%}" if stats.questions else "n/a"

        def ms(value: float | None) -> str:
            return "n/a" if value is None else f"{value:.0f} ms"

        embed = discord.Embed(title="Footnote statistics")
        for name, value in [
            ("Snapshot", stats.snapshot_id), ("Documents", str(stats.documents)), ("Chunks", str(stats.chunks)),
            ("Questions answered", str(stats.questions)), ("Abstention rate", rate),
            ("Latency p50 / p95", f"{ms(stats.p50_ms)} / {ms(stats.p95_ms)}"),
            ("Feedback", f"👍 {feedback.up} · 👎 {feedback.down}" if feedback else "n/a"),
            ("Encoder", stats.encoder),
        ]:
            embed.add_field(name=name, value=shorten(value, FIELD_VALUE_LIMIT))
        await interaction.edit_original_response(embed=embed, allowed_mentions=NO_MENTIONS)


class PageView(discord.ui.View):
    """Previous / next buttons over a list of embeds, usable only by the member who asked."""

    def __init__(self, owner_id: int, pages: list[discord.Embed]) -> None:
        super().__init__(timeout=300)
        self.owner_id = owner_id
        self.pages = pages
        self.page = 0

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        return interaction.user.id == self.owner_id

    @discord.ui.button(label="◀", style=discord.ButtonStyle.secondary)
    async def previous(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        await self._turn(interaction, -1)

    @discord.ui.button(label="▶", style=discord.ButtonStyle.secondary)
    async def next(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        await self._turn(interaction, 1)

    async def _turn(self, interaction: discord.Interaction, step: int) -> None:
        self.page = (self.page + step) % len(self.pages)
        await interaction.response.edit_message(embed=self.pages[self.page], view=self)


async def setup(bot: FootnoteBot) -> None:
    await bot.add_cog(AdminCog(bot))
