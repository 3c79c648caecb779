"""The SQLite connection Footnote's stores share a file through (feedback votes, the sources registry)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

BUSY_TIMEOUT_MS = 5000


def open_database(path: Path) -> sqlite3.Connection:
    """An autocommit connection usable from several threads (callers serialise their statements), in WAL
    mode, waiting up to five seconds for another connection's write instead of failing with "locked"."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    return db
