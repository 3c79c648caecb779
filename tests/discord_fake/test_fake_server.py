"""The fake Discord works with unmodified discord.py, and its checks can fail."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import time
import zlib
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from discord.webhook.async_ import async_context, interaction_response_params

from .conftest import BotRunner
from .interactions import PermissionRefused
from .messages import Pings
from .server import AutocompleteRefused, ClientDied, FakeDiscord
from .state import ADMINISTRATOR, GUILD_MEMBERS, MANAGE_GUILD, MESSAGE_CONTENT, FakeChannel, FakeGuild
from .uploads import ATTACHMENT_SIZE_LIMIT, FakeUpload

PRIVILEGED = GUILD_MEMBERS | MESSAGE_CONTENT | (1 << 8)


def make_bot(intents: discord.Intents | None = None, **options: object) -> commands.Bot:
    return commands.Bot(
        command_prefix="!", intents=intents or discord.Intents.default(), guild_ready_timeout=0.1, **options
    )


def newsroom(fake: FakeDiscord) -> tuple[FakeGuild, FakeChannel]:
    guild = fake.add_guild("Newsroom")
    return guild, fake.add_text_channel(guild, "general")


async def sync_to(bot: commands.Bot, guild: FakeGuild) -> list[app_commands.AppCommand]:
    target = discord.Object(guild.id)
    bot.tree.copy_global_to(guild=target)
    return await bot.tree.sync(guild=target)


async def test_login_identify_ready_and_command_sync(fake_discord: FakeDiscord, run_bot: BotRunner) -> None:
    guild, channel = newsroom(fake_discord)
    bot = make_bot()
    readies: list[bool] = []

    @bot.tree.command(description="Ask about the news")
    async def ask(interaction: discord.Interaction, question: str, private: bool = False) -> None:
        await interaction.response.send_message(question, ephemeral=private)

    @bot.tree.command(description="Rebuild the index")
    @app_commands.default_permissions(manage_guild=True)
    async def reindex(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("ok")

    async def on_ready() -> None:
        readies.append(True)

    bot.add_listener(on_ready)
    await run_bot(bot)
    assert readies
    assert fake_discord.intents == discord.Intents.default().value
    assert fake_discord.intents & PRIVILEGED == 0
    # discord.py asks for zstd-stream when `zstandard` imports, else zlib-stream; the fake speaks both.
    expected = "zstd-stream" if importlib.util.find_spec("zstandard") else "zlib-stream"
    assert fake_discord.sessions[-1].compress == expected
    assert isinstance(bot.get_channel(channel.id), discord.TextChannel)
    assert bot.get_guild(guild.id).me.id == fake_discord.bot_user.id  # type: ignore[union-attr]

    synced = await sync_to(bot, guild)
    stored = {c["name"]: c for c in fake_discord.commands[guild.id]}
    assert {c.name: c.id for c in synced} == {name: int(c["id"]) for name, c in stored.items()}
    assert [(o["name"], o["type"], o.get("required", False)) for o in stored["ask"]["options"]] == [
        ("question", 3, True),
        ("private", 5, False),
    ]
    assert stored["ask"]["default_member_permissions"] is None
    assert stored["reindex"]["default_member_permissions"] == str(MANAGE_GUILD)


async def test_defer_then_follow_up_is_recorded(fake_discord: FakeDiscord, run_bot: BotRunner) -> None:
    guild, channel = newsroom(fake_discord)
    alice = fake_discord.add_member(guild, "alice")
    bot = make_bot()

    @bot.tree.command(description="Ask about the news")
    async def ask(interaction: discord.Interaction, question: str, private: bool = False) -> None:
        await interaction.response.defer(ephemeral=private, thinking=True)
        await asyncio.sleep(0.05)
        if private:
            await interaction.edit_original_response(content=f"Privately: {question}")
        else:
            await interaction.followup.send(f"Answer: {question}")

    await run_bot(bot)
    await sync_to(bot, guild)

    public = await fake_discord.invoke_command(channel, alice, "ask", {"question": "why?"})
    await fake_discord.wait_for(lambda: public.followups)
    assert public.ack_type == 5
    assert public.ack_after is not None and public.ack_after < fake_discord.ack_deadline
    assert not public.ephemeral
    assert public.followups[0]["content"] == "Answer: why?"
    assert fake_discord.sent_messages(channel) == [public.original]  # the follow-up replaced "thinking..."

    private = await fake_discord.invoke_command(channel, alice, "ask", {"question": "who?", "private": True})
    await fake_discord.wait_for(lambda: private.edits)
    assert (private.ack_type, private.ephemeral) == (5, True)
    assert private.edits[-1]["content"] == "Privately: who?"
    assert fake_discord.sent_messages(channel) == [public.original]  # ephemeral: not in the channel
    assert private.rejections == public.rejections == []


async def test_original_response_fetch_delete_and_modal(fake_discord: FakeDiscord, run_bot: BotRunner) -> None:
    guild, channel = newsroom(fake_discord)
    alice = fake_discord.add_member(guild, "alice")
    bot = make_bot()
    fetched: list[str] = []

    class Feedback(discord.ui.Modal, title="Feedback"):
        text: discord.ui.TextInput[Feedback] = discord.ui.TextInput(label="What was wrong?")

    @bot.tree.command(description="Answer, then retract")
    async def retract(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Draft answer")
        fetched.append((await interaction.original_response()).content)
        await interaction.delete_original_response()

    @bot.tree.command(description="Give feedback")
    async def feedback(interaction: discord.Interaction) -> None:
        await interaction.response.send_modal(Feedback())

    await run_bot(bot)
    await sync_to(bot, guild)
    answer = await fake_discord.invoke_command(channel, alice, "retract")
    await fake_discord.wait_for(lambda: [kind for kind, _ in answer.history] == ["ack", "delete"])
    assert fetched == ["Draft answer"]
    assert fake_discord.sent_messages(channel) == []
    modal = await fake_discord.invoke_command(channel, alice, "feedback")
    await fake_discord.wait_for(lambda: modal.acknowledged)
    assert modal.ack_type == 9 and modal.original is None
    assert modal.history[0][1]["data"]["title"] == "Feedback"


async def test_auto_sharded_bot_asks_for_the_gateway(fake_discord: FakeDiscord, run_bot: BotRunner) -> None:
    guild, _ = newsroom(fake_discord)
    bot = commands.AutoShardedBot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.1)
    await run_bot(bot)
    assert "GET /api/v10/gateway/bot" in fake_discord.requests
    assert fake_discord.sessions[-1].identify["shard"] == [0, 1]  # type: ignore[index]
    assert bot.get_guild(guild.id) is not None


class QuickShardsBot(commands.AutoShardedBot):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py waits 5 s before each shard's IDENTIFY after the first; skip that in tests."""


