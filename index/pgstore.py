"""Snapshots in PostgreSQL with pgvector: one shared store for several bot processes.

The database holds several stores of versions, each under its name: the shared corpus ("shared") and each
server's own sources ("guild:<id>"). A build still writes its snapshot folder locally, exactly as the file
store does. Publishing copies it into PostgreSQL in one transaction: documents, chunks and sentences as rows
(chunk and sentence vectors in `vector(d)` columns, chunks under an HNSW cosine index), the other parts (BM25,
stored spans and terms, vocabulary, the FAISS index, the manifest) as one `bytea` row each; the same
transaction points the store's `footnote_current` row at the new version, sends NOTIFY on `footnote_snapshots`
with the store's name (delivered at commit) and drops the store's versions older than the previous one.
Readers therefore never see a half-published version, and a build killed at any point leaves the previous
version current.

Each process materialises a current version once into its local folder (`snap-<id>`, the file store's own
layout) and memory-maps it from there. One build of a store at a time across every process: a session advisory
lock keyed by the store, released by PostgreSQL when the building process dies. The schema is migrated by
`index.migrations` (Alembic), once per process, when the first store opens.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np

from index.migrations import upgrade_once
from index.store import (
    BUILD_PREFIX,
    KEEP_SNAPSHOTS,
    SNAPSHOT_PREFIX,
    FaissVectorStore,
    SnapshotError,
    SnapshotStore,
    StoreLocked,
    read_jsonl,
    write_jsonl,
)

CHANNEL = "footnote_snapshots"
SHARED_STORE = "shared"
BUILD_LOCK_KEY = 0x466F6F74  # "Foot": with the store's own number, the advisory lock every builder takes
ROWS_FROM_TABLES = ("documents.jsonl", "chunks.jsonl", "sentences.npy", "sentence_vectors.npy")


def connect(url: str, autocommit: bool = True):
    """A connection (autocommit by default); SnapshotError (without the password) when the database is
    unreachable."""
    import psycopg

    try:
        return psycopg.connect(url, autocommit=autocommit)
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SnapshotError(f"cannot reach the database at {safe_url(url)} ({reason})") from None


def notification(store: str, snapshot_id: str | None) -> str:
    """The NOTIFY payload announcing a store's new current version (None: the store was dropped)."""
    return f"{store} {snapshot_id or ''}"


def parse_notification(payload: str) -> tuple[str, str | None]:
    """The store and its new current version (None when it was dropped) of a NOTIFY payload."""
    store, _, snapshot_id = payload.partition(" ")
    return store, snapshot_id or None


