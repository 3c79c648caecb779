"""The fake Discord's fixtures, and a Footnote bot wired to it."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.config import Settings
from bot.discord.app import FootnoteBot
from bot.service import make_builder
from index.embedding import Embedder
from tests.conftest import SEED_CORPUS, make_settings
from tests.discord_fake import FakeChannel, FakeDiscord, FakeGuild, FakeMember, RunningBot
from tests.discord_fake.conftest import BotRunner, fake_discord, run_bot  # noqa: F401  (fixtures)
from tests.discord_fake.state import MANAGE_GUILD


@dataclass
class Newsroom:
    """A guild with a #news channel, an admin and a reader, and the running Footnote bot."""

    fake: FakeDiscord
    guild: FakeGuild
    channel: FakeChannel
    admin: FakeMember
    reader: FakeMember
    settings: Settings
    running: RunningBot | None = None

    @property
    def bot(self) -> FootnoteBot:
        assert self.running is not None
        return self.running.client  # type: ignore[return-value]


StartBot = Callable[..., Awaitable[Newsroom]]


@pytest.fixture
async def newsroom(fake_discord: FakeDiscord, run_bot: BotRunner, embedder: Embedder,  # noqa: F811
                   seed_settings: Settings, tmp_path: Path) -> AsyncIterator[StartBot]:
    """`await newsroom(**settings)` starts a FootnoteBot on the seed index (or a corpus of its own)."""

    async def start(corpus: Path | None = None, **overrides: object) -> Newsroom:
        guild = fake_discord.add_guild("Newsroom")
        channel = fake_discord.add_text_channel(guild, "news")
        admin = fake_discord.add_member(guild, "editor", permissions=MANAGE_GUILD)
        reader = fake_discord.add_member(guild, "reader")
        # answer whenever a sentence may: these tests are about Discord, not about calibration
        base = {"cooldown_seconds": 0.0, "dev_guild_ids": [guild.id], "database_path": tmp_path / "footnote.db",
                "guilds_dir": tmp_path / "guilds", "abstain_threshold": 0.0, "fetch_allow_hosts": ["127.0.0.1"]}
        if corpus is None:
            settings = seed_settings.model_copy(update={**base, **overrides})
        else:
            settings = make_settings(tmp_path, corpus, **{**base, **overrides})
            make_builder(settings, embedder).build(corpus)
        room = Newsroom(fake_discord, guild, channel, admin, reader, settings)
        room.running = await run_bot(FootnoteBot(settings, embedder, guild_ready_timeout=0.1), timeout=60)
        await fake_discord.wait_for(lambda: guild.id in fake_discord.commands, timeout=30)
        return room

    yield start


def copy_seed(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for path in SEED_CORPUS.iterdir():
        shutil.copy(path, folder / path.name)
    return folder
