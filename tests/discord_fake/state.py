"""Entities of the fake Discord world (users, guilds, roles, channels) and interaction records."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

Payload = dict[str, Any]

DISCORD_EPOCH_MS = 1_420_070_400_000

# Permission bits (https://discord.com/developers/docs/topics/permissions).
ADMINISTRATOR = 1 << 3
MANAGE_GUILD = 1 << 5
MANAGE_MESSAGES = 1 << 13
MANAGE_THREADS = 1 << 34
ALL_PERMISSIONS = (1 << 51) - 1
EVERYONE_PERMISSIONS = sum(
    1 << bit for bit in (0, 6, 10, 11, 14, 15, 16, 18, 20, 21, 25, 26, 31, 35, 36, 38)
)
BOT_PERMISSIONS = EVERYONE_PERMISSIONS | MANAGE_MESSAGES | MANAGE_THREADS

# Gateway intents.
GUILDS = 1 << 0
GUILD_MEMBERS = 1 << 1
GUILD_MESSAGES = 1 << 9
MESSAGE_CONTENT = 1 << 15

# Channel types.
TEXT_CHANNEL = 0
PUBLIC_THREAD = 11
PRIVATE_THREAD = 12

# Interaction callback type answering an autocomplete interaction.
AUTOCOMPLETE_RESULT = 8


def now_iso() -> str:
    """Current UTC time as Discord's ISO-8601 timestamp."""
    return datetime.now(UTC).isoformat()


class Snowflakes:
    """Strictly increasing snowflake ids carrying the current timestamp."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        """Return a fresh snowflake."""
        stamped = (int(time.time() * 1000) - DISCORD_EPOCH_MS) << 22
        self._last = max(stamped, self._last + 1)
        return self._last


@dataclass
class FakeUser:
    """A Discord user (human or bot)."""

    id: int
    username: str
    bot: bool = False

    @property
    def mention(self) -> str:
        return f"<@{self.id}>"

    def payload(self) -> Payload:
        """The user object."""
        return {
            "id": str(self.id),
            "username": self.username,
            "discriminator": "0",
            "global_name": None if self.bot else self.username,
            "avatar": None,
            "bot": self.bot,
            "system": False,
            "public_flags": 0,
            "flags": 0,
            "banner": None,
            "accent_color": None,
            "avatar_decoration_data": None,
            "primary_guild": None,
            "collectibles": None,
        }


@dataclass
class FakeRole:
    """A guild role; the @everyone role has the guild's id."""

    id: int
    name: str
    permissions: int
    position: int = 0
    bot_id: int | None = None

    @property
    def mention(self) -> str:
        return f"<@&{self.id}>"

    def payload(self) -> Payload:
        """The role object."""
        data: Payload = {
            "id": str(self.id),
            "name": self.name,
            "color": 0,
            "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
            "hoist": False,
            "icon": None,
            "unicode_emoji": None,
            "position": self.position,
            "permissions": str(self.permissions),
            "managed": self.bot_id is not None,
            "mentionable": True,
            "flags": 0,
        }
        if self.bot_id is not None:
            data["tags"] = {"bot_id": str(self.bot_id)}
        return data


