"""FakeDiscord: a local Discord (REST v10 + Gateway) that an unmodified discord.py client talks to."""

from __future__ import annotations

import asyncio
import copy
import itertools
import math
import secrets
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from aiohttp import web

from .gateway import Gateway, GatewaySession
from .httpio import DiscordError, Handler, discord_errors, invalid_form
from .interactions import (
    UnknownCommand,
    autocomplete_data,
    check_permissions,
    command_data,
    component_type,
    interaction_payload,
)
from .messages import (
    EPHEMERAL,
    Outgoing,
    Pings,
    apply_edit,
    author_of,
    mentioned,
    new_message,
    notified,
    referenced_author,
    resolve_attachments,
    set_mentions,
    validate,
    within_guild,
)
from .rest import RestApi, bot_auth
from .state import (
    BOT_PERMISSIONS,
    EVERYONE_PERMISSIONS,
    PRIVATE_THREAD,
    PUBLIC_THREAD,
    FakeChannel,
    FakeGuild,
    FakeMember,
    FakeRole,
    FakeUser,
    InteractionRecord,
    Payload,
    Snowflakes,
    now_iso,
)
from .uploads import FakeUpload, UploadHost
from .webhooks import WebhookApi

T = TypeVar("T")
SENDABLE_FLAGS = 4 | 4096 | 32768  # SUPPRESS_EMBEDS, SUPPRESS_NOTIFICATIONS, IS_COMPONENTS_V2
HAS_THREAD = 1 << 5


class ClientDied(AssertionError):
    """A watched discord.py client task finished while the test still relied on it."""


class AutocompleteRefused(AssertionError):
    """Discord refused the bot's autocomplete result (too many choices, over-long names or values...)."""


