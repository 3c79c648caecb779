"""The per-server data on both engines: the sources registry and the feedback store behave the same in SQLite
(the default) and in PostgreSQL (FOOTNOTE_DATABASE_URL), where the registry also keeps each source's file."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bot.answer import Answer
from bot.config import Settings
from bot.discord.feedback import FeedbackCounts, open_feedback
from bot.sources import Adder, Source, open_registry
from tests.conftest import make_settings

GUILD, OTHER_GUILD = 1_234_567_890_123_456_789, 2002  # Discord ids need 64 bits
MESSAGE, CHANNEL = 1_300_000_000_000_000_001, 1_300_000_000_000_000_002
USER = 1_300_000_000_000_000_003
EDITOR, MOD = Adder(42, "editor"), Adder(9, "mod")


@pytest.fixture(params=["sqlite", "postgres"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    url = request.getfixturevalue("database_url") if request.param == "postgres" else None
    return make_settings(tmp_path, database_url=url)


def source(guild_id: int, name: str, url: str = "", text_sha256: str = "a" * 64, size: int = 100) -> Source:
    return Source(0, guild_id, name, f"Title of {name}", url, url, text_sha256, 1, size, 0, "", 0.0, 0.0)


def test_the_registry_records_finds_updates_and_removes_with_an_audit_trail(settings: Settings) -> None:
    registry = open_registry(settings)
    try:
        bridge = registry.record(source(GUILD, "bridge", "https://example.org/bridge"), EDITOR, content=b"one\n")
        ferry = registry.record(source(GUILD, "ferry", text_sha256="b" * 64), EDITOR, content=b"two\n")
        registry.record(source(OTHER_GUILD, "bridge"), EDITOR, content=b"elsewhere\n")
        assert bridge.guild_id == GUILD and bridge.added_by_name == "editor" and bridge.source_id != ferry.source_id
        assert [s.name for s in registry.sources(GUILD)] == ["ferry", "bridge"]
        assert registry.same_article(GUILD, "https://example.org/bridge", "c" * 64) == bridge
        assert registry.same_article(GUILD, "", "b" * 64) == ferry
        assert registry.same_article(GUILD, "", "c" * 64) is None
        assert registry.usage(GUILD) == (2, 200) and registry.usage(555) == (0, 0)

        updated = registry.record(replace(source(GUILD, "bridge"), title="Bridge, corrected", bytes=150),
                                  Adder(7, "other"), replaces=bridge, content=b"three\n")
        assert updated.source_id == bridge.source_id and updated.title == "Bridge, corrected"
        assert updated.added_by_name == "editor" and updated.updated_at >= bridge.updated_at
        assert registry.remove(GUILD, ferry.source_id, MOD) == ferry
        assert registry.remove(GUILD, ferry.source_id, MOD) is None and registry.get(GUILD, ferry.source_id) is None
        assert registry.remove(OTHER_GUILD, bridge.source_id, MOD) is None  # another server's source
        assert [(e.action, e.source_id, e.user_name) for e in registry.audit(GUILD)] == [
            ("removed", ferry.source_id, "mod"), ("updated", bridge.source_id, "other"),
            ("added", ferry.source_id, "editor"), ("added", bridge.source_id, "editor")]
        assert registry.keeps_files == (settings.database_url is not None)
        if registry.keeps_files:
            assert registry.files(GUILD) == {"bridge": b"three\n"}
    finally:
        registry.close()


def test_a_failed_record_leaves_nothing_behind(settings: Settings) -> None:
    registry = open_registry(settings)
    try:
        registry.record(source(GUILD, "bridge"), EDITOR, content=b"one\n")
        with pytest.raises(Exception, match=r"(?i)unique"):
            registry.record(source(GUILD, "bridge"), EDITOR, content=b"two\n")  # the same stored name twice
        assert len(registry.sources(GUILD)) == 1 and len(registry.audit(GUILD)) == 1
    finally:
        registry.close()


def test_feedback_is_shared_by_two_processes_on_one_database(settings: Settings) -> None:
    first, second = open_feedback(settings), open_feedback(settings)
    try:
        assert first.user_hash(5) == second.user_hash(5) != first.user_hash(6)  # one salt for every process
        assert str(USER) not in first.user_hash(USER)
        first.save_answer(MESSAGE, Answer("Who?", "Nobody [1]", False, []), GUILD, CHANNEL)
        first.save_answer(MESSAGE, Answer("Who?", "Maduro [1]", False, []), GUILD, CHANNEL)  # edited: replaced
        assert second.record_vote(MESSAGE, 5, 1, GUILD, CHANNEL)
        assert first.record_vote(MESSAGE, 5, -1, GUILD, CHANNEL)  # a user changes their vote
        assert first.record_vote(MESSAGE, 6, 1, GUILD, CHANNEL)
        assert not second.record_vote(MESSAGE + 1, 5, 1, GUILD, CHANNEL)  # an answer never saved
        assert first.counts(GUILD) == second.counts(GUILD) == FeedbackCounts(up=1, down=1)
        first.save_answer(MESSAGE + 2, Answer("Who?", "Raisi [1]", False, []), OTHER_GUILD, CHANNEL)
        assert first.record_vote(MESSAGE + 2, 5, 1, OTHER_GUILD, CHANNEL)
        assert first.counts(GUILD) == FeedbackCounts(up=1, down=1)  # each server sees its own votes
        assert first.counts(OTHER_GUILD) == FeedbackCounts(up=1, down=0) and first.counts(None) == FeedbackCounts(0, 0)
        votes = first.db.execute("SELECT vote, question, answer, guild_id, channel_id FROM votes WHERE guild_id = ? "
                                 "ORDER BY vote", (GUILD,))
        assert votes == [(-1, "Who?", "Maduro [1]", GUILD, CHANNEL), (1, "Who?", "Maduro [1]", GUILD, CHANNEL)]
    finally:
        first.close()
        second.close()


def test_the_registry_goes_on_after_the_database_closed_its_connection(database_url: str) -> None:
    """A restart closes the kept connection: the next call is sent again on a new one, not failed."""
    import psycopg

    registry = open_registry(make_settings(Path("/nonexistent"), database_url=database_url))
    registry.record(source(GUILD, "kept"), EDITOR)
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                      "AND datname = current_database()")
    assert [s.name for s in registry.sources(GUILD)] == ["kept"]
    registry.close()
