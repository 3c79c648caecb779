"""Message payloads: Discord's size limits, attachments, and who a message pings."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .httpio import DiscordError, invalid_form
from .state import FakeChannel, FakeGuild, FakeUser, Payload, now_iso

EPHEMERAL = 1 << 6
LOADING = 1 << 7
USER_MENTION = re.compile(r"<@!?(\d+)>")
ROLE_MENTION = re.compile(r"<@&(\d+)>")


@dataclass(frozen=True)
class Pings:
    """Who a message notifies; falsy when nobody."""

    everyone: bool = False
    users: frozenset[int] = frozenset()
    roles: frozenset[int] = frozenset()

    def __bool__(self) -> bool:
        return self.everyone or bool(self.users or self.roles)


@dataclass
class Outgoing:
    """One message the bot created or edited, as Discord stored it, with its allowed_mentions."""

    kind: str  # "message" | "edit" | "interaction" | "followup"
    channel_id: int
    message: Payload
    allowed_mentions: Payload | None
    pings: Pings
    interaction_id: int | None = None
    files: dict[str, bytes] = field(default_factory=dict)


def mentioned(content: str, allowed: Payload | None, replied_user_id: int | None) -> Pings:
    """Mentions per Discord's rules; without allowed_mentions, everything in the content plus the replied-to author."""
    users = {int(u) for u in USER_MENTION.findall(content)}
    roles = {int(r) for r in ROLE_MENTION.findall(content)}
    everyone = "@everyone" in content or "@here" in content
    if allowed is None:
        replied = set() if replied_user_id is None else {replied_user_id}
        return Pings(everyone, frozenset(users | replied), frozenset(roles))
    parse = set(allowed.get("parse", []))
    if "users" not in parse:
        users &= {int(u) for u in allowed.get("users", [])}
    if "roles" not in parse:
        roles &= {int(r) for r in allowed.get("roles", [])}
    if allowed.get("replied_user") and replied_user_id is not None:
        users.add(replied_user_id)
    return Pings(everyone and "everyone" in parse, frozenset(users), frozenset(roles))


def within_guild(pings: Pings, guild: FakeGuild) -> Pings:
    """Drop mentions of users and roles that are not in the guild."""
    return Pings(pings.everyone, pings.users & guild.members.keys(), pings.roles & guild.roles.keys())


def notified(pings: Pings, message: Payload) -> Pings:
    """Who actually gets a notification: nobody for ephemeral messages, never the author."""
    if message["flags"] & EPHEMERAL:
        return Pings()
    return Pings(pings.everyone, pings.users - {int(message["author"]["id"])}, pings.roles)


def validate(message: Payload) -> None:
    """Raise Discord's 400 errors for over-long or empty messages."""
    content = message.get("content") or ""
    if len(content) > 2000:
        raise invalid_form("content", "Must be 2000 or fewer in length.")
    embeds = message.get("embeds") or []
    if len(embeds) > 10:
        raise invalid_form("embeds", "Must be 10 or fewer in length.")
    if sum(_embed_length(embed, f"embeds.{i}") for i, embed in enumerate(embeds)) > 6000:
        raise invalid_form("embeds", "Embed size exceeds maximum size of 6000")
    if not any(message.get(key) for key in ("content", "embeds", "attachments", "components", "sticker_items")):
        raise DiscordError(400, 50006, "Cannot send an empty message")


def _embed_length(embed: Payload, where: str) -> int:
    fields = embed.get("fields") or []
    if len(fields) > 25:
        raise invalid_form(f"{where}.fields", "Must be 25 or fewer in length.")
    texts = [
        (f"{where}.title", embed.get("title"), 256),
        (f"{where}.description", embed.get("description"), 4096),
        (f"{where}.footer.text", (embed.get("footer") or {}).get("text"), 2048),
        (f"{where}.author.name", (embed.get("author") or {}).get("name"), 256),
    ]
    for j, item in enumerate(fields):
        texts.append((f"{where}.fields.{j}.name", item.get("name"), 256))
        texts.append((f"{where}.fields.{j}.value", item.get("value"), 1024))
    for path, text, limit in texts:
        if len(text or "") > limit:
            raise invalid_form(path, f"Must be {limit} or fewer in length.")
    return sum(len(text or "") for _, text, _ in texts)


