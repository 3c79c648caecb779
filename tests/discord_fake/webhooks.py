"""Interaction callbacks and interaction webhooks, enforcing Discord's acknowledgement rules."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from aiohttp import web

from .httpio import DiscordError, invalid_form, json_response, no_content, read_body
from .interactions import check_choices
from .messages import EPHEMERAL, LOADING
from .rest import API
from .state import AUTOCOMPLETE_RESULT, FakeChannel, InteractionRecord, Payload

if TYPE_CHECKING:
    from .server import FakeDiscord

COMMAND, COMPONENT, AUTOCOMPLETE = 2, 3, 4
MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, MODAL = 4, 5, 6, 7, 9
VALID_ACKS = {
    COMMAND: {MESSAGE, DEFERRED_MESSAGE, MODAL},
    COMPONENT: {MESSAGE, DEFERRED_MESSAGE, DEFERRED_UPDATE, UPDATE_MESSAGE, MODAL},
    AUTOCOMPLETE: {AUTOCOMPLETE_RESULT},
}


def unknown_interaction() -> DiscordError:
    return DiscordError(404, 10062, "Unknown interaction")


def unknown_webhook() -> DiscordError:
    return DiscordError(404, 10015, "Unknown Webhook")


class WebhookApi:
    """`/interactions/{id}/{token}/callback` and `/webhooks/{app}/{token}/...` (no bot token needed)."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake

    def routes(self) -> list[web.RouteDef]:
        hook = f"{API}/webhooks/{{app}}/{{token}}"
        return [
            web.post(f"{API}/interactions/{{id}}/{{token}}/callback", self.callback),
            web.post(hook, self.followup),
            web.get(f"{hook}/messages/{{message}}", self.get_message),
            web.patch(f"{hook}/messages/{{message}}", self.edit_message),
            web.delete(f"{hook}/messages/{{message}}", self.delete_message),
        ]

    async def callback(self, request: web.Request) -> web.Response:
        record = self.fake.interactions.get(int(request.match_info["id"]))
        if record is None or record.token != request.match_info["token"]:
            raise unknown_interaction()
        body, files = await read_body(request)
        elapsed = time.monotonic() - record.dispatched_at
        kind = body.get("type")
        with _rejections(record):
            if record.acknowledged:
                raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
            if elapsed > self.fake.ack_deadline:
                raise unknown_interaction()
            if kind not in VALID_ACKS[record.type]:
                raise invalid_form("type", f"Interaction callback type {kind} is not valid here")
            message = self._acknowledge(record, kind, body.get("data") or {}, files)
        record.ack_type, record.ack_after = kind, elapsed
        record.history.append(("ack", copy.deepcopy(body)))
        if request.query.get("with_response") not in ("1", "true", "True"):
            return no_content()
        return json_response(_callback_response(record, kind, message))

    def _acknowledge(
        self, record: InteractionRecord, kind: int, data: Payload, files: dict[str, tuple[str, bytes]]
    ) -> Payload | None:
        channel = self._channel(record)
        if kind == AUTOCOMPLETE_RESULT and record.focused_option is not None:
            check_choices(data.get("choices"), record.focused_option)
        elif kind == MESSAGE:
            record.original = self.fake.bot_send(channel, data, files, kind="interaction", interaction=record)
        elif kind == DEFERRED_MESSAGE:
            flags = LOADING | (data.get("flags", 0) & EPHEMERAL)
            record.original = self.fake.bot_placeholder(channel, record, flags)
        elif kind in (DEFERRED_UPDATE, UPDATE_MESSAGE) and record.message is not None:
            record.original = record.message
            if kind == UPDATE_MESSAGE:
                self.fake.bot_edit(channel, record.message, data, files, interaction=record)
        if record.original is not None and kind in (MESSAGE, DEFERRED_MESSAGE):
            record.ephemeral = bool(record.original["flags"] & EPHEMERAL)
        return record.original if kind != MODAL else None

    async def followup(self, request: web.Request) -> web.Response:
        record = self._record(request)
        body, files = await read_body(request)
        channel, original = self._channel(record), record.original
        with _rejections(record):
            _require_ack(record)
            if original is not None and original["flags"] & LOADING:
                # The first follow-up after a deferral replaces the "thinking..." message.
                message = self.fake.bot_edit(channel, original, body, files, kind="followup", interaction=record)
            else:
                message = self.fake.bot_send(channel, body, files, kind="followup", interaction=record)
        record.followups.append(message)
        record.history.append(("followup", copy.deepcopy(message)))
        wait = request.query.get("wait") in ("1", "true", "True")
        return json_response(message) if wait else no_content()

    async def get_message(self, request: web.Request) -> web.Response:
        record = self._record(request)
        with _rejections(record):
            return json_response(_target(record, request.match_info["message"]))

    async def edit_message(self, request: web.Request) -> web.Response:
        record = self._record(request)
        body, files = await read_body(request)
        with _rejections(record):
            target = _target(record, request.match_info["message"])
            message = self.fake.bot_edit(self._channel(record), target, body, files, interaction=record)
        record.history.append(("edit", copy.deepcopy(message)))
        return json_response(message)

    async def delete_message(self, request: web.Request) -> web.Response:
        record = self._record(request)
        with _rejections(record):
            target = _target(record, request.match_info["message"])
            self.fake.delete_message(self._channel(record), target)
        record.history.append(("delete", {"id": target["id"]}))
        return no_content()

    def _channel(self, record: InteractionRecord) -> FakeChannel:
        return self.fake.channels[record.channel_id]

    def _record(self, request: web.Request) -> InteractionRecord:
        """The interaction behind a webhook token."""
        token = request.match_info["token"]
        record = next((r for r in self.fake.interactions.values() if r.token == token), None)
        if record is None or int(request.match_info["app"]) != self.fake.application_id:
            raise unknown_webhook()
        return record


@contextmanager
def _rejections(record: InteractionRecord) -> Iterator[None]:
    """Note the Discord error code of any call on `record` that fails."""
    try:
        yield
    except DiscordError as error:
        record.rejections.append(error.code)
        record.rejection_messages.append(str(error))
        raise


def _require_ack(record: InteractionRecord) -> None:
    """Interaction webhooks only exist once the interaction has been acknowledged."""
    if not record.acknowledged:
        raise unknown_webhook()


def _target(record: InteractionRecord, message_id: str) -> Payload:
    _require_ack(record)
    candidates = [record.original] if message_id == "@original" else record.followups
    for message in candidates:
        if message is not None and message_id in ("@original", message["id"]):
            return message
    raise DiscordError(404, 10008, "Unknown Message")


def _callback_response(record: InteractionRecord, kind: int, message: Payload | None) -> Payload:
    """The `with_response` body discord.py parses into an InteractionCallbackResponse."""
    resource: Payload = {"type": kind}
    if message is not None:
        resource["message"] = message
    return {
        "interaction": {
            "id": str(record.id),
            "type": record.type,
            "activity_instance_id": None,
            "response_message_id": None if message is None else message["id"],
            "response_message_loading": kind == DEFERRED_MESSAGE,
            "response_message_ephemeral": record.ephemeral,
        },
        "resource": resource,
    }
