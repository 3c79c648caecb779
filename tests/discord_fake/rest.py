"""Bot-token REST routes: login, application commands, channels, messages, threads, reactions."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote

from aiohttp import web

from .httpio import DiscordError, Handler, json_response, no_content, read_body
from .state import PRIVATE_THREAD, PUBLIC_THREAD, Payload

if TYPE_CHECKING:
    from .server import FakeDiscord

API = "/api/v10"
TOKENLESS_PREFIXES = (f"{API}/webhooks/", f"{API}/interactions/")


def bot_auth(fake: FakeDiscord) -> Handler:
    """Middleware: bot routes need `Authorization: Bot <token>` or get discord.py's 401 LoginFailure."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        needs_token = request.path.startswith(API) and not request.path.startswith(TOKENLESS_PREFIXES)
        if needs_token and request.headers.get("Authorization") != f"Bot {fake.token}":
            raise DiscordError(401, 0, "401: Unauthorized")
        return await handler(request)

    return middleware


class RestApi:
    """Handlers for the routes a discord.py bot calls with its token."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake

    def routes(self) -> list[web.RouteDef]:
        app = f"{API}/applications/{{app}}"
        msgs = f"{API}/channels/{{channel}}/messages"
        return [
            web.get(f"{API}/gateway/bot", self.gateway_bot),
            web.get(f"{API}/users/@me", self.me),
            web.get(f"{API}/oauth2/applications/@me", self.application),
            web.get(f"{app}/commands", self.get_commands),
            web.put(f"{app}/commands", self.put_commands),
            web.get(f"{app}/guilds/{{guild}}/commands", self.get_commands),
            web.put(f"{app}/guilds/{{guild}}/commands", self.put_commands),
            web.get(f"{API}/channels/{{channel}}", self.get_channel),
            web.post(f"{API}/channels/{{channel}}/typing", self.typing),
            web.post(f"{API}/channels/{{channel}}/threads", self.thread_without_message),
            web.get(msgs, self.history),
            web.post(msgs, self.send),
            web.get(f"{msgs}/{{message}}", self.get_message),
            web.patch(f"{msgs}/{{message}}", self.edit),
            web.delete(f"{msgs}/{{message}}", self.delete),
            web.post(f"{msgs}/{{message}}/threads", self.thread_from_message),
            web.put(f"{msgs}/{{message}}/reactions/{{emoji}}/@me", self.react),
            web.delete(f"{msgs}/{{message}}/reactions/{{emoji}}/@me", self.unreact),
        ]

    async def gateway_bot(self, _: web.Request) -> web.Response:
        limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
        return json_response({"url": self.fake.gateway_url, "shards": self.fake.recommended_shards,
                              "session_start_limit": limit})

    async def me(self, _: web.Request) -> web.Response:
        return json_response({**self.fake.bot_user.payload(), "verified": True, "mfa_enabled": False})

    async def application(self, _: web.Request) -> web.Response:
        bot = self.fake.bot_user.payload()
        return json_response({
            "id": str(self.fake.application_id),
            "name": self.fake.bot_user.username,
            "description": "",
            "icon": None,
            "bot_public": True,
            "bot_require_code_grant": False,
            "owner": {**bot, "id": str(self.fake.ids.next()), "username": "app-owner", "bot": False},
            "team": None,
            "verify_key": "0" * 64,
            "flags": 0,
            "bot": bot,
            "summary": "",
            "interactions_endpoint_url": None,
            "redirect_uris": [],
        })

    async def get_commands(self, request: web.Request) -> web.Response:
        return json_response(self.fake.commands.get(self._command_scope(request), []))

    async def put_commands(self, request: web.Request) -> web.Response:
        scope = self._command_scope(request)
        body, _ = await read_body(request)
        return json_response(self.fake.sync_commands(scope, body))

    def _command_scope(self, request: web.Request) -> int | None:
        if int(request.match_info["app"]) != self.fake.application_id:
            raise DiscordError(404, 10002, "Unknown Application")
        guild = request.match_info.get("guild")
        if guild is not None and int(guild) not in self.fake.guilds:
            raise DiscordError(403, 50001, "Missing Access")
        return None if guild is None else int(guild)

    async def get_channel(self, request: web.Request) -> web.Response:
        return json_response(self.fake.channel_or_404(request.match_info["channel"]).payload())

    async def typing(self, request: web.Request) -> web.Response:
        self.fake.typing.append(self.fake.channel_or_404(request.match_info["channel"]).id)
        return no_content()

    async def history(self, request: web.Request) -> web.Response:
        channel = self.fake.channel_or_404(request.match_info["channel"])
        query = request.query
        limit = min(int(query.get("limit", 50)), 100)
        ids = sorted(channel.messages)
        if "after" in query:
            ids = [i for i in ids if i > int(query["after"])][:limit]
        else:
            ids = [i for i in ids if "before" not in query or i < int(query["before"])][-limit:]
        return json_response([channel.messages[i] for i in reversed(ids)])

    async def get_message(self, request: web.Request) -> web.Response:
        channel = self.fake.channel_or_404(request.match_info["channel"])
        return json_response(self.fake.message_or_404(channel, request.match_info["message"]))

    async def send(self, request: web.Request) -> web.Response:
        channel = self.fake.channel_or_404(request.match_info["channel"])
        body, files = await read_body(request)
        return json_response(self.fake.bot_send(channel, body, files, kind="message"))

    async def edit(self, request: web.Request) -> web.Response:
        channel = self.fake.channel_or_404(request.match_info["channel"])
        message = self.fake.message_or_404(channel, request.match_info["message"])
        body, files = await read_body(request)
        return json_response(self.fake.bot_edit(channel, message, body, files))

    async def delete(self, request: web.Request) -> web.Response:
        channel = self.fake.channel_or_404(request.match_info["channel"])
        self.fake.delete_message(channel, self.fake.message_or_404(channel, request.match_info["message"]))
        return no_content()

    async def thread_from_message(self, request: web.Request) -> web.Response:
        channel = self.fake.channel_or_404(request.match_info["channel"])
        message = self.fake.message_or_404(channel, request.match_info["message"])
        body, _ = await read_body(request)
        thread = self.fake.create_thread(channel, body, message=message)
        return json_response(thread.payload())

    async def thread_without_message(self, request: web.Request) -> web.Response:
        channel = self.fake.channel_or_404(request.match_info["channel"])
        body, _ = await read_body(request)
        if body.get("type", PRIVATE_THREAD) not in (PUBLIC_THREAD, PRIVATE_THREAD):
            raise DiscordError(400, 50024, "Cannot execute action on this channel type")
        return json_response(self.fake.create_thread(channel, body).payload())

    async def react(self, request: web.Request) -> web.Response:
        self.fake.reactions.append(self._reaction(request))
        return no_content()

    async def unreact(self, request: web.Request) -> web.Response:
        reaction = self._reaction(request)
        if reaction in self.fake.reactions:
            self.fake.reactions.remove(reaction)
        return no_content()

    def _reaction(self, request: web.Request) -> tuple[int, int, str]:
        channel = self.fake.channel_or_404(request.match_info["channel"])
        message: Payload = self.fake.message_or_404(channel, request.match_info["message"])
        return channel.id, int(message["id"]), unquote(request.match_info["emoji"])
