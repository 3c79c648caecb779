"""👍 / 👎 feedback: a persistent view (fixed custom ids) and its SQLite store (created and migrated on start)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import discord

from bot.answer import Answer
from bot.sqlite import open_database

log = logging.getLogger(__name__)

VOTE_UP_ID = "footnote:vote:up"
VOTE_DOWN_ID = "footnote:vote:down"

MIGRATIONS = [
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


@dataclass(frozen=True)
class FeedbackCounts:
    up: int
    down: int


class FeedbackStore:
    """SQLite storage of sent answers and votes; user ids are stored only as salted hashes."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()  # one statement at a time, and never one during close()
        self.db = open_database(path)
        self._migrate()
        self._salt = self._load_salt()

    def _migrate(self) -> None:
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
            self.db.executescript(f"BEGIN; {script} PRAGMA user_version = {number}; COMMIT;")

    def _load_salt(self) -> bytes:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'user_salt'").fetchone()
        if row:
            return bytes.fromhex(row[0])
        salt = secrets.token_bytes(16)
        self.db.execute("INSERT INTO meta VALUES ('user_salt', ?)", (salt.hex(),))
        return salt

    def user_hash(self, user_id: int) -> str:
        return hashlib.blake2b(str(user_id).encode(), key=self._salt, digest_size=16).hexdigest()

    def _execute(self, sql: str, parameters: tuple = ()) -> list[tuple]:
        with self._lock:
            return self.db.execute(sql, parameters).fetchall()

    def save_answer(self, message_id: int, answer: Answer, guild_id: int | None, channel_id: int | None) -> None:
        citation_ids = json.dumps([c.chunk_id for c in answer.citations])
        self._execute("INSERT OR REPLACE INTO answers VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                      (message_id, answer.question, answer.answer, citation_ids, int(answer.abstained),
                       guild_id, channel_id, time.time()))

    def record_vote(self, message_id: int, user_id: int, vote: int, guild_id: int | None,
                    channel_id: int | None) -> bool:
        """Store (or change) a user's vote on an answer; False when the answer is unknown."""
        rows = self._execute("SELECT question, answer, citation_ids FROM answers WHERE message_id = ?",
                             (message_id,))
        if not rows:
            return False
        self._execute("INSERT OR REPLACE INTO votes VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (message_id, self.user_hash(user_id), vote, *rows[0], guild_id, channel_id, time.time()))
        return True

    def counts(self) -> FeedbackCounts:
        [(up, down)] = self._execute("SELECT COALESCE(SUM(vote = 1), 0), COALESCE(SUM(vote = -1), 0) FROM votes")
        return FeedbackCounts(up, down)

    def close(self) -> None:
        with self._lock:
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

    async def _vote(self, interaction: discord.Interaction, vote: int) -> None:
        message_id = interaction.message.id if interaction.message else 0
        stored = await asyncio.to_thread(self.store.record_vote, message_id, interaction.user.id, vote,
                                         interaction.guild_id, interaction.channel_id)
        text = "Thanks for the feedback!" if stored else "That answer is no longer on record, sorry."
        await interaction.response.send_message(text, ephemeral=True,
                                                allowed_mentions=discord.AllowedMentions.none())