@dataclass
class FakeMember:
    """A user's membership in one guild."""

    user: FakeUser
    guild: FakeGuild = field(repr=False, compare=False)
    role_ids: list[int] = field(default_factory=list)
    joined_at: str = field(default_factory=now_iso)

    @property
    def id(self) -> int:
        return self.user.id

    @property
    def mention(self) -> str:
        return self.user.mention

    @property
    def permissions(self) -> int:
        """Guild-level permissions (owner and Administrator get everything)."""
        return self.guild.permissions_of(self)

    def payload(self, *, with_user: bool = True) -> Payload:
        """The guild member object (gateway messages omit the user)."""
        data: Payload = {
            "roles": [str(role_id) for role_id in self.role_ids],
            "nick": None,
            "avatar": None,
            "banner": None,
            "joined_at": self.joined_at,
            "premium_since": None,
            "deaf": False,
            "mute": False,
            "pending": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            data["user"] = self.user.payload()
        return data


@dataclass
class FakeChannel:
    """A guild text channel or thread; `messages` holds visible message payloads in order."""

    id: int
    guild: FakeGuild = field(repr=False, compare=False)
    name: str
    type: int = TEXT_CHANNEL
    position: int = 0
    parent_id: int | None = None
    owner_id: int | None = None
    auto_archive_duration: int = 1440
    created_at: str = field(default_factory=now_iso)
    messages: dict[int, Payload] = field(default_factory=dict, repr=False)

    @property
    def is_thread(self) -> bool:
        return self.type in (PUBLIC_THREAD, PRIVATE_THREAD)

    def payload(self) -> Payload:
        """The channel object."""
        last = str(next(reversed(self.messages))) if self.messages else None
        data: Payload = {
            "id": str(self.id),
            "type": self.type,
            "guild_id": str(self.guild.id),
            "name": self.name,
            "parent_id": None if self.parent_id is None else str(self.parent_id),
            "last_message_id": last,
            "rate_limit_per_user": 0,
            "flags": 0,
        }
        if self.is_thread:
            data.update(self._thread_fields())
        else:
            data.update(position=self.position, permission_overwrites=[], topic=None, nsfw=False)
        return data

    def _thread_fields(self) -> Payload:
        return {
            "owner_id": str(self.owner_id),
            "message_count": len(self.messages),
            "total_message_sent": len(self.messages),
            "member_count": 1,
            "applied_tags": [],
            "thread_metadata": {
                "archived": False,
                "auto_archive_duration": self.auto_archive_duration,
                "archive_timestamp": self.created_at,
                "create_timestamp": self.created_at,
                "locked": False,
                "invitable": True,
            },
        }


@dataclass
class FakeGuild:
    """A guild with its roles, channels (threads included) and members."""

    id: int
    name: str
    owner_id: int
    roles: dict[int, FakeRole] = field(default_factory=dict)
    channels: dict[int, FakeChannel] = field(default_factory=dict)
    members: dict[int, FakeMember] = field(default_factory=dict)
    joined_at: str = field(default_factory=now_iso)

    @property
    def everyone(self) -> FakeRole:
        return self.roles[self.id]

    def permissions_of(self, member: FakeMember) -> int:
        """Permissions from @everyone and the member's roles, ignoring channel overwrites."""
        if member.id == self.owner_id:
            return ALL_PERMISSIONS
        perms = self.everyone.permissions
        for role_id in member.role_ids:
            perms |= self.roles[role_id].permissions
        return ALL_PERMISSIONS if perms & ADMINISTRATOR else perms

    def mention_entry(self, user_id: int) -> Payload | None:
        """A `mentions` array entry (user plus partial member), None for non-members."""
        member = self.members.get(user_id)
        if member is None:
            return None
        return {**member.user.payload(), "member": member.payload(with_user=False)}

    def payload(self, *, member_ids: set[int]) -> Payload:
        """The GUILD_CREATE payload listing only the members in `member_ids`."""
        channels = list(self.channels.values())
        return {
            "id": str(self.id),
            "name": self.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(self.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "premium_tier": 0,
            "premium_subscription_count": 0,
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "vanity_url_code": None,
            "features": [],
            "roles": [role.payload() for role in self.roles.values()],
            "emojis": [],
            "stickers": [],
            "joined_at": self.joined_at,
            "large": False,
            "unavailable": False,
            "member_count": len(self.members),
            "members": [m.payload() for m in self.members.values() if m.id in member_ids],
            "channels": [c.payload() for c in channels if not c.is_thread],
            "threads": [c.payload() for c in channels if c.is_thread],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
        }


@dataclass
class InteractionRecord:
    """What the bot did with one dispatched interaction.

    `history` lists ("ack" | "followup" | "edit" | "delete", payload) in order; `rejections`
    lists the Discord error codes the fake answered (10062, 10015, 40060, ...) and
    `rejection_messages` the full errors. Autocomplete records keep the focused option's schema.
    """

    id: int
    token: str
    type: int
    name: str
    guild_id: int
    channel_id: int
    user_id: int
    dispatched_at: float = field(default_factory=time.monotonic)
    message: Payload | None = None
    focused_option: Payload | None = None
    ack_type: int | None = None
    ack_after: float | None = None
    ephemeral: bool = False
    original: Payload | None = None
    followups: list[Payload] = field(default_factory=list)
    history: list[tuple[str, Payload]] = field(default_factory=list)
    rejections: list[int] = field(default_factory=list)
    rejection_messages: list[str] = field(default_factory=list)

    @property
    def acknowledged(self) -> bool:
        return self.ack_type is not None

    @property
    def choices(self) -> list[Payload] | None:
        """The autocomplete choices ({name, value}) the bot answered with; None before it did."""
        if self.ack_type != AUTOCOMPLETE_RESULT:
            return None
        return next(body for kind, body in self.history if kind == "ack")["data"]["choices"]

    @property
    def edits(self) -> list[Payload]:
        """Message payloads after each edit, in order."""
        return [payload for kind, payload in self.history if kind == "edit"]
