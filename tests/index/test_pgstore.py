"""The PostgreSQL store (pgvector) beside the file store: the same contract, shared by several processes."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from bot.service import make_builder, make_store
from index.builder import BuildInProgress
from index.embedding import Embedder
from index.pgstore import PgSnapshotStore, safe_url
from index.store import SnapshotError, SnapshotStore
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


@pytest.mark.parametrize("kind", ["file", "postgres"])
def test_both_stores_publish_a_build_that_loads_with_the_same_content(
        kind: str, tmp_path: Path, database_url: str, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    write_articles(corpus, 3)
    settings = make_settings(tmp_path / kind, corpus, database_url=database_url if kind == "postgres" else None)
    report = make_builder(settings, embedder).build(corpus)
    store = make_store(settings)
    assert isinstance(store, PgSnapshotStore if kind == "postgres" else SnapshotStore)
    snapshot = store.load(embedder.name, embedder.dimension, fingerprint=embedder.fingerprint)
    assert snapshot.snapshot_id == report.snapshot_id and len(snapshot.documents) == 3


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


def test_chunk_vectors_live_in_pgvector_under_an_hnsw_index(settings, embedder) -> None:
    report = make_builder(settings, embedder).build(settings.corpus_dir)
    store = make_store(settings)
    snapshot = store.load(embedder.name, embedder.dimension)
    query = snapshot.vectors.reconstruct(np.array([1]))[0]
    with store.connect() as conn:
        nearest = conn.execute(
            f"SELECT row FROM footnote_chunks WHERE snapshot_id = %s ORDER BY embedding::vector({embedder.dimension})"
            " <=> %s::vector LIMIT 1", (report.snapshot_id, "[" + ",".join(map(str, query)) + "]")).fetchone()
        indexes = [r[0] for r in conn.execute("SELECT indexdef FROM pg_indexes WHERE tablename = 'footnote_chunks'")]
    assert nearest == (1,)
    assert any("hnsw" in definition and "vector_cosine_ops" in definition for definition in indexes)


def test_a_publish_that_fails_half_way_leaves_the_previous_version_current(
        settings, tmp_path, embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_builder(settings, embedder).build(settings.corpus_dir)
    write_articles(settings.corpus_dir, 4)

    def broken(conn, snapshot_id, folder):
        conn.execute("INSERT INTO footnote_documents (snapshot_id, row, doc_id, title, url, record) "
                     "VALUES (%s, 0, 'x', 'x', '', '{}')", (snapshot_id,))
        raise OSError("the disk went away")

    monkeypatch.setattr(PgSnapshotStore, "_copy_rows", staticmethod(broken))
    with pytest.raises(OSError):
        make_builder(settings, embedder).build(settings.corpus_dir)
    store = make_store(other_process(settings, tmp_path))
    assert store.current_id() == first.snapshot_id
    with store.connect() as conn:
        assert conn.execute("SELECT count(*) FROM footnote_snapshots").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM footnote_documents WHERE doc_id = 'x'").fetchone() == (0,)


def test_readers_see_the_old_version_until_the_publish_commits(
        settings, tmp_path, embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    first = make_builder(settings, embedder).build(settings.corpus_dir)
    write_articles(settings.corpus_dir, 4)
    copying, release = threading.Event(), threading.Event()
    original = PgSnapshotStore._copy_rows

    def paused(conn, snapshot_id, folder):
        original(conn, snapshot_id, folder)
        copying.set()
        assert release.wait(30)

    monkeypatch.setattr(PgSnapshotStore, "_copy_rows", staticmethod(paused))
    results = []
    builder = threading.Thread(target=lambda: results.append(make_builder(settings, embedder).build(
        settings.corpus_dir)))
    builder.start()
    assert copying.wait(60)
    reader = make_store(other_process(settings, tmp_path))
    assert reader.current_id() == first.snapshot_id
    assert len(reader.load(embedder.name, embedder.dimension).documents) == 3
    release.set()
    builder.join(60)
    assert reader.current_id() == results[0].snapshot_id != first.snapshot_id
    assert len(reader.load(embedder.name, embedder.dimension).documents) == 4


def test_one_build_at_a_time_across_processes(settings, tmp_path, embedder) -> None:
    elsewhere = make_store(other_process(settings, tmp_path))
    with elsewhere.build_lock(), pytest.raises(BuildInProgress, match="another process"):
        make_builder(settings, embedder).build(settings.corpus_dir)
    make_builder(settings, embedder).build(settings.corpus_dir)  # the lock is released with its holder


def test_old_versions_are_collected_keeping_the_previous_one(settings, embedder) -> None:
    ids = []
    for count in (3, 4, 5):
        write_articles(settings.corpus_dir, count)
        ids.append(make_builder(settings, embedder).build(settings.corpus_dir).snapshot_id)
    with make_store(settings).connect() as conn:
        kept = {row[0] for row in conn.execute("SELECT snapshot_id FROM footnote_snapshots")}
        parts = conn.execute("SELECT count(DISTINCT snapshot_id) FROM footnote_parts").fetchone()[0]
    assert kept == set(ids[1:]) and parts == 2


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


KILLED_BUILD = """
import os, sys, time
from pathlib import Path
from bot.service import make_builder
from index.embedding import Embedder
from index.pgstore import PgSnapshotStore
from tests.conftest import make_settings

original = PgSnapshotStore._copy_rows

def copy_then_hang(conn, snapshot_id, folder):
    original(conn, snapshot_id, folder)
    Path(sys.argv[3]).touch()  # half-way through the publishing transaction
    time.sleep(600)

PgSnapshotStore._copy_rows = staticmethod(copy_then_hang)
settings = make_settings(Path(sys.argv[1]), Path(sys.argv[2]), database_url=os.environ["TEST_DATABASE_URL"])
make_builder(settings, Embedder(cache_dir=Path("var/models"))).build(settings.corpus_dir)
"""


def test_a_build_killed_mid_publish_leaves_the_previous_version_and_frees_the_lock(
        settings, tmp_path, embedder) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    first = make_builder(settings, embedder).build(settings.corpus_dir)
    write_articles(settings.corpus_dir, 4)
    marker = tmp_path / "publishing"
    child = subprocess.Popen([sys.executable, "-c", KILLED_BUILD, str(tmp_path / "killed"), str(settings.corpus_dir),
                              str(marker)], cwd=ROOT, env={**os.environ, "TEST_DATABASE_URL": settings.database_url
                                                            .get_secret_value()})
    try:
        for _ in range(1200):  # the child loads the model, builds and starts publishing
            if marker.exists() or child.poll() is not None:
                break
            threading.Event().wait(0.05)
        assert marker.exists(), "the child never reached the publishing transaction"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(30)
    store = make_store(other_process(settings, tmp_path))
    assert store.current_id() == first.snapshot_id
    assert make_builder(settings, embedder).build(settings.corpus_dir).documents == 4  # the lock died with it
