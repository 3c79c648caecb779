"""The database of the per-server data (the sources registry, sent answers and feedback votes), for two engines:
SQLite in FOOTNOTE_DATABASE_PATH by default, or, with FOOTNOTE_DATABASE_URL, PostgreSQL shared by every bot
process. The stores write each statement once, with `?` placeholders, in SQL both engines speak (upserts with
ON CONFLICT; a new row's id from `insert`); the SQLite tables are created by the stores, the PostgreSQL ones by
`index.migrations`."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.config import Settings

BUSY_TIMEOUT_MS = 5000


class Database(Protocol):
    """One connection, safe to use from several threads: one statement, or one transaction, at a time."""

    shared: bool  # whether processes on other machines see the same data

    def execute(self, sql: str, parameters: Sequence = ()) -> list[tuple]: ...

    def insert(self, sql: str, parameters: Sequence, id_column: str) -> int:
        """Run one INSERT; the new row's `id_column`."""
        ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def close(self) -> None: ...


def open_database(settings: Settings) -> Database:
    """PostgreSQL when FOOTNOTE_DATABASE_URL is set, else the SQLite file FOOTNOTE_DATABASE_PATH."""
    if settings.database_url is not None:
        return PostgresDatabase(settings.database_url.get_secret_value())
    return SqliteDatabase(Path(settings.database_path))


def upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    """An INSERT that replaces the row with the same `key` in place (ON CONFLICT … DO UPDATE, in both engines)."""
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns if column not in key)
    return (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}")


class SqliteDatabase:
    """An autocommit connection in WAL mode that waits up to five seconds for another connection's write
    instead of failing with "locked"."""

    shared = False

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def execute(self, sql: str, parameters: Sequence = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()

    def insert(self, sql: str, parameters: Sequence, id_column: str) -> int:
        with self._lock:
            return int(self._db.execute(sql, parameters).lastrowid)

    def script(self, sql: str) -> None:
        """Several statements at once (the stores' schemas)."""
        with self._lock:
            self._db.executescript(sql)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()


class PostgresDatabase:
    """An autocommit connection, opened again when the server dropped it; the schema is upgraded (once per
    process) on opening."""

    shared = True

    def __init__(self, url: str) -> None:
        from index.migrations import upgrade_once

        upgrade_once(url)
        self._url = url
        self._lock = threading.RLock()
        self._connection = None
        self._transactions = 0

    def execute(self, sql: str, parameters: Sequence = ()) -> list[tuple]:
        """Run one statement; outside a transaction, a connection the server closed since the last call (a
        restart) is found by this statement's failure to be sent, and it is sent again on a new one."""
        import psycopg

        statement = sql.replace("?", "%s")
        with self._lock:
            try:
                cursor = self._connected().execute(statement, parameters)
            except psycopg.OperationalError:
                if self._transactions or not self._connection.broken:
                    raise
                cursor = self._connected().execute(statement, parameters)
            return cursor.fetchall() if cursor.description else []

    def insert(self, sql: str, parameters: Sequence, id_column: str) -> int:
        [(row_id,)] = self.execute(f"{sql} RETURNING {id_column}", parameters)
        return int(row_id)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock, self._connected().transaction():
            self._transactions += 1
            try:
                yield
            finally:
                self._transactions -= 1

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()

    def _connected(self):
        from index.pgstore import connect

        if self._connection is None or self._connection.broken:
            self._connection = connect(self._url)
        return self._connection
