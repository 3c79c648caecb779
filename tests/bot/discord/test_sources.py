"""/add, /remove and /sources against the fake Discord: links from a local web server, files from the fake's CDN."""

from __future__ import annotations

import json

import pytest

from index.builder import BuildError
from tests.bot.discord.conftest import StartBot
from tests.bot.discord.test_bot import embed_of, final_message
from tests.conftest import NEWS
from tests.discord_fake import PermissionRefused
from tests.discord_fake.state import MANAGE_GUILD
from tests.discord_fake.uploads import FakeUpload
from tests.fakes.web_server import FakeWebServer, page

BRIDGE = json.loads((NEWS / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[0])
BRIDGE_MD = f"---\ntitle: {BRIDGE['title']}\nurl: {BRIDGE['url']}\n---\n{BRIDGE['text']}".encode()
QUESTION = "How much did the Lantern Bridge in Harbor City cost?"
ARTICLE_HTML = """<html><head><title>Ferry strike ends</title><link rel="canonical" href="https://news.example/ferry">
<meta name="author" content="Ana Ruiz"><meta property="article:published_time" content="2024-05-02"></head>
<body><nav>Home | World</nav><article><h1>Ferry strike ends</h1>
<p>The ferry workers' union ended its nine-day strike on Thursday after the operator offered a 7 percent raise.</p>
<p>Crossings between Portmere and the islands resume on Friday morning, the operator said.</p></article>
</body></html>"""


async def invoke(room, member, name: str, options: dict | None = None):
    record = await room.fake.invoke_command(room.channel, member, name, options or {})
    # a deferred reply is answered by an edit; an immediate one is the original message itself
    await room.fake.wait_for(lambda: record.edits or (record.original or {}).get("content")
                             or (record.original or {}).get("embeds"), timeout=60)
    return record



async def test_an_added_file_answers_in_its_server_and_nowhere_else(newsroom: StartBot) -> None:
    room = await newsroom()
    record = await invoke(room, room.admin, "add", {"file": FakeUpload("bridge.md", BRIDGE_MD, "text/markdown")})
    embed = embed_of(record.edits[-1])
    assert record.ephemeral and embed["title"] == BRIDGE["title"] and embed["url"] == BRIDGE["url"]
    assert embed["description"].startswith("Added: ") and "sentences indexed" in embed["description"]
    ask = await invoke(room, room.reader, "ask", {"question": QUESTION})
    assert "$410 million" in embed_of(final_message(room.fake, ask))["description"]
    elsewhere = await room.bot.service.ask(QUESTION, guild_id=room.guild.id + 1)
    assert "410" not in elsewhere.answer
    again = await invoke(room, room.admin, "add", {"file": FakeUpload("copy.md", BRIDGE_MD, "text/markdown")})
    assert embed_of(again.edits[-1])["description"].startswith("Updated: ")
    assert len(room.bot.service.sources(room.guild.id)) == 1


async def test_a_link_is_fetched_extracted_and_listed_with_who_added_it(newsroom: StartBot) -> None:
    room = await newsroom()
    async with FakeWebServer() as web:
        web.route("/ferry", page(ARTICLE_HTML))
        record = await invoke(room, room.admin, "add", {"url": web.url("/ferry")})
    embed = embed_of(record.edits[-1])
    assert embed["title"] == "Ferry strike ends" and embed["url"] == "https://news.example/ferry"
    assert "Try: Ferry strike ends?" in [f["name"] for f in embed.get("fields", [])]
    listing = await invoke(room, room.admin, "sources")
    description = embed_of(listing.original)["description"]
    assert description.startswith("**Ferry strike ends** <https://news.example/ferry> — added by editor on 20")
    assert "— shared" in description  # the shared articles follow the server's own


async def test_refusals_are_one_sentence_and_leave_nothing_behind(newsroom: StartBot) -> None:
    room = await newsroom()
    neither = await room.fake.invoke_command(room.channel, room.admin, "add", {})
    await room.fake.wait_for(lambda: neither.original, timeout=10)
    assert neither.ephemeral and "either a link" in neither.original["content"]
    async with FakeWebServer(host="127.0.0.2") as outside:  # not on the tests' allow-list
        outside.route("/x", page(ARTICLE_HTML))
        refused = await invoke(room, room.admin, "add", {"url": outside.url("/x")})
        assert outside.requests == []
    assert refused.edits[-1]["content"].startswith("Not added: ") and "loopback" in refused.edits[-1]["content"]
    pdf = await invoke(room, room.admin, "add", {"file": FakeUpload("scan.pdf", b"%PDF-1.4 broken", "application/pdf")})
    assert pdf.edits[-1]["content"].startswith("Not added: ")
    assert room.bot.service.sources(room.guild.id) == []
    assert not any((room.settings.guilds_dir / str(room.guild.id) / "corpus").glob("*.jsonl"))


async def test_remove_autocompletes_the_servers_sources_and_removes_one(newsroom: StartBot) -> None:
    room = await newsroom()
    await invoke(room, room.admin, "add", {"file": FakeUpload("bridge.md", BRIDGE_MD, "text/markdown")})
    typed = await room.fake.autocomplete(room.channel, room.admin, "remove", {"source": "lantern"}, focused="source")
    [choice] = await room.fake.wait_for_choices(typed)
    assert choice["name"] == BRIDGE["title"]
    nothing = await room.fake.autocomplete(room.channel, room.admin, "remove", {"source": "zzz"}, focused="source")
    assert await room.fake.wait_for_choices(nothing) == []
    readers = await room.fake.autocomplete(room.channel, room.reader, "remove", {"source": "lantern"},
                                           focused="source", override_permissions=True)  # opened to everyone
    assert await room.fake.wait_for_choices(readers) == []
    removed = await invoke(room, room.admin, "remove", {"source": choice["value"]})
    assert removed.edits[-1]["content"].startswith(f"Removed “{BRIDGE['title']}”")
    assert room.bot.service.sources(room.guild.id) == []
    ask = await room.bot.service.ask(QUESTION, guild_id=room.guild.id)
    assert "410" not in ask.answer


async def test_remove_refuses_what_no_choice_carries_without_counting_it(newsroom: StartBot) -> None:
    room = await newsroom(adds_per_hour=1)
    for typed in ("lantern", "²", "0", "9" * 20):
        refused = await invoke(room, room.admin, "remove", {"source": typed})
        assert refused.original["content"] == "Pick a source from the list as you type its title.", typed
    await invoke(room, room.admin, "add", {"file": FakeUpload("bridge.md", BRIDGE_MD, "text/markdown")})
    assert [s.title for s in room.bot.service.sources(room.guild.id)] == [BRIDGE["title"]]


async def test_adding_is_for_admins_and_rate_limited(newsroom: StartBot) -> None:
    room = await newsroom(adds_per_hour=1)
    with pytest.raises(PermissionRefused):
        await room.fake.invoke_command(room.channel, room.reader, "add", {"url": "https://news.example/x"})
    await invoke(room, room.admin, "add", {"file": FakeUpload("bridge.md", BRIDGE_MD, "text/markdown")})
    second = await room.fake.invoke_command(room.channel, room.admin, "add", {"url": "https://news.example/x"})
    await room.fake.wait_for(lambda: second.original, timeout=10)
    assert second.ephemeral and "try again in 60 minutes" in second.original["content"]


def _markdown_of_size(size: int) -> bytes:
    head = "---\ntitle: Ferry timetable\n---\nThe ferry to Portmere leaves at nine every morning, the operator said. "
    return (head + "x" * (size - len(head.encode()) - 1) + ".").encode()


async def test_a_file_over_the_size_limit_is_refused_before_it_is_downloaded(newsroom: StartBot) -> None:
    room = await newsroom(fetch_max_mb=1 / 1024)  # 1024 bytes
    big = await invoke(room, room.admin, "add",
                       {"file": FakeUpload("big.md", _markdown_of_size(1025), "text/markdown")})
    assert big.edits[-1]["content"] == "Not added: The file is larger than 0.000976562 MB."
    assert not any("big.md" in request for request in room.fake.requests)
    fits = await invoke(room, room.admin, "add", {"file": FakeUpload("fits.md", _markdown_of_size(1024),
                                                                      "text/markdown")})
    assert embed_of(fits.edits[-1])["description"].startswith("Added: ")
    assert any("fits.md" in request for request in room.fake.requests)  # this one was read from the CDN
    assert [s.title for s in room.bot.service.sources(room.guild.id)] == ["Ferry timetable"]


async def test_the_hourly_limit_on_source_changes_is_per_admin(newsroom: StartBot) -> None:
    room = await newsroom(adds_per_hour=1)
    deputy = room.fake.add_member(room.guild, "deputy", permissions=MANAGE_GUILD)
    await invoke(room, room.admin, "add", {"file": FakeUpload("bridge.md", BRIDGE_MD, "text/markdown")})
    [source] = room.bot.service.sources(room.guild.id)
    again = await invoke(room, room.admin, "remove", {"source": str(source.source_id)})
    assert "try again in 60 minutes" in again.original["content"]
    removed = await invoke(room, deputy, "remove", {"source": str(source.source_id)})
    assert removed.edits[-1]["content"].startswith(f"Removed “{BRIDGE['title']}”")
    assert room.bot.service.sources(room.guild.id) == []


async def test_an_add_the_indexer_fails_names_an_error_id_not_this_machines_folders(newsroom: StartBot) -> None:
    room = await newsroom()

    async def failing(*args, **kwargs):
        raise BuildError("nothing to index: /srv/footnote/guilds/1/corpus/x.jsonl: file too large")

    room.bot.service.add_source = failing  # type: ignore[method-assign]
    record = await invoke(room, room.admin, "add", {"file": FakeUpload("bridge.md", BRIDGE_MD, "text/markdown")})
    reply = record.edits[-1]["content"]
    assert reply.startswith("Not added: the article could not be indexed (error id `") and "/srv" not in reply


async def test_a_server_rebuilds_its_sources_once_per_cooldown(newsroom: StartBot) -> None:
    """One build lane serves every server: a server's admins cannot keep it busy with reindex after reindex."""
    room = await newsroom()
    await invoke(room, room.admin, "add", {"file": FakeUpload("bridge.md", BRIDGE_MD, "text/markdown")})
    first = await invoke(room, room.admin, "reindex", {"full": True})
    await room.fake.wait_for(lambda: first.edits[-1]["content"].startswith("Done"), timeout=60)
    again = await invoke(room, room.admin, "reindex", {"full": True})
    assert again.edits[-1]["content"] == "This server's sources were rebuilt recently; try again in 10 minutes."
