"""The PostgreSQL schema, migrated by Alembic: the revisions in `versions/` (forward only: restore a backup to
go back), applied by `python -m bot db upgrade` and once per process by every PostgreSQL store it opens.

Alembic is configured here, without an alembic.ini. The revisions run on a connection made by
`index.pgstore.connect` (SQLAlchemy only picks its `postgresql+psycopg` dialect and never sees the URL or its
password), in one transaction that holds an advisory lock: two processes starting at once upgrade one after
the other. A database set up before Alembic (table footnote_schema, version 1) is stamped at revision 0001,
which is the same schema, then upgraded. A new revision is a file in `versions/` with `revision`,
`down_revision` (the previous head) and `upgrade()`.
"""

from __future__ import annotations

import threading
from pathlib import Path

MIGRATION_LOCK_KEY = 0x466F6F746D696772  # "Footmigr": held by the transaction that upgrades
_upgraded: set[str] = set()
_upgrading = threading.Lock()


def upgrade(url: str, revision: str = "head") -> str:
    """Apply the revisions the database lacks up to `revision`, in one transaction; the revision it is at
    afterwards."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from sqlalchemy import create_engine, text
    from sqlalchemy.pool import NullPool

    from index.pgstore import connect

    engine = create_engine("postgresql+psycopg://", creator=lambda: connect(url, autocommit=False),
                           poolclass=NullPool)
    try:
        with engine.begin() as connection:
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
            config = Config()
            config.set_main_option("script_location", str(Path(__file__).parent))
            config.attributes["connection"] = connection
            _adopt_hand_rolled(connection, config)
            command.upgrade(config, revision)
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def upgrade_once(url: str) -> None:
    """`upgrade` on the first call for this database in this process; later calls return at once."""
    with _upgrading:
        if url not in _upgraded:
            upgrade(url)
            _upgraded.add(url)


def _adopt_hand_rolled(connection, config) -> None:
    """Stamp a database that the hand-rolled migrations set up at revision 0001 (their only version, 1, is its
    schema) and drop their version table; an empty version table means those migrations never committed."""
    from alembic import command
    from sqlalchemy import text

    if connection.execute(text("SELECT to_regclass('footnote_schema')")).scalar() is None:
        return
    if connection.execute(text("SELECT max(version) FROM footnote_schema")).scalar() is not None:
        command.stamp(config, "0001")
    connection.execute(text("DROP TABLE footnote_schema"))
