"""Index builds: seconds and rates of each corpus against the raw encoder, and an incremental rebuild.

The encoder ceiling is measured side by side with the build, so that drift of these shared machines
cancels: while a corpus builds, every batch the embedder encodes is encoded a second time by the bare
sentence-transformers `model.encode` (same model, same texts, one batch), and that second call is timed
apart. Build seconds exclude those second calls.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from benchmarks.common import Context, log, settings_for
from benchmarks.corpora import Corpus, edited_copy
from benchmarks.encoders import raw_model
from benchmarks.report import Section, Target
from bot.service import make_builder
from index.builder import BuildReport

RATE_TARGET = Target(">=", 0.9)
INCREMENTAL_TARGET = Target("<", 2.0)
JUDGED_TEXTS = 1000


class RawEncoderPairing:
    """Listens to the embedder's batches: re-encodes each one with the bare `model.encode`, timed apart."""

    def __init__(self, model) -> None:
        self.model = model
        self.build_seconds = 0.0
        self.raw_seconds = 0.0
        self.texts = 0

    def __call__(self, batch: list[str], seconds: float) -> None:
        started = time.perf_counter()
        self.model.encode(batch, batch_size=len(batch), normalize_embeddings=True, convert_to_numpy=True,
                          show_progress_bar=False)
        self.raw_seconds += time.perf_counter() - started
        self.build_seconds += seconds
        self.texts += len(batch)


def paired_build(ctx: Context, corpus: Corpus) -> tuple[BuildReport, RawEncoderPairing]:
    """A full build of `corpus` with the encoder ceiling measured alongside."""
    paired = RawEncoderPairing(raw_model(ctx))
    ctx.embedder.on_batch = paired
    try:
        report = make_builder(ctx.settings[corpus.name], ctx.embedder).build(corpus.path, full=True)
    finally:
        ctx.embedder.on_batch = None
    return report, paired


def _measure(ctx: Context, corpus: Corpus, section: Section) -> None:
    index_dir = ctx.work / "indexes" / corpus.name
    shutil.rmtree(index_dir, ignore_errors=True)
    ctx.settings[corpus.name] = settings_for(corpus.path, index_dir)
    make_builder(ctx.settings[corpus.name], ctx.embedder).build(corpus.path, full=True)  # warm-up, unmeasured
    report, paired = paired_build(ctx, corpus)
    seconds = report.seconds - paired.raw_seconds
    ratio = paired.raw_seconds / seconds
    section.add(f"{corpus.name}: build", seconds, "s")
    section.add(f"{corpus.name}: chunks/s", report.chunks / seconds)
    section.add(f"{corpus.name}: build rate / raw encoder rate", ratio, "",
                RATE_TARGET if paired.texts >= JUDGED_TEXTS else None)
    section.details[corpus.name] = {
        "documents": report.documents, "chunks": report.chunks, "embedded_texts": paired.texts,
        "build_seconds": round(seconds, 3), "encode_seconds_in_build": round(paired.build_seconds, 3),
        "other_seconds_in_build": round(seconds - paired.build_seconds, 3),
        "raw_encode_seconds": round(paired.raw_seconds, 3), "build_texts_per_s": round(paired.texts / seconds, 1),
        "raw_texts_per_s": round(paired.texts / paired.raw_seconds, 1),
        "chunks_per_s": round(report.chunks / seconds, 1), "rate_ratio": round(ratio, 3),
        "index_bytes": _folder_bytes(report.path),
    }
    log(f"built {corpus.name}: {report.documents} docs, {report.chunks} chunks, {paired.texts} texts embedded "
        f"in {seconds:.1f} s (raw encoder {paired.raw_seconds:.1f} s)")


def _incremental(ctx: Context, corpus: Corpus, section: Section) -> None:
    edited = edited_copy(corpus, ctx.work / "corpora" / f"{corpus.path.stem}-edited.jsonl")
    report = make_builder(ctx.settings[corpus.name], ctx.embedder).build(edited)
    section.add(f"{corpus.name}: incremental rebuild (1 article changed)", report.seconds, "s", INCREMENTAL_TARGET)
    section.details["incremental"] = {"seconds": round(report.seconds, 3), "new": report.new,
                                      "reused": report.reused, "embedded_texts": report.embedded_texts}


def _folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def run(ctx: Context) -> Section:
    section = Section("Index build")
    for corpus in ctx.corpora.values():
        _measure(ctx, corpus, section)
    _incremental(ctx, ctx.corpora["synthetic"], section)
    section.notes.append("rate ratio = seconds of the bare model.encode calls on the very batches the build "
                         f"embedded / build seconds; judged on builds of {JUDGED_TEXTS:,}+ texts")
    section.notes.append("each corpus is built once unmeasured first: oneDNN compiles kernels per batch shape, and "
                         "the bare re-encode of a batch would otherwise always find them ready")
    return section
