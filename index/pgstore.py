"""Snapshots in PostgreSQL with pgvector: one shared store for several bot processes.

The database holds several stores of versions, each under its name: the shared corpus ("shared") and each
server's own sources ("guild:<id>"). A build still writes its snapshot folder locally, exactly as the file
store does. Publishing copies it into PostgreSQL in one transaction: documents, chunks and sentences as rows
(chunk and sentence vectors in `vector(d)` columns, each version's chunks under an HNSW cosine index of its
own, built after the copy), the other parts (BM25,
stored spans and terms, vocabulary, the FAISS index, the manifest) as one `bytea` row each; the same
transaction points the store's `footnote_current` row at the new version, sends NOTIFY on `footnote_snapshots`
with the store's name (delivered at commit) and drops the store's versions older than the previous one.
Readers therefore never see a half-published version, and a build killed at any point leaves the previous
version current.

Each process materialises a current version once into its local folder (`snap-<id>`, the file store's own
layout; older local copies but the one before are then deleted) and memory-maps it from there. One build of a
store at a time across every process: a session advisory lock keyed by the store, released by PostgreSQL when the
building process dies. Publishes and drops of all stores take turns (a transaction advisory lock). The schema is
migrated by `index.migrations` (Alembic), once per process, when the first store opens.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

import numpy as np

from index.migrations import upgrade_once
from index.store import (
    KEEP_SNAPSHOTS,
    SNAPSHOT_PREFIX,
    FaissVectorStore,
    SnapshotError,
    SnapshotStore,
    StoreLocked,
    iter_jsonl,
    write_jsonl,
)
from index.urls import safe_url

CHANNEL = "footnote_snapshots"
SHARED_STORE = "shared"
BUILD_LOCK_KEY = 0x466F6F74  # "Foot": with the store's own number, the advisory lock every builder takes
PUBLISH_LOCK_KEY = 0x506F7374  # "Post": the transaction lock that puts every store's publishes and drops in turn
CHANGE_LOCK_KEY = 0x43686E67  # "Chng": with the store's number, the lock of one change of its sources at a time
PIECE_BYTES = 64 * 2**20
"""A part (the FAISS index, BM25, …) is stored in rows of at most this many bytes."""
HNSW_M, HNSW_EF_CONSTRUCTION = 32, 80
"""The graph of the FAISS index the answers search (pgvector's defaults, 16 and 64, reached recall@10 0.946 at
ef_search 200 on a million chunks)."""
INDEX_BUILD_MAX_MB = 4096
"""The most maintenance_work_mem a publish sets for building its version's HNSW index (for the transaction only)."""
DOWNLOAD_PREFIX = ".download-"
ABANDONED_DOWNLOAD_SECONDS = 3600.0
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
                _unlock(conn, key)

    def current_id(self) -> str | None:
        """The published version's snapshot id, None before the first."""
        with self.connect() as conn:
            row = conn.execute("SELECT snapshot_id FROM footnote_current WHERE store = %s", (self.store,)).fetchone()
        return row[0] if row else None

    def current_path(self) -> Path | None:
        """The current version's local folder, materialised from the database the first time; then the local
        versions but it and the one materialised before it (which may still be loading) are deleted, as a
        publish does."""
        snapshot_id = self.current_id()
        if snapshot_id is None:
            return None
        folder = self.root / f"{SNAPSHOT_PREFIX}{snapshot_id}"
        if not (folder / "manifest.json").is_file():
            self._materialise(snapshot_id, folder)
            local = sorted(self.root.glob(f"{SNAPSHOT_PREFIX}*"), key=_modified)
            self._prune(keep={folder, *local[-KEEP_SNAPSHOTS:]})
        return folder

    def remove_abandoned_builds(self) -> None:
        """Also delete copies from the database that a killed process left half-made (an hour old: one under way
        in another thread or process is younger)."""
        super().remove_abandoned_builds()
        for path in self.root.glob(f"{DOWNLOAD_PREFIX}*"):
            if time.time() - _modified(path) > ABANDONED_DOWNLOAD_SECONDS:
                shutil.rmtree(path, ignore_errors=True)

    def publish(self, build_folder: Path) -> Path:
        """Publish locally, then copy the version into the database and make it current in one transaction."""
        final = super().publish(build_folder)
        self._upload(final.name.removeprefix(SNAPSHOT_PREFIX), final)
        return final

    def _upload(self, snapshot_id: str, folder: Path) -> None:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        with self.connect() as conn:
            _drop_orphaned_vector_indexes(conn)  # autocommit, before the transaction opens
            with conn.transaction():
                self._publish_rows(conn, snapshot_id, folder, manifest)

    def _publish_rows(self, conn, snapshot_id: str, folder: Path, manifest: dict) -> None:
        """Inside the publishing transaction: the version's rows, parts and index, then make it current. Publishes
        of all stores take turns: each copies into the chunks table (ROW EXCLUSIVE), then builds its index on it
        (SHARE), so two at once would wait on each other, and PostgreSQL would abort one as a deadlock."""
        from psycopg.types.json import Jsonb

        conn.execute("SELECT pg_advisory_xact_lock(%s)", (PUBLISH_LOCK_KEY,))
        conn.execute("INSERT INTO footnote_snapshots (store, snapshot_id, manifest) VALUES (%s, %s, %s)",
                     (self.store, snapshot_id, Jsonb(manifest)))
        chunks = self._copy_rows(conn, snapshot_id, folder)
        self._copy_parts(conn, snapshot_id, folder)
        _create_vector_index(conn, snapshot_id, chunks, int(manifest["dimension"]))
        conn.execute("INSERT INTO footnote_current (store, snapshot_id) VALUES (%s, %s) ON CONFLICT (store) "
                     "DO UPDATE SET snapshot_id = excluded.snapshot_id", (self.store, snapshot_id))
        conn.execute(
            "DELETE FROM footnote_snapshots WHERE store = %s AND snapshot_id <> %s AND snapshot_id NOT IN "
            "(SELECT snapshot_id FROM footnote_snapshots WHERE store = %s ORDER BY published_at DESC LIMIT %s)",
            (self.store, snapshot_id, self.store, KEEP_SNAPSHOTS))
        conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, notification(self.store, snapshot_id)))

    def drop(self) -> None:
        """Unpublish every version of this store in one transaction (announced like a publish), then delete
        the local folder."""
        with self.connect() as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (PUBLISH_LOCK_KEY,))
            conn.execute("DELETE FROM footnote_current WHERE store = %s", (self.store,))
            conn.execute("DELETE FROM footnote_snapshots WHERE store = %s", (self.store,))
            conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, notification(self.store, None)))
        super().drop()

    @staticmethod
    def _copy_parts(conn, snapshot_id: str, folder: Path) -> None:
        """Every file that is not table rows, in pieces of at most PIECE_BYTES (a bytea holds at most 1 GB)."""
        with conn.cursor().copy("COPY footnote_parts (snapshot_id, name, piece, data) FROM STDIN (FORMAT BINARY)"
                                ) as copy:
            copy.set_types(["text", "text", "int4", "bytea"])
            for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                name = str(path.relative_to(folder))
                if name in ROWS_FROM_TABLES:
                    continue
                with path.open("rb") as handle:
                    piece = 0
                    while (data := handle.read(PIECE_BYTES)) or piece == 0:
                        copy.write_row((snapshot_id, name, piece, data))
                        piece += 1

    @staticmethod
    def _copy_rows(conn, snapshot_id: str, folder: Path) -> int:
        """Documents, chunks (with their vectors) and sentences (with theirs) as table rows, by binary COPY; the
        number of chunks. Streamed: records are read a line at a time and vectors a block at a time, so a
        million chunks are never in memory at once."""
        from pgvector.psycopg import register_vector
        from psycopg.types.json import Jsonb

        register_vector(conn)
        cursor = conn.cursor()
        with cursor.copy("COPY footnote_documents (snapshot_id, row, doc_id, title, url, record) "
                         "FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "int4", "text", "text", "text", "jsonb"])
            for row, record in enumerate(iter_jsonl(folder / "documents.jsonl")):
                copy.write_row((snapshot_id, row, record["doc_id"], record["title"], record["url"], Jsonb(record)))
        vectors = FaissVectorStore.load(folder / "vectors.faiss")
        with cursor.copy("COPY footnote_chunks (snapshot_id, row, chunk_id, doc_id, record, embedding) "
                         "FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "int4", "text", "text", "jsonb", "vector"])
            rows = _in_blocks(vectors.size, lambda start, end: vectors.reconstruct(np.arange(start, end)))
            for row, (record, vector) in enumerate(zip(iter_jsonl(folder / "chunks.jsonl"), rows, strict=True)):
                copy.write_row((snapshot_id, row, record["chunk_id"], record["doc_id"], Jsonb(record), vector))
        sentences = np.load(folder / "sentences.npy", mmap_mode="r")
        sentence_vectors = np.load(folder / "sentence_vectors.npy", mmap_mode="r")
        with cursor.copy("COPY footnote_sentences (snapshot_id, row, doc_row, start_char, end_char, paragraph, "
                         "embedding) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "int4", "int4", "int4", "int4", "int4", "vector"])
            spans = _in_blocks(len(sentences), lambda start, end: sentences[start:end].tolist())
            embeddings = _in_blocks(len(sentence_vectors), lambda start, end: np.array(sentence_vectors[start:end]))
            for row, ((doc_row, start, end, paragraph), vector) in enumerate(zip(spans, embeddings, strict=True)):
                copy.write_row((snapshot_id, row, doc_row, start, end, paragraph, vector))
        return vectors.size

    def _materialise(self, snapshot_id: str, folder: Path) -> None:
        """Write the version's files into `folder` through a temporary folder of this call's own (not a build's:
        a build removes those it finds), renamed at the end; a copy another thread or process finished first
        is kept."""
        self.root.mkdir(parents=True, exist_ok=True)
        partial = Path(tempfile.mkdtemp(prefix=f"{DOWNLOAD_PREFIX}{snapshot_id}-", dir=self.root))
        try:
            with connect(self.url, autocommit=False) as conn:  # one snapshot of the database for every read:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")  # a collection
                self._write_rows(conn, snapshot_id, partial)  # committed meanwhile does not cut the copy short
                self._write_parts(conn, snapshot_id, partial)
            if not (partial / "manifest.json").is_file():
                raise SnapshotError(f"version {snapshot_id} is missing from the database at {safe_url(self.url)}")
            try:
                os.replace(partial, folder)
            except OSError:
                if not (folder / "manifest.json").is_file():
                    raise
        finally:
            shutil.rmtree(partial, ignore_errors=True)

    @staticmethod
    def _write_parts(conn, snapshot_id: str, folder: Path) -> None:
        """The version's parts as files, piece after piece (streamed: a part is never whole in memory)."""
        handle, name_open = None, None
        try:
            for name, data in conn.cursor(binary=True).stream(
                    "SELECT name, data FROM footnote_parts WHERE snapshot_id = %s ORDER BY name, piece",
                    (snapshot_id,)):
                if name != name_open:
                    if handle is not None:
                        handle.close()
                    path = folder / name
                    path.parent.mkdir(parents=True, exist_ok=True)
                    handle, name_open = path.open("wb"), name
                handle.write(data)
        finally:
            if handle is not None:
                handle.close()

    @staticmethod
    def _write_rows(conn, snapshot_id: str, folder: Path) -> None:
        """Documents, chunks and sentences back into the file store's files, row by row (streamed: a million
        chunks never sit in memory as Python objects)."""
        from pgvector.psycopg import register_vector

        register_vector(conn)
        for table, name in (("footnote_documents", "documents.jsonl"), ("footnote_chunks", "chunks.jsonl")):
            rows = conn.cursor().stream(f"SELECT record FROM {table} WHERE snapshot_id = %s ORDER BY row",
                                        (snapshot_id,))
            write_jsonl(folder / name, (record for (record,) in rows))
        [(count, dimension)] = conn.execute(
            "SELECT count(*), max(vector_dims(embedding)) FROM footnote_sentences WHERE snapshot_id = %s",
            (snapshot_id,)).fetchall()
        spans = np.zeros((count, 4), dtype=np.int64)
        vectors = np.zeros((count, dimension or 0), dtype=np.float32)
        rows = conn.cursor(binary=True).stream(
            "SELECT doc_row, start_char, end_char, paragraph, embedding FROM footnote_sentences "
            "WHERE snapshot_id = %s ORDER BY row", (snapshot_id,))
        for row, (doc_row, start, end, paragraph, vector) in enumerate(rows):
            spans[row] = (doc_row, start, end, paragraph)
            vectors[row] = vector.to_numpy()
        np.save(folder / "sentences.npy", spans)
        np.save(folder / "sentence_vectors.npy", vectors)


@contextmanager
def change_lock(url: str, store: str, wait_seconds: float) -> Iterator[None]:
    """Held for one change of a store's sources (files, build, registry) across every process; waited for up to
    `wait_seconds`, then StoreLocked. Released by PostgreSQL if the process dies."""
    import psycopg

    key = (CHANGE_LOCK_KEY, _store_number(store))
    with connect(url) as conn:
        conn.execute(f"SET lock_timeout = '{int(wait_seconds * 1000)}ms'")
        try:
            conn.execute("SELECT pg_advisory_lock(%s, %s)", key)
        except psycopg.errors.LockNotAvailable:
            raise StoreLocked(f"another change of the sources of {store} is under way") from None
        try:
            yield
        finally:
            _unlock(conn, key)


def vector_index_name(snapshot_id: str) -> str:
    """The name of a version's own HNSW index over its chunk vectors."""
    return f"footnote_chunks_hnsw_{snapshot_id}"


def _create_vector_index(conn, snapshot_id: str, chunks: int, dimension: int) -> None:
    """Build the version's HNSW index (cosine) over its chunks at once, after they are copied: a partial index of
    its own, so that a publish never inserts into a graph of every earlier version (the next publish drops the
    index of a version collected). Queries name the version as a literal (`WHERE snapshot_id = '…'`) to use it.
    The build holds a SHARE lock on the chunks table: reads go on, another store's publish waits its turn."""
    from psycopg import sql

    conn.execute(f"SET LOCAL maintenance_work_mem = '{_index_memory_mb(chunks, dimension)}MB'")
    conn.execute(sql.SQL("CREATE INDEX {} ON footnote_chunks USING hnsw ((embedding::vector({})) vector_cosine_ops) "
                         "WITH (m = {}, ef_construction = {}) WHERE snapshot_id = {}").format(
        sql.Identifier(vector_index_name(snapshot_id)), sql.SQL(str(int(dimension))), sql.SQL(str(HNSW_M)),
        sql.SQL(str(HNSW_EF_CONSTRUCTION)), sql.Literal(snapshot_id)))


def _index_memory_mb(chunks: int, dimension: int) -> int:
    """maintenance_work_mem for one index build: pgvector builds many times faster while the graph (about 2.5
    times the vectors' bytes) fits in it; at most INDEX_BUILD_MAX_MB."""
    return int(min(INDEX_BUILD_MAX_MB, 64 + 2.5 * chunks * dimension * 4 / 2**20))


def _drop_orphaned_vector_indexes(conn) -> None:
    """Drop the HNSW indexes of versions collected or dropped since (CONCURRENTLY, on an autocommit connection:
    never inside a publish, where it would wait on every reader of the chunks, and block new ones meanwhile)."""
    from psycopg import sql

    prefix = vector_index_name("")
    orphaned = conn.execute(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'footnote_chunks' AND starts_with(indexname, %s) "
        "AND substr(indexname, length(%s) + 1) NOT IN (SELECT snapshot_id FROM footnote_snapshots)",
        (prefix, prefix)).fetchall()
    for (name,) in orphaned:
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))


def _in_blocks(count: int, read: Callable[[int, int], Sequence], block: int = 8192) -> Iterator:
    """Rows 0 to `count` in order, read (`read(start, end)`) a block at a time."""
    for start in range(0, count, block):
        yield from read(start, min(start + block, count))


def _modified(path: Path) -> float:
    """When a folder was last written; 0 for one another thread has just deleted."""
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _unlock(conn, key: tuple[int, int]) -> None:
    """Release a session advisory lock (a build's, a change's); on a connection the database has closed (a
    restart), the lock went with it."""
    import psycopg

    with suppress(psycopg.OperationalError):
        conn.execute("SELECT pg_advisory_unlock(%s, %s)", key)


def _store_number(store: str) -> int:
    """A store's name as the signed 32-bit second key of its build lock."""
    return int.from_bytes(hashlib.blake2b(store.encode(), digest_size=4).digest(), "big", signed=True)
