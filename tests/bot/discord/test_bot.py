"""The Footnote bot, unmodified discord.py, against the project's fake Discord over real sockets."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import sqlite3
import sys
from pathlib import Path

import discord
import pytest

from bot.answer import ABSTAIN_TEXT
from bot.discord.app import FootnoteBot
from bot.discord.feedback import VOTE_DOWN_ID, VOTE_UP_ID
from bot.discord.render import ABSTAIN_TITLE
from index.embedding import Embedder
from tests.bot.discord.conftest import StartBot, copy_seed
from tests.conftest import ROOT
from tests.discord_fake import FakeDiscord, PermissionRefused
from tests.discord_fake.state import MESSAGE_CONTENT

EPHEMERAL = 64
DEFERRED = 5
MANAGE_GUILD = str(1 << 5)


def final_message(fake: FakeDiscord, record) -> dict:
    """The interaction's response message as it stands (after the last edit)."""
    return record.edits[-1] if record.edits else record.followups[-1]


def embed_of(message: dict) -> dict:
    [embed] = message["embeds"]
    return embed


def write_articles(corpus: Path, count: int) -> None:
    for n in range(count):
        body = " ".join(f"Port {n} handled {k * 1000 + n} containers in week {k}, the harbour office said."
                        for k in range(10))
        (corpus / f"port-{n:03d}.md").write_text(f"---\ntitle: Port report {n}\n---\n{body}\n", encoding="utf-8")


async def test_login_syncs_the_command_schema_with_default_intents(newsroom: StartBot) -> None:
    room = await newsroom()
    fake = room.fake
    assert fake.intents == discord.Intents.default().value and not fake.intents & MESSAGE_CONTENT
    commands = {c["name"]: c for c in fake.commands[room.guild.id]}
    assert set(commands) == {"ask", "reindex", "add", "remove", "sources", "stats"}
    assert [(o["name"], o["type"], o.get("required", False)) for o in commands["ask"]["options"]] == [
        ("question", 3, True), ("private", 5, False)]
    assert commands["ask"]["default_member_permissions"] is None
    for admin_command in ("reindex", "add", "remove", "sources", "stats"):
        assert commands[admin_command]["default_member_permissions"] == MANAGE_GUILD
    assert [(o["name"], o["type"]) for o in commands["reindex"]["options"]] == [("full", 5), ("shared", 5)]
    assert [(o["name"], o["type"]) for o in commands["add"]["options"]] == [("url", 3), ("file", 11)]
    assert [(o["name"], o.get("autocomplete")) for o in commands["remove"]["options"]] == [("source", True)]


async def test_ask_defers_then_answers_with_a_citation_embed(newsroom: StartBot) -> None:
    room = await newsroom()
    record = await room.fake.invoke_command(room.channel, room.reader, "ask",
                                            {"question": "Who did Raisi meet in Caracas?"})
    await room.fake.wait_for(lambda: record.edits, timeout=10)
    assert record.ack_type == DEFERRED and record.ack_after < 0.5 and not record.ephemeral
    embed = embed_of(final_message(room.fake, record))
    assert "Maduro" in embed["description"] and re.search(r"\[\d\]$", embed["description"])
    field = embed["fields"][0]
    assert re.fullmatch(r"\[1\] .+ — paragraph \d+", field["name"])
    seed_text = room.bot.service.answerer.snapshot.documents["raisi-maduro-caracas"].text
    assert field["value"].strip("“”") in seed_text
    assert "total" in embed["footer"]["text"]
    buttons = [c["custom_id"] for row in final_message(room.fake, record)["components"] for c in row["components"]]
    assert buttons == [VOTE_UP_ID, VOTE_DOWN_ID]


async def test_unsure_answer_is_an_abstention_with_the_closest_passages(newsroom: StartBot) -> None:
    room = await newsroom(abstain_threshold=None)  # the answer model's calibrated threshold
    record = await room.fake.invoke_command(room.channel, room.reader, "ask",
                                            {"question": "What is the GDP of Nicaragua?"})
    await room.fake.wait_for(lambda: record.edits, timeout=10)
    embed = embed_of(final_message(room.fake, record))
    assert embed["title"] == ABSTAIN_TITLE and embed["description"] == ABSTAIN_TEXT
    assert embed["fields"] and all(f["name"].startswith("Closest: [") for f in embed["fields"])


