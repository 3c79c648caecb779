"""👍 / 👎 feedback: a persistent view (fixed custom ids) and its store, in SQLite (created and migrated on start)
or, with FOOTNOTE_DATABASE_URL, in PostgreSQL shared by every bot process."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import discord

from bot.answer import Answer
from bot.database import Database, SqliteDatabase, open_database, upsert

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)

VOTE_UP_ID = "footnote:vote:up"
VOTE_DOWN_ID = "footnote:vote:down"

SQLITE_MIGRATIONS = [
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE answers (
        message_id INTEGER PRIMARY KEY, question TEXT NOT NULL, answer TEXT NOT NULL,
        citation_ids TEXT NOT NULL, abstained INTEGER NOT NULL, guild_id INTEGER, channel_id INTEGER,
        created_at REAL NOT NULL);
    CREATE TABLE votes (
        message_id INTEGER NOT NULL, user_hash TEXT NOT NULL, vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
        question TEXT, answer TEXT, citation_ids TEXT, guild_id INTEGER, channel_id INTEGER,
        created_at REAL NOT NULL, PRIMARY KEY (message_id, user_hash));
    """,
]
ANSWER_COLUMNS = ("message_id", "question", "answer", "citation_ids", "abstained", "guild_id", "channel_id",
                  "created_at")
VOTE_COLUMNS = ("message_id", "user_hash", "vote", "question", "answer", "citation_ids", "guild_id", "channel_id",
                "created_at")


@dataclass(frozen=True)
class FeedbackCounts:
    up: int
    down: int


def open_feedback(settings: Settings) -> FeedbackStore:
    return FeedbackStore(open_database(settings))


class FeedbackStore:
    """Sent answers and votes; user ids are stored only as salted hashes (one salt for every process)."""

    def __init__(self, database: Database) -> None:
        self.db = database
        if isinstance(database, SqliteDatabase):  # PostgreSQL's tables come from index.migrations
            self._migrate(database)
        self._salt = self._load_salt()

    @staticmethod
    def _migrate(database: SqliteDatabase) -> None:
        [(version,)] = database.execute("PRAGMA user_version")
        for number, script in enumerate(SQLITE_MIGRATIONS[version:], start=version + 1):
            database.script(f"BEGIN; {script} PRAGMA user_version = {number}; COMMIT;")

    def _load_salt(self) -> bytes:
        """The stored salt; the first process to ask stores a new one."""
        self.db.execute("INSERT INTO meta VALUES ('user_salt', ?) ON CONFLICT (key) DO NOTHING",
                        (secrets.token_bytes(16).hex(),))
        [(salt,)] = self.db.execute("SELECT value FROM meta WHERE key = 'user_salt'")
        return bytes.fromhex(salt)

    def user_hash(self, user_id: int) -> str:
        return hashlib.blake2b(str(user_id).encode(), key=self._salt, digest_size=16).hexdigest()

    def save_answer(self, message_id: int, answer: Answer, guild_id: int | None, channel_id: int | None) -> None:
        citation_ids = json.dumps([c.chunk_id for c in answer.citations])
        self.db.execute(upsert("answers", ANSWER_COLUMNS, ["message_id"]),
                        (message_id, answer.question, answer.answer, citation_ids, int(answer.abstained),
                         guild_id, channel_id, time.time()))

    def record_vote(self, message_id: int, user_id: int, vote: int, guild_id: int | None,
                    channel_id: int | None) -> bool:
        """Store (or change) a user's vote on an answer; False when the answer is unknown."""
        rows = self.db.execute("SELECT question, answer, citation_ids FROM answers WHERE message_id = ?",
                               (message_id,))
        if not rows:
            return False
        self.db.execute(upsert("votes", VOTE_COLUMNS, ["message_id", "user_hash"]),
                        (message_id, self.user_hash(user_id), vote, *rows[0], guild_id, channel_id, time.time()))
        return True

    def counts(self, guild_id: int | None) -> FeedbackCounts:
        """The votes on answers given in one server (None: in DMs)."""
        [(up, down)] = self.db.execute("SELECT COUNT(CASE WHEN vote = 1 THEN 1 END), "
                                       "COUNT(CASE WHEN vote = -1 THEN 1 END) FROM votes "
                                       "WHERE guild_id IS NOT DISTINCT FROM ?", (guild_id,))
        return FeedbackCounts(up, down)

    def close(self) -> None:
        self.db.close()


class FeedbackView(discord.ui.View):
    """The 👍 / 👎 buttons under every answer; persistent, so clicks work after a restart."""

    def __init__(self, store: FeedbackStore) -> None:
        super().__init__(timeout=None)
        self.store = store

    @discord.ui.button(emoji="👍", style=discord.ButtonStyle.secondary, custom_id=VOTE_UP_ID)
    async def vote_up(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        await self._vote(interaction, 1)

    @discord.ui.button(emoji="👎", style=discord.ButtonStyle.secondary, custom_id=VOTE_DOWN_ID)
    async def vote_down(self, interaction: discord.Interaction, _: discord.ui.Button) -> None:
        await self._vote(interaction, -1)

    @classmethod
    def for_message(cls, store: FeedbackStore) -> FeedbackView:
        """The buttons to send with one answer: a stopped view, which discord.py does not keep per message (it
        would keep every answer's for the process's life); the view `setup_hook` adds answers their clicks."""
        view = cls(store)
        view.stop()
        return view

    async def _vote(self, interaction: discord.Interaction, vote: int) -> None:
        message_id = interaction.message.id if interaction.message else 0
        stored = await asyncio.to_thread(self.store.record_vote, message_id, interaction.user.id, vote,
                                         interaction.guild_id, interaction.channel_id)
        text = "Thanks for the feedback!" if stored else "That answer is no longer on record, sorry."
        await interaction.response.send_message(text, ephemeral=True,
                                                allowed_mentions=discord.AllowedMentions.none())
