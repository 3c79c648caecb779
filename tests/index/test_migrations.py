"""The PostgreSQL schema under Alembic: a fresh database, one set up by the hand-rolled migrations before it,
and two processes upgrading at once."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

import index.migrations
from index.migrations import MIGRATION_LOCK_KEY, upgrade
from index.pgstore import PgSnapshotStore
from tests.conftest import ROOT, fresh_database

HAND_ROLLED_V1 = """
    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE TABLE footnote_snapshots (
        snapshot_id text PRIMARY KEY, published_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        manifest jsonb NOT NULL);
    CREATE TABLE footnote_current (
        singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
        snapshot_id text NOT NULL REFERENCES footnote_snapshots);
    CREATE TABLE footnote_documents (
        snapshot_id text NOT NULL REFERENCES footnote_snapshots ON DELETE CASCADE, row integer NOT NULL,
        doc_id text NOT NULL, title text NOT NULL, url text NOT NULL, record jsonb NOT NULL,
        PRIMARY KEY (snapshot_id, row));
    CREATE TABLE footnote_chunks (
        snapshot_id text NOT NULL REFERENCES footnote_snapshots ON DELETE CASCADE, row integer NOT NULL,
        chunk_id text NOT NULL, doc_id text NOT NULL, record jsonb NOT NULL, embedding vector NOT NULL,
        PRIMARY KEY (snapshot_id, row));
    CREATE TABLE footnote_sentences (
        snapshot_id text NOT NULL REFERENCES footnote_snapshots ON DELETE CASCADE, row integer NOT NULL,
        doc_row integer NOT NULL, start_char integer NOT NULL, end_char integer NOT NULL,
        paragraph integer NOT NULL, embedding vector NOT NULL, PRIMARY KEY (snapshot_id, row));
    CREATE TABLE footnote_parts (
        snapshot_id text NOT NULL REFERENCES footnote_snapshots ON DELETE CASCADE, name text NOT NULL,
        data bytea NOT NULL, PRIMARY KEY (snapshot_id, name));
"""
"""What the hand-rolled `upgrade()` (before Alembic) ran as its version 1, word for word."""

UPGRADE = "import sys; from index.migrations import upgrade; print(upgrade(sys.argv[1]))"


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(Path(index.migrations.__file__).parent)).get_current_head()


def schema(url: str) -> dict[str, set[tuple]]:
    """Every column, constraint and index of the public schema, by kind."""
    queries = {
        "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default "
                   "FROM information_schema.columns WHERE table_schema = 'public'",
        "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE connamespace = 'public'::regnamespace",
        "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    }
    with psycopg.connect(url) as conn:
        return {kind: set(conn.execute(query).fetchall()) for kind, query in queries.items()}


def test_an_empty_database_is_upgraded_to_the_head_revision_once(database_url: str) -> None:
    assert upgrade(database_url) == head_revision()
    assert upgrade(database_url) == head_revision()  # nothing left to apply
    tables = schema(database_url)["columns"]
    assert {row[0] for row in tables} >= {"footnote_snapshots", "footnote_current", "footnote_chunks", "sources",
                                          "source_files", "source_audit", "meta", "answers", "votes",
                                          "alembic_version"}
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [(head_revision(),)]


def test_a_hand_rolled_database_is_adopted_keeping_its_published_version(
        database_url: str, postgres_server, tmp_path: Path) -> None:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE footnote_schema (version integer NOT NULL)")
        with conn.transaction():
            conn.execute(HAND_ROLLED_V1)
            conn.execute("INSERT INTO footnote_schema VALUES (1)")
        conn.execute("INSERT INTO footnote_snapshots (snapshot_id, manifest) VALUES ('v1', '{}')")
        conn.execute("INSERT INTO footnote_current (snapshot_id) VALUES ('v1')")

    assert upgrade(database_url) == head_revision()
    assert PgSnapshotStore(database_url, tmp_path / "index").current_id() == "v1"  # now the shared store's
    fresh = fresh_database(postgres_server)
    upgrade(fresh)
    assert schema(database_url) == schema(fresh)  # revision 0001 is the hand-rolled version 1


def test_two_processes_upgrading_at_once_take_turns(database_url: str) -> None:
    with psycopg.connect(database_url) as holder:  # as if a third process were half-way through an upgrade
        holder.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        children = [subprocess.Popen([sys.executable, "-c", UPGRADE, database_url], cwd=ROOT, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
        try:
            deadline = time.monotonic() + 60
            while waiting_for_advisory_locks(holder) < 2:
                assert all(child.poll() is None for child in children), "an upgrade did not wait for the lock"
                assert time.monotonic() < deadline, "the upgrades never waited for the lock"
                time.sleep(0.05)
        finally:
            holder.rollback()
        results = [child.communicate(timeout=60) for child in children]
    assert [child.returncode for child in children] == [0, 0], [err for _, err in results]
    assert [out.strip() for out, _ in results] == [head_revision()] * 2
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)


def waiting_for_advisory_locks(conn: psycopg.Connection) -> int:
    return conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND "
                        "database = (SELECT oid FROM pg_database WHERE datname = current_database())").fetchone()[0]


def test_an_unreachable_database_fails_in_one_line_without_the_password(tmp_path: Path) -> None:
    from index.store import SnapshotError

    with pytest.raises(SnapshotError) as caught:
        upgrade(f"postgresql://footnote:s3cret@localhost/none?host={tmp_path}")
    assert "s3cret" not in str(caught.value) and "cannot reach the database" in str(caught.value)


def test_versions_published_before_revision_0004_get_an_hnsw_index_of_their_own(database_url: str) -> None:
    assert upgrade(database_url, "0003") == "0003"
    with psycopg.connect(database_url, autocommit=True) as conn:  # what a publish did before: one index for all
        conn.execute("INSERT INTO footnote_snapshots (store, snapshot_id, manifest) VALUES ('shared', 'v3', '{}')")
        conn.execute("INSERT INTO footnote_chunks VALUES ('v3', 0, 'd#0', 'd', '{}', '[1, 0, 0]')")
        conn.execute("INSERT INTO footnote_parts VALUES ('v3', 'manifest.json', '{}', 0)")
        conn.execute("CREATE INDEX footnote_chunks_hnsw_3 ON footnote_chunks "
                     "USING hnsw ((embedding::vector(3)) vector_cosine_ops)")

    assert upgrade(database_url) == head_revision()
    with psycopg.connect(database_url) as conn:
        indexes = dict(conn.execute("SELECT indexname, indexdef FROM pg_indexes "
                                    "WHERE indexname LIKE 'footnote_chunks_hnsw%'").fetchall())
        conn.execute("SET enable_seqscan = off")  # one row: a scan would be cheaper, the index must still serve
        plan = "\n".join(row[0] for row in conn.execute(
            "EXPLAIN SELECT row FROM footnote_chunks WHERE snapshot_id = 'v3' "
            "ORDER BY embedding::vector(3) <=> '[1, 0, 0]' LIMIT 1").fetchall())
    assert list(indexes) == ["footnote_chunks_hnsw_v3"]
    assert "hnsw" in indexes["footnote_chunks_hnsw_v3"] and "'v3'::text" in indexes["footnote_chunks_hnsw_v3"]
    assert "footnote_chunks_hnsw_v3" in plan