async def test_private_ask_is_ephemeral(newsroom: StartBot) -> None:
    room = await newsroom()
    record = await room.fake.invoke_command(room.channel, room.reader, "ask",
                                            {"question": "What day does the tour end in Cuba?", "private": True})
    await room.fake.wait_for(lambda: record.edits, timeout=10)
    assert record.ephemeral and record.ack_type == DEFERRED
    assert "Wednesday" in embed_of(final_message(room.fake, record))["description"]


async def test_mention_gets_a_thread_with_the_answer_and_follow_ups_use_it(newsroom: StartBot) -> None:
    room = await newsroom()
    fake, me = room.fake, room.fake.bot_user
    question = await fake.user_message(room.channel, room.reader,
                                       f"<@{me.id}> Which country does Raisi visit on Tuesday?")
    thread = await fake.wait_for(lambda: next((c for c in fake.channels.values() if c.is_thread), None), 10)
    assert thread.name == "Which country does Raisi visit on Tuesday?" and thread.parent_id == room.channel.id
    answer = await fake.wait_for(lambda: fake.sent_messages(thread), timeout=10)
    assert "Nicaragua" in embed_of(answer[0])["description"]
    assert room.channel.id in fake.typing or thread.id in fake.typing
    assert int(question["id"]) == thread.id
    follow_up = await fake.user_message(thread, room.reader, "And on Wednesday?", reply_to=answer[0])
    replies = await fake.wait_for(lambda: fake.sent_messages(thread)[1:], timeout=10)
    assert "Cuba" in embed_of(replies[0])["description"]
    assert replies[0]["message_reference"]["message_id"] == follow_up["id"]
    assert fake.pings() == []


async def test_unmentioned_follow_up_needs_the_message_content_intent(newsroom: StartBot) -> None:
    room = await newsroom(message_content_intent=True)
    fake, me = room.fake, room.fake.bot_user
    assert fake.intents & MESSAGE_CONTENT
    await fake.user_message(room.channel, room.reader, f"<@{me.id}> Which country does Raisi visit on Tuesday?")
    thread = await fake.wait_for(lambda: next((c for c in fake.channels.values() if c.is_thread), None), 10)
    await fake.wait_for(lambda: fake.sent_messages(thread), timeout=10)
    await fake.user_message(thread, room.reader, "And on Wednesday?")
    replies = await fake.wait_for(lambda: fake.sent_messages(thread)[1:], timeout=10)
    assert "Cuba" in embed_of(replies[0])["description"]


async def test_plain_messages_elsewhere_are_ignored(newsroom: StartBot) -> None:
    room = await newsroom(message_content_intent=True, open_threads=False)
    fake = room.fake
    await fake.user_message(room.channel, room.reader, "Who did Raisi meet? @everyone")
    mention = await fake.user_message(room.channel, room.reader, f"<@{fake.bot_user.id}> Who did Raisi meet?")
    # the gateway delivers in order: once the mention is answered, the plain message was seen and ignored
    [reply] = await fake.wait_for(lambda: fake.sent_messages(), timeout=10)
    assert reply["message_reference"]["message_id"] == mention["id"] and fake.pings() == []


