"""Builds: reproducible ids, incremental re-embedding, safe publishing, manifest checks, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.service import make_builder
from index.annotations import ANNOTATIONS_VERSION
from index.builder import BuildError, BuildProgress
from index.embedding import Embedder
from index.lexical import Analyzer, content_words
from index.spans import KINDS, span_rows
from index.store import SCHEMA_VERSION, SnapshotError, SnapshotStore
from tests.conftest import ROOT, SEED_CORPUS, make_settings

TOPICS = ["oil exports", "a shipping lane", "a mining permit", "farm subsidies", "a rail link", "port fees"]


def write_articles(folder: Path, count: int, sentences: int = 6) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in range(count):
        topic = TOPICS[n % len(TOPICS)]
        body = " ".join(f"Minister {n} discussed {topic} in meeting {k} on Monday with envoy {n * 7 + k}."
                        for k in range(sentences))
        (folder / f"article-{n:03d}.md").write_text(f"---\ntitle: Story {n}\n---\n{body}\n", encoding="utf-8")


def test_seed_build_and_ids_identical_across_builds(tmp_path: Path, embedder: Embedder) -> None:
    first = make_builder(make_settings(tmp_path / "one"), embedder).build(SEED_CORPUS)
    second = make_builder(make_settings(tmp_path / "two"), embedder).build(SEED_CORPUS, full=True)
    load = lambda report: SnapshotStore(report.path.parent).load(embedder.name, embedder.dimension)  # noqa: E731
    one, two = load(first), load(second)
    assert [c.chunk_id for c in one.chunks] == [c.chunk_id for c in two.chunks]
    assert [(c.start, c.end) for c in one.chunks] == [(c.start, c.end) for c in two.chunks]
    assert one.manifest.documents == two.manifest.documents
    manifest = json.loads((first.path / "manifest.json").read_text())
    assert manifest["model"] == "all-MiniLM-L6-v2" and manifest["dimension"] == 384
    assert manifest["max_seq_length"] == 256 and manifest["counts"]["chunks"] == len(one.chunks)
    assert set(manifest["libraries"]) >= {"faiss-cpu", "sentence-transformers", "bm25s"}
    for row, chunk in enumerate(one.chunks):
        assert one.chunk_text(row) == one.documents[chunk.doc_id].text[chunk.start : chunk.end]


def test_incremental_build_re_embeds_only_the_changed_document(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    write_articles(corpus, 4)
    builder = make_builder(make_settings(tmp_path, corpus), embedder)
    builder.build(corpus)
    calls: list[int] = []
    original = embedder.encode_with_spans

    def counting_encode(texts, spans, progress=None, tokens=None):
        calls.append(len(texts))
        return original(texts, spans, progress, tokens)

    embedder.encode_with_spans = counting_encode
    try:
        changed = corpus / "article-002.md"
        changed.write_text(changed.read_text().replace("Monday", "Friday"), encoding="utf-8")
        (corpus / "article-003.md").unlink()
        report = builder.build(corpus)
    finally:
        del embedder.encode_with_spans
    snapshot = builder.store.load(embedder.name, embedder.dimension)
    changed_doc = snapshot.documents["article-002"]
    changed_chunks = sum(1 for c in snapshot.chunks if c.doc_id == "article-002")
    assert calls == [changed_chunks]  # sentences are pooled from the chunk pass; words come from the token table
    friday = snapshot.vocabulary_vectors[snapshot.vocabulary["friday"]]
    assert friday @ embedder.encode(["friday"])[0] > 0.999
    assert (report.new, report.reused, report.removed, report.documents) == (1, 2, 1, 3)
    assert "Friday" in changed_doc.text and "article-003" not in snapshot.documents
    assert report.summary().startswith("indexed 3 documents,") and "(1 new, 2 reused, 1 removed)" in report.summary()


def test_snapshot_stores_each_sentences_spans_and_terms_and_reuses_them(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    write_articles(corpus, 3)
    builder = make_builder(make_settings(tmp_path, corpus), embedder)
    builder.build(corpus)
    (corpus / "article-000.md").write_text("---\ntitle: Story 0\n---\nMayor Ana Silva opened the Lantern Bridge "
                                           "on May 4. It cost $410 million.\n", encoding="utf-8")
    builder.build(corpus)
    snapshot = builder.store.load(embedder.name, embedder.dimension)
    assert snapshot.manifest.annotations == ANNOTATIONS_VERSION
    analyzer = Analyzer()
    for doc_row, doc_id in enumerate(snapshot.doc_ids):
        text = snapshot.documents[doc_id].text
        rows = [r for r in range(len(snapshot.sentences)) if snapshot.sentences[r][0] == doc_row]
        expected = span_rows(text, [(int(snapshot.sentences[r][1]), int(snapshot.sentences[r][2])) for r in rows])
        stored = [snapshot.sentence_spans(r, snapshot.sentence_text(r)) for r in rows]
        found = [(r - rows[0], s.start, s.end, KINDS.index(s.kind))
                 for r, spans in zip(rows, stored, strict=True) for s in spans]
        assert found == [tuple(map(int, row)) for row in expected]
        for r in rows:
            terms, sentence = snapshot.sentence_terms(r), snapshot.sentence_text(r)
            assert list(zip(terms.offsets, terms.stems, strict=True)) == analyzer.positioned_terms(sentence)
            assert list(terms.words) == content_words(sentence)
    first = snapshot.sentence_spans(0, snapshot.sentence_text(0))
    assert [(s.kind, s.text) for s in first] == [("name", "Ana Silva"), ("name", "Lantern Bridge"), ("date", "May 4")]


def test_build_of_an_unchanged_corpus_writes_nothing(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    write_articles(corpus, 2)
    builder = make_builder(make_settings(tmp_path, corpus), embedder)
    first = builder.build(corpus)
    again = builder.build(corpus)
    assert again.unchanged and again.snapshot_id == first.snapshot_id and again.embedded_texts == 0
    assert again.summary() == f"index up to date: 2 documents, {first.chunks} chunks"
    assert [p.name for p in (tmp_path / "index").glob("snap-*")] == [first.path.name]
    (corpus / "article-001.md").write_text("---\ntitle: Story 1\n---\nA new text about rain.\n", encoding="utf-8")
    changed = builder.build(corpus)
    assert not changed.unchanged and changed.snapshot_id != first.snapshot_id and changed.new == 1


def test_full_build_re_embeds_everything_and_progress_is_reported(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    write_articles(corpus, 3)
    builder = make_builder(make_settings(tmp_path, corpus), embedder)
    builder.build(corpus)
    events: list[BuildProgress] = []
    report = builder.build(corpus, full=True, progress=events.append)
    assert (report.new, report.reused) == (3, 0)
    assert [(e.done, e.total) for e in events if e.stage == "documents"] == [(3, 3)]  # one group of documents
    embedding = [e for e in events if e.stage == "embedding"]
    assert embedding and embedding[-1].done == embedding[-1].total


def test_manifest_mismatch_is_refused(seed_settings) -> None:
    store = SnapshotStore(seed_settings.index_dir)
    for model, dimension in (("other-model", 768), ("other-model", 384), ("all-MiniLM-L6-v2", 768)):
        with pytest.raises(SnapshotError, match=r"built with model all-MiniLM-L6-v2 .dimension 384. but the "
                                                r"configured .* rebuild it with `python -m bot index --full`"):
            store.load(model, dimension)
    with pytest.raises(SnapshotError, match=r"no index in .*python -m bot index"):
        SnapshotStore(Path("/nonexistent-footnote")).load("all-MiniLM-L6-v2", 384)


def test_schema_mismatch_is_refused(tmp_path: Path, embedder: Embedder) -> None:
    report = make_builder(make_settings(tmp_path), embedder).build(SEED_CORPUS)
    manifest = report.path / "manifest.json"
    manifest.write_text(manifest.read_text().replace(f'"schema_version": {SCHEMA_VERSION}', '"schema_version": 99'))
    with pytest.raises(SnapshotError, match="schema version 99"):
        SnapshotStore(tmp_path / "index").load(embedder.name, embedder.dimension)


@pytest.mark.parametrize(("damage", "reason"), [
    (lambda folder: (folder / "vectors.faiss").write_bytes((folder / "vectors.faiss").read_bytes()[:100]),
     "RuntimeError"),
    (lambda folder: (folder / "manifest.json").write_text("{not json"), "JSONDecodeError"),
    (lambda folder: (folder / "manifest.json").write_text("[1, 2]"), "AttributeError"),
    (lambda folder: (folder / "sentence_terms.npy").unlink(), "FileNotFoundError"),
    (lambda folder: (folder / "chunks.jsonl").write_text('{"chunk_id": 1}\n'), "TypeError"),
])
def test_a_damaged_snapshot_is_one_clear_error_and_the_next_build_is_full(tmp_path: Path, embedder: Embedder,
                                                                           damage, reason: str) -> None:
    builder = make_builder(make_settings(tmp_path), embedder)
    first = builder.build(SEED_CORPUS)
    damage(first.path)
    with pytest.raises(SnapshotError, match=rf"index at {first.path} is unreadable \({reason}.*--full"):
        builder.store.load(embedder.name, embedder.dimension)
    rebuilt = builder.build(SEED_CORPUS)
    assert rebuilt.new == rebuilt.documents == 1 and rebuilt.reused == 0
    assert builder.store.load(embedder.name, embedder.dimension).snapshot_id == rebuilt.snapshot_id


def test_a_snapshot_of_other_weights_with_the_same_name_is_refused(tmp_path: Path, embedder: Embedder) -> None:
    builder = make_builder(make_settings(tmp_path), embedder)
    report = builder.build(SEED_CORPUS)
    manifest = json.loads((report.path / "manifest.json").read_text())
    assert manifest["model_fingerprint"] == embedder.fingerprint and len(embedder.fingerprint) == 64
    manifest["model_fingerprint"] = "0" * 64
    (report.path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(SnapshotError, match=r"other all-MiniLM-L6-v2 weights .*rebuild it with `python -m bot index"):
        builder.store.load(embedder.name, embedder.dimension, fingerprint=embedder.fingerprint)
    assert builder.build(SEED_CORPUS).reused == 0  # nothing is reused from vectors of other weights


def test_bad_files_are_skipped_and_nothing_indexable_is_an_error(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    write_articles(corpus, 1)
    (corpus / "broken.txt").write_bytes(b"\xff\xfe\x00\x00")
    builder = make_builder(make_settings(tmp_path, corpus), embedder)
    report = builder.build(corpus)
    assert report.documents == 1 and [p.source for p in report.problems] == [str(corpus / "broken.txt")]
    with pytest.raises(BuildError, match=r"nothing to index: .*does not exist"):
        builder.build(tmp_path / "missing")


def _cli(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "bot", *args], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_cli_exit_status_and_one_line_per_problem(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    write_articles(corpus, 1)
    (corpus / "notes.pdf").write_text("x")
    env = {**os.environ, "FOOTNOTE_CORPUS_DIR": str(corpus), "FOOTNOTE_INDEX_DIR": str(tmp_path / "index")}
    with _cli("index", env=env) as ok:
        out, err = ok.communicate(timeout=120)
    assert ok.returncode == 0, err
    assert out.strip().splitlines()[-1].startswith("indexed 1 documents, ")
    assert f"skipped {corpus / 'notes.pdf'}: unsupported file type '.pdf'" in err
    with _cli("index", env={**env, "FOOTNOTE_CORPUS_DIR": str(tmp_path / "void")}) as empty:
        _, err = empty.communicate(timeout=120)
    assert empty.returncode == 1 and "does not exist" in err and "Traceback" not in err


def test_kill_9_during_a_build_leaves_the_old_snapshot_serving(tmp_path: Path, embedder: Embedder) -> None:
    corpus = tmp_path / "corpus"
    write_articles(corpus, 2)
    settings = make_settings(tmp_path, corpus)
    old = make_builder(settings, embedder).build(corpus)
    write_articles(corpus, 150, sentences=8)
    env = {**os.environ, "FOOTNOTE_CORPUS_DIR": str(corpus), "FOOTNOTE_INDEX_DIR": str(settings.index_dir),
           "FOOTNOTE_EMBED_BATCH_SIZE": "2"}  # many small batches: still embedding when killed
    for delay in (0.0, 1.0):  # killed at the first batches, and a second later
        with _cli("index", "--full", env=env) as build:
            _wait_for_stage(build, "embedding")
            time.sleep(delay)
            build.send_signal(signal.SIGKILL)
            build.wait(timeout=30)
        store = SnapshotStore(settings.index_dir)
        assert store.current_path() == old.path
        snapshot = store.load(embedder.name, embedder.dimension)
        assert sorted(snapshot.documents) == ["article-000", "article-001"]
    half_written = settings.index_dir / ".build-killed-while-writing"  # as a kill during the write leaves it
    half_written.mkdir()
    (half_written / "documents.jsonl").write_text('{"doc_id": "trunc')
    assert SnapshotStore(settings.index_dir).current_path() == old.path
    for path in list(corpus.iterdir())[3:]:
        path.unlink()
    report = make_builder(settings, embedder).build(corpus)
    assert report.documents == 3 and not list(settings.index_dir.glob(".build-*"))


def _wait_for_stage(process: subprocess.Popen, stage: str) -> None:
    assert process.stderr is not None
    deadline = time.monotonic() + 90
    for line in process.stderr:
        if line.startswith(stage) or time.monotonic() > deadline:
            return
    pytest.fail(f"the build ended before reaching {stage}")
