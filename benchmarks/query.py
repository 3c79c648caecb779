"""In-process `Answerer.ask` latency per corpus, split into embed, search and compose."""

from __future__ import annotations

import os
import time

from benchmarks.common import Context, log, percentiles
from benchmarks.corpora import Corpus
from benchmarks.memory import spawn
from benchmarks.report import Section, Target
from bot.answer import Answerer
from bot.service import load_answerer, settle_heap

TARGETS = {"p50": Target("<", 20.0), "p95": Target("<", 50.0), "compose p95": Target("<", 5.0)}
RAW_RATIO_TARGETS = {"p50": Target("<=", 1.3), "p95": Target("<=", 2.0)}
JUDGED = "synthetic"
MIN_SAMPLES = 100
OPENMP_SAMPLES = 30
WARM_UP = 5


def questions_for(corpus: Corpus, minimum: int) -> list[str]:
    """The corpus' questions, repeated until there are at least `minimum`."""
    texts = [q.question for q in corpus.questions]
    return texts * -(-minimum // len(texts))


def time_answers(answerer: Answerer, questions: list[str]) -> dict[str, list[float]]:
    """Wall milliseconds of each `ask`, and the parts the answer reports."""
    samples: dict[str, list[float]] = {"wall": [], "embed": [], "search": [], "compose": []}
    for question in questions[:WARM_UP]:
        answerer.ask(question)
    for question in questions:
        started = time.perf_counter()
        answer = answerer.ask(question)
        samples["wall"].append((time.perf_counter() - started) * 1000)
        for part in ("embed", "search", "compose"):
            samples[part].append(answer.timings_ms[part])
    return samples


def default_openmp(ctx: Context, section: Section) -> None:
    """The judged corpus answered in a child process with OpenMP's spinning (ACTIVE) wait policy, which is
    the OpenMP default that `index` overrides; shows what the override buys."""
    env = {**os.environ, "OMP_WAIT_POLICY": "ACTIVE"}
    corpus = ctx.corpora[JUDGED]
    stats = spawn("latency", str(corpus.path), str(ctx.indexed(JUDGED).index_dir),
                  questions_for(corpus, OPENMP_SAMPLES)[:OPENMP_SAMPLES], env=env)
    section.add(f"{JUDGED}, child with OMP_WAIT_POLICY=ACTIVE: p50", stats["wall"]["p50"], "ms")
    section.add(f"{JUDGED}, child with OMP_WAIT_POLICY=ACTIVE: p95", stats["wall"]["p95"], "ms")
    section.details["default_openmp_wait_policy"] = stats
    log(f"OMP_WAIT_POLICY=ACTIVE: p50 {stats['wall']['p50']} ms")


def raw_ratios(ctx: Context, stats: dict, section: Section) -> None:
    """`ask` against one raw encode of a question: sentence-transformers' `model.encode` (the issue's measure)
    and the bare runtime that serves questions, both timed in this run."""
    encoders = ctx.results.get("encoders", {})
    raw = encoders.get("sentence_transformers_question_ms")
    bare = encoders.get("fresh", {}).get(ctx.embedder.choice.query, {}).get("question_ms")
    for p in ("p50", "p95"):
        if raw:
            section.add(f"{JUDGED}: ask {p} / sentence-transformers encode of one question", stats["wall"][p] / raw,
                        "×", RAW_RATIO_TARGETS[p])
        if bare:
            section.add(f"{JUDGED}: ask {p} / bare {ctx.embedder.choice.query} encode", stats["wall"][p] / bare, "×")


def run(ctx: Context) -> Section:
    section = Section("Query latency (in-process Answerer.ask)")
    for name, corpus in ctx.corpora.items():
        answerer = load_answerer(ctx.indexed(name), ctx.embedder)
        settle_heap()  # as the serving processes do
        stats = {part: percentiles(values) for part, values in
                 time_answers(answerer, questions_for(corpus, MIN_SAMPLES)).items()}
        label = f"{name} ({corpus.documents:,} docs, {len(answerer.snapshot.chunks):,} chunks)"
        for p in ("p50", "p95", "p99"):
            section.add(f"{label}: {p}", stats["wall"][p], "ms", TARGETS.get(p) if name == JUDGED else None)
        for part in ("embed", "search", "compose"):
            target = TARGETS.get(f"{part} p95") if name == JUDGED else None
            section.add(f"{label}: {part} p95", stats[part]["p95"], "ms", target)
        section.details[name] = stats
        if name == JUDGED:
            raw_ratios(ctx, stats, section)
        log(f"queried {name}: p50 {stats['wall']['p50']} ms, p95 {stats['wall']['p95']} ms")
    default_openmp(ctx, section)
    judged = ctx.corpora[JUDGED].documents if JUDGED in ctx.corpora else 0
    section.notes.append(f"targets judged at {JUDGED} ({judged:,} articles); samples repeat questions to "
                         f"≥ {MIN_SAMPLES}; the ratio to sentence-transformers divides by its p50 (torch, encoders "
                         "section), the ratio to the bare encode by the runtime questions use")
    section.notes.append(f"in-process figures use OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')} (the product's "
                         "default, set by `index`); the child rows show OpenMP's own spinning default")
    return section
