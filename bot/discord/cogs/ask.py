"""Asking: `/ask`, mentions of the bot, and follow-ups in the threads the bot opens."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.answer import Answer, Turn
from bot.discord.app import NO_MENTIONS, error_id, send_ephemeral
from bot.discord.feedback import FeedbackView
from bot.discord.render import answer_embed, plain_text, shorten
from bot.discord.streaming import ThrottledEditor

if TYPE_CHECKING:
    from bot.discord.app import FootnoteBot

log = logging.getLogger("footnote.discord.ask")

THREAD_NAME_LIMIT = 100
HISTORY_TURNS = 4


class AskCog(commands.Cog):
    """Answers `/ask`, mentions, and un-mentioned follow-ups inside its own threads."""

    def __init__(self, bot: FootnoteBot) -> None:
        self.bot = bot
        self.turns: dict[int, list[Turn]] = {}

    @app_commands.command(name="ask", description="Ask a question about the indexed news articles")
    @app_commands.describe(question="What you want to know", private="Only you see the answer")
    async def ask(self, interaction: discord.Interaction, question: str, private: bool = False) -> None:
        refusal = self.refusal(interaction.user.id, interaction.channel, question)
        if refusal:
            await send_ephemeral(interaction, refusal)
            return
        async with self.bot.answering:
            await self.answer_interaction(interaction, question, private)

    async def answer_interaction(self, interaction: discord.Interaction, question: str, private: bool) -> None:
        deferred = await interaction.response.defer(thinking=True, ephemeral=private)
        stream = ThrottledEditor(lambda text: interaction.edit_original_response(content=text))
        answer = await self.bot.service.ask(question, on_delta=stream, guild_id=interaction.guild_id)
        await stream.finish()
        if deferred and deferred.message_id:  # on record before its buttons can be clicked
            await self.remember(deferred.message_id, answer, interaction.guild_id, interaction.channel_id)
        parts = {"content": None, **self.reply_parts(answer)}
        await interaction.edit_original_response(allowed_mentions=NO_MENTIONS, **parts)

    def refusal(self, user_id: int, channel: object, question: str) -> str | None:
        """Why a question is not answered here, or None."""
        settings = self.bot.settings
        if self.bot.closing:
            return "I'm restarting: please ask again in a minute."
        if not self.bot.channel_allowed(channel):
            return "I only answer in the channels my admins chose."
        if len(question) > settings.max_question_chars:
            return (f"Questions are limited to {settings.max_question_chars} characters "
                    f"(yours has {len(question)}). Please shorten it.")
        wait = self.bot.cooldown.retry_after(user_id)
        if wait:
            return f"Please wait {wait:.0f} s before asking again."
        return None

    def reply_parts(self, answer: Answer) -> dict:
        """Message keyword arguments: a refusal is plain text; answers are an embed with feedback buttons."""
        if answer.refusal:
            return {"content": plain_text(answer.refusal)}
        assert self.bot.feedback is not None
        return {"embed": answer_embed(answer), "view": FeedbackView.for_message(self.bot.feedback)}

    async def remember(self, message_id: int, answer: Answer, guild_id: int | None, channel_id: int) -> None:
        """Keep what was answered so that feedback clicks (even after a restart) can be stored with it."""
        if answer.refusal or self.bot.feedback is None:
            return
        await asyncio.to_thread(self.bot.feedback.save_answer, message_id, answer, guild_id, channel_id)

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if me is None or message.author.bot:
            return
        in_own_thread = isinstance(message.channel, discord.Thread) and message.channel.owner_id == me.id
        if not in_own_thread and me not in message.mentions:
            return
        if not self.bot.channel_allowed(message.channel):
            return  # told to stay out: no public reply anyone could make it post again and again
        question = strip_mentions(message.content, me.id)
        if not question:
            return  # a bare mention, or no Message Content intent for an un-mentioned follow-up
        try:
            async with self.bot.answering:
                await self.answer_message(message, question, in_own_thread)
        except Exception:
            ident = error_id()
            log.exception("answering message %s failed (error id %s)", message.id, ident)
            await message.reply(f"Sorry, something went wrong (error id `{ident}`).", mention_author=False,
                                allowed_mentions=NO_MENTIONS)

    async def answer_message(self, message: discord.Message, question: str, follow_up: bool) -> None:
        refusal = self.refusal(message.author.id, message.channel, question)
        if refusal:
            await message.reply(refusal, mention_author=False, allowed_mentions=NO_MENTIONS, delete_after=30)
            return
        history = await self.history(message.channel, message) if follow_up else []
        channel: discord.abc.Messageable = message.channel
        if not follow_up and self.bot.settings.open_threads and isinstance(channel, discord.TextChannel):
            channel = await message.create_thread(name=shorten(question, THREAD_NAME_LIMIT),
                                                  auto_archive_duration=1440)
        reply = Reply(message, channel)
        stream = ThrottledEditor(reply.show)
        async with channel.typing():
            answer = await self.bot.service.ask(question, history[-HISTORY_TURNS:], on_delta=stream,
                                                guild_id=message.guild.id if message.guild else None)
        await stream.finish()
        sent = await reply.show(**self.reply_parts(answer))
        if not answer.refusal:
            self.keep_turns(channel.id, [*self.turns.get(channel.id, []), Turn(question, answer.answer)])
        await self.remember(sent.id, answer, sent.guild and sent.guild.id, sent.channel.id)

    def keep_turns(self, thread_id: int, turns: list[Turn]) -> None:
        """Remember a thread's last turns, forgetting the least recently used threads past `kept_threads`."""
        self.turns.pop(thread_id, None)
        self.turns[thread_id] = turns[-HISTORY_TURNS:]
        while len(self.turns) > self.bot.settings.kept_threads:
            self.turns.pop(next(iter(self.turns)))

    async def history(self, thread: discord.Thread, current: discord.Message) -> list[Turn]:
        """Earlier questions of a bot thread: kept in memory, or read back from Discord after a restart."""
        if thread.id in self.turns:
            return self.turns[thread.id]
        me = self.bot.user
        turns = []
        window = self.bot.settings.thread_history_messages
        messages = [m async for m in thread.history(limit=window, before=current)][::-1]
        if len(messages) < window and (starter := await _starter_message(thread)):
            messages.insert(0, starter)  # the whole thread was read: its opening question comes first
        for message in messages:
            question = strip_mentions(message.content, me.id) if me else message.content
            if message.author != me and question:
                turns.append(Turn(question))
        self.keep_turns(thread.id, turns)
        return turns


