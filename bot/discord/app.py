"""The Footnote Discord bot: a `commands.AutoShardedBot` that builds its shared services in `setup_hook`."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import uuid

import aiohttp
import discord
import yarl
from discord import app_commands
from discord.ext import commands

from bot.config import Settings
from bot.discord.feedback import FeedbackStore, FeedbackView, open_feedback
from bot.scorer import ModelError
from bot.service import QAService, ServiceClosed
from index.embedding import Embedder, EmbedderError
from index.store import SnapshotError

log = logging.getLogger("footnote.discord")

EXTENSIONS = ("bot.discord.cogs.ask", "bot.discord.cogs.admin", "bot.discord.cogs.sources")
NO_MENTIONS = discord.AllowedMentions.none()
EXIT_CONFIG = 2
SHUTDOWN_GRACE_SECONDS = 8.0


def point_discord_at(api_base: str, gateway_url: str) -> None:
    """Send REST calls and the Gateway connection to the configured (Discord or compatible) server."""
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def error_id() -> str:
    return uuid.uuid4().hex[:8]


class Cooldown:
    """`rate` actions per user (or per server) per `seconds` (one question, shared by /ask and mentions; source
    changes; a server's reindex), with discord.py's CooldownMapping, which forgets those whose cooldown ended."""

    def __init__(self, seconds: float, rate: int = 1) -> None:
        self._mapping = commands.CooldownMapping.from_cooldown(rate, seconds, _by_id) if seconds > 0 else None

    def retry_after(self, key: int) -> float:
        """0 when the user (or server) `key` may act now (and starts their cooldown), else seconds left."""
        if self._mapping is None:
            return 0.0
        bucket = self._mapping.get_bucket(key)
        return (bucket.update_rate_limit() or 0.0) if bucket else 0.0


def _by_id(key: int) -> int:
    return key


class InFlight:
    """The answers being given (question to reply): closing waits for them before the connection goes."""

    def __init__(self) -> None:
        self._count = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def __aenter__(self) -> None:
        self._count += 1
        self._idle.clear()

    async def __aexit__(self, *exc_info: object) -> None:
        self._count -= 1
        if self._count == 0:
            self._idle.set()

    async def finished(self, seconds: float) -> bool:
        """Wait up to `seconds` for every answer under way to be sent; whether they all were."""
        try:
            await asyncio.wait_for(self._idle.wait(), seconds)
        except TimeoutError:
            return False
        return True


class FootnoteBot(commands.AutoShardedBot):
    """Answers questions about the indexed articles in Discord.

    Runs FOOTNOTE_SHARD_IDS of FOOTNOTE_SHARD_COUNT shards in this process (all of them without ids; without
    a count, as many as Discord recommends), so N processes can split the servers.
    """

    def __init__(self, settings: Settings, embedder: Embedder | None = None, **options) -> None:
        intents = discord.Intents.default()
        intents.message_content = settings.message_content_intent
        options = {"shard_count": settings.shard_count, "shard_ids": settings.shard_ids, **options}
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False  # no voice: no warning of its libraries
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, allowed_mentions=NO_MENTIONS,
                         help_command=None, **options)
        self.settings = settings
        self.service = QAService(settings, embedder)
        self.feedback: FeedbackStore | None = None
        self.cooldown = Cooldown(settings.cooldown_seconds)
        self.answering = InFlight()
        self.closing = False
        self.tree.on_error = self.on_app_command_error

    async def setup_hook(self) -> None:
        await self.service.start()
        self.feedback = await asyncio.to_thread(open_feedback, self.settings)
        self.add_view(FeedbackView(self.feedback))
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands()

    async def on_message(self, message: discord.Message, /) -> None:
        """No prefix commands: mentions are questions, handled by the ask cog's listener."""

    async def sync_commands(self) -> None:
        """Sync to the development guilds when set (instant), else globally."""
        if not self.settings.dev_guild_ids:
            await self.tree.sync()
            return
        for guild_id in self.settings.dev_guild_ids:
            guild = discord.Object(id=guild_id)
            self.tree.copy_global_to(guild=guild)
            await self.tree.sync(guild=guild)

    async def close(self) -> None:
        """Refuse new questions, let the answers under way reach their askers (up to SHUTDOWN_GRACE_SECONDS:
        Docker and systemd wait 10 s before killing), then close the connection, the service and the database."""
        if not self.closing:
            self.closing = True
            self.service.stop_building()
            if not await self.answering.finished(SHUTDOWN_GRACE_SECONDS):
                log.warning("closing with answers still under way after %s s", SHUTDOWN_GRACE_SECONDS)
        await super().close()
        await self.service.close()
        if self.feedback:
            self.feedback.close()

    def channel_allowed(self, channel: discord.abc.Messageable | None) -> bool:
        allowed = self.settings.allowed_channel_ids
        if not allowed or channel is None:
            return not allowed
        parent_id = getattr(channel, "parent_id", None)
        return getattr(channel, "id", None) in allowed or parent_id in allowed

    async def on_app_command_error(self, interaction: discord.Interaction,
                                   error: app_commands.AppCommandError) -> None:
        if isinstance(error, app_commands.CheckFailure):
            text = str(error) or "You can't use this command here."
        else:
            ident = error_id()
            log.error("command %s failed (error id %s)", interaction.command and interaction.command.name,
                      ident, exc_info=error)
            text = f"Sorry, something went wrong (error id `{ident}`)."
        await send_ephemeral(interaction, text)


async def send_ephemeral(interaction: discord.Interaction, text: str) -> None:
    """Reply privately whether or not the interaction was already acknowledged."""
    if interaction.response.is_done():
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
    else:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


def run_bot(settings: Settings) -> int:
    """Start the bot; a missing or rejected token gives one clear line and exit status 2, Discord out of reach
    one clear line and exit status 1."""
    if settings.discord_token is None or not settings.discord_token.get_secret_value().strip():
        print("footnote: FOOTNOTE_DISCORD_TOKEN is not set (see README: Discord set-up)", file=sys.stderr)
        return EXIT_CONFIG
    plain = logging.Formatter("[{asctime}] [{levelname:<8}] {name}: {message}", "%Y-%m-%d %H:%M:%S", style="{")
    discord.utils.setup_logging(level=logging.INFO, formatter=discord.utils.MISSING if sys.stderr.isatty() else plain)
    for client_library in ("httpx", "httpx2"):  # their INFO line for every request names the URL, credentials too
        logging.getLogger(client_library).setLevel(logging.WARNING)
    point_discord_at(settings.discord_api_base, settings.discord_gateway_url)
    try:
        asyncio.run(_serve(settings))
    except discord.PrivilegedIntentsRequired:
        print("footnote: FOOTNOTE_MESSAGE_CONTENT_INTENT is on but the Message Content intent is not enabled "
              "for this application in Discord's developer portal", file=sys.stderr)
        return EXIT_CONFIG
    except discord.LoginFailure:
        print("footnote: Discord rejected the token (401 Unauthorized): check FOOTNOTE_DISCORD_TOKEN",
              file=sys.stderr)
        return EXIT_CONFIG
    except (aiohttp.ClientConnectionError, discord.GatewayNotFound, discord.DiscordServerError) as exc:
        print(f"footnote: could not reach Discord at {settings.discord_api_base}: {exc}", file=sys.stderr)
        return 1
    except (SnapshotError, EmbedderError, ModelError) as exc:
        print(f"footnote: {exc}", file=sys.stderr)
        return 1
    except ServiceClosed:  # SIGTERM before it was serving: closed as asked
        log.info("stopped while starting")
    except KeyboardInterrupt:
        pass
    return 0


async def _serve(settings: Settings) -> None:
    """Serve until the connection ends, Ctrl-C, or SIGTERM (`docker stop`, systemd), which closes the bot as
    Ctrl-C does: its service, worker threads and database connections are closed, not killed."""
    assert settings.discord_token is not None
    async with FootnoteBot(settings) as bot:
        closing: list[asyncio.Task[None]] = []

        def close_on_sigterm() -> None:
            if not closing:
                log.info("SIGTERM: closing")
                closing.append(asyncio.create_task(bot.close()))

        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, close_on_sigterm)
        await bot.start(settings.discord_token.get_secret_value())
        await asyncio.gather(*closing)  # the service closes after the connection