class FakeDiscord:
    """In-process Discord. Build the world with `add_*`, act as users, then inspect the records.

    Records: `outbox` (every bot send/edit with its allowed_mentions and pings), `interactions`
    (by id), `commands` (synced schemas by guild id, None = global), `typing`, `reactions`,
    `presence_updates`, `requests` (every HTTP call), `unknown_calls` (unsupported routes/ops) and
    `uploads` (files users attached to commands, served on loopback).
    """

    def __init__(
        self,
        token: str = "test-token",
        *,
        ack_deadline: float = 3.0,
        heartbeat_interval_ms: int = 41_250,
        bot_name: str = "FakeBot",
        guilds_per_shard: int = 1000,
    ) -> None:
        self.token = token
        self.guilds_per_shard = guilds_per_shard
        self.ack_deadline = ack_deadline
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.ids = Snowflakes()
        self.bot_user = FakeUser(self.ids.next(), bot_name, bot=True)
        self.application_id = self.bot_user.id
        self.guilds: dict[int, FakeGuild] = {}
        self.channels: dict[int, FakeChannel] = {}
        self.commands: dict[int | None, list[Payload]] = {}
        self.interactions: dict[int, InteractionRecord] = {}
        self.outbox: list[Outgoing] = []
        self.typing: list[int] = []
        self.reactions: list[tuple[int, int, str]] = []
        self.presence_updates: list[Any] = []
        self.requests: list[str] = []
        self.unknown_calls: list[str] = []
        self.uploads = UploadHost()
        self.gateway = Gateway(self)
        self.api_base = self.gateway_url = ""
        self._runner: web.AppRunner | None = None
        self._watched: set[asyncio.Task[Any]] = set()

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Serve on an ephemeral 127.0.0.1 port; sets `api_base` and `gateway_url`."""
        app = web.Application(middlewares=[self._log_request, discord_errors, bot_auth(self)])
        app.router.add_get("/", self.gateway.handle)
        app.router.add_routes(RestApi(self).routes() + WebhookApi(self).routes() + self.uploads.routes())
        app.router.add_route("*", "/{tail:.*}", self._unknown_route)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        port = self._runner.addresses[0][1]
        origin = self.uploads.origin = f"http://127.0.0.1:{port}"
        self.api_base = f"{origin}/api/v10"
        self.gateway_url = f"ws://127.0.0.1:{port}/"

    async def stop(self) -> None:
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()

    @web.middleware
    async def _log_request(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path_qs}")
        return await handler(request)

    async def _unknown_route(self, request: web.Request) -> web.Response:
        self.unknown_calls.append(f"{request.method} {request.path_qs}")
        raise DiscordError(404, 0, "404: Not Found")

    # -- building the world ------------------------------------------------------------------

    def add_guild(self, name: str = "Test Guild", *, bot_permissions: int = BOT_PERMISSIONS) -> FakeGuild:
        """A guild with @everyone, an owner member and the bot (holding a managed role)."""
        owner = FakeUser(self.ids.next(), f"{name.lower().replace(' ', '-')}-owner")
        guild = FakeGuild(self.ids.next(), name, owner.id)
        guild.roles[guild.id] = FakeRole(guild.id, "@everyone", EVERYONE_PERMISSIONS)
        bot_role = FakeRole(self.ids.next(), self.bot_user.username, bot_permissions, 1, self.bot_user.id)
        guild.roles[bot_role.id] = bot_role
        guild.members[owner.id] = FakeMember(owner, guild)
        guild.members[self.bot_user.id] = FakeMember(self.bot_user, guild, [bot_role.id])
        self.guilds[guild.id] = guild
        for session in self.gateway.live_sessions():
            if session.owns(guild.id):
                self.gateway.send_guild(session, guild)
        return guild

    def add_role(self, guild: FakeGuild, name: str, permissions: int = 0) -> FakeRole:
        role = FakeRole(self.ids.next(), name, permissions, position=len(guild.roles))
        guild.roles[role.id] = role
        self.gateway.dispatch("GUILD_ROLE_CREATE", {"guild_id": str(guild.id), "role": role.payload()})
        return role

    def add_text_channel(self, guild: FakeGuild, name: str) -> FakeChannel:
        channel = FakeChannel(self.ids.next(), guild, name, position=len(guild.channels))
        self._register(channel)
        self.gateway.dispatch("CHANNEL_CREATE", channel.payload())
        return channel

    def add_member(
        self, guild: FakeGuild, username: str, *, roles: Iterable[FakeRole] = (), permissions: int = 0
    ) -> FakeMember:
        """A human member; nonzero `permissions` are granted through a personal role."""
        role_ids = [role.id for role in roles]
        if permissions:
            role_ids.append(self.add_role(guild, f"{username}-perms", permissions).id)
        member = FakeMember(FakeUser(self.ids.next(), username), guild, role_ids)
        guild.members[member.id] = member
        self.gateway.dispatch("GUILD_MEMBER_ADD", {**member.payload(), "guild_id": str(guild.id)})
        return member

    def add_bot_message(
        self, channel: FakeChannel, content: str = "", *, components: list[Payload] | None = None
    ) -> Payload:
        """A message the bot posted before this run (e.g. one carrying a persistent view)."""
        body = {"content": content, "components": components or []}
        message = new_message(
            message_id=self.ids.next(), channel=channel, author=self.bot_user, body=body, pings=Pings()
        )
        channel.messages[int(message["id"])] = message
        return message

    def _register(self, channel: FakeChannel) -> None:
        channel.guild.channels[channel.id] = channel
        self.channels[channel.id] = channel

    # -- acting as users ---------------------------------------------------------------------

    async def user_message(
        self,
        channel: FakeChannel,
        author: FakeMember,
        content: str,
        *,
        reply_to: Payload | None = None,
        mention_reply: bool = True,
    ) -> Payload:
        """Post as a human; mentions come from the content (and a pinging reply), then MESSAGE_CREATE."""
        self._require_client()
        replied = author_of(reply_to) if reply_to is not None and mention_reply else None
        pings = within_guild(mentioned(content, None, replied), channel.guild)
        message = new_message(
            message_id=self.ids.next(), channel=channel, author=author.user,
            body={"content": content}, pings=pings, referenced=reply_to,
        )
        self._publish(channel, message)
        await self.gateway.drain()
        return message

    async def invoke_command(
        self,
        channel: FakeChannel,
        member: FakeMember,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        override_permissions: bool = False,
    ) -> InteractionRecord:
        """Run `/name` (subcommands: "group sub") as `member`, typed by the synced schema.

        Attachment options take a FakeUpload: it is hosted on the fake's CDN first (ValueError over
        the attachment size limit) and resolved in `data.resolved.attachments`.
        Raises PermissionRefused when default_member_permissions hides the command from the member,
        unless `override_permissions` simulates an admin's per-guild override.
        """
        path = name.split()
        command = self._usable_command(path[0], member, channel, override_permissions)
        data = command_data(command, path, self._upload(channel, options or {}), member)
        return await self._interact(2, name, channel, member, data)

    async def autocomplete(
        self,
        channel: FakeChannel,
        member: FakeMember,
        name: str,
        options: dict[str, Any],
        *,
        focused: str,
        override_permissions: bool = False,
    ) -> InteractionRecord:
        """Type `options[focused]` (the text so far) into `/name`'s autocomplete option as `member`.

        Other options may be partial; required ones may be missing. ValueError if the option is not
        declared with `autocomplete: true`. Wait for the bot's answer with `wait_for_choices`.
        """
        path = name.split()
        command = self._usable_command(path[0], member, channel, override_permissions)
        data, option = autocomplete_data(command, path, options, focused, member)
        return await self._interact(4, name, channel, member, data, focused_option=option)

    async def click_button(self, message: Payload, member: FakeMember, custom_id: str) -> InteractionRecord:
        """Click the component `custom_id` on `message` (must exist and be enabled)."""
        kind = component_type(message, custom_id)
        channel = self.channels[int(message["channel_id"])]
        data = {"custom_id": custom_id, "component_type": kind}
        return await self._interact(3, custom_id, channel, member, data, message)

    async def send_event(self, event: str, data: Payload) -> None:
        """Dispatch an arbitrary (possibly malformed) gateway event."""
        self._require_client()
        self.gateway.dispatch(event, data)
        await self.gateway.drain()

    async def drop_connections(self, code: int = 4000) -> None:
        """Close every live gateway connection; with 4000 the client reconnects (RESUME, then IDENTIFY)."""
        for session in self.gateway.live_sessions():
            session.close(code, "Dropped by the test")
        await self.gateway.drain()

    def _usable_command(
        self, name: str, member: FakeMember, channel: FakeChannel, override_permissions: bool
    ) -> Payload:
        command = self.find_command(name, channel.guild.id)
        if not override_permissions:
            check_permissions(command, member)
        return command

    def _upload(self, channel: FakeChannel, options: dict[str, Any]) -> dict[str, Any]:
        """Host each FakeUpload, as the Discord client uploads files before it sends the command."""
        return {
            name: self.uploads.host(self.ids.next(), channel.id, value) if isinstance(value, FakeUpload) else value
            for name, value in options.items()
        }

    async def _interact(
        self,
        kind: int,
        name: str,
        channel: FakeChannel,
        member: FakeMember,
        data: Payload,
        message: Payload | None = None,
        *,
        focused_option: Payload | None = None,
    ) -> InteractionRecord:
        self._require_client()
        record = InteractionRecord(
            self.ids.next(), secrets.token_urlsafe(32), kind, name,
            channel.guild.id, channel.id, member.id, message=message, focused_option=focused_option,
        )
        self.interactions[record.id] = record
        payload = interaction_payload(
            record, application_id=self.application_id, guild=channel.guild, channel=channel, member=member, data=data
        )
        self.gateway.dispatch("INTERACTION_CREATE", payload)
        record.dispatched_at = time.monotonic()
        await self.gateway.drain()
        return record

    def _require_client(self) -> None:
        if not self.gateway.live_sessions():
            raise RuntimeError("no identified gateway session: start the bot (and wait for ready) first")

    # -- what the bot does (called by the REST handlers) -------------------------------------

    def find_command(self, name: str, guild_id: int) -> Payload:
        """The synced command a member of `guild_id` would see (guild commands shadow global)."""
        for scope in (guild_id, None):
            for command in self.commands.get(scope, []):
                if command["name"] == name and command.get("type", 1) == 1:
                    return command
        raise UnknownCommand(f"/{name} is not synced for guild {guild_id} or globally")

    def sync_commands(self, scope: int | None, commands: list[Payload]) -> list[Payload]:
        """Bulk overwrite; commands keep their id across syncs by name and type."""
        old = {(c["name"], c.get("type", 1)): c for c in self.commands.get(scope, [])}
        stored = []
        for command in commands:
            kind = command.get("type", 1)
            previous = old.get((command["name"], kind))
            permissions = command.get("default_member_permissions")
            stored.append({
                **command,
                "id": previous["id"] if previous else str(self.ids.next()),
                "application_id": str(self.application_id),
                "version": str(self.ids.next()),
                "type": kind,
                "default_member_permissions": None if permissions is None else str(permissions),
                "options": command.get("options") or [],
                **({} if scope is None else {"guild_id": str(scope)}),
            })
        self.commands[scope] = stored
        return stored

    def channel_or_404(self, channel_id: str | int) -> FakeChannel:
        channel = self.channels.get(int(channel_id))
        if channel is None:
            raise DiscordError(404, 10003, "Unknown Channel")
        return channel

    def message_or_404(self, channel: FakeChannel, message_id: str | int) -> Payload:
        message = channel.messages.get(int(message_id))
        if message is None:
            raise DiscordError(404, 10008, "Unknown Message")
        return message

    def bot_send(
        self,
        channel: FakeChannel,
        body: Payload,
        files: dict[str, tuple[str, bytes]],
        *,
        kind: str,
        interaction: InteractionRecord | None = None,
    ) -> Payload:
        """Create a bot message: validate, record in `outbox`, store and dispatch unless ephemeral."""
        referenced = self._referenced(channel, body.get("message_reference"))
        attachments, uploads = resolve_attachments(body, files, self.ids.next, [])
        allowed = body.get("allowed_mentions")
        replied = None if referenced is None else author_of(referenced)
        pings = within_guild(mentioned(body.get("content") or "", allowed, replied), channel.guild)
        flags = (body.get("flags") or 0) & (SENDABLE_FLAGS | (EPHEMERAL if interaction else 0))
        message = new_message(
            message_id=self.ids.next(), channel=channel, author=self.bot_user,
            body={**body, "attachments": attachments, "flags": flags}, pings=pings, referenced=referenced,
        )
        if interaction is not None:
            message.update(self._interaction_fields(interaction))
        validate(message)
        self._record(kind, channel, message, allowed, pings, interaction, uploads)
        self._publish(channel, message)
        return message

    def bot_placeholder(self, channel: FakeChannel, interaction: InteractionRecord, flags: int) -> Payload:
        """The "Bot is thinking..." message of a deferred interaction response."""
        message = new_message(
            message_id=self.ids.next(), channel=channel, author=self.bot_user, body={"flags": flags}, pings=Pings()
        )
        message.update(self._interaction_fields(interaction))
        self._publish(channel, message)
        return message

    def bot_edit(
        self,
        channel: FakeChannel,
        message: Payload,
        body: Payload,
        files: dict[str, tuple[str, bytes]],
        *,
        kind: str = "edit",
        interaction: InteractionRecord | None = None,
    ) -> Payload:
        """Edit a bot message in place (so every reference sees it), record it and MESSAGE_UPDATE."""
        if author_of(message) != self.bot_user.id:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        attachments, uploads = resolve_attachments(body, files, self.ids.next, message["attachments"])
        updated = copy.deepcopy(message)
        apply_edit(updated, body, attachments)
        allowed = body.get("allowed_mentions")
        pings = within_guild(mentioned(updated["content"], allowed, referenced_author(updated)), channel.guild)
        set_mentions(updated, pings, channel.guild)
        validate(updated)
        message.clear()
        message.update(updated)
        self._record(kind, channel, message, allowed, pings, interaction, uploads)
        if int(message["id"]) in channel.messages:
            self.gateway.dispatch("MESSAGE_UPDATE", self._gateway_message(channel, message))
        return message

    def delete_message(self, channel: FakeChannel, message: Payload) -> None:
        if channel.messages.pop(int(message["id"]), None) is not None:
            event = {"id": message["id"], "channel_id": str(channel.id), "guild_id": str(channel.guild.id)}
            self.gateway.dispatch("MESSAGE_DELETE", event)

    def create_thread(self, parent: FakeChannel, body: Payload, *, message: Payload | None = None) -> FakeChannel:
        """A thread owned by the bot (id = starter message id), announced by THREAD_CREATE."""
        if parent.is_thread:
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        if message is not None and "thread" in message:
            raise DiscordError(400, 160004, "A thread has already been created for this message")
        if not 1 <= len(body.get("name") or "") <= 100:
            raise invalid_form("name", "Must be between 1 and 100 in length.")
        thread = FakeChannel(
            int(message["id"]) if message is not None else self.ids.next(), parent.guild, body["name"],
            type=PUBLIC_THREAD if message is not None else body.get("type", PRIVATE_THREAD),
            parent_id=parent.id, owner_id=self.bot_user.id,
            auto_archive_duration=body.get("auto_archive_duration") or 1440,
        )
        self._register(thread)
        if message is not None:
            message["thread"] = thread.payload()
            message["flags"] |= HAS_THREAD
        member = {"id": str(thread.id), "user_id": str(self.bot_user.id), "join_timestamp": now_iso(), "flags": 0}
        self.gateway.dispatch("THREAD_CREATE", {**thread.payload(), "newly_created": True, "member": member})
        return thread

    def _referenced(self, channel: FakeChannel, reference: Payload | None) -> Payload | None:
        if not reference or reference.get("type", 0) != 0:
            return None
        target = self.channels.get(int(reference.get("channel_id") or channel.id))
        found = None if target is None else target.messages.get(int(reference["message_id"]))
        if found is None and reference.get("fail_if_not_exists", True):
            raise invalid_form("message_reference", "Unknown message")
        return found

    def _interaction_fields(self, record: InteractionRecord) -> Payload:
        user = self.guilds[record.guild_id].members[record.user_id].user
        fields: Payload = {
            "webhook_id": str(self.application_id),
            "application_id": str(self.application_id),
            "interaction_metadata": {
                "id": str(record.id),
                "type": record.type,
                "user": user.payload(),
                "authorizing_integration_owners": {"0": str(record.guild_id)},
            },
        }
        if record.type == 2:
            fields["type"] = 20
            fields["interaction_metadata"]["name"] = record.name
        return fields

    def _record(
        self,
        kind: str,
        channel: FakeChannel,
        message: Payload,
        allowed: Payload | None,
        pings: Pings,
        interaction: InteractionRecord | None,
        uploads: dict[str, bytes],
    ) -> None:
        self.outbox.append(Outgoing(
            kind, channel.id, copy.deepcopy(message), allowed, notified(pings, message),
            None if interaction is None else interaction.id, uploads,
        ))

    def _publish(self, channel: FakeChannel, message: Payload) -> None:
        """Store a visible (non-ephemeral) message and dispatch MESSAGE_CREATE."""
        if message["flags"] & EPHEMERAL:
            return
        channel.messages[int(message["id"])] = message
        self.gateway.dispatch("MESSAGE_CREATE", self._gateway_message(channel, message))

    def _gateway_message(self, channel: FakeChannel, message: Payload) -> Payload:
        member = channel.guild.members.get(author_of(message))
        extra = {} if member is None else {"member": member.payload(with_user=False)}
        return {**message, "guild_id": str(channel.guild.id), **extra}

    # -- inspecting --------------------------------------------------------------------------

    @property
    def sessions(self) -> list[GatewaySession]:
        """Every gateway connection so far (IDENTIFY payload, intents, heartbeats, compression)."""
        return self.gateway.sessions

    @property
    def recommended_shards(self) -> int:
        """GET /gateway/bot's "shards": one per `guilds_per_shard` guilds (Discord's is about 1000), at least one."""
        return max(1, math.ceil(len(self.guilds) / self.guilds_per_shard))

    @property
    def intents(self) -> int | None:
        """Intents of the most recent IDENTIFY, None before any."""
        identified = [s for s in self.sessions if s.identify is not None]
        return identified[-1].intents if identified else None

    def sent_messages(self, channel: FakeChannel | None = None) -> list[Payload]:
        """Bot-authored messages currently visible in `channel` (or anywhere), oldest first."""
        channels = [channel] if channel is not None else list(self.channels.values())
        return [m for c in channels for m in c.messages.values() if author_of(m) == self.bot_user.id]

    def pings(self) -> list[Outgoing]:
        """Bot sends/edits that notify someone (see Outgoing.pings)."""
        return [out for out in self.outbox if out.pings]

    def max_heartbeat_gap(self) -> float:
        """Longest time between heartbeats received on one connection (open ones count up to now)."""
        now, gaps = time.monotonic(), [0.0]
        for session in self.sessions:
            beats = session.heartbeats + ([now] if session.live and session.heartbeats else [])
            gaps.extend(later - earlier for earlier, later in itertools.pairwise(beats))
        return max(gaps)

    # -- waiting -----------------------------------------------------------------------------

    def watch(self, task: asyncio.Task[Any]) -> None:
        """Make `wait_for` and `check_clients` fail fast if this client task ends."""
        self._watched.add(task)

    def unwatch(self, task: asyncio.Task[Any]) -> None:
        self._watched.discard(task)

    def check_clients(self) -> None:
        """Raise ClientDied if a watched client task has finished (e.g. a payload crashed its gateway loop)."""
        for task in self._watched:
            if task.done():
                error = None if task.cancelled() else task.exception()
                raise ClientDied(f"client task {task.get_name()} ended: {error!r}") from error

    async def wait_for_choices(self, record: InteractionRecord, timeout: float = 5.0) -> list[Payload]:
        """The autocomplete choices the bot answered `record` with; AutocompleteRefused if Discord refused them."""
        await self.wait_for(lambda: record.acknowledged or record.rejections, timeout)
        if record.choices is None:
            raise AutocompleteRefused(f"/{record.name} autocomplete answer refused: {record.rejection_messages}")
        return record.choices

    async def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0, *, interval: float = 0.01) -> T:
        """Poll `predicate` until truthy and return its value; TimeoutError or ClientDied otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            self.check_clients()
            result = predicate()
            if result:
                return result
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            await asyncio.sleep(interval)