async def test_admin_reindex_shows_progress_and_questions_keep_being_answered(
        newsroom: StartBot, tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedder, "batch_size", 2)  # many small batches: the build lasts a few seconds
    corpus = copy_seed(tmp_path / "corpus")
    write_articles(corpus, 120)
    room = await newsroom(corpus=corpus)
    room.bot.settings.operator_ids.append(room.admin.id)
    fake = room.fake
    started = asyncio.get_running_loop().time()
    reindex = await fake.invoke_command(room.channel, room.admin, "reindex", {"full": True, "shared": True})
    await fake.wait_for(lambda: room.bot.service.building, timeout=10)
    ask = await fake.invoke_command(room.channel, room.reader, "ask", {"question": "Who did Raisi meet in Caracas?"})
    await fake.wait_for(lambda: ask.edits, timeout=20)
    assert room.bot.service.building, "the question waited for the build"
    assert "Maduro" in embed_of(final_message(fake, ask))["description"]
    second = await fake.invoke_command(room.channel, room.admin, "reindex", {"shared": True})
    await fake.wait_for(lambda: second.edits, timeout=10)
    assert "already running" in second.edits[-1]["content"] and second.ephemeral
    await fake.wait_for(lambda: reindex.edits and reindex.edits[-1]["content"].startswith("Done"), timeout=120)
    seconds = asyncio.get_running_loop().time() - started
    texts = [edit["content"] for edit in reindex.edits]
    assert reindex.ephemeral and any(t.startswith("Reindexing: embedding") for t in texts)
    assert texts[-1].startswith("Done: indexed 121 documents") and "(121 new, 0 reused, 0 removed)" in texts[-1]
    assert len(texts) <= seconds + 2, "progress edits more often than once a second"
    assert fake.max_heartbeat_gap() < 2.0, "the event loop was blocked during the build"
    assert len(room.bot.service.answerer.snapshot.documents) == 121


async def test_non_admin_cannot_reindex_even_when_discord_shows_the_command(newsroom: StartBot) -> None:
    room = await newsroom()
    with pytest.raises(PermissionRefused):
        await room.fake.invoke_command(room.channel, room.reader, "reindex")
    record = await room.fake.invoke_command(room.channel, room.reader, "reindex", override_permissions=True)
    await room.fake.wait_for(lambda: record.acknowledged, timeout=10)
    message = record.original or record.followups[-1]
    assert record.ephemeral and "Manage Server" in message["content"]
    assert not room.bot.service.building


async def test_admin_role_may_use_admin_commands(newsroom: StartBot) -> None:
    room = await newsroom()
    role = room.fake.add_role(room.guild, "editors")
    room.bot.settings.admin_role_ids.append(role.id)
    member = room.fake.add_member(room.guild, "deputy", roles=[role])
    record = await room.fake.invoke_command(room.channel, member, "stats", override_permissions=True)
    await room.fake.wait_for(lambda: record.edits, timeout=10)
    assert record.ack_type == DEFERRED and record.ephemeral
    fields = {f["name"]: f["value"] for f in embed_of(final_message(room.fake, record))["fields"]}
    assert fields["Documents"] == "1" and fields["Snapshot"] == room.bot.service.stats().snapshot_id
    assert fields["Encoder"].startswith(f"{room.bot.service.embedder.choice.query} for questions")


async def test_stats_count_only_this_servers_questions_and_votes(newsroom: StartBot) -> None:
    room = await newsroom()
    other = room.fake.add_guild("Elsewhere")
    channel = room.fake.add_text_channel(other, "news")
    reader = room.fake.add_member(other, "reader")
    await room.fake.wait_for(lambda: room.bot.get_guild(other.id), timeout=10)  # its GUILD_CREATE arrived
    room.bot.tree.copy_global_to(guild=discord.Object(other.id))  # as sync_commands does for development servers
    await room.bot.tree.sync(guild=discord.Object(other.id))
    ask = await room.fake.invoke_command(channel, reader, "ask", {"question": "Who did Raisi meet in Caracas?"})
    await room.fake.wait_for(lambda: ask.edits, timeout=20)
    answer = final_message(room.fake, ask)
    vote = await room.fake.click_button(answer, reader, answer["components"][0]["components"][0]["custom_id"])
    await room.fake.wait_for(lambda: vote.acknowledged, timeout=10)
    record = await room.fake.invoke_command(room.channel, room.admin, "stats")
    await room.fake.wait_for(lambda: record.edits, timeout=10)
    fields = {f["name"]: f["value"] for f in embed_of(final_message(room.fake, record))["fields"]}
    assert fields["Questions answered"] == "0" and fields["Feedback"] == "👍 0 · 👎 0"
    assert room.bot.service.stats(other.id).questions == 1


