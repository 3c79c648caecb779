"""A fake Discord (REST v10 + Gateway) for testing unmodified discord.py bots over real sockets."""

from .client_setup import EndpointOverride, RunningBot, point_discord_at, start_bot
from .interactions import PermissionRefused, UnknownCommand
from .messages import Outgoing, Pings
from .server import AutocompleteRefused, ClientDied, FakeDiscord
from .state import FakeChannel, FakeGuild, FakeMember, FakeRole, FakeUser, InteractionRecord
from .uploads import FakeUpload

__all__ = [
    "AutocompleteRefused",
    "ClientDied",
    "EndpointOverride",
    "FakeChannel",
    "FakeDiscord",
    "FakeGuild",
    "FakeMember",
    "FakeRole",
    "FakeUpload",
    "FakeUser",
    "InteractionRecord",
    "Outgoing",
    "PermissionRefused",
    "Pings",
    "RunningBot",
    "UnknownCommand",
    "point_discord_at",
    "start_bot",
]
