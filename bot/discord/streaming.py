"""Streamed (generated) answers shown by editing one message, at most once a second."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from bot.discord.render import plain_text

EDIT_INTERVAL_SECONDS = 1.0


class ThrottledEditor:
    """Receives growing text (the verified answer so far) and shows the latest at most once a second."""

    def __init__(self, show: Callable[[str], Awaitable[Any]], interval: float = EDIT_INTERVAL_SECONDS) -> None:
        self.show = show
        self.interval = interval
        self.latest = ""
        self.shown = ""
        self._last_edit = 0.0
        self._task: asyncio.Task[None] | None = None
        self._showing = False

    def __call__(self, text: str) -> None:
        self.latest = plain_text(text)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(max(0.0, self._last_edit + self.interval - time.monotonic()))
        if self.latest != self.shown:
            self.shown = self.latest
            self._last_edit = time.monotonic()
            self._showing = True
            try:
                await self.show(self.shown)
            finally:
                self._showing = False

    async def finish(self) -> None:
        """Stop streaming before the final edit: a pending edit is cancelled (it must not land after it), one
        already sent is waited for (cancelled, the message it creates would be unknown and the final answer sent
        as a second one)."""
        if self._task is None or self._task.done():
            return
        if not self._showing:
            self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