class PgSnapshotStore(SnapshotStore):
    """The file store's interface over PostgreSQL: `root` is this process's local build and cache folder, `store`
    names the versions it publishes and reads (the shared corpus, or one server's sources)."""

    def __init__(self, url: str, root: Path, store: str = SHARED_STORE) -> None:
        super().__init__(root)
        self.url = url
        self.store = store
        upgrade_once(url)

    def connect(self):
        return connect(self.url)

    @contextmanager
    def build_lock(self) -> Iterator[None]:
        """The local folder's lock and the database's advisory lock: one build across all processes."""
        with super().build_lock(), self.connect() as conn:
            key = (BUILD_LOCK_KEY, _store_number(self.store))
            if not conn.execute("SELECT pg_try_advisory_lock(%s, %s)", key).fetchone()[0]:
                raise StoreLocked(f"another process is building the index {self.store}")
            try:
                yield
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)

    def current_id(self) -> str | None:
        """The published version's snapshot id, None before the first."""
        with self.connect() as conn:
            row = conn.execute("SELECT snapshot_id FROM footnote_current WHERE store = %s", (self.store,)).fetchone()
        return row[0] if row else None

    def current_path(self) -> Path | None:
        """The current version's local folder, materialised from the database the first time."""
        snapshot_id = self.current_id()
        if snapshot_id is None:
            return None
        folder = self.root / f"{SNAPSHOT_PREFIX}{snapshot_id}"
        if not (folder / "manifest.json").is_file():
            self._materialise(snapshot_id, folder)
        return folder

    def publish(self, build_folder: Path) -> Path:
        """Publish locally, then copy the version into the database and make it current in one transaction."""
        final = super().publish(build_folder)
        self._upload(final.name.removeprefix(SNAPSHOT_PREFIX), final)
        return final

    def _upload(self, snapshot_id: str, folder: Path) -> None:
        from psycopg.types.json import Jsonb

        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        dimension = int(manifest["dimension"])
        with self.connect() as conn, conn.transaction():
            conn.execute("INSERT INTO footnote_snapshots (store, snapshot_id, manifest) VALUES (%s, %s, %s)",
                         (self.store, snapshot_id, Jsonb(manifest)))
            self._copy_rows(conn, snapshot_id, folder)
            with conn.cursor().copy("COPY footnote_parts (snapshot_id, name, data) FROM STDIN") as copy:
                for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                    name = str(path.relative_to(folder))
                    if name not in ROWS_FROM_TABLES:
                        copy.write_row((snapshot_id, name, path.read_bytes()))
            conn.execute(f"CREATE INDEX IF NOT EXISTS footnote_chunks_hnsw_{dimension} ON footnote_chunks "
                         f"USING hnsw ((embedding::vector({dimension})) vector_cosine_ops)")
            conn.execute("INSERT INTO footnote_current (store, snapshot_id) VALUES (%s, %s) ON CONFLICT (store) "
                         "DO UPDATE SET snapshot_id = excluded.snapshot_id", (self.store, snapshot_id))
            conn.execute("DELETE FROM footnote_snapshots WHERE store = %s AND snapshot_id <> %s AND snapshot_id NOT IN "
                         "(SELECT snapshot_id FROM footnote_snapshots WHERE store = %s "
                         "ORDER BY published_at DESC LIMIT %s)", (self.store, snapshot_id, self.store, KEEP_SNAPSHOTS))
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, notification(self.store, snapshot_id)))

    def drop(self) -> None:
        """Unpublish every version of this store in one transaction (announced like a publish), then delete
        the local folder."""
        with self.connect() as conn, conn.transaction():
            conn.execute("DELETE FROM footnote_current WHERE store = %s", (self.store,))
            conn.execute("DELETE FROM footnote_snapshots WHERE store = %s", (self.store,))
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, notification(self.store, None)))
        super().drop()

    @staticmethod
    def _copy_rows(conn, snapshot_id: str, folder: Path) -> None:
        """Documents, chunks (with their vectors) and sentences (with theirs) as table rows, by binary COPY."""
        from pgvector.psycopg import register_vector
        from psycopg.types.json import Jsonb

        register_vector(conn)
        cursor = conn.cursor()
        documents = read_jsonl(folder / "documents.jsonl")
        with cursor.copy("COPY footnote_documents (snapshot_id, row, doc_id, title, url, record) "
                         "FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "int4", "text", "text", "text", "jsonb"])
            for row, record in enumerate(documents):
                copy.write_row((snapshot_id, row, record["doc_id"], record["title"], record["url"], Jsonb(record)))
        chunks = read_jsonl(folder / "chunks.jsonl")
        vectors = FaissVectorStore.load(folder / "vectors.faiss").reconstruct(np.arange(len(chunks)))
        with cursor.copy("COPY footnote_chunks (snapshot_id, row, chunk_id, doc_id, record, embedding) "
                         "FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "int4", "text", "text", "jsonb", "vector"])
            for row, (record, vector) in enumerate(zip(chunks, vectors, strict=True)):
                copy.write_row((snapshot_id, row, record["chunk_id"], record["doc_id"], Jsonb(record), vector))
        sentences = np.load(folder / "sentences.npy")
        sentence_vectors = np.load(folder / "sentence_vectors.npy")
        with cursor.copy("COPY footnote_sentences (snapshot_id, row, doc_row, start_char, end_char, paragraph, "
                         "embedding) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "int4", "int4", "int4", "int4", "int4", "vector"])
            for row, ((doc_row, start, end, paragraph), vector) in enumerate(
                    zip(sentences.tolist(), sentence_vectors, strict=True)):
                copy.write_row((snapshot_id, row, doc_row, start, end, paragraph, vector))

    def _materialise(self, snapshot_id: str, folder: Path) -> None:
        """Write the version's files into `folder` (through a temporary folder renamed at the end)."""
        partial = self.root / f"{BUILD_PREFIX}download-{snapshot_id}-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            with self.connect() as conn:
                self._write_rows(conn, snapshot_id, partial)
                for name, data in conn.execute("SELECT name, data FROM footnote_parts WHERE snapshot_id = %s",
                                               (snapshot_id,)):
                    path = partial / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(data)
            if not (partial / "manifest.json").is_file():
                raise SnapshotError(f"version {snapshot_id} is missing from the database at {safe_url(self.url)}")
            os.replace(partial, folder)
        finally:
            shutil.rmtree(partial, ignore_errors=True)

    @staticmethod
    def _write_rows(conn, snapshot_id: str, folder: Path) -> None:
        from pgvector.psycopg import register_vector

        register_vector(conn)
        documents = conn.execute("SELECT record FROM footnote_documents WHERE snapshot_id = %s ORDER BY row",
                                 (snapshot_id,)).fetchall()
        write_jsonl(folder / "documents.jsonl", (record for (record,) in documents))
        chunks = conn.execute("SELECT record FROM footnote_chunks WHERE snapshot_id = %s ORDER BY row",
                              (snapshot_id,)).fetchall()
        write_jsonl(folder / "chunks.jsonl", (record for (record,) in chunks))
        sentences = conn.cursor(binary=True).execute(
            "SELECT doc_row, start_char, end_char, paragraph, embedding FROM footnote_sentences "
            "WHERE snapshot_id = %s ORDER BY row", (snapshot_id,)).fetchall()
        np.save(folder / "sentences.npy", np.array([row[:4] for row in sentences], dtype=np.int64).reshape(-1, 4))
        vectors = [row[4].to_numpy() for row in sentences]
        np.save(folder / "sentence_vectors.npy", np.vstack(vectors).astype(np.float32) if vectors
                else np.zeros((0, 0), np.float32))


def _store_number(store: str) -> int:
    """A store's name as the signed 32-bit second key of its build lock."""
    return int.from_bytes(hashlib.blake2b(store.encode(), digest_size=4).digest(), "big", signed=True)



def safe_url(url: str) -> str:
    """A database URL without its user and password, for messages and logs."""
    parts = urlsplit(url)
    host = f"{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
    return parts._replace(netloc=host, query="").geturl()
