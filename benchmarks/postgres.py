"""The PostgreSQL store beside the file store: publishing a version, copying it into another process, and
pgvector's HNSW index against exact search, on the scale section's synthetic vectors.

PostgreSQL (with pgvector) runs from the `pgserver` wheel on a Unix socket in a temporary folder. A snapshot
folder of N chunks is made without the encoder (random documents over the synthetic vectors); "file store"
is writing its files in the product's layout, FAISS index as the product builds it (HNSW above 200,000 chunks),
without fsync; "publish" is `PgSnapshotStore`'s one-transaction COPY into the tables with the version's HNSW
index built after it; "materialise" is another process's first load. The build-throughput ratio adds the
build section's encoding time to both sides (a build is encoding, then writing or publishing); the bare
publish / write ratio is printed beside it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from psycopg import sql
from pydantic import SecretStr

from benchmarks.common import ROOT, Context, log, percentiles, settings_for
from benchmarks.corpora import SEED
from benchmarks.report import Section, Target
from benchmarks.scale import DIMENSION, RECALL_K, VectorGenerator, VectorSpec
from bot.service import QAService, make_builder
from index.pgstore import PgSnapshotStore
from index.store import SNAPSHOT_PREFIX, FaissVectorStore

RECALL_TARGET = Target(">=", 0.98)
BUILD_TARGET = Target(">=", 0.8)
FOLLOW_TARGET = Target("<=", 1.0)
FOLLOW_ROUNDS = 5
QUERIES = 100
EF_SEARCH = (40, 200)


def _snapshot_folder(folder: Path, vectors: np.ndarray) -> None:
    """A snapshot's files for `vectors` as chunks (two chunks and two sentences a document)."""
    rows = len(vectors)
    folder.mkdir(parents=True)
    with (folder / "documents.jsonl").open("w", encoding="utf-8") as handle:
        for doc in range((rows + 1) // 2):
            handle.write(json.dumps({"doc_id": f"d{doc}", "title": f"Article {doc}", "text": "x " * 200,
                                     "source": "bench", "url": "", "author": "", "published": "",
                                     "sha256": ""}) + "\n")
    with (folder / "chunks.jsonl").open("w", encoding="utf-8") as handle:
        for row in range(rows):
            handle.write(json.dumps({"chunk_id": f"d{row // 2}#{row % 2}", "doc_id": f"d{row // 2}",
                                     "start": 0, "end": 200, "first_sentence": row, "last_sentence": row}) + "\n")
    np.save(folder / "sentences.npy", np.column_stack([np.arange(rows) // 2, np.zeros(rows), np.full(rows, 100),
                                                     np.zeros(rows)]).astype(np.int64))
    np.save(folder / "sentence_vectors.npy", vectors)
    FaissVectorStore.build(vectors).save(folder / "vectors.faiss")
    (folder / "manifest.json").write_text(json.dumps({"dimension": DIMENSION, "snapshot_id": folder.name}))


MATERIALISE = """
import re, sys, time
from pathlib import Path
from bot.service import QAService, make_builder
from index.pgstore import PgSnapshotStore
started = time.perf_counter()
PgSnapshotStore(sys.argv[1], Path(sys.argv[2])).current_path()
peak_kib = re.search(r"VmHWM:\\s+(\\d+)", Path("/proc/self/status").read_text()).group(1)
print(time.perf_counter() - started, int(peak_kib) / 1024)
"""
# VmHWM, not ru_maxrss: the latter keeps the high-water mark of the forking bench process across exec


def _materialise_elsewhere(url: str, root: Path) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of another process copying the current version into its folder `root`."""
    done = subprocess.run([sys.executable, "-c", MATERIALISE, url, str(root)], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    seconds, rss = done.stdout.split()
    return float(seconds), round(float(rss), 1)


def _server(folder: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR is not set
        import pgserver

        return pgserver.get_server(folder, cleanup_mode="stop")


def _recall(store: PgSnapshotStore, snapshot_id: str, queries: np.ndarray, truth: np.ndarray,
            ef_search: int) -> tuple[float, dict]:
    found, samples = [], []
    search = sql.SQL("SELECT row FROM footnote_chunks WHERE snapshot_id = {} ORDER BY embedding::vector({}) <=> "
                    "%s::vector LIMIT {}").format(sql.Literal(snapshot_id), sql.SQL(str(DIMENSION)),
                                                  sql.SQL(str(RECALL_K)))  # the version's own index
    with store.connect() as conn:
        conn.execute(f"SET hnsw.ef_search = {ef_search}")
        for query in queries:
            literal = "[" + ",".join(f"{x:.9g}" for x in query.tolist()) + "]"
            started = time.perf_counter()
            rows = conn.execute(search, (literal,)).fetchall()
            samples.append((time.perf_counter() - started) * 1000)
            found.append([r[0] for r in rows])
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth.tolist(), strict=True))
    return hits / truth.size, percentiles(samples)


def run(ctx: Context) -> Section:
    sizes = ctx.postgres_rows or ((10_000,) if ctx.quick else (10_000, 100_000))
    measured = {rows: _measure(ctx, rows) for rows in sizes}
    section = Section(f"PostgreSQL store ({', '.join(f'{rows:,}' for rows in sizes)} chunks, pgvector HNSW)")
    for rows, figures in measured.items():
        _add(section, ctx, rows, figures)
    follow = asyncio.run(_follow_seconds(ctx, FOLLOW_ROUNDS))
    section.add(f"another process answers from a new version after its publication: median of {FOLLOW_ROUNDS} "
                f"(max {max(follow):.2f} s)", statistics.median(follow), "s", FOLLOW_TARGET)
    section.details = {**{str(rows): figures for rows, figures in measured.items()}, "follow_seconds": follow}
    section.notes.append("answers still search the local FAISS copy; pgvector's index serves SQL search and "
                         "the recall figures here")
    return section


async def _follow_seconds(ctx: Context, rounds: int) -> list[float]:
    """Seconds from a publication (a build of the seed articles plus one more, in this process) until a serving
    QAService, another process to the database, answers from the new version (it learns by NOTIFY)."""
    folder = tempfile.mkdtemp(prefix="footnote-bench-postgres-")
    server = _server(folder)
    work = ctx.work / "postgres-follow"
    shutil.rmtree(work, ignore_errors=True)
    try:
        corpus = work / "corpus"
        shutil.copytree(SEED, corpus)
        builder = settings_for(corpus, work / "builder" / "index").model_copy(
            update={"database_url": SecretStr(server.get_uri())})
        make_builder(builder, ctx.embedder).build(corpus)
        service = QAService(builder.model_copy(update={"index_dir": work / "server" / "index"}), ctx.embedder)
        await service.start()
        seconds = []
        try:
            for edition in range(rounds):
                (corpus / "extra.md").write_text(f"---\ntitle: Edition {edition}\n---\nThe ferry strike lasted "
                                                 f"{edition + 2} days.\n", encoding="utf-8")
                report = await asyncio.to_thread(make_builder(builder, ctx.embedder).build, corpus)
                published = time.perf_counter()
                while service.answerer.snapshot.snapshot_id != report.snapshot_id:
                    await asyncio.sleep(0.005)
                seconds.append(round(time.perf_counter() - published, 3))
        finally:
            await service.close()
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    log(f"postgres: another process followed {rounds} publications in {seconds} s")
    return seconds


def _measure(ctx: Context, rows: int) -> dict:
    """Write, publish and materialise a snapshot of `rows` synthetic chunks; recall and latency of pgvector."""
    generator = VectorGenerator(VectorSpec(rows))
    vectors, queries = generator.vectors(), generator.queries(QUERIES)
    truth = np.argsort(-(queries @ vectors.T), axis=1)[:, :RECALL_K]
    work = ctx.work / "postgres"
    shutil.rmtree(work, ignore_errors=True)
    started = time.perf_counter()
    _snapshot_folder(work / "one" / f"{SNAPSHOT_PREFIX}bench", vectors)
    file_seconds = time.perf_counter() - started
    folder = tempfile.mkdtemp(prefix="footnote-bench-postgres-")
    server = _server(folder)
    try:
        store = PgSnapshotStore(server.get_uri(), work / "one")
        started = time.perf_counter()
        store._upload("bench", work / "one" / f"{SNAPSHOT_PREFIX}bench")
        publish_seconds = time.perf_counter() - started
        materialise_seconds, materialise_rss = _materialise_elsewhere(server.get_uri(), work / "two")
        recalls = {ef: _recall(store, "bench", queries, truth, ef) for ef in EF_SEARCH}
        with store.connect() as conn:
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
    finally:
        server.cleanup()
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    log(f"postgres: {rows:,} chunks published in {publish_seconds:.1f} s, "
        f"recall@{RECALL_K} {recalls[EF_SEARCH[-1]][0]:.3f}")
    return {"file_seconds": round(file_seconds, 3), "publish_seconds": round(publish_seconds, 3),
            "materialise_seconds": round(materialise_seconds, 3), "materialise_peak_rss_mib": materialise_rss,
            "database_mib": round(size / 2**20, 1),
            "recall": {ef: r for ef, (r, _) in recalls.items()},
            "search_ms": {ef: latency for ef, (_, latency) in recalls.items()}}


def _add(section: Section, ctx: Context, rows: int, figures: dict) -> None:
    at = f"{rows:,}: "
    section.add(at + "file store: write the snapshot", figures["file_seconds"], "s")
    section.add(at + "publish into PostgreSQL (COPY, one transaction)", figures["publish_seconds"], "s")
    section.add(at + "publish rows/s", rows / figures["publish_seconds"])
    section.add(at + "publish / file store write (without encoding)", figures["publish_seconds"]
                / figures["file_seconds"])
    chunks_per_second = ctx.results.get("build", {}).get("synthetic", {}).get("chunks_per_s")
    if chunks_per_second:  # a build is the encoder's work, then the write (file store) or the publish
        encode_seconds = rows / chunks_per_second
        section.add(at + "build throughput into PostgreSQL / into the file store (build section's encoder rate)",
                    (encode_seconds + figures["file_seconds"]) / (encode_seconds + figures["publish_seconds"]), "",
                    BUILD_TARGET)
    section.add(at + "another process's first copy of the version", figures["materialise_seconds"], "s")
    section.add(at + "that process's peak memory (RSS)", figures["materialise_peak_rss_mib"], "MiB")
    for ef in EF_SEARCH:
        section.add(at + f"pgvector HNSW recall@{RECALL_K}, ef_search {ef}", figures["recall"][ef], "",
                    RECALL_TARGET if ef == EF_SEARCH[-1] else None)
        section.add(at + f"pgvector HNSW search, ef_search {ef}: p50 / p95",
                    figures["search_ms"][ef]["p95"], f"ms (p50 {figures['search_ms'][ef]['p50']:.1f})")
    section.add(at + "database size", figures["database_mib"], "MiB")