class Reply:
    """The bot's one message answering a user message: sent once, then edited (for streamed answers)."""

    def __init__(self, question: discord.Message, channel: discord.abc.Messageable) -> None:
        self.question = question
        self.channel = channel
        self.message: discord.Message | None = None

    async def show(self, content: str | None = None, **parts) -> discord.Message:
        if self.message is not None:
            self.message = await self.message.edit(content=content, allowed_mentions=NO_MENTIONS, **parts)
        elif self.channel == self.question.channel:
            self.message = await self.question.reply(content, mention_author=False, allowed_mentions=NO_MENTIONS,
                                                     **parts)
        else:
            self.message = await self.channel.send(content, allowed_mentions=NO_MENTIONS, **parts)
        return self.message


async def _starter_message(thread: discord.Thread) -> discord.Message | None:
    """The channel message a thread was opened from (its id is the thread's id)."""
    if thread.parent is None:
        return None
    try:
        return await thread.parent.fetch_message(thread.id)
    except discord.HTTPException:
        return None


def strip_mentions(content: str, user_id: int) -> str:
    return content.replace(f"<@{user_id}>", " ").replace(f"<@!{user_id}>", " ").strip()


async def setup(bot: FootnoteBot) -> None:
    await bot.add_cog(AskCog(bot))
