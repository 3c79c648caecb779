"""The throttled editor of streamed answers: at most one edit a second, and none lost or doubled at the end."""

from __future__ import annotations

import asyncio

from bot.discord.streaming import ThrottledEditor


class SlowShow:
    """A message send or edit that takes `seconds` to come back."""

    def __init__(self, seconds: float) -> None:
        self.seconds, self.started, self.finished = seconds, [], []

    async def __call__(self, text: str) -> None:
        self.started.append(text)
        await asyncio.sleep(self.seconds)
        self.finished.append(text)


async def test_finishing_waits_for_a_send_already_under_way() -> None:
    show = SlowShow(0.2)
    editor = ThrottledEditor(show, interval=0.0)
    editor("Raisi met Maduro [1].")
    await asyncio.sleep(0.05)  # the send has started
    await editor.finish()
    assert show.finished == ["Raisi met Maduro [1]."]


async def test_finishing_cancels_an_edit_still_waiting_for_its_turn() -> None:
    show = SlowShow(0.0)
    editor = ThrottledEditor(show, interval=10.0)
    editor("Raisi met Maduro [1].")
    await asyncio.sleep(0.05)
    editor("Raisi met Maduro [1]. In Caracas [1].")  # waits about 10 s for its turn
    await asyncio.wait_for(editor.finish(), 1.0)
    assert show.started == show.finished == ["Raisi met Maduro [1]."]
