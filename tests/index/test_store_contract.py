"""The snapshot store contract, run against both stores: the file store and PostgreSQL (pgvector).

Every store publishes a version whole or not at all: a build killed or failing at any point leaves the previous
version current and loadable, one build of a store runs at a time across processes (the others are refused with
StoreLocked), a reader sees the old or the new version whole, and old versions are collected keeping the
previous one (KEEP_SNAPSHOTS).

Each published "edition" of the test corpus has its own documents (ids, texts and one word every chunk holds), so
a version that mixes the parts of two builds fails `assert_whole`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.service import make_builder, make_store
from index.builder import IndexBuilder
from index.embedding import Embedder
from index.lexical import Analyzer
from index.pgstore import PgSnapshotStore, connect
from index.store import (
    KEEP_SNAPSHOTS,
    POINTER,
    SNAPSHOT_PREFIX,
    FaissVectorStore,
    Snapshot,
    SnapshotError,
    SnapshotStore,
    StoreLocked,
)
from tests.conftest import ROOT, make_settings

EDITIONS = {1: "amber", 2: "cobalt", 3: "saffron"}  # edition -> the word all its documents (and chunks) hold
TOPICS = ["oil exports", "a shipping lane", "a mining permit", "farm subsidies", "a rail link"]


def write_edition(folder: Path, edition: int) -> Path:
    """Edition `edition` of the corpus: `edition + 2` short articles of their own."""
    word = EDITIONS[edition]
    folder.mkdir(parents=True)
    for n in range(edition + 2):
        body = " ".join(f"In the {word} edition, minister {n} discussed {TOPICS[n]} at meeting {k} with envoy "
                        f"{n * 7 + k}." for k in range(3))
        (folder / f"{word}-{n}.md").write_text(f"---\ntitle: {word.title()} story {n}\n---\n{body}\n",
                                               encoding="utf-8")
    return folder


def edition_of(snapshot: Snapshot) -> int:
    """The edition `snapshot` holds, after checking it holds all of it and nothing else (see assert_whole)."""
    words = {doc_id.split("-")[0] for doc_id in snapshot.documents}
    editions = [e for e, word in EDITIONS.items() if word in words]
    assert len(editions) == 1, f"{snapshot.path} mixes documents of editions {editions}"
    assert_whole(snapshot, editions[0])
    return editions[0]


def assert_whole(snapshot: Snapshot, edition: int, snapshot_id: str | None = None) -> None:
    """`snapshot` is the version `snapshot_id` holding edition `edition`, every part of it from that one build."""
    word = EDITIONS[edition]
    manifest = snapshot.manifest
    assert snapshot.path.name == SNAPSHOT_PREFIX + snapshot.snapshot_id
    if snapshot_id is not None:
        assert snapshot.snapshot_id == snapshot_id
    expected = [f"{word}-{n}" for n in range(edition + 2)]
    assert snapshot.doc_ids == list(manifest.documents) == expected
    for doc_id, document in snapshot.documents.items():
        assert document.sha256 == manifest.documents[doc_id] and f"the {word} edition" in document.text
    assert {chunk.doc_id for chunk in snapshot.chunks} == set(expected)
    assert len(snapshot.chunks) == snapshot.vectors.size == snapshot.lexical.size == manifest.counts["chunks"]
    assert len(snapshot.sentences) == len(snapshot.sentence_vectors) == manifest.counts["sentences"]
    assert snapshot.sentences[:, 0].max() == len(expected) - 1
    assert len(snapshot.vocabulary) == len(snapshot.vocabulary_vectors) == manifest.counts["vocabulary"]
    assert word in snapshot.vocabulary and not (set(EDITIONS.values()) - {word}) & set(snapshot.vocabulary)
    stem = Analyzer().terms(word)[0]
    assert snapshot.lexical.chunks_with(stem).tolist() == list(range(len(snapshot.chunks)))  # BM25 of this edition


@dataclass
class StoreUnderTest:
    """A fresh store of one kind for one test. `open(process)` is the store as a process sees it: the file store
    is its folder, shared by every process; a PostgreSQL store is its name in the test's own database, with a
    local folder per process."""

    kind: str
    tmp: Path
    url: str | None
    name: str

    def open(self, process: str = "one") -> SnapshotStore:
        index_dir = self.tmp / "index" if self.kind == "file" else self.tmp / process / "index"
        return make_store(make_settings(self.tmp / process, index_dir=index_dir, database_url=self.url), self.name)

    def builder(self, embedder: Embedder, process: str = "one") -> IndexBuilder:
        return make_builder(make_settings(self.tmp / process), embedder, self.open(process))

    def load(self, embedder: Embedder, process: str = "one") -> Snapshot:
        return self.open(process).load(embedder.name, embedder.dimension, fingerprint=embedder.fingerprint)

    def versions(self) -> set[str]:
        """Every version the store holds (current or not), checking that no part of another is left behind."""
        if self.kind == "file":
            return {p.name.removeprefix(SNAPSHOT_PREFIX) for p in (self.tmp / "index").glob(f"{SNAPSHOT_PREFIX}*")}
        with connect(self.url) as conn:
            ids = {row[0] for row in conn.execute("SELECT snapshot_id FROM footnote_snapshots WHERE store = %s",
                                                  (self.name,))}
            for table in ("footnote_documents", "footnote_chunks", "footnote_sentences", "footnote_parts"):
                held = {row[0] for row in conn.execute(f"SELECT DISTINCT snapshot_id FROM {table}")}
                assert held == ids, f"{table} holds rows of versions {held}, the store's are {ids}"
        return ids


def current_id(store: SnapshotStore) -> str | None:
    """The current version's id, checking that current_path agrees."""
    path = store.current_path()
    assert store.current_id() == (path.name.removeprefix(SNAPSHOT_PREFIX) if path is not None else None)
    assert path is None or (path / "manifest.json").is_file()
    return store.current_id()


