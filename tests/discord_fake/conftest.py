"""Fixtures: `fake_discord` (a started FakeDiscord that discord.py points at) and `run_bot`.

Reuse elsewhere with `from tests.discord_fake.conftest import fake_discord, run_bot` in a conftest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import discord
import pytest

from .client_setup import RunningBot, point_discord_at, start_bot
from .server import FakeDiscord

BotRunner = Callable[..., Awaitable[RunningBot]]


@pytest.fixture
async def fake_discord() -> AsyncIterator[FakeDiscord]:
    """A fake on an ephemeral port (1 s heartbeats); teardown asserts no unsupported call was made."""
    fake = FakeDiscord(heartbeat_interval_ms=1000)
    await fake.start()
    with point_discord_at(fake.api_base, fake.gateway_url):
        yield fake
        await fake.stop()
    assert fake.unknown_calls == []


@pytest.fixture
async def run_bot(fake_discord: FakeDiscord) -> AsyncIterator[BotRunner]:
    """`await run_bot(client)` starts a client and waits for ready; teardown fails if one crashed."""
    started: list[RunningBot] = []

    async def run(client: discord.Client, **kwargs: Any) -> RunningBot:
        running = await start_bot(fake_discord, client, **kwargs)
        started.append(running)
        return running

    yield run
    try:
        fake_discord.check_clients()
    finally:
        for running in started:
            await running.stop()
