"""Each server's added sources and who added or removed what, when: a registry (no Discord import) in SQLite or,
with FOOTNOTE_DATABASE_URL, in PostgreSQL, where each source's file is stored with it for the other processes.

In SQLite the registry shares the bot's database file with the feedback store; its tables carry their own schema
version in `registry_meta`, so either side migrates without the other.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.database import Database, SqliteDatabase, open_database, upsert

if TYPE_CHECKING:
    from bot.config import Settings

SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS registry_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    source_id INTEGER PRIMARY KEY AUTOINCREMENT, guild_id INTEGER NOT NULL, name TEXT NOT NULL,
    title TEXT NOT NULL, url TEXT NOT NULL, canonical_url TEXT NOT NULL, text_sha256 TEXT NOT NULL,
    documents INTEGER NOT NULL, bytes INTEGER NOT NULL, added_by INTEGER NOT NULL, added_by_name TEXT NOT NULL,
    added_at REAL NOT NULL, updated_at REAL NOT NULL, UNIQUE (guild_id, name));
CREATE INDEX IF NOT EXISTS sources_by_url ON sources (guild_id, canonical_url);
CREATE INDEX IF NOT EXISTS sources_by_text ON sources (guild_id, text_sha256);
CREATE TABLE IF NOT EXISTS source_audit (
    entry_id INTEGER PRIMARY KEY AUTOINCREMENT, guild_id INTEGER NOT NULL, action TEXT NOT NULL,
    source_id INTEGER NOT NULL, title TEXT NOT NULL, url TEXT NOT NULL, user_id INTEGER NOT NULL,
    user_name TEXT NOT NULL, at REAL NOT NULL);
INSERT OR IGNORE INTO registry_meta VALUES ('schema_version', '1');
"""


@dataclass(frozen=True)
class Source:
    """One added link or file of one server: its stored file is `<name>.jsonl` in the server's corpus."""

    source_id: int
    guild_id: int
    name: str
    title: str
    url: str
    canonical_url: str
    text_sha256: str
    documents: int
    bytes: int
    added_by: int
    added_by_name: str
    added_at: float
    updated_at: float


@dataclass(frozen=True)
class AuditEntry:
    guild_id: int
    action: str  # "added", "updated" or "removed"
    source_id: int
    title: str
    url: str
    user_id: int
    user_name: str
    at: float


@dataclass(frozen=True)
class Adder:
    """Who adds or removes a source (the CLI uses id 0 and the operator's name)."""

    user_id: int
    name: str


def open_registry(settings: Settings) -> SourceRegistry:
    return SourceRegistry(open_database(settings))


class SourceRegistry:
    """The sources table and its audit trail; safe to use from several threads."""

    def __init__(self, database: Database) -> None:
        self.db = database
        if isinstance(database, SqliteDatabase):  # PostgreSQL's tables come from index.migrations
            database.script(f"BEGIN; {SQLITE_SCHEMA} COMMIT;")

    @property
    def keeps_files(self) -> bool:
        """Whether each source's file is stored with it, for processes on other machines (PostgreSQL)."""
        return self.db.shared

    def close(self) -> None:
        self.db.close()

    def sources(self, guild_id: int) -> list[Source]:
        """The server's sources, most recently added first."""
        return self._sources("WHERE guild_id = ? ORDER BY added_at DESC, source_id DESC", (guild_id,))

    def get(self, guild_id: int, source_id: int) -> Source | None:
        found = self._sources("WHERE guild_id = ? AND source_id = ?", (guild_id, source_id))
        return found[0] if found else None

    def same_article(self, guild_id: int, canonical_url: str, text_sha256: str) -> Source | None:
        """A source of this server with the same canonical URL (when there is one) or the same text."""
        found = self._sources("WHERE guild_id = ? AND ((? != '' AND canonical_url = ?) OR text_sha256 = ?) "
                              "ORDER BY source_id LIMIT 1", (guild_id, canonical_url, canonical_url, text_sha256))
        return found[0] if found else None

    def usage(self, guild_id: int) -> tuple[int, int]:
        """How many sources the server has, and their bytes."""
        [(count, size)] = self.db.execute("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM sources WHERE guild_id = ?",
                                          (guild_id,))
        return int(count), int(size)

    def files(self, guild_id: int) -> dict[str, bytes | None]:
        """Every source of the server by name, with its stored file (None: not stored); only where
        `keeps_files`."""
        rows = self.db.execute("SELECT name, content FROM sources LEFT JOIN source_files USING (source_id) "
                               "WHERE guild_id = ?", (guild_id,))
        return dict(rows)

    def record(self, source: Source, by: Adder, replaces: Source | None = None,
               content: bytes | None = None) -> Source:
        """Store a new source (or `replaces` updated in place, keeping who first added it) and audit it; where
        `keeps_files`, its file's `content` is stored with it."""
        now = time.time()
        with self.db.transaction():
            if replaces is None:
                source_id = self.db.insert(
                    "INSERT INTO sources (guild_id, name, title, url, canonical_url, text_sha256, documents, "
                    "bytes, added_by, added_by_name, added_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (source.guild_id, source.name, source.title, source.url, source.canonical_url,
                     source.text_sha256, source.documents, source.bytes, by.user_id, by.name, now, now), "source_id")
                action = "added"
            else:
                self.db.execute(
                    "UPDATE sources SET name = ?, title = ?, url = ?, canonical_url = ?, text_sha256 = ?, "
                    "documents = ?, bytes = ?, updated_at = ? WHERE source_id = ?",
                    (source.name, source.title, source.url, source.canonical_url, source.text_sha256,
                     source.documents, source.bytes, now, replaces.source_id))
                source_id, action = replaces.source_id, "updated"
            if self.keeps_files and content is not None:
                self.db.execute(upsert("source_files", ["source_id", "content"], ["source_id"]), (source_id, content))
            self._audit(source.guild_id, action, source_id, source.title, source.url, by, now)
        stored = self.get(source.guild_id, source_id)
        assert stored is not None
        return stored

    def remove(self, guild_id: int, source_id: int, by: Adder) -> Source | None:
        """Delete one source of the server (and its stored file) and audit it; None when the server has no such
        source."""
        source = self.get(guild_id, source_id)
        if source is None:
            return None
        with self.db.transaction():
            self.db.execute("DELETE FROM sources WHERE source_id = ?", (source_id,))
            self._audit(guild_id, "removed", source_id, source.title, source.url, by, time.time())
        return source

    def audit(self, guild_id: int, limit: int = 50) -> list[AuditEntry]:
        """The server's most recent additions, updates and removals, newest first."""
        rows = self.db.execute(
            "SELECT guild_id, action, source_id, title, url, user_id, user_name, at FROM source_audit "
            "WHERE guild_id = ? ORDER BY entry_id DESC LIMIT ?", (guild_id, limit))
        return [AuditEntry(*row) for row in rows]

    def _audit(self, guild_id: int, action: str, source_id: int, title: str, url: str, by: Adder,
               at: float) -> None:
        self.db.execute("INSERT INTO source_audit (guild_id, action, source_id, title, url, user_id, user_name, at) "
                        "VALUES (?,?,?,?,?,?,?,?)", (guild_id, action, source_id, title, url, by.user_id, by.name, at))

    def _sources(self, where: str, parameters: tuple) -> list[Source]:
        rows = self.db.execute(
            "SELECT source_id, guild_id, name, title, url, canonical_url, text_sha256, documents, bytes, "
            f"added_by, added_by_name, added_at, updated_at FROM sources {where}", parameters)
        return [Source(*row) for row in rows]
