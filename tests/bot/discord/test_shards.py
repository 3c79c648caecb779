"""Two bot processes, each one shard, sharing one PostgreSQL store: a reindex in one answers in the other."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from bot.discord.app import FootnoteBot
from bot.service import make_builder
from index.embedding import Embedder
from tests.bot.discord.conftest import copy_seed
from tests.bot.discord.test_bot import embed_of, final_message
from tests.conftest import make_settings
from tests.discord_fake import FakeDiscord
from tests.discord_fake.conftest import BotRunner
from tests.discord_fake.state import MANAGE_GUILD

QUESTION = "How long did the ferry strike last?"


def guild_on_shard(fake: FakeDiscord, shard: int, name: str):
    """Add guilds until one falls on `shard` of two (Discord's rule: (guild_id >> 22) % shard_count; the
    bits above 22 are the snowflake's millisecond, so the next millisecond's guild is on the other shard)."""
    while True:
        guild = fake.add_guild(name)
        if (guild.id >> 22) % 2 == shard:
            return guild
        time.sleep(0.001)


async def test_a_shared_reindex_on_one_shard_is_answered_from_on_the_other(
        fake_discord: FakeDiscord, run_bot: BotRunner, embedder: Embedder, tmp_path: Path,
        database_url: str) -> None:
    corpus = copy_seed(tmp_path / "corpus")
    guilds = [guild_on_shard(fake_discord, shard, f"Newsroom {shard}") for shard in (0, 1)]
    channels = [fake_discord.add_text_channel(guild, "news") for guild in guilds]
    editor = fake_discord.add_member(guilds[0], "editor", permissions=MANAGE_GUILD)
    reader = fake_discord.add_member(guilds[1], "reader")
    base = make_settings(tmp_path / "shard-0", corpus, database_url=database_url, shard_count=2, shard_id=0,
                         dev_guild_ids=[g.id for g in guilds], operator_ids=[editor.id], cooldown_seconds=0.0,
                         abstain_threshold=0.0)
    make_builder(base, embedder).build(corpus)
    other = make_settings(tmp_path / "shard-1", corpus, **{**base.model_dump(include={
        "database_url", "dev_guild_ids", "operator_ids", "cooldown_seconds", "abstain_threshold"}),
        "shard_count": 2, "shard_id": 1})
    bots = [(await run_bot(FootnoteBot(s, embedder, guild_ready_timeout=0.1), timeout=60)).client
            for s in (base, other)]
    seen = [{g.id for g in bot.guilds} for bot in bots]
    assert guilds[0].id in seen[0] - seen[1] and guilds[1].id in seen[1] - seen[0]

    (corpus / "ferry.md").write_text("---\ntitle: Ferry strike ends\n---\nThe ferry workers' union ended its "
                                     "nine-day strike on Thursday.\n", encoding="utf-8")
    reindex = await fake_discord.invoke_command(channels[0], editor, "reindex", {"shared": True})
    await fake_discord.wait_for(lambda: reindex.edits and reindex.edits[-1]["content"].startswith("Done"), timeout=120)
    published = bots[0].service.answerer.snapshot.snapshot_id
    async with asyncio.timeout(30):
        while bots[1].service.answerer.snapshot.snapshot_id != published:
            await asyncio.sleep(0.05)
    ask = await fake_discord.invoke_command(channels[1], reader, "ask", {"question": QUESTION})
    await fake_discord.wait_for(lambda: ask.edits, timeout=30)
    assert "nine-day strike" in embed_of(final_message(fake_discord, ask))["description"]
