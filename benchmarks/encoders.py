"""Encoder runtimes side by side on this machine: a question and a batch of chunks in each, measured afresh,
against sentence-transformers' own `model.encode` (torch float32) in the same run."""

from __future__ import annotations

import time

from benchmarks.common import Context, log, percentiles
from benchmarks.report import Section, Target
from index.backends import QUESTION, candidates, measure

QUESTION_TARGET = Target("<=", 1.0)


def raw_model(ctx: Context):
    """sentence-transformers' float32 model from the embedder's folder: the bench's raw encoder."""
    from sentence_transformers import SentenceTransformer

    if ctx.raw_model is None:
        ctx.raw_model = SentenceTransformer(str(ctx.embedder.path), device="cpu", local_files_only=True)
    return ctx.raw_model


def raw_question_ms(ctx: Context, repeats: int = 30) -> float:
    """Median milliseconds of one `model.encode([question])` by sentence-transformers."""
    model = raw_model(ctx)
    samples = []
    for _ in range(repeats + 3):
        started = time.perf_counter()
        model.encode([QUESTION], normalize_embeddings=True, show_progress_bar=False)
        samples.append((time.perf_counter() - started) * 1000)
    return percentiles(samples[3:])["p50"]


def run(ctx: Context) -> Section:
    section = Section("Encoder runtimes (measured in this run)")
    fresh = measure(candidates(ctx.embedder.precision), ctx.embedder._encode_through)
    baseline = raw_question_ms(ctx)
    chosen = ctx.embedder.choice
    for name, timing in fresh.timings.items():
        marks = [role for role, used in (("questions", chosen.query), ("builds", chosen.build)) if used == name]
        label = f"{name}{' (used for ' + ' and '.join(marks) + ')' if marks else ''}"
        section.add(f"{label}: question", timing["question_ms"], "ms")
        section.add(f"{label}: question / sentence-transformers encode", timing["question_ms"] / baseline, "×",
                    QUESTION_TARGET if name == chosen.query else None)
        section.add(f"{label}: chunks/s", timing["chunks_per_second"])
    for name, check in fresh.checks.items():
        section.add(f"{name}: lowest cosine to torch float32", check["min_cosine"], "")
    section.add("sentence-transformers model.encode, one question", baseline, "ms")
    section.details = {"fresh": fresh.timings, "checks": fresh.checks, "cached_choice": chosen.line(),
                       "sentence_transformers_question_ms": baseline}
    section.notes.append(f"the product uses the choice cached at first start: {chosen.line()}")
    log(f"encoders: {fresh.line()}")
    return section
