"""Revision 0001: published snapshots and the one current version (the hand-rolled migrations' version 1).

Documents, chunks and sentences are rows (chunk and sentence vectors in pgvector columns), every other part of
a snapshot one bytea row.
"""

from alembic import op

revision = "0001"
down_revision = None

STATEMENTS = (
    "CREATE EXTENSION IF NOT EXISTS vector",
    """CREATE TABLE footnote_snapshots (
        snapshot_id text PRIMARY KEY, published_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        manifest jsonb NOT NULL)""",
    """CREATE TABLE footnote_current (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        snapshot_id text NOT NULL REFERENCES footnote_snapshots)""",
    """CREATE TABLE footnote_documents (
        snapshot_id text NOT NULL REFERENCES footnote_snapshots ON DELETE CASCADE, row integer NOT NULL,
        doc_id text NOT NULL, title text NOT NULL, url text NOT NULL, record jsonb NOT NULL,
        PRIMARY KEY (snapshot_id, row))""",
    """CREATE TABLE footnote_chunks (
        snapshot_id text NOT NULL REFERENCES footnote_snapshots ON DELETE CASCADE, row integer NOT NULL,
        chunk_id text NOT NULL, doc_id text NOT NULL, record jsonb NOT NULL, embedding vector NOT NULL,
        PRIMARY KEY (snapshot_id, row))""",
    """CREATE TABLE footnote_sentences (
        snapshot_id text NOT NULL REFERENCES footnote_snapshots ON DELETE CASCADE, row integer NOT NULL,
        doc_row integer NOT NULL, start_char integer NOT NULL, end_char integer NOT NULL,
        paragraph integer NOT NULL, embedding vector NOT NULL, PRIMARY KEY (snapshot_id, row))""",
    """CREATE TABLE footnote_parts (
        snapshot_id text NOT NULL REFERENCES footnote_snapshots ON DELETE CASCADE, name text NOT NULL,
        data bytea NOT NULL, PRIMARY KEY (snapshot_id, name))""",
)


def upgrade() -> None:
    for statement in STATEMENTS:
        op.execute(statement)
