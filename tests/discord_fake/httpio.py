"""HTTP helpers: Discord-style errors, exact JSON responses and request bodies (JSON or multipart)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

JSON_HEADERS = {"Content-Type": "application/json"}  # exact: discord.py compares the whole header

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class DiscordError(Exception):
    """An API error answered as `{"message", "code"[, "errors"]}` with an HTTP status."""

    def __init__(self, status: int, code: int, message: str, errors: dict[str, Any] | None = None) -> None:
        super().__init__(f"{status} {code} {message}" + (f" {json.dumps(errors)}" if errors else ""))
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def response(self) -> web.Response:
        body: dict[str, Any] = {"message": self.message, "code": self.code}
        if self.errors:
            body["errors"] = self.errors
        return json_response(body, status=self.status)


def invalid_form(field_name: str, message: str) -> DiscordError:
    """The 400 Invalid Form Body error for one field."""
    errors = {field_name: {"_errors": [{"code": "BASE_TYPE_INVALID", "message": message}]}}
    return DiscordError(400, 50035, "Invalid Form Body", errors)


def json_response(data: Any, status: int = 200) -> web.Response:
    """A JSON response whose Content-Type has no charset suffix."""
    return web.Response(status=status, body=json.dumps(data).encode(), headers=JSON_HEADERS)


def no_content() -> web.Response:
    return web.Response(status=204)


@web.middleware
async def discord_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn a raised DiscordError into its JSON response."""
    try:
        return await handler(request)
    except DiscordError as error:
        return error.response()


async def read_body(request: web.Request) -> tuple[Any, dict[str, tuple[str, bytes]]]:
    """The JSON payload (`payload_json` for multipart) and uploaded files by field name."""
    if request.content_type == "multipart/form-data":
        form = await request.post()
        files = {
            name: (value.filename, value.file.read())
            for name, value in form.items()
            if isinstance(value, web.FileField)
        }
        raw = form.get("payload_json")
        return (json.loads(raw) if isinstance(raw, str) else {}), files
    raw_bytes = await request.read()
    return (json.loads(raw_bytes) if raw_bytes else {}), {}