async def listed_sources(newsroom: StartBot, tmp_path: Path, articles: int):
    """A bot over the seed article and `articles` more, and an admin's acknowledged /sources."""
    corpus = copy_seed(tmp_path / "corpus")
    write_articles(corpus, articles)
    room = await newsroom(corpus=corpus)
    record = await room.fake.invoke_command(room.channel, room.admin, "sources")
    await room.fake.wait_for(lambda: record.edits, timeout=10)
    assert record.ack_type == DEFERRED and record.ephemeral
    return room, record


async def test_sources_lists_the_indexed_articles(newsroom: StartBot, tmp_path: Path) -> None:
    room, record = await listed_sources(newsroom, tmp_path, 14)
    first = embed_of(record.original)
    assert first["title"] == "Sources (15)" and first["footer"]["text"].startswith("Page 1/2")
    assert "**Port report 0** — shared" in first["description"]
    click = await room.fake.click_button(record.original, room.admin, _custom_id(record.original, "▶"))
    await room.fake.wait_for(lambda: click.acknowledged, timeout=10)
    assert embed_of(click.original or record.original)["footer"]["text"].startswith("Page 2/2")


def _custom_id(message: dict, label: str) -> str:
    return next(c["custom_id"] for row in message["components"] for c in row["components"] if c.get("label") == label)


async def test_feedback_is_stored_and_works_after_a_restart(newsroom: StartBot, run_bot) -> None:
    room = await newsroom()
    fake = room.fake
    record = await fake.invoke_command(room.channel, room.reader, "ask", {"question": "Who did Raisi meet?"})
    await fake.wait_for(lambda: record.edits, timeout=10)
    answer_message = final_message(fake, record)
    assert len(room.bot.persistent_views) == 1  # the one added at start answers every answer's buttons
    vote = await fake.click_button(answer_message, room.reader, VOTE_UP_ID)
    await fake.wait_for(lambda: vote.acknowledged, timeout=10)
    assert vote.ephemeral and "Thanks" in vote.original["content"]
    await room.running.stop()

    restarted = await run_bot(FootnoteBot(room.settings, room.bot.service.embedder, guild_ready_timeout=0.1),
                              timeout=60)
    vote = await fake.click_button(answer_message, room.admin, VOTE_DOWN_ID)
    await fake.wait_for(lambda: vote.acknowledged, timeout=10)
    assert "Thanks" in vote.original["content"]
    await restarted.stop()
    rows = sqlite3.connect(room.settings.database_path).execute(
        "SELECT vote, question, answer, citation_ids, guild_id, channel_id, user_hash FROM votes ORDER BY vote"
    ).fetchall()
    assert [r[0] for r in rows] == [-1, 1]
    assert rows[0][1] == "Who did Raisi meet?" and "Maduro" in rows[0][2] and "raisi-maduro-caracas#" in rows[0][3]
    assert rows[0][4:6] == (room.guild.id, room.channel.id)
    assert str(room.admin.id) not in rows[0][6] and len({r[6] for r in rows}) == 2