@pytest.fixture(params=["file", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> StoreUnderTest:
    if request.param == "file":
        return StoreUnderTest("file", tmp_path, None, "shared")
    database_url = request.getfixturevalue("database_url")  # a fresh database: no other test's versions
    return StoreUnderTest("postgres", tmp_path, database_url, f"guild:{uuid.uuid4().int % 10**12}")


def hold_before_commit(kind: str, hold: Callable[[], None], setattr: Callable = setattr) -> None:
    """Make every publish of a `kind` store call `hold` at its last moment before the new version becomes current:
    for files, with the snapshot folder in place and only the pointer's rename left; for PostgreSQL, inside the
    publishing transaction, the rows copied. (`setattr`: pass monkeypatch.setattr to undo it after the test.)"""
    if kind == "file":
        replace = os.replace

        def replace_pointer_after_hold(src, dst, *args, **kwargs):
            if Path(dst).name == POINTER:
                hold()
            return replace(src, dst, *args, **kwargs)

        setattr(os, "replace", replace_pointer_after_hold)
    else:
        copy_rows = PgSnapshotStore._copy_rows

        def copy_rows_then_hold(conn, snapshot_id, folder):
            copied = copy_rows(conn, snapshot_id, folder)
            hold()
            return copied

        setattr(PgSnapshotStore, "_copy_rows", staticmethod(copy_rows_then_hold))


REFUSED = 3  # the exit status of a child build refused because another holds the store's lock

CHILD_BUILD = f"""
import sys, time
from pathlib import Path
from index.builder import BuildInProgress
from index.embedding import Embedder
from tests.index.test_store_contract import StoreUnderTest, hold_before_commit

kind, tmp, url, name, process, corpus, holding, release = sys.argv[1:]

def hold():
    Path(holding).touch()
    for _ in range(6000):
        if Path(release).exists():
            return
        time.sleep(0.1)

hold_before_commit(kind, hold)
store = StoreUnderTest(kind, Path(tmp), url or None, name)
try:
    report = store.builder(Embedder(cache_dir=Path("var/models")), process).build(Path(corpus))
except BuildInProgress as exc:
    print("refused:", exc)
    sys.exit({REFUSED})
print("published", report.snapshot_id)
"""


@dataclass
class ChildBuild:
    """A build in another process that holds before its commit until `release` exists."""

    process: subprocess.Popen
    holding: Path
    output: Path

    def log(self) -> str:
        return self.output.read_text(encoding="utf-8") if self.output.exists() else ""


def start_child_build(store: StoreUnderTest, process: str, corpus: Path, release: Path) -> ChildBuild:
    holding, output = store.tmp / f"{process}.holding", store.tmp / f"{process}.log"
    with output.open("w", encoding="utf-8") as log:
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD_BUILD, store.kind, str(store.tmp), store.url or "", store.name, process,
             str(corpus), str(holding), str(release)], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    return ChildBuild(child, holding, output)


def stop(children: list[ChildBuild]) -> None:
    for child in children:
        if child.process.poll() is None:
            child.process.kill()
        child.process.wait(30)


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_published_version_is_current_and_loads_whole_in_every_process(store, embedder) -> None:
    assert type(store.open()) is (SnapshotStore if store.kind == "file" else PgSnapshotStore)
    assert current_id(store.open()) is None
    with pytest.raises(SnapshotError, match=r"no index in .*build it with `python -m bot index`"):
        store.load(embedder)
    report = store.builder(embedder).build(write_edition(store.tmp / "corpus", 1))
    assert report.path.name == SNAPSHOT_PREFIX + report.snapshot_id and report.documents == 3
    for process in ("one", "two"):  # the building process, and another
        opened = store.open(process)
        assert current_id(opened) == report.snapshot_id
        snapshot = store.load(embedder, process)
        assert snapshot.path == opened.current_path()
        assert_whole(snapshot, 1, report.snapshot_id)
    assert store.versions() == {report.snapshot_id}


def test_a_build_killed_mid_publish_leaves_the_previous_version_and_frees_the_lock(store, embedder) -> None:
    first = store.builder(embedder).build(write_edition(store.tmp / "first", 1))
    child = start_child_build(store, "two", write_edition(store.tmp / "second", 2), store.tmp / "never")
    try:
        wait_for(lambda: child.holding.exists() or child.process.poll() is not None, "the child's publish")
        assert child.holding.exists(), f"the child never reached its commit:\n{child.log()}"
        os.kill(child.process.pid, signal.SIGKILL)
    finally:
        stop([child])
    assert child.process.returncode == -signal.SIGKILL
    for process in ("one", "two", "three"):  # the killed process's folder too
        assert current_id(store.open(process)) == first.snapshot_id
        assert_whole(store.load(embedder, process), 1, first.snapshot_id)
    third = store.builder(embedder, "two").build(write_edition(store.tmp / "third", 3))  # the lock died with it
    assert current_id(store.open("three")) == third.snapshot_id
    assert_whole(store.load(embedder, "three"), 3, third.snapshot_id)


def test_two_processes_building_at_once_publish_one_version_whole(store, embedder) -> None:
    first = store.builder(embedder).build(write_edition(store.tmp / "first", 1))
    release = store.tmp / "release"
    children = {edition: start_child_build(store, f"builder-{edition}", write_edition(store.tmp / f"c{edition}",
                                                                                       edition), release)
                for edition in (2, 3)}
    try:
        holding = lambda: [e for e, c in children.items() if c.holding.exists()]  # noqa: E731
        ended = lambda: [e for e, c in children.items() if c.process.poll() is not None]  # noqa: E731
        wait_for(lambda: len(holding()) == 2 or len(ended()) == 2 or (holding() and ended()), "both builds")
        logs = "\n".join(f"edition {e}: {c.log()}" for e, c in children.items())
        assert len(holding()) == 1, f"not exactly one build reached its commit:\n{logs}"
        [winner], [loser] = holding(), ended()
        assert children[loser].process.returncode == REFUSED, logs  # refused at once, not queued
        assert "refused: another" in children[loser].log()
        with pytest.raises(StoreLocked), store.open("elsewhere").build_lock():  # the store's lock, directly
            pass
        assert current_id(store.open("elsewhere")) == first.snapshot_id
        release.touch()
        assert children[winner].process.wait(120) == 0, children[winner].log()
    finally:
        release.touch()
        stop(list(children.values()))
    published = children[winner].log().split("published ")[-1].strip()
    assert current_id(store.open("elsewhere")) == published
    assert_whole(store.load(embedder, "elsewhere"), winner, published)
    assert store.versions() == {first.snapshot_id, published}  # exactly one new version
    with store.open("elsewhere").build_lock():  # and the lock is free again
        pass


def test_a_reader_during_a_publish_sees_the_old_or_the_new_version_whole(
        store, embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    first = store.builder(embedder).build(write_edition(store.tmp / "first", 1))
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        holding.set()
        assert release.wait(120)

    hold_before_commit(store.kind, hold, monkeypatch.setattr)
    seen: list[tuple[str, int]] = []
    errors: list[Exception] = []
    done = threading.Event()

    def read() -> None:  # loads again and again, as a fresh process would (PostgreSQL: materialising each time)
        while not done.is_set():
            try:
                snapshot = store.load(embedder, f"reader-{len(seen)}")
                seen.append((snapshot.snapshot_id, edition_of(snapshot)))
            except Exception as exc:  # reported below
                errors.append(exc)
                return

    published = []
    builder = threading.Thread(target=lambda: published.append(
        store.builder(embedder).build(write_edition(store.tmp / "second", 2))), daemon=True)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        builder.start()
        try:
            assert holding.wait(120), "the build never reached its commit"
            loads = len(seen)
            wait_for(lambda: len(seen) >= loads + 3 or bool(errors) or not reader.is_alive(),
                     "loads during the publish")
            assert current_id(store.open("while-holding")) == first.snapshot_id
            assert_whole(store.load(embedder, "while-holding"), 1, first.snapshot_id)
        finally:
            release.set()
            builder.join(120)
        assert published, "the build did not finish"
        new = published[0].snapshot_id
        wait_for(lambda: (new, 2) in seen or bool(errors) or not reader.is_alive(), "a load of the new version")
    finally:
        done.set()
        reader.join(120)
    assert not errors, f"a reader failed during the publish: {errors[0]!r}"
    assert set(seen) == {(first.snapshot_id, 1), (new, 2)}
    switch = seen.index((new, 2))  # old, then new: never the old again once the new was seen
    assert switch > 0 and (first.snapshot_id, 1) not in seen[switch:]


def test_old_versions_are_collected_keeping_the_previous_one(store, embedder) -> None:
    ids = [store.builder(embedder).build(write_edition(store.tmp / f"c{edition}", edition)).snapshot_id
           for edition in (1, 2, 3)]
    assert KEEP_SNAPSHOTS == 2
    assert store.versions() == set(ids[1:])
    assert current_id(store.open("other")) == ids[2]
    assert_whole(store.load(embedder, "other"), 3, ids[2])


def test_a_publish_after_an_interrupted_one_keeps_the_version_that_was_current(
        store, embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    first = store.builder(embedder).build(write_edition(store.tmp / "first", 1))

    def interrupt() -> None:
        raise OSError("the disk went away")

    hold_before_commit(store.kind, interrupt, monkeypatch.setattr)
    with pytest.raises(OSError, match="the disk went away"):
        store.builder(embedder).build(write_edition(store.tmp / "second", 2))
    monkeypatch.undo()
    assert store.versions() == {first.snapshot_id}  # nothing of the interrupted version is left
    third = store.builder(embedder).build(write_edition(store.tmp / "third", 3))
    assert store.versions() == {first.snapshot_id, third.snapshot_id}


def _fail_writing(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def save(self, path):
        raise OSError("the disk went away")

    monkeypatch.setattr(FaissVectorStore, "save", save)  # half the snapshot's files written


def _fail_publishing(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupt() -> None:
        raise OSError("the disk went away")

    hold_before_commit(kind, interrupt, monkeypatch.setattr)


@pytest.mark.parametrize("failure", [_fail_writing, _fail_publishing], ids=["writing", "publishing"])
def test_a_build_failing_half_way_leaves_the_previous_version_current(
        store, embedder, monkeypatch: pytest.MonkeyPatch, failure) -> None:
    first = store.builder(embedder).build(write_edition(store.tmp / "first", 1))
    failure(store.kind, monkeypatch)
    with pytest.raises(OSError, match="the disk went away"):
        store.builder(embedder).build(write_edition(store.tmp / "second", 2))
    monkeypatch.undo()
    for process in ("one", "two"):
        assert current_id(store.open(process)) == first.snapshot_id
        assert_whole(store.load(embedder, process), 1, first.snapshot_id)
    second = store.builder(embedder).build(write_edition(store.tmp / "again", 2))  # the lock was released
    assert current_id(store.open("two")) == second.snapshot_id
    assert_whole(store.load(embedder, "two"), 2, second.snapshot_id)
    assert not list(store.tmp.rglob(".build-*"))  # the half-written build was cleared away