def resolve_attachments(
    body: Payload,
    files: dict[str, tuple[str, bytes]],
    new_id: Callable[[], int],
    previous: list[Payload],
) -> tuple[list[Payload], dict[str, bytes]]:
    """Attachments after a send/edit (uploads are referenced as `files[<id>]`) and the uploaded bytes."""
    refs = body.get("attachments")
    if refs is None:
        return previous, {}
    kept = {a["id"]: a for a in previous}
    result: list[Payload] = []
    uploads: dict[str, bytes] = {}
    for ref in refs:
        upload = files.get(f"files[{ref['id']}]")
        if upload is not None:
            filename = ref.get("filename") or upload[0]
            result.append(_attachment(new_id(), filename, upload[1], ref.get("description")))
            uploads[filename] = upload[1]
        elif str(ref["id"]) in kept:
            result.append(kept[str(ref["id"])])
        else:
            raise invalid_form("attachments", f"Unknown attachment {ref['id']}")
    return result, uploads


def _attachment(attachment_id: int, filename: str, data: bytes, description: str | None) -> Payload:
    url = f"https://cdn.discordapp.com/attachments/0/{attachment_id}/{filename}"
    return {
        "id": str(attachment_id),
        "filename": filename,
        "description": description,
        "size": len(data),
        "url": url,
        "proxy_url": url,
        "flags": 0,
    }


def new_message(
    *,
    message_id: int,
    channel: FakeChannel,
    author: FakeUser,
    body: Payload,
    pings: Pings,
    referenced: Payload | None = None,
) -> Payload:
    """A message object as Discord would store it (mentions already resolved)."""
    message: Payload = {
        "id": str(message_id),
        "channel_id": str(channel.id),
        "author": author.payload(),
        "content": body.get("content") or "",
        "timestamp": now_iso(),
        "edited_timestamp": None,
        "tts": bool(body.get("tts")),
        "pinned": False,
        "type": 0,
        "flags": body.get("flags") or 0,
        "embeds": body.get("embeds") or [],
        "components": body.get("components") or [],
        "attachments": body.get("attachments") or [],
    }
    set_mentions(message, pings, channel.guild)
    if referenced is not None:
        message["type"] = 19
        message["message_reference"] = {
            "type": 0,
            "message_id": referenced["id"],
            "channel_id": referenced["channel_id"],
            "guild_id": str(channel.guild.id),
        }
        message["referenced_message"] = {k: v for k, v in referenced.items() if k != "referenced_message"}
    return message


def set_mentions(message: Payload, pings: Pings, guild: FakeGuild) -> None:
    """Fill `mentions`, `mention_roles` and `mention_everyone` from resolved pings."""
    entries = (guild.mention_entry(user_id) for user_id in sorted(pings.users))
    message["mentions"] = [entry for entry in entries if entry is not None]
    message["mention_roles"] = [str(role_id) for role_id in sorted(pings.roles)]
    message["mention_everyone"] = pings.everyone


def apply_edit(message: Payload, body: Payload, attachments: list[Payload]) -> None:
    """Apply a PATCH body to a stored message (clears the deferred-loading flag)."""
    for key in ("content", "embeds", "components"):
        if key in body:
            message[key] = body[key] or ([] if key != "content" else "")
    if body.get("flags") is not None:  # ephemerality is fixed at creation
        message["flags"] = (body["flags"] & ~EPHEMERAL) | (message["flags"] & EPHEMERAL)
    message["flags"] &= ~LOADING
    message["attachments"] = attachments
    message["edited_timestamp"] = now_iso()


def author_of(message: Payload) -> int:
    return int(message["author"]["id"])


def referenced_author(message: Payload) -> int | None:
    ref = message.get("referenced_message")
    return None if ref is None else author_of(ref)
