"""The PostgreSQL store (pgvector): what only it does. The contract both stores keep (publishing, kill -9, one build
at a time, readers during a publish, collection) is in test_store_contract.py."""

from __future__ import annotations

import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from bot.service import make_builder, make_store
from index.builder import BuildInProgress
from index.pgstore import ROWS_FROM_TABLES, PgSnapshotStore, vector_index_name
from index.store import SnapshotError
from index.urls import safe_url
from tests.conftest import make_settings
from tests.index.test_builder import write_articles


@pytest.fixture
def settings(tmp_path: Path, database_url: str):
    corpus = tmp_path / "corpus"
    write_articles(corpus, 3)
    return make_settings(tmp_path / "one", corpus, database_url=database_url)


def other_process(settings, tmp_path: Path, name: str = "two"):
    """The same database seen from another process: its own local folder."""
    return settings.model_copy(update={"index_dir": tmp_path / name / "index"})


def test_another_process_loads_the_published_version_bit_for_bit(settings, tmp_path, embedder) -> None:
    make_builder(settings, embedder).build(settings.corpus_dir)
    mine = make_store(settings).load(embedder.name, embedder.dimension)
    theirs = make_store(other_process(settings, tmp_path)).load(embedder.name, embedder.dimension)
    assert theirs.path != mine.path and theirs.snapshot_id == mine.snapshot_id
    assert theirs.documents == mine.documents and theirs.chunks == mine.chunks
    np.testing.assert_array_equal(theirs.sentences, mine.sentences)
    np.testing.assert_array_equal(theirs.sentence_vectors, mine.sentence_vectors)
    rows = np.arange(len(mine.chunks))
    np.testing.assert_array_equal(theirs.vectors.reconstruct(rows), mine.vectors.reconstruct(rows))


