"""A local web server for fetch tests: scripted routes on a loopback address, every request recorded.

    async with FakeWebServer() as server:
        server.route("/article", page(ARTICLE_HTML))
        fetched = await fetcher.fetch(server.url("/article"))
        assert [r.path for r in server.requests] == ["/article"]
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]


@dataclass
class FakeWebServer:
    """Serves the routes it is given on `host` (a loopback address); any other path is a 404."""

    host: str = "127.0.0.1"
    requests: list[Recorded] = field(default_factory=list)
    port: int = 0
    _routes: dict[str, Handler] = field(default_factory=dict)
    _runner: web.AppRunner | None = None

    def route(self, path: str, handler: Handler) -> None:
        self._routes[path] = handler

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    async def __aenter__(self) -> FakeWebServer:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._dispatch)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Recorded(request.path, dict(request.headers)))
        handler = self._routes.get(request.path)
        return await handler(request) if handler else web.Response(status=404, text="not found")


def page(body: bytes | str, content_type: str | None = "text/html; charset=utf-8", **headers: str) -> Handler:
    """A complete response with a Content-Length; `content_type=None` sends no Content-Type at all."""
    data = body.encode("utf-8") if isinstance(body, str) else body

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.Response(body=data, headers=headers)
        if content_type is None:
            response.headers.popall("Content-Type", None)
        else:
            response.headers["Content-Type"] = content_type
        return response

    return handler


def redirect(location: str, status: int = 302) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, headers={"Location": location})

    return handler


def endless(chunk: bytes = b"x" * 65536, most: int = 2000) -> Handler:
    """A chunked body with no Content-Length that goes on until the client leaves (or `most` chunks)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for _ in range(most):
                await response.write(chunk)
        return response

    return handler


def declared_length(length: int) -> Handler:
    """Headers announcing `length` bytes, then silence: a client that starts reading waits forever."""

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.content_length = length
        await response.prepare(request)
        await asyncio.sleep(60)
        return response

    return handler


def slow(seconds: float, then: Handler) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(seconds)
        return await then(request)

    return handler
