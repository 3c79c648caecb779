"""The Gateway websocket: HELLO, heartbeats, IDENTIFY, READY/GUILD_CREATE and event dispatch."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import WSMsgType, web

from .state import GUILD_MEMBERS, GUILD_MESSAGES, GUILDS, MESSAGE_CONTENT, FakeGuild, Payload

if TYPE_CHECKING:
    from .server import FakeDiscord

EVENT_INTENTS = {
    "GUILD_CREATE": GUILDS,
    "CHANNEL_CREATE": GUILDS,
    "THREAD_CREATE": GUILDS,
    "GUILD_ROLE_CREATE": GUILDS,
    "GUILD_MEMBER_ADD": GUILD_MEMBERS,
    "MESSAGE_CREATE": GUILD_MESSAGES,
    "MESSAGE_UPDATE": GUILD_MESSAGES,
    "MESSAGE_DELETE": GUILD_MESSAGES,
}


Compressor = Callable[[bytes], bytes]


def make_compressor(mode: str | None) -> Compressor | None:
    """One shared stream per connection, flushed after every frame (`compress=` query value)."""
    if mode == "zlib-stream":
        zlib_stream = zlib.compressobj()
        return lambda data: zlib_stream.compress(data) + zlib_stream.flush(zlib.Z_SYNC_FLUSH)
    if mode == "zstd-stream":
        import zstandard  # discord.py only asks for zstd when this (or compression.zstd) imports

        zstd_stream = zstandard.ZstdCompressor().compressobj()
        return lambda data: zstd_stream.compress(data) + zstd_stream.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
    return None


class GatewaySession:
    """One websocket connection; frames are queued and written in order by a writer task."""

    def __init__(self, ws: web.WebSocketResponse, compress: str | None) -> None:
        self.ws = ws
        self.compress = compress
        self.session_id = secrets.token_hex(16)
        self.identify: Payload | None = None
        self.seq = 0
        self.heartbeats: list[float] = []
        self.close_code: int | None = None
        self._compressor = make_compressor(compress)
        self._queue: asyncio.Queue[str | tuple[int, str]] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write())

    @property
    def intents(self) -> int:
        return 0 if self.identify is None else self.identify["intents"]

    @property
    def shard(self) -> tuple[int, int]:
        """(shard id, shard count) from IDENTIFY; one shard when the client sent none."""
        shard = (self.identify or {}).get("shard") or [0, 1]
        return int(shard[0]), int(shard[1])

    def owns(self, guild_id: int | None) -> bool:
        """Whether this session's shard receives the guild's events: (guild_id >> 22) % count == id;
        events outside guilds (direct messages) go to shard 0 only."""
        shard_id, count = self.shard
        return shard_id == 0 if guild_id is None else (guild_id >> 22) % count == shard_id

    @property
    def live(self) -> bool:
        """Identified and still connected."""
        return self.identify is not None and not self.ws.closed and self.close_code is None

    def send(self, payload: Payload) -> None:
        self._queue.put_nowait(json.dumps(payload))

    def dispatch(self, event: str, data: Payload) -> None:
        self.seq += 1
        self.send({"op": 0, "t": event, "s": self.seq, "d": data})

    def close(self, code: int, reason: str) -> None:
        """Close after the frames already queued."""
        self._queue.put_nowait((code, reason))

    async def drain(self) -> None:
        await self._queue.join()

    async def stop(self) -> None:
        """Stop writing; frames still queued are dropped so `drain()` cannot hang."""
        self._writer.cancel()
        await asyncio.gather(self._writer, return_exceptions=True)
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()

    async def _write(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                if isinstance(item, tuple):
                    self.close_code = item[0]
                    await self.ws.close(code=item[0], message=item[1].encode())
                else:
                    await self._send_frame(item)
            except ConnectionResetError:
                pass  # the client went away; like the network, drop the frame
            finally:
                self._queue.task_done()

    async def _send_frame(self, text: str) -> None:
        if self._compressor is None:
            await self.ws.send_str(text)
        else:
            await self.ws.send_bytes(self._compressor(text.encode()))


class Gateway:
    """Accepts client websockets and fans dispatched events out to identified sessions."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.sessions: list[GatewaySession] = []
        self._ops: dict[int, Callable[[GatewaySession, object], None]] = {
            1: self._on_heartbeat,
            2: self._on_identify,
            3: self._on_presence,
            6: self._on_resume,
            8: self._on_request_members,
        }

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        """The websocket endpoint at the gateway URL."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = GatewaySession(ws, request.query.get("compress"))
        self.sessions.append(session)
        if self._supported(dict(request.query)):
            session.send({"op": 10, "d": {"heartbeat_interval": self.fake.heartbeat_interval_ms}})
        else:
            session.close(4002, "Unsupported version, encoding or compression")
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_frame(session, json.loads(msg.data))
        finally:
            await session.stop()
        return ws

    def dispatch(self, event: str, data: Payload) -> None:
        """Send an event to every live session whose intents allow it and whose shard owns its guild."""
        guild_id = data.get("guild_id") or (data.get("id") if event.startswith("GUILD_") else None)
        guild = None if guild_id is None else int(guild_id)
        for session in self.live_sessions():
            if not session.owns(guild):
                continue
            visible = self._visible(session, event, data)
            if visible is not None:
                session.dispatch(event, visible)

    def send_guild(self, session: GatewaySession, guild: FakeGuild) -> None:
        """GUILD_CREATE; other members are only listed with the GUILD_MEMBERS intent."""
        if not session.intents & GUILDS:
            return
        ids = set(guild.members) if session.intents & GUILD_MEMBERS else {self.fake.bot_user.id}
        session.dispatch("GUILD_CREATE", guild.payload(member_ids=ids))

    def live_sessions(self) -> list[GatewaySession]:
        return [s for s in self.sessions if s.live]

    async def drain(self) -> None:
        """Wait until every queued frame has been written."""
        await asyncio.gather(*(s.drain() for s in self.sessions))

    async def close_all(self) -> None:
        for session in self.sessions:
            await session.stop()
            await session.ws.close(code=1001)

    def _supported(self, query: dict[str, str]) -> bool:
        compressions = (None, "zlib-stream", "zstd-stream")
        if query.get("v") == "10" and query.get("encoding") == "json" and query.get("compress") in compressions:
            return True
        self.fake.unknown_calls.append(f"gateway connect with unsupported query {query}")
        return False

    def _on_frame(self, session: GatewaySession, frame: Payload) -> None:
        op = frame.get("op")
        handler = self._ops.get(op) if isinstance(op, int) else None
        if handler is None:
            self.fake.unknown_calls.append(f"gateway op {op}: {frame}")
        elif session.identify is None and op not in (1, 2, 6):
            session.close(4003, "Not authenticated")
        else:
            handler(session, frame.get("d"))

    def _on_heartbeat(self, session: GatewaySession, _: object) -> None:
        session.heartbeats.append(time.monotonic())
        session.send({"op": 11})

    def _on_identify(self, session: GatewaySession, data: object) -> None:
        if session.identify is not None:
            session.close(4005, "Already authenticated")
        elif not isinstance(data, dict):
            session.close(4002, "Error while decoding payload")
        elif data.get("token") != self.fake.token:
            session.close(4004, "Authentication failed")
        elif not isinstance(data.get("intents"), int):
            session.close(4013, "Invalid intent(s)")
        elif not _valid_shard(data.get("shard", [0, 1])):
            session.close(4010, "Invalid shard")
        else:
            session.identify = data
            session.dispatch("READY", self._ready(session))
            for guild in self.fake.guilds.values():
                if session.owns(guild.id):
                    self.send_guild(session, guild)

    def _ready(self, session: GatewaySession) -> Payload:
        return {
            "v": 10,
            "user": {**self.fake.bot_user.payload(), "verified": True, "mfa_enabled": False},
            "guilds": [{"id": str(gid), "unavailable": True} for gid in self.fake.guilds if session.owns(gid)],
            "session_id": session.session_id,
            "session_type": "normal",
            "resume_gateway_url": self.fake.gateway_url,
            "shard": list(session.shard),
            "application": {"id": str(self.fake.application_id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": [],
        }

    def _on_presence(self, _: GatewaySession, data: object) -> None:
        self.fake.presence_updates.append(data)

    def _on_resume(self, session: GatewaySession, _: object) -> None:
        """Sessions are not resumable here: ask for a fresh IDENTIFY like an expired session."""
        session.send({"op": 9, "d": False})

    def _on_request_members(self, session: GatewaySession, data: object) -> None:
        if not isinstance(data, dict):
            return
        guild = self.fake.guilds[int(data["guild_id"])]
        wanted = {int(uid) for uid in data.get("user_ids") or []}
        members = [
            m for m in guild.members.values()
            if (not wanted or m.id in wanted) and m.user.username.startswith(data.get("query") or "")
        ]
        limit = data.get("limit") or len(members)
        chunk: Payload = {
            "guild_id": str(guild.id),
            "members": [m.payload() for m in members[:limit]],
            "chunk_index": 0,
            "chunk_count": 1,
            "not_found": [],
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        session.dispatch("GUILD_MEMBERS_CHUNK", chunk)

    def _visible(self, session: GatewaySession, event: str, data: Payload) -> Payload | None:
        needed = EVENT_INTENTS.get(event)
        if needed is not None and not session.intents & needed:
            return None
        if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE") and not session.intents & MESSAGE_CONTENT:
            return self._without_content(data)
        return data

    def _without_content(self, message: Payload) -> Payload:
        """Discord blanks content for bots lacking MESSAGE_CONTENT unless they wrote or are mentioned in it."""
        bot_id = str(self.fake.bot_user.id)
        mentioned = any(m["id"] == bot_id for m in message.get("mentions", []))
        if message.get("author", {}).get("id") == bot_id or mentioned:
            return message
        return {**message, "content": "", "embeds": [], "attachments": [], "components": []}


def _valid_shard(shard: object) -> bool:
    """IDENTIFY's shard: [shard id, shard count] with 0 <= id < count."""
    return (isinstance(shard, list) and len(shard) == 2 and all(isinstance(n, int) for n in shard)
            and 0 <= shard[0] < shard[1])