def test_each_versions_chunk_vectors_live_in_pgvector_under_an_hnsw_index_of_its_own(settings, embedder) -> None:
    first = make_builder(settings, embedder).build(settings.corpus_dir)
    write_articles(settings.corpus_dir, 2, sentences=7)
    report = make_builder(settings, embedder).build(settings.corpus_dir)
    store = make_store(settings)
    snapshot = store.load(embedder.name, embedder.dimension)
    query = "[" + ",".join(map(str, snapshot.vectors.reconstruct(np.array([1]))[0])) + "]"
    search = (f"SELECT row FROM footnote_chunks WHERE snapshot_id = '{report.snapshot_id}' "
              f"ORDER BY embedding::vector({embedder.dimension}) <=> %s::vector LIMIT 1")
    with store.connect() as conn:
        conn.execute("SET enable_seqscan = off")  # a few chunks: a scan and a sort would be cheaper, yet
        conn.execute("SET enable_sort = off")  # the index must be able to serve
        nearest = conn.execute(search, (query,)).fetchone()
        plan = "\n".join(row[0] for row in conn.execute(f"EXPLAIN {search}", (query,)).fetchall())
        indexes = dict(conn.execute("SELECT indexname, indexdef FROM pg_indexes "
                                    "WHERE tablename = 'footnote_chunks' AND indexdef LIKE '%hnsw%'").fetchall())
    assert nearest == (1,) and vector_index_name(report.snapshot_id) in plan
    assert set(indexes) == {vector_index_name(first.snapshot_id), vector_index_name(report.snapshot_id)}
    definition = indexes[vector_index_name(report.snapshot_id)]
    assert "vector_cosine_ops" in definition and "m='32'" in definition and f"'{report.snapshot_id}'" in definition
    later = []
    for count in (4, 5):  # the next publish drops the index of a version collected
        write_articles(settings.corpus_dir, count)
        later.append(make_builder(settings, embedder).build(settings.corpus_dir).snapshot_id)
    with store.connect() as conn:
        left = {r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%hnsw%'")}
    assert vector_index_name(first.snapshot_id) not in left
    assert left >= {vector_index_name(version) for version in later}


def test_a_servers_store_has_its_own_current_version_lock_and_collection(settings, tmp_path, embedder) -> None:
    url = settings.database_url.get_secret_value()
    shared_store = make_store(settings)
    guild = PgSnapshotStore(url, tmp_path / "guild", "guild:7")
    corpus = tmp_path / "guild-corpus"
    write_articles(corpus, 2)
    shared = make_builder(settings, embedder).build(settings.corpus_dir)
    with shared_store.build_lock():  # a build of the shared corpus does not hold up a server's
        own = make_builder(settings, embedder, guild).build(corpus)
    assert shared_store.current_id() == shared.snapshot_id and guild.current_id() == own.snapshot_id
    with guild.build_lock(), pytest.raises(BuildInProgress, match="guild:7"):
        make_builder(settings, embedder, PgSnapshotStore(url, tmp_path / "elsewhere", "guild:7")).build(corpus)
    for count in (4, 5):  # two more shared versions: the server's only one stays
        write_articles(settings.corpus_dir, count)
        make_builder(settings, embedder).build(settings.corpus_dir)
    assert guild.current_id() == own.snapshot_id
    with shared_store.connect() as conn:
        stores = conn.execute("SELECT store, count(*) FROM footnote_snapshots GROUP BY store ORDER BY store")
        assert stores.fetchall() == [("guild:7", 1), ("shared", 2)]
    assert len(PgSnapshotStore(url, tmp_path / "other", "guild:7").load(embedder.name, embedder.dimension)
               .documents) == 2


def test_publishing_and_dropping_a_store_are_announced_with_its_name(settings, tmp_path, embedder) -> None:
    from index.pgstore import CHANNEL, parse_notification

    guild = PgSnapshotStore(settings.database_url.get_secret_value(), tmp_path / "guild", "guild:7")
    with make_store(settings).connect() as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        report = make_builder(settings, embedder, guild).build(settings.corpus_dir)
        guild.drop()
        notices = [parse_notification(n.payload) for n in listener.notifies(timeout=10, stop_after=2)]
    assert notices == [("guild:7", report.snapshot_id), ("guild:7", None)]
    assert guild.current_id() is None and not guild.root.exists()
    assert make_store(settings).current_id() is None  # the shared store never had a version


def test_an_unreachable_database_is_one_error_without_the_password(tmp_path: Path) -> None:
    url = f"postgresql://footnote:s3cret@localhost/none?host={tmp_path}"
    with pytest.raises(SnapshotError) as caught:
        PgSnapshotStore(url, tmp_path / "index")
    assert "s3cret" not in str(caught.value) and "cannot reach the database" in str(caught.value)
    assert safe_url(url) == "postgresql://localhost/none"


@pytest.mark.parametrize(("conninfo", "shown"), [
    ("host=db port=5433 user=footnote password=s3cret dbname=news", "postgresql://db:5433/news"),
    ("host=db password='s3cret", "(a connection string that does not parse)"),
])
def test_a_key_value_connection_string_is_shown_without_its_password(conninfo: str, shown: str) -> None:
    assert safe_url(conninfo) == shown


async def test_a_reindex_in_one_process_is_answered_from_by_the_other(settings, tmp_path, embedder) -> None:
    import asyncio

    from bot.service import QAService

    make_builder(settings, embedder).build(settings.corpus_dir)
    first, second = (QAService(s, embedder) for s in (settings, other_process(settings, tmp_path)))
    await first.start()
    await second.start()
    try:
        before = second.answerer.snapshot.snapshot_id
        (settings.corpus_dir / "article-new.md").write_text(
            "---\ntitle: Ferry strike ends\n---\nThe ferry workers' union ended its nine-day strike on Thursday.\n",
            encoding="utf-8")
        report = await first.reindex()
        async with asyncio.timeout(30):  # NOTIFY reaches the other process, which swaps
            while second.answerer.snapshot.snapshot_id == before:
                await asyncio.sleep(0.05)
        assert second.answerer.snapshot.snapshot_id == report.snapshot_id
        answer = second.answerer.ask("How long did the ferry strike last?", threshold=0.0)
        assert "nine-day strike" in answer.answer
    finally:
        await first.close()
        await second.close()


def test_parts_larger_than_a_piece_are_stored_in_pieces_and_copied_back_whole(
        settings, tmp_path, embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("index.pgstore.PIECE_BYTES", 4096)
    report = make_builder(settings, embedder).build(settings.corpus_dir)
    url = settings.database_url.get_secret_value()
    with PgSnapshotStore(url, settings.index_dir).connect() as conn:
        pieces = dict(conn.execute("SELECT name, count(*) FROM footnote_parts WHERE snapshot_id = %s GROUP BY name",
                                   (report.snapshot_id,)).fetchall())
    assert pieces["vectors.faiss"] > 1 and set(pieces.values()) >= {1}
    copy = PgSnapshotStore(url, other_process(settings, tmp_path).index_dir).current_path()
    assert copy is not None and copy != report.path
    for path in (p for p in report.path.rglob("*") if p.is_file()):  # the parts (rows are rewritten from tables)
        if path.name not in ROWS_FROM_TABLES:
            assert (copy / path.relative_to(report.path)).read_bytes() == path.read_bytes(), path.name


def test_a_copy_being_made_is_whole_even_when_its_version_is_collected_meanwhile(
        settings, tmp_path, embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_builder(settings, embedder).build(settings.corpus_dir)
    write_parts = PgSnapshotStore._write_parts

    def two_publishes_then_write(conn, snapshot_id, folder):  # the rows are copied: collect the version now
        monkeypatch.setattr(PgSnapshotStore, "_write_parts", staticmethod(write_parts))
        for count in (4, 5):
            write_articles(settings.corpus_dir, count)
            make_builder(settings, embedder).build(settings.corpus_dir)
        write_parts(conn, snapshot_id, folder)

    monkeypatch.setattr(PgSnapshotStore, "_write_parts", staticmethod(two_publishes_then_write))
    copy = PgSnapshotStore(settings.database_url.get_secret_value(), other_process(settings, tmp_path).index_dir)
    copy._materialise(first.snapshot_id, copy.root / "copy")
    with copy.connect() as conn:
        assert conn.execute("SELECT count(*) FROM footnote_snapshots WHERE snapshot_id = %s",
                            (first.snapshot_id,)).fetchone() == (0,)  # collected meanwhile
    for path in (p for p in first.path.rglob("*") if p.is_file() and p.name not in ROWS_FROM_TABLES):
        assert (copy.root / "copy" / path.relative_to(first.path)).read_bytes() == path.read_bytes(), path.name


def test_two_stores_publishing_at_once_take_turns_instead_of_deadlocking(
        settings, tmp_path, embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each publish copies into the chunks table, then builds its index on it: overlapping, two would wait on
    each other and PostgreSQL would abort one. The first pauses after its copy while the second starts."""
    url = settings.database_url.get_secret_value()
    stores = [PgSnapshotStore(url, tmp_path / f"guild{n}", f"guild:{n}") for n in (1, 2)]
    copied, resume = threading.Event(), threading.Event()
    copy_parts = PgSnapshotStore._copy_parts

    def pause_after_the_first_copy(conn, snapshot_id, folder):
        copy_parts(conn, snapshot_id, folder)
        if not copied.is_set():
            copied.set()
            resume.wait(timeout=30)

    monkeypatch.setattr(PgSnapshotStore, "_copy_parts", staticmethod(pause_after_the_first_copy))
    failures: list[Exception] = []

    def build(store: PgSnapshotStore) -> None:
        try:
            make_builder(settings, embedder, store).build(settings.corpus_dir)
        except Exception as exc:  # the deadlock's loser, before the fix
            failures.append(exc)

    first = threading.Thread(target=build, args=(stores[0],))
    first.start()
    assert copied.wait(timeout=60)
    second = threading.Thread(target=build, args=(stores[1],))
    second.start()
    second.join(timeout=3)  # it has built and waits for its turn to publish
    resume.set()
    first.join(timeout=60)
    second.join(timeout=60)
    assert failures == [] and all(store.current_id() for store in stores)


def test_a_process_that_only_loads_keeps_two_local_versions(settings, tmp_path, embedder) -> None:
    follower = PgSnapshotStore(settings.database_url.get_secret_value(), other_process(settings, tmp_path).index_dir)
    for count in (3, 4, 5, 6):
        write_articles(settings.corpus_dir, count)
        make_builder(settings, embedder).build(settings.corpus_dir)
        assert follower.current_path() is not None
    kept = sorted(p.name for p in follower.root.glob("snap-*"))
    assert len(kept) == 2 and f"snap-{follower.current_id()}" in kept


def test_copies_made_at_once_by_two_threads_are_both_whole(settings, tmp_path, embedder) -> None:
    report = make_builder(settings, embedder).build(settings.corpus_dir)
    follower = PgSnapshotStore(settings.database_url.get_secret_value(), other_process(settings, tmp_path).index_dir)
    with ThreadPoolExecutor(2) as pool:
        paths = list(pool.map(lambda _: follower.current_path(), range(2)))
    assert paths[0] == paths[1] and not list(follower.root.glob(".download-*"))
    assert follower.load(embedder.name, embedder.dimension).snapshot_id == report.snapshot_id


def test_a_build_lock_whose_connection_the_database_closed_is_released_quietly(settings, tmp_path) -> None:
    store = PgSnapshotStore(settings.database_url.get_secret_value(), tmp_path / "guild", "guild:3")
    with store.build_lock(), store.connect() as admin:  # a restart: the lock goes with its connection
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                      "AND pid <> pg_backend_pid() AND database = (SELECT oid FROM pg_database "
                      "WHERE datname = current_database())")
    with store.build_lock():  # free again
        pass


@pytest.mark.parametrize(("url", "shown"), [
    ("postgresql://footnote:s3cret@db1:5432,db2:5433/news?target_session_attrs=read-write",
     "postgresql://db1:5432,db2:5433/news"),
    ("postgresql://footnote:p@ss@[::1]:5432/news", "postgresql://[::1]:5432/news"),
])
def test_a_failover_url_is_shown_with_its_hosts_and_without_its_password(url: str, shown: str) -> None:
    assert safe_url(url) == shown


def test_a_copy_a_killed_process_left_half_made_is_collected_by_the_next_build(settings, tmp_path) -> None:
    store = PgSnapshotStore(settings.database_url.get_secret_value(), tmp_path / "index")
    abandoned, under_way = store.root / ".download-a-1", store.root / ".download-b-2"
    for folder in (abandoned, under_way):
        folder.mkdir(parents=True)
    os.utime(abandoned, (time.time() - 7200, time.time() - 7200))
    store.remove_abandoned_builds()
    assert not abandoned.exists() and under_way.exists()
