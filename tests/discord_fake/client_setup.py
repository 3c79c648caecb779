"""Point discord.py at a FakeDiscord and run clients against it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import TracebackType

import discord
import yarl

from .server import FakeDiscord


class EndpointOverride:
    """discord.py's previous endpoints; `restore()` (or leaving a `with` block) puts them back."""

    def __init__(self, api_base: str, gateway: yarl.URL) -> None:
        self.api_base = api_base
        self.gateway = gateway

    def restore(self) -> None:
        discord.http.Route.BASE = self.api_base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self.gateway

    def __enter__(self) -> EndpointOverride:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.restore()


def point_discord_at(api_base: str, gateway_url: str) -> EndpointOverride:
    """Send discord.py's REST calls to `api_base` and its gateway connection to `gateway_url`."""
    previous = EndpointOverride(discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    discord.http.Route.BASE = api_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    return previous


@dataclass
class RunningBot:
    """A client whose `start()` runs as `task` (watched by the fake until `stop()`)."""

    client: discord.Client
    task: asyncio.Task[None]
    fake: FakeDiscord

    async def stop(self) -> None:
        """Close the client and wait for its task; a crash is reported by `fake.check_clients()`, not here."""
        self.fake.unwatch(self.task)
        await self.client.close()
        await asyncio.gather(self.task, return_exceptions=True)


async def start_bot(
    fake: FakeDiscord, client: discord.Client, *, token: str | None = None, timeout: float = 5.0
) -> RunningBot:
    """Start `client` against `fake` and wait for on_ready (ClientDied if it crashes first)."""
    task = asyncio.create_task(client.start(fake.token if token is None else token), name=f"client-{id(client):x}")
    fake.watch(task)
    running = RunningBot(client, task, fake)
    try:
        await fake.wait_for(client.is_ready, timeout)
    except BaseException:
        await running.stop()
        raise
    return running
