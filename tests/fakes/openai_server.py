"""A scripted OpenAI-compatible chat server on 127.0.0.1: records every request, replies as told.

    async with FakeOpenAIServer() as server:
        server.script(Reply(chunks=["Raisi met Maduro [1]", "."]))
        client = LLMClient(server.base_url, "test-model")
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from aiohttp import web


@dataclass(frozen=True)
class Reply:
    """One scripted reply: a stream of content `chunks`, or raw SSE `lines` (bytes are sent as they are), or an
    error or redirect `status` with its `headers`."""

    chunks: Sequence[str] = ()
    lines: Sequence[str | bytes] | None = None
    status: int = 200
    body: str = ""
    delay: float = 0.0
    chunk_delay: float = 0.0
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]
    json: dict


@dataclass
class FakeOpenAIServer:
    """Serves `POST /v1/chat/completions` on `host` (a loopback address); replies are used in order, HTTP 500
    when none is left."""

    replies: list[Reply] = field(default_factory=list)
    requests: list[Recorded] = field(default_factory=list)
    base_url: str = ""
    host: str = "127.0.0.1"
    _runner: web.AppRunner | None = None

    def script(self, *replies: Reply) -> None:
        self.replies.extend(replies)

    async def __aenter__(self) -> FakeOpenAIServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.1)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.base_url = f"http://{host}:{port}/v1"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(Recorded(request.path, dict(request.headers), await request.json()))
        reply = self.replies.pop(0) if self.replies else Reply(status=500, body="no reply scripted")
        await asyncio.sleep(reply.delay)
        if reply.status != 200:
            return web.Response(status=reply.status, text=reply.body, headers=reply.headers)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for line in self._lines(reply):
            await response.write(line if isinstance(line, bytes) else f"{line}\n\n".encode())
            await asyncio.sleep(reply.chunk_delay)
        await response.write_eof()
        return response

    @staticmethod
    def _lines(reply: Reply) -> Sequence[str | bytes]:
        if reply.lines is not None:
            return reply.lines
        events = [{"choices": [{"index": 0, "delta": {"content": chunk}, "finish_reason": None}]}
                  for chunk in reply.chunks]
        return [*(f"data: {json.dumps(event)}" for event in events), "data: [DONE]"]