async def test_over_long_article_respects_every_discord_limit(newsroom: StartBot, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    title = "A very long headline " * 30
    sentences = " ".join(f"The harbour master said cargo volume {n} rose sharply again this year while "
                         f"{'crane operators ' * 80}worked." for n in range(30))
    (corpus / "long.md").write_text(f"---\ntitle: {title}\nurl: https://example.org/{'x' * 300}\n---\n{sentences}\n")
    room = await newsroom(corpus=corpus, max_answer_chars=4000, max_answer_sentences=10)
    record = await room.fake.invoke_command(room.channel, room.reader, "ask",
                                            {"question": "What did the harbour master say about cargo volume?"})
    await room.fake.wait_for(lambda: record.edits or record.rejections, timeout=10)
    assert record.rejections == []
    embed = embed_of(final_message(room.fake, record))
    assert len(embed["description"]) <= 4096 and len(embed.get("title", "")) <= 256
    assert len(embed["fields"]) <= 25
    assert all(len(f["name"]) <= 256 and len(f["value"]) <= 1024 for f in embed["fields"])
    total = len(embed.get("title", "")) + len(embed["description"]) + len(embed["footer"]["text"]) + sum(
        len(f["name"]) + len(f["value"]) for f in embed["fields"])
    assert total <= 6000
    assert len(embed["description"]) > 1024 and any("…”" in f["value"] for f in embed["fields"])


async def test_everyone_in_the_corpus_pings_no_one(newsroom: StartBot, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ping.md").write_text("---\ntitle: Pings\n---\nThe mayor told @everyone and @here that the "
                                    "bridge opens on Friday, thanking <@1234> and <@&5678>.\n")
    room = await newsroom(corpus=corpus)
    record = await room.fake.invoke_command(room.channel, room.reader, "ask",
                                            {"question": "When does the bridge open?"})
    await room.fake.wait_for(lambda: record.edits, timeout=10)
    assert "@\u200beveryone" in embed_of(final_message(room.fake, record))["description"]  # shown, inert
    await room.fake.user_message(room.channel, room.reader,
                                 f"<@{room.fake.bot_user.id}> @everyone who thanked <@1234>?")
    thread = await room.fake.wait_for(lambda: next((c for c in room.fake.channels.values() if c.is_thread), None),
                                      10)
    await room.fake.wait_for(lambda: room.fake.sent_messages(thread), timeout=10)
    assert room.fake.outbox and room.fake.pings() == []
    assert all(out.allowed_mentions == {"parse": []} or out.allowed_mentions["parse"] == []
               for out in room.fake.outbox if out.allowed_mentions is not None)


async def test_too_long_question_and_cooldown_are_refused_privately(newsroom: StartBot) -> None:
    room = await newsroom(cooldown_seconds=60)
    long = await room.fake.invoke_command(room.channel, room.reader, "ask", {"question": "why " * 200})
    await room.fake.wait_for(lambda: long.acknowledged, timeout=10)
    assert long.ephemeral and "limited to 500 characters" in long.original["content"]
    first = await room.fake.invoke_command(room.channel, room.reader, "ask", {"question": "Who did Raisi meet?"})
    await room.fake.wait_for(lambda: first.edits, timeout=10)
    again = await room.fake.invoke_command(room.channel, room.reader, "ask", {"question": "Who did Raisi meet?"})
    await room.fake.wait_for(lambda: again.acknowledged, timeout=10)
    assert again.ephemeral and "Please wait" in again.original["content"]


async def _bot_process(fake: FakeDiscord, token: str, tmp_path: Path, index_dir: Path):
    env = {**os.environ, "FOOTNOTE_DISCORD_TOKEN": token, "FOOTNOTE_DISCORD_API_BASE": fake.api_base,
           "FOOTNOTE_DISCORD_GATEWAY_URL": fake.gateway_url, "FOOTNOTE_INDEX_DIR": str(index_dir),
           "FOOTNOTE_DATABASE_PATH": str(tmp_path / "bot.db"), "FOOTNOTE_ABSTAIN_THRESHOLD": "0"}
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", cwd=ROOT, env=env,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)


async def test_bad_token_exits_with_one_clear_line(fake_discord: FakeDiscord, seed_settings, tmp_path: Path) -> None:
    process = await _bot_process(fake_discord, "not-the-token", tmp_path, seed_settings.index_dir)
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 2
    assert "footnote: Discord rejected the token (401 Unauthorized)" in err.decode()
    assert "not-the-token" not in err.decode() and "Traceback" not in err.decode()


async def test_discord_out_of_reach_exits_with_one_clear_line(seed_settings, tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "FOOTNOTE_DISCORD_TOKEN": "a-token", "FOOTNOTE_INDEX_DIR": str(seed_settings.index_dir),
           "FOOTNOTE_DISCORD_API_BASE": f"http://127.0.0.1:{port}/api/v10",
           "FOOTNOTE_DISCORD_GATEWAY_URL": f"ws://127.0.0.1:{port}/", "FOOTNOTE_DATABASE_PATH": str(tmp_path / "b.db")}
    process = await asyncio.create_subprocess_exec(sys.executable, "-m", "bot", "run", cwd=ROOT, env=env,
                                                   stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 1
    assert f"footnote: could not reach Discord at http://127.0.0.1:{port}/api/v10: " in err.decode()
    assert "Traceback" not in err.decode() and "a-token" not in err.decode() and "voice" not in err.decode()
    assert "\x1b[" not in err.decode()  # a pipe gets no colour codes, even where discord.py thinks it is in Docker


async def test_bot_process_serves_a_discord_compatible_server(fake_discord: FakeDiscord, seed_settings,
                                                              tmp_path: Path) -> None:
    guild = fake_discord.add_guild("Remote")
    channel = fake_discord.add_text_channel(guild, "news")
    reader = fake_discord.add_member(guild, "reader")
    process = await _bot_process(fake_discord, fake_discord.token, tmp_path, seed_settings.index_dir)
    try:
        await fake_discord.wait_for(lambda: None in fake_discord.commands and fake_discord.gateway.live_sessions(),
                                    timeout=60)
        # no wait for GUILD_CREATE: the session's frames are written in order, so it arrives before the interaction
        record = await fake_discord.invoke_command(channel, reader, "ask", {"question": "Who did Raisi meet?"})
        await fake_discord.wait_for(lambda: record.edits, timeout=20)
        assert "Maduro" in embed_of(record.edits[-1])["description"]
    finally:
        process.terminate()
        _, err = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0 and "SIGTERM: closing" in err.decode()  # closed, not killed
    assert fake_discord.token not in err.decode()


async def test_generated_answer_streams_into_the_message_then_is_verified(newsroom: StartBot) -> None:
    from tests.fakes.openai_server import FakeOpenAIServer, Reply

    async with FakeOpenAIServer() as server:
        server.script(Reply(chunks=["Raisi met Maduro in Caracas on Monday [1]. ", "It was the first stop on ",
                                    "Raisi's tour of Latin America [1]. He flew in on 9 May [1]."], chunk_delay=0.4))
        room = await newsroom(llm_base_url=server.base_url, llm_model="test")
        record = await room.fake.invoke_command(room.channel, room.reader, "ask",
                                                {"question": "Who did Ebrahim Raisi meet in Venezuela?"})
        await room.fake.wait_for(lambda: record.edits and record.edits[-1]["embeds"], timeout=15)
    streamed = [e["content"] for e in record.edits if not e["embeds"]]
    assert streamed and streamed[0] == "Raisi met Maduro in Caracas on Monday. [1]"
    embed = embed_of(record.edits[-1])
    assert embed["description"] == ("Raisi met Maduro in Caracas on Monday. [1] It was the first stop on Raisi's tour "
                                    "of Latin America. [1]")
    assert embed["footer"]["text"].startswith("generated · ") and not record.edits[-1]["content"]
    assert "Nicolás Maduro" in embed["fields"][0]["value"]


async def test_channel_allow_list(newsroom: StartBot) -> None:
    room = await newsroom(allowed_channel_ids=[1])
    record = await room.fake.invoke_command(room.channel, room.reader, "ask", {"question": "Who did Raisi meet?"})
    await room.fake.wait_for(lambda: record.acknowledged, timeout=10)
    assert record.ephemeral and "only answer in the channels" in record.original["content"]
    for _ in range(3):  # a mention there gets no public reply, however often it is sent
        await room.fake.user_message(room.channel, room.reader, f"<@{room.fake.bot_user.id}> Who did Raisi meet?")
    await asyncio.sleep(1)
    assert room.fake.sent_messages(room.channel) == []


async def test_failures_become_a_friendly_reply_with_an_error_id(newsroom: StartBot, caplog) -> None:
    room = await newsroom()

    async def broken_ask(*args, **kwargs):
        raise RuntimeError("index exploded")

    room.bot.service.ask = broken_ask
    record = await room.fake.invoke_command(room.channel, room.reader, "ask", {"question": "Who did Raisi meet?"})
    await room.fake.wait_for(lambda: record.followups or record.edits, timeout=10)
    text = (record.followups or record.edits)[-1]["content"]
    error_id = text.split("`")[1]
    assert text == f"Sorry, something went wrong (error id `{error_id}`)."
    logged = [r for r in caplog.records if error_id in r.getMessage()]
    assert logged and "index exploded" in str(logged[0].exc_info[1].__cause__ or logged[0].exc_info[1])
    assert room.fake.token not in caplog.text
    await room.fake.user_message(room.channel, room.reader, f"<@{room.fake.bot_user.id}> Who did Raisi meet?")
    await room.fake.wait_for(lambda: any("error id" in (m.get("content") or "")
                                         for m in room.fake.sent_messages()), timeout=10)


def test_missing_token_exits_with_status_2(seed_settings, capsys) -> None:
    from bot.discord.app import run_bot

    assert run_bot(seed_settings.model_copy(update={"discord_token": None})) == 2
    assert capsys.readouterr().err.strip() == (
        "footnote: FOOTNOTE_DISCORD_TOKEN is not set (see README: Discord set-up)")


@pytest.mark.parametrize(("window", "expected"), [
    (50, ["Which country does Raisi visit on Tuesday?", "And on Wednesday?", "And after Cuba?"]),
    (4, ["And on Wednesday?", "And after Cuba?"]),  # only the thread's last 4 messages: the opening question is older
])
async def test_after_a_restart_a_thread_s_context_is_its_last_messages_oldest_first(
        newsroom: StartBot, run_bot, window: int, expected: list[str]) -> None:
    room = await newsroom(thread_history_messages=window)
    fake, me = room.fake, room.fake.bot_user
    await fake.user_message(room.channel, room.reader, f"<@{me.id}> Which country does Raisi visit on Tuesday?")
    thread = await fake.wait_for(lambda: next((c for c in fake.channels.values() if c.is_thread), None), 10)
    for n, follow_up in enumerate(["And on Wednesday?", "And after Cuba?"], start=1):
        last = (await fake.wait_for(lambda n=n: fake.sent_messages(thread)[n - 1:], timeout=10))[0]
        await fake.user_message(thread, room.reader, follow_up, reply_to=last)
    await fake.wait_for(lambda: fake.sent_messages(thread)[2:], timeout=10)
    await room.running.stop()

    restarted = await run_bot(FootnoteBot(room.settings, room.bot.service.embedder, guild_ready_timeout=0.1),
                              timeout=60)
    seen: list[list[str]] = []
    service = restarted.client.service
    real_ask = service.ask

    async def recording_ask(question, history=None, on_delta=None, guild_id=None):
        seen.append([turn.question for turn in history or []])
        return await real_ask(question, history, on_delta, guild_id)

    service.ask = recording_ask
    await fake.user_message(thread, room.reader, "And what did he sign?", reply_to=fake.sent_messages(thread)[-1])
    await fake.wait_for(lambda: fake.sent_messages(thread)[3:], timeout=10)
    assert seen == [expected]


async def test_sources_pages_turn_both_ways_and_wrap_around(newsroom: StartBot, tmp_path: Path) -> None:
    room, record = await listed_sources(newsroom, tmp_path, 20)
    assert embed_of(record.original)["footer"]["text"] == "Page 1/3"
    footers = []
    for label in ["▶", "▶", "▶", "◀"]:
        click = await room.fake.click_button(record.original, room.admin, _custom_id(record.original, label))
        await room.fake.wait_for(lambda click=click: click.acknowledged, timeout=10)
        footers.append(embed_of(click.original)["footer"]["text"])
        assert {"◀", "▶"} <= {c.get("label") for row in click.original["components"] for c in row["components"]}
    assert footers == ["Page 2/3", "Page 3/3", "Page 1/3", "Page 3/3"]


async def test_follow_ups_in_a_thread_carry_its_last_four_turns(newsroom: StartBot) -> None:
    room = await newsroom()
    fake, me = room.fake, room.fake.bot_user
    seen: list[list[tuple[str, bool]]] = []
    real_ask = room.bot.service.ask

    async def recording_ask(question, history=None, on_delta=None, guild_id=None):
        seen.append([(turn.question, bool(turn.answer)) for turn in history or []])
        return await real_ask(question, history, on_delta, guild_id)

    room.bot.service.ask = recording_ask
    questions = ["Which country does Raisi visit on Tuesday?", "And on Wednesday?", "And after Cuba?",
                 "Who did he meet in Caracas?", "What did they sign?", "How much has trade grown?"]
    await fake.user_message(room.channel, room.reader, f"<@{me.id}> {questions[0]}")
    thread = await fake.wait_for(lambda: next((c for c in fake.channels.values() if c.is_thread), None), 10)
    for n, follow_up in enumerate(questions[1:], start=1):
        last = (await fake.wait_for(lambda n=n: fake.sent_messages(thread)[n - 1:], timeout=10))[0]
        await fake.user_message(thread, room.reader, follow_up, reply_to=last)
    await fake.wait_for(lambda: fake.sent_messages(thread)[len(questions) - 1:], timeout=10)
    assert seen == [[(q, True) for q in questions[max(0, n - 4) : n]] for n in range(len(questions))]


async def test_a_generated_answer_to_a_mention_streams_into_one_message_in_its_thread(newsroom: StartBot) -> None:
    from tests.fakes.openai_server import FakeOpenAIServer, Reply

    async with FakeOpenAIServer() as server:
        server.script(Reply(chunks=["Raisi met Maduro in Caracas on Monday [1]. ", "It was the first stop on ",
                                    "Raisi's tour of Latin America [1]. He flew in on 9 May [1]."], chunk_delay=0.4))
        room = await newsroom(llm_base_url=server.base_url, llm_model="test")
        fake = room.fake
        await fake.user_message(room.channel, room.reader,
                                f"<@{fake.bot_user.id}> Who did Ebrahim Raisi meet in Venezuela?")
        thread = await fake.wait_for(lambda: next((c for c in fake.channels.values() if c.is_thread), None), 10)
        await fake.wait_for(lambda: any(m["embeds"] for m in fake.sent_messages(thread)), timeout=15)
    [message] = fake.sent_messages(thread)
    assert not message["content"]
    assert embed_of(message)["description"] == (
        "Raisi met Maduro in Caracas on Monday. [1] It was the first stop on Raisi's tour of Latin America. [1]")
    sent = [out for out in fake.outbox if out.channel_id == thread.id]
    assert sent[0].kind == "message" and sent[0].message["content"] == "Raisi met Maduro in Caracas on Monday. [1]"
    assert len(sent) >= 2 and all(out.kind == "edit" for out in sent[1:])


async def test_an_allowed_channel_is_answered_by_ask_and_by_mentions(newsroom: StartBot) -> None:
    room = await newsroom(allowed_channel_ids=[1])
    room.bot.settings.allowed_channel_ids.append(room.channel.id)
    fake = room.fake
    record = await fake.invoke_command(room.channel, room.reader, "ask", {"question": "Who did Raisi meet?"})
    await fake.wait_for(lambda: record.edits, timeout=10)
    assert "Maduro" in embed_of(final_message(fake, record))["description"]
    await fake.user_message(room.channel, room.reader, f"<@{fake.bot_user.id}> Who did Raisi meet?")
    thread = await fake.wait_for(lambda: next((c for c in fake.channels.values() if c.is_thread), None), 10)
    [reply] = await fake.wait_for(lambda: fake.sent_messages(thread), timeout=10)
    assert "Maduro" in embed_of(reply)["description"]


async def test_closing_lets_answers_under_way_reach_their_askers(newsroom: StartBot) -> None:
    """SIGTERM (`docker stop`) closes the bot: a question being answered still gets its answer, within the grace
    period, before the connection goes; it used to end on "thinking…" with an error in the log."""
    room = await newsroom()
    service_ask = room.bot.service.ask

    async def slow_ask(*args, **kwargs):
        await asyncio.sleep(1.0)
        return await service_ask(*args, **kwargs)

    room.bot.service.ask = slow_ask  # type: ignore[method-assign]
    asking = room.bot.get_cog("AskCog")
    record = await room.fake.invoke_command(room.channel, room.reader, "ask", {"question": "Who did Raisi meet?"})
    await room.fake.wait_for(lambda: record.acknowledged, timeout=10)
    await room.running.stop()  # what the SIGTERM handler does: bot.close()
    assert "Maduro" in embed_of(final_message(room.fake, record))["description"]
    assert asking.refusal(room.reader.id, None, "Who?") == "I'm restarting: please ask again in a minute."
