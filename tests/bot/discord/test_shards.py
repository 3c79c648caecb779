"""Shards: several in one process, processes splitting the servers, and two processes sharing one PostgreSQL
store (a reindex in one answers in the other)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from bot.config import Settings
from bot.discord.app import FootnoteBot
from bot.service import make_builder
from index.embedding import Embedder
from tests.bot.discord.conftest import copy_seed
from tests.bot.discord.test_bot import embed_of, final_message
from tests.conftest import make_settings
from tests.discord_fake import FakeDiscord, FakeGuild
from tests.discord_fake.conftest import BotRunner
from tests.discord_fake.state import MANAGE_GUILD

QUESTION = "How long did the ferry strike last?"


def guild_on_shard(fake: FakeDiscord, shard: int, name: str, count: int = 2):
    """Add guilds until one falls on `shard` of `count` (Discord's rule: (guild_id >> 22) % shard_count; the
    bits above 22 are the snowflake's millisecond, so the next millisecond's guild is on the next shard)."""
    while True:
        guild = fake.add_guild(name)
        if (guild.id >> 22) % count == shard:
            return guild
        time.sleep(0.001)


class QuickIdentifyBot(FootnoteBot):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py waits 5 s before each shard's IDENTIFY after the first (Discord's rate); skip it in tests."""


def seed_process(tmp: Path, seed: Settings, name: str, **overrides: object) -> Settings:
    """One bot process's settings on the seed index (validated, so FOOTNOTE_SHARD_* are read and checked)."""
    return make_settings(tmp / name, seed.corpus_dir, index_dir=seed.index_dir, cooldown_seconds=0.0,
                         abstain_threshold=0.0, **overrides)


def session_shards(fake: FakeDiscord) -> list[list[int]]:
    """Each identified gateway session's [shard id, shard count]."""
    return sorted(session.identify["shard"] for session in fake.sessions if session.identify)


async def ask_in(fake: FakeDiscord, guild: FakeGuild) -> str:
    """/ask from a new member in a new channel of `guild`; the answer embed's text."""
    channel = fake.add_text_channel(guild, "news")
    ask = await fake.invoke_command(channel, fake.add_member(guild, "reader"), "ask",
                                    {"question": "Who did Raisi meet in Caracas?"})
    await fake.wait_for(lambda: ask.edits, timeout=30)
    return embed_of(final_message(fake, ask))["description"]


async def test_one_process_runs_two_shards_and_answers_on_both(
        fake_discord: FakeDiscord, run_bot: BotRunner, embedder: Embedder, seed_settings: Settings,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FOOTNOTE_SHARD_COUNT", "2")
    monkeypatch.setenv("FOOTNOTE_SHARD_IDS", "0,1")
    guilds = [guild_on_shard(fake_discord, shard, f"Newsroom {shard}") for shard in (0, 1)]
    settings = seed_process(tmp_path, seed_settings, "both")
    bot = (await run_bot(QuickIdentifyBot(settings, embedder, guild_ready_timeout=0.1), timeout=60)).client
    assert session_shards(fake_discord) == [[0, 2], [1, 2]]
    assert sorted(bot.shards) == [0, 1] and {g.id for g in guilds} <= {g.id for g in bot.guilds}
    for guild in guilds:
        assert "Maduro" in await ask_in(fake_discord, guild)


async def test_two_processes_split_three_shards_without_overlap_or_gap(
        fake_discord: FakeDiscord, run_bot: BotRunner, embedder: Embedder, seed_settings: Settings,
        tmp_path: Path) -> None:
    for shard in (0, 1, 2):
        guild_on_shard(fake_discord, shard, f"Newsroom {shard}", count=3)
    parts = ([0, 2], [1])
    bots = [(await run_bot(QuickIdentifyBot(seed_process(tmp_path, seed_settings, f"process-{n}", shard_count=3,
                                                         shard_ids=ids), embedder, guild_ready_timeout=0.1),
                           timeout=60)).client for n, ids in enumerate(parts)]
    assert session_shards(fake_discord) == [[0, 3], [1, 3], [2, 3]]
    seen = [{g.id for g in bot.guilds} for bot in bots]
    assert not seen[0] & seen[1] and seen[0] | seen[1] == set(fake_discord.guilds)
    for ids, guild_ids in zip(parts, seen, strict=True):
        assert {(guild_id >> 22) % 3 for guild_id in guild_ids} == set(ids)


async def test_without_shard_settings_the_bot_runs_the_shards_discord_recommends(
        fake_discord: FakeDiscord, run_bot: BotRunner, embedder: Embedder, seed_settings: Settings,
        tmp_path: Path) -> None:
    fake_discord.guilds_per_shard = 1  # two guilds: Discord recommends two shards
    guild_ids = {fake_discord.add_guild(f"Newsroom {n}").id for n in range(2)}
    bot = (await run_bot(QuickIdentifyBot(seed_process(tmp_path, seed_settings, "auto"), embedder,
                                          guild_ready_timeout=0.1), timeout=60)).client
    assert "GET /api/v10/gateway/bot" in fake_discord.requests
    assert session_shards(fake_discord) == [[0, 2], [1, 2]] and bot.shard_count == 2
    assert {g.id for g in bot.guilds} == guild_ids


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
