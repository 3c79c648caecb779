"""Revision 0003: a snapshot's parts are stored in pieces (`piece` 0, 1, …), since one bytea value holds at most
1 GB and the FAISS index of a million chunks is larger. Parts stored before are their piece 0."""

from alembic import op

revision = "0003"
down_revision = "0002"

STATEMENTS = (
    "ALTER TABLE footnote_parts ADD COLUMN piece integer NOT NULL DEFAULT 0",
    "ALTER TABLE footnote_parts ALTER COLUMN piece DROP DEFAULT",
    "ALTER TABLE footnote_parts DROP CONSTRAINT footnote_parts_pkey",
    "ALTER TABLE footnote_parts ADD PRIMARY KEY (snapshot_id, name, piece)",
)


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