async def test_direct_messages_go_to_shard_zero_only(fake_discord: FakeDiscord, run_bot: BotRunner) -> None:
    bot = QuickShardsBot(command_prefix="!", intents=discord.Intents.default(), shard_count=2,
                         guild_ready_timeout=0.1)
    typing: list[discord.RawTypingEvent] = []

    @bot.listen()
    async def on_raw_typing(event: discord.RawTypingEvent) -> None:
        typing.append(event)

    await run_bot(bot)
    assert sorted(s.shard for s in fake_discord.gateway.live_sessions()) == [(0, 2), (1, 2)]
    await fake_discord.send_event("TYPING_START", {"channel_id": str(fake_discord.ids.next()),
                                                   "user_id": str(fake_discord.ids.next()), "timestamp": 0})
    await fake_discord.wait_for(lambda: typing)
    await asyncio.sleep(0.1)  # time for a second copy to arrive
    assert len(typing) == 1


async def test_late_acknowledgement_gets_unknown_interaction(fake_discord: FakeDiscord, run_bot: BotRunner) -> None:
    guild, channel = newsroom(fake_discord)
    alice = fake_discord.add_member(guild, "alice")
    fake_discord.ack_deadline = 0.3
    errors: list[discord.HTTPException] = []
    bot = make_bot()

    @bot.tree.command(description="Too slow")
    async def slow(interaction: discord.Interaction) -> None:
        await asyncio.sleep(0.5)
        try:
            await interaction.response.send_message("finally")
        except discord.NotFound as error:
            errors.append(error)

    await run_bot(bot)
    await sync_to(bot, guild)
    record = await fake_discord.invoke_command(channel, alice, "slow")
    await fake_discord.wait_for(lambda: errors)
    assert errors[0].code == 10062
    assert not record.acknowledged
    assert record.rejections == [10062]
    assert fake_discord.outbox == []


async def test_pings_respect_allowed_mentions(fake_discord: FakeDiscord, run_bot: BotRunner) -> None:
    guild, channel = newsroom(fake_discord)
    alice = fake_discord.add_member(guild, "alice")
    bot = make_bot()

    @bot.tree.command(description="Unsafe")
    async def shout(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(f"@everyone {alice.mention} {mods.mention} read this")

    @bot.tree.command(description="Safe")
    async def quiet(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(
            f"@everyone {alice.mention} read this", allowed_mentions=discord.AllowedMentions.none()
        )

    @bot.tree.command(description="Only the caller sees it")
    async def whisper(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("@everyone read this", ephemeral=True)

    await run_bot(bot)
    await sync_to(bot, guild)
    mods = fake_discord.add_role(guild, "mods")  # after READY: GUILD_ROLE_CREATE
    await fake_discord.wait_for(lambda: bot.get_guild(guild.id).get_role(mods.id))  # type: ignore[union-attr]
    safe = await fake_discord.invoke_command(channel, alice, "quiet")
    private = await fake_discord.invoke_command(channel, alice, "whisper")
    await fake_discord.wait_for(lambda: safe.acknowledged and private.acknowledged)
    assert fake_discord.pings() == []  # suppressed, and ephemeral messages notify nobody
    assert safe.original is not None and safe.original["mention_everyone"] is False

    unsafe = await fake_discord.invoke_command(channel, alice, "shout")
    await fake_discord.wait_for(lambda: unsafe.acknowledged)
    [ping] = fake_discord.pings()
    assert ping.interaction_id == unsafe.id and ping.allowed_mentions is None
    assert ping.pings == Pings(everyone=True, users=frozenset({alice.id}), roles=frozenset({mods.id}))


async def test_default_member_permissions_are_enforced(fake_discord: FakeDiscord, run_bot: BotRunner) -> None:
    guild, channel = newsroom(fake_discord)
    alice = fake_discord.add_member(guild, "alice")
    editor = fake_discord.add_member(guild, "editor", permissions=MANAGE_GUILD)
    admin = fake_discord.add_member(guild, "admin", permissions=ADMINISTRATOR)
    bot = make_bot()

    @bot.tree.command(description="Rebuild the index")
    @app_commands.default_permissions(manage_guild=True)
    @app_commands.checks.has_permissions(manage_guild=True)
    async def reindex(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("Reindexing.", ephemeral=True)

    @reindex.error
    async def refused(interaction: discord.Interaction, error: app_commands.AppCommandError) -> None:
        await interaction.response.send_message("You need Manage Server.", ephemeral=True)

    await run_bot(bot)
    await sync_to(bot, guild)
    with pytest.raises(PermissionRefused, match="default_member_permissions"):
        await fake_discord.invoke_command(channel, alice, "reindex")
    assert fake_discord.interactions == {}

    for member in (editor, admin):
        allowed = await fake_discord.invoke_command(channel, member, "reindex")
        await fake_discord.wait_for(lambda r=allowed: r.acknowledged)  # type: ignore[misc]
        assert allowed.original is not None and allowed.original["content"] == "Reindexing."

    overridden = await fake_discord.invoke_command(channel, alice, "reindex", override_permissions=True)
    await fake_discord.wait_for(lambda: overridden.acknowledged)
    assert overridden.original is not None and overridden.original["content"] == "You need Manage Server."


async def test_follow_up_before_ack_and_double_ack_fail(fake_discord: FakeDiscord, run_bot: BotRunner) -> None:
    guild, channel = newsroom(fake_discord)
    alice = fake_discord.add_member(guild, "alice")
    errors: list[discord.HTTPException] = []
    bot = make_bot()

    @bot.tree.command(description="Follows up too early")
    async def eager(interaction: discord.Interaction) -> None:
        try:
            await interaction.followup.send("too early")
        except discord.NotFound as error:
            errors.append(error)
        await interaction.response.send_message("ok")

    @bot.tree.command(description="Acknowledges twice")
    async def twice(interaction: discord.Interaction) -> None:
        await interaction.response.defer()
        async with aiohttp.ClientSession() as session:  # a second responder, e.g. another process
            try:
                await async_context.get().create_interaction_response(
                    interaction.id, interaction.token, session=session, params=interaction_response_params(5)
                )
            except discord.HTTPException as error:
                errors.append(error)
        await interaction.followup.send("done")

    await run_bot(bot)
    await sync_to(bot, guild)
    early = await fake_discord.invoke_command(channel, alice, "eager")
    await fake_discord.wait_for(lambda: early.acknowledged)
    double = await fake_discord.invoke_command(channel, alice, "twice")
    await fake_discord.wait_for(lambda: double.followups)
    assert [(e.status, e.code) for e in errors] == [(404, 10015), (400, 40060)]
    assert (early.rejections, double.rejections) == ([10015], [40060])
    assert (early.ack_type, double.ack_type) == (4, 5)


async def test_mention_reply_and_thread(fake_discord: FakeDiscord, run_bot: BotRunner) -> None:
    guild, channel = newsroom(fake_discord)
    alice = fake_discord.add_member(guild, "alice")
    bot = make_bot()
    created: list[discord.Thread] = []

    async def on_message(message: discord.Message) -> None:
        if message.author.bot or bot.user not in message.mentions:
            return
        await message.reply("Let's talk in a thread.")
        thread = await message.create_thread(name="Discussion")
        await thread.send("Sources follow.", allowed_mentions=discord.AllowedMentions.none())

    async def on_thread_create(thread: discord.Thread) -> None:
        created.append(thread)

    bot.add_listener(on_message)
    bot.add_listener(on_thread_create)
    await run_bot(bot)
    question = await fake_discord.user_message(channel, alice, f"{fake_discord.bot_user.mention} what happened?")
    thread_id = int(question["id"])
    await fake_discord.wait_for(lambda: thread_id in fake_discord.channels and fake_discord.sent_messages(
        fake_discord.channels[thread_id]))
    await fake_discord.wait_for(lambda: isinstance(bot.get_channel(thread_id), discord.Thread))
    assert [t.id for t in created] == [thread_id]
    assert isinstance(await bot.fetch_channel(thread_id), discord.Thread)

    [reply] = fake_discord.sent_messages(channel)
    assert reply["type"] == 19 and reply["message_reference"]["message_id"] == question["id"]
    thread = fake_discord.channels[thread_id]
    assert (thread.type, thread.parent_id, thread.owner_id) == (11, channel.id, fake_discord.bot_user.id)
    assert fake_discord.sent_messages(thread)[0]["content"] == "Sources follow."
    # discord.py sends no allowed_mentions by default, so a reply pings its author.
    assert [p.pings.users for p in fake_discord.pings()] == [{alice.id}]


async def test_content_is_stripped_without_message_content_intent(
    fake_discord: FakeDiscord, run_bot: BotRunner
) -> None:
    guild, channel = newsroom(fake_discord)
    alice = fake_discord.add_member(guild, "alice")
    earlier = fake_discord.add_bot_message(channel, "An earlier answer")
    bot = make_bot()
    seen: list[str] = []

    async def on_message(message: discord.Message) -> None:
        seen.append(message.content)

    bot.add_listener(on_message)
    await run_bot(bot)
    mention = fake_discord.bot_user.mention
    await fake_discord.user_message(channel, alice, "just chatting")
    await fake_discord.user_message(channel, alice, f"{mention} summarize")
    await fake_discord.user_message(channel, alice, "pinging reply", reply_to=earlier)
    await fake_discord.user_message(channel, alice, "silent reply", reply_to=earlier, mention_reply=False)
    await fake_discord.wait_for(lambda: len(seen) == 4)
    assert seen == ["", f"{mention} summarize", "pinging reply", ""]


async def test_privileged_intents_deliver_content_and_members(
    fake_discord: FakeDiscord, run_bot: BotRunner
) -> None:
    guild, channel = newsroom(fake_discord)
    alice = fake_discord.add_member(guild, "alice")
    intents = discord.Intents.default()
    intents.message_content = intents.members = True
    bot = make_bot(intents)
    seen: list[str] = []

    async def on_message(message: discord.Message) -> None:
        seen.append(message.content)

    bot.add_listener(on_message)
    await run_bot(bot)
    assert fake_discord.intents is not None and fake_discord.intents & MESSAGE_CONTENT
    assert {m.id for m in bot.get_guild(guild.id).members} == set(guild.members)  # type: ignore[union-attr]
    await fake_discord.user_message(channel, alice, "just chatting")
    await fake_discord.wait_for(lambda: seen)
    assert seen == ["just chatting"]


async def test_heartbeats_are_acked_and_a_blocked_loop_shows(fake_discord: FakeDiscord, run_bot: BotRunner) -> None:
    guild, channel = newsroom(fake_discord)
    alice = fake_discord.add_member(guild, "alice")
    bot = make_bot()
    blocked: list[bool] = []

    async def on_message(message: discord.Message) -> None:
        if not message.author.bot:
            time.sleep(3)  # the mutant: blocking call on the event loop
            blocked.append(True)

    bot.add_listener(on_message)
    await run_bot(bot)
    session = fake_discord.sessions[-1]
    await fake_discord.wait_for(lambda: len(session.heartbeats) >= 2)
    assert fake_discord.max_heartbeat_gap() < 1.5
    # inf until discord.py gets a HEARTBEAT_ACK; its value races the keep-alive thread, so only check that
    assert math.isfinite(bot.latency)

    await fake_discord.user_message(channel, alice, "anything")
    await fake_discord.wait_for(lambda: blocked)
    assert fake_discord.max_heartbeat_gap() > 2.5


async def test_bad_token_is_refused(fake_discord: FakeDiscord) -> None:
    bot = make_bot()
    with pytest.raises(discord.LoginFailure):
        await bot.start("wrong-token")
    await bot.close()
    assert fake_discord.requests == ["GET /api/v10/users/@me"]

    url = f"{fake_discord.gateway_url}?v=10&encoding=json"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        assert (await ws.receive_json())["op"] == 10
        await ws.send_json({"op": 2, "d": {"token": "wrong-token", "intents": 0, "properties": {}}})
        assert (await ws.receive()).type is aiohttp.WSMsgType.CLOSE
        assert ws.close_code == 4004


@pytest.mark.parametrize("mode", ["zlib-stream", "zstd-stream"])
async def test_gateway_compression_shares_one_stream(fake_discord: FakeDiscord, mode: str) -> None:
    if mode == "zlib-stream":
        inflater = zlib.decompressobj()
        inflate = inflater.decompress
    else:
        inflate = pytest.importorskip("zstandard").ZstdDecompressor().decompressobj().decompress
    url = f"{fake_discord.gateway_url}?v=10&encoding=json&compress={mode}"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        frames = [await ws.receive_bytes()]
        await ws.send_json({"op": 1, "d": None})
        frames.append(await ws.receive_bytes())
    assert [json.loads(inflate(frame))["op"] for frame in frames] == [10, 11]
    if mode == "zlib-stream":
        assert all(frame.endswith(b"\x00\x00\xff\xff") for frame in frames)
    assert len(fake_discord.sessions[-1].heartbeats) == 1


async def test_button_on_persistent_view_answers_ephemerally(fake_discord: FakeDiscord, run_bot: BotRunner) -> None:
    guild, channel = newsroom(fake_discord)
    alice = fake_discord.add_member(guild, "alice")
    clicked_on: list[int] = []

    class Panel(discord.ui.View):
        def __init__(self) -> None:
            super().__init__(timeout=None)

        @discord.ui.button(label="Sources", custom_id="footnote:sources")
        async def sources(self, interaction: discord.Interaction, _: discord.ui.Button[Panel]) -> None:
            assert interaction.message is not None
            clicked_on.append(interaction.message.id)
            await interaction.response.send_message("Here are the sources.", ephemeral=True)

        @discord.ui.button(label="Refresh", custom_id="footnote:refresh")
        async def refresh(self, interaction: discord.Interaction, _: discord.ui.Button[Panel]) -> None:
            await interaction.response.edit_message(content="Refreshed answer")

        @discord.ui.button(label="Later", custom_id="footnote:later")
        async def later(self, interaction: discord.Interaction, _: discord.ui.Button[Panel]) -> None:
            await interaction.response.defer()
            await interaction.edit_original_response(content="Updated later")

    posted = fake_discord.add_bot_message(channel, "Answer", components=Panel().to_components())
    bot = make_bot()
    await run_bot(bot)
    bot.add_view(Panel())
    with pytest.raises(LookupError):
        await fake_discord.click_button(posted, alice, "footnote:missing")
    click = await fake_discord.click_button(posted, alice, "footnote:sources")
    await fake_discord.wait_for(lambda: click.acknowledged)
    assert (click.type, click.ack_type, click.ephemeral) == (3, 4, True)
    assert click.original is not None and click.original["content"] == "Here are the sources."
    assert fake_discord.sent_messages(channel) == [posted]
    assert clicked_on == [int(posted["id"])]

    update = await fake_discord.click_button(posted, alice, "footnote:refresh")
    await fake_discord.wait_for(lambda: update.acknowledged)
    deferred = await fake_discord.click_button(posted, alice, "footnote:later")
    await fake_discord.wait_for(lambda: deferred.edits)
    assert (update.ack_type, deferred.ack_type) == (7, 6)
    assert [o.message["content"] for o in fake_discord.outbox if o.kind == "edit"] == [
        "Refreshed answer",
        "Updated later",
    ]
    assert fake_discord.sent_messages(channel) == [posted] and posted["content"] == "Updated later"


async def test_message_lifecycle_over_rest(fake_discord: FakeDiscord, run_bot: BotRunner) -> None:
    guild = fake_discord.add_guild("Newsroom")
    bot = make_bot()
    await run_bot(bot)
    late = fake_discord.add_text_channel(guild, "late")  # added after READY: CHANNEL_CREATE
    live = await fake_discord.wait_for(lambda: bot.get_channel(late.id))
    assert isinstance(live, discord.TextChannel)

    async with live.typing():
        first = await live.send("one", file=discord.File(__file__, filename="notes.py"))
    second = await live.send("two")
    await second.edit(content="two, edited")
    await first.add_reaction("👍")
    await first.add_reaction("📰")
    await first.remove_reaction("📰", bot.user)  # type: ignore[arg-type]
    standalone = await live.create_thread(name="Standalone", type=discord.ChannelType.public_thread)
    await bot.change_presence(activity=discord.Game("the news"))
    fetched = await live.fetch_message(second.id)
    history = [m.content async for m in live.history(limit=10, before=second)]
    await first.delete()

    assert fetched.content == "two, edited" and fetched.edited_at is not None
    assert history == ["one"]
    assert first.attachments[0].filename == "notes.py"
    assert [m["content"] for m in fake_discord.sent_messages(late)] == ["two, edited"]
    assert [o.kind for o in fake_discord.outbox] == ["message", "message", "edit"]
    assert fake_discord.outbox[0].files["notes.py"].startswith(b'"""')
    assert fake_discord.typing == [late.id]
    assert fake_discord.reactions == [(late.id, first.id, "👍")]
    assert (fake_discord.channels[standalone.id].type, standalone.parent_id) == (11, late.id)
    await fake_discord.wait_for(lambda: fake_discord.presence_updates)
    assert fake_discord.presence_updates[0]["activities"][0]["name"] == "the news"

    with pytest.raises(discord.HTTPException) as too_long:
        await live.send("x" * 2001)
    assert too_long.value.code == 50035
    with pytest.raises(discord.NotFound):
        await bot.fetch_guild(guild.id)  # an unsupported route: recorded, and fails the teardown check
    assert fake_discord.unknown_calls == [f"GET /api/v10/guilds/{guild.id}?with_counts=1"]
    fake_discord.unknown_calls.clear()


class QuickReconnectBot(commands.Bot):
    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """discord.py sleeps 5 s before every non-initial IDENTIFY; skip that in tests."""


async def test_reconnect_reidentifies(fake_discord: FakeDiscord, run_bot: BotRunner) -> None:
    guild, channel = newsroom(fake_discord)
    alice = fake_discord.add_member(guild, "alice")
    bot = QuickReconnectBot(command_prefix="!", intents=discord.Intents.default(), guild_ready_timeout=0.1)

    @bot.tree.command(description="Ping")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong")

    await run_bot(bot)
    await sync_to(bot, guild)
    await fake_discord.drop_connections()
    await fake_discord.wait_for(lambda: len(fake_discord.gateway.live_sessions()) == 1 and len(
        [s for s in fake_discord.sessions if s.identify]) == 2)
    record = await fake_discord.invoke_command(channel, alice, "ping")
    await fake_discord.wait_for(lambda: record.acknowledged)


async def test_a_crashing_payload_is_reported(fake_discord: FakeDiscord, run_bot: BotRunner) -> None:
    newsroom(fake_discord)
    running = await run_bot(make_bot())
    await fake_discord.send_event("INTERACTION_CREATE", {"id": "1", "type": 2})  # no token: KeyError in discord.py
    with pytest.raises(ClientDied, match="KeyError"):
        await fake_discord.wait_for(lambda: False)
    fake_discord.unwatch(running.task)


async def test_attachment_option_is_downloaded_from_the_fake(fake_discord: FakeDiscord, run_bot: BotRunner) -> None:
    guild, channel = newsroom(fake_discord)
    alice = fake_discord.add_member(guild, "alice")
    bot = make_bot()
    received: list[tuple[discord.Attachment, dict[str, object]]] = []

    @bot.tree.command(description="Add a source")
    async def add(interaction: discord.Interaction, file: discord.Attachment) -> None:
        received.append((file, dict(interaction.data or {})))
        data = await file.read()  # discord.py downloads `url` with its own aiohttp session
        await interaction.response.send_message(f"{file.filename}: {len(data)} bytes", ephemeral=True)

    @bot.tree.command(description="Ask about the news")
    async def ask(interaction: discord.Interaction, question: str) -> None:
        await interaction.response.send_message(question)

    await run_bot(bot)
    await sync_to(bot, guild)
    stored = {c["name"]: c for c in fake_discord.commands[guild.id]}
    assert [(o["name"], o["type"]) for o in stored["add"]["options"]] == [("file", 11)]
    pdf = FakeUpload("march report.pdf", b"%PDF-1.7 " + bytes(range(256)) * 40, "application/pdf")
    record = await fake_discord.invoke_command(channel, alice, "add", {"file": pdf})
    await fake_discord.wait_for(lambda: record.acknowledged)
    assert record.original is not None and record.original["content"] == f"march report.pdf: {len(pdf.data)} bytes"

    [(file, data)] = received
    assert data["options"] == [{"name": "file", "type": 11, "value": str(file.id)}]
    assert data["resolved"] == {"attachments": {str(file.id): {
        "id": str(file.id), "filename": "march report.pdf", "size": len(pdf.data), "content_type": "application/pdf",
        "url": file.url, "proxy_url": file.url, "ephemeral": True, "flags": 0,
    }}}
    path = f"/ephemeral-attachments/{channel.id}/{file.id}/march%20report.pdf"
    assert file.url == fake_discord.api_base.removesuffix("/api/v10") + path
    assert f"GET {path}" in fake_discord.requests
    async with aiohttp.ClientSession() as session:
        async with session.get(file.url) as served:
            assert (served.status, served.content_type, await served.read()) == (200, "application/pdf", pdf.data)
        for wrong in (file.url.replace(str(file.id), str(file.id + 1)), file.url.replace("march", "april")):
            async with session.get(wrong) as missing:
                assert missing.status == 404

    too_big = FakeUpload("huge.pdf", bytes(ATTACHMENT_SIZE_LIMIT + 1))
    with pytest.raises(ValueError, match="attachment_size_limit"):
        await fake_discord.invoke_command(channel, alice, "add", {"file": too_big})
    with pytest.raises(TypeError, match="type 11"):
        await fake_discord.invoke_command(channel, alice, "add", {"file": "march report.pdf"})
    with pytest.raises(TypeError, match="type 3"):
        await fake_discord.invoke_command(channel, alice, "ask", {"question": pdf})
    assert list(fake_discord.interactions) == [record.id]


SOURCES = [f"rainfall-{year}" for year in range(1990, 2014)] + ["raisi-caracas", "reuters-feed"]  # 25 match "rai"
BROKEN_CHOICES = {  # what a careless bot answers to these texts, and why Discord refuses it
    "long name": ([app_commands.Choice(name="n" * 101, value="v")], r"choices\.0\.name\W.*between 1 and 100"),
    "long value": ([app_commands.Choice(name="n", value="v" * 101)], r"choices\.0\.value\W.*100 or fewer"),
    "number": ([app_commands.Choice(name="n", value=7)], r"choices\.0\.value\W.*option type 3"),
}


async def test_autocomplete_offers_choices_within_discord_limits(
    fake_discord: FakeDiscord, run_bot: BotRunner
) -> None:
    guild, channel = newsroom(fake_discord)
    alice = fake_discord.add_member(guild, "alice")
    bot = make_bot()
    typed: list[dict[str, object]] = []

    @bot.tree.command(description="Remove a source")
    async def remove(interaction: discord.Interaction, source: str, reason: str) -> None:
        await interaction.response.send_message(f"Removed {source}")

    @remove.autocomplete("source")
    async def source_choices(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[Any]]:
        typed.append(dict(interaction.data or {}))
        if current in BROKEN_CHOICES:
            return BROKEN_CHOICES[current][0]
        matches = [app_commands.Choice(name=s, value=s) for s in SOURCES if current in s]
        return matches if current == "" else matches[:25]  # the bot forgets the cap when nothing is typed

    await run_bot(bot)
    await sync_to(bot, guild)
    record = await fake_discord.autocomplete(channel, alice, "remove", {"source": "rai"}, focused="source")
    assert await fake_discord.wait_for_choices(record) == [{"name": s, "value": s} for s in SOURCES[:25]]
    assert (record.type, record.ack_type, record.rejections) == (4, 8, [])
    assert typed[0]["options"] == [{"name": "source", "type": 3, "value": "rai", "focused": True}]
    assert "resolved" not in typed[0]

    with_reason = await fake_discord.autocomplete(
        channel, alice, "remove", {"reason": "stale", "source": "cara"}, focused="source"
    )
    assert await fake_discord.wait_for_choices(with_reason) == [{"name": "raisi-caracas", "value": "raisi-caracas"}]
    assert typed[1]["options"] == [
        {"name": "source", "type": 3, "value": "cara", "focused": True},
        {"name": "reason", "type": 3, "value": "stale"},
    ]

    refusals = {"": r"choices\W.*25 or fewer"} | {text: reason for text, (_, reason) in BROKEN_CHOICES.items()}
    for text, reason in refusals.items():
        refused = await fake_discord.autocomplete(channel, alice, "remove", {"source": text}, focused="source")
        with pytest.raises(AutocompleteRefused, match=reason):
            await fake_discord.wait_for_choices(refused)
        assert (refused.rejections, refused.choices) == ([50035], None)

    with pytest.raises(ValueError, match="autocomplete: true"):
        await fake_discord.autocomplete(channel, alice, "remove", {"reason": "st"}, focused="reason")
    with pytest.raises(TypeError, match="text typed so far"):
        await fake_discord.autocomplete(channel, alice, "remove", {"source": 3}, focused="source")
    assert fake_discord.outbox == []  # autocompletion never runs the command
