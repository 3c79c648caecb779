"""64 concurrent questions through QAService (micro-batched) against the same 64 asked one by one."""

from __future__ import annotations

import asyncio
import statistics
import time

from benchmarks.common import Context, log, percentiles
from benchmarks.report import Section, Target
from bot.service import QAService

RATIO_TARGET = Target(">=", 2.0)
ROUNDS = 3
CORPUS = "synthetic"


async def _timed(service: QAService, question: str, started: float) -> float:
    await service.ask(question)
    return (time.perf_counter() - started) * 1000


async def sequential(service: QAService, questions: list[str]) -> tuple[float, list[float]]:
    """Total seconds and per-question milliseconds, each question awaited before the next is asked."""
    started, latencies = time.perf_counter(), []
    for question in questions:
        latencies.append(await _timed(service, question, time.perf_counter()))
    return time.perf_counter() - started, latencies


async def concurrent(service: QAService, questions: list[str]) -> tuple[float, list[float]]:
    """Total seconds and per-question milliseconds (from the common start) with all questions gathered."""
    started = time.perf_counter()
    latencies = await asyncio.gather(*(_timed(service, q, started) for q in questions))
    return time.perf_counter() - started, list(latencies)


async def _measure(ctx: Context, questions: list[str]) -> dict[str, dict]:
    service = QAService(ctx.indexed(CORPUS), ctx.embedder)
    await service.start()
    try:
        await concurrent(service, questions[:8])
        runs: dict[str, list] = {"sequential": [], "concurrent": []}
        for _ in range(ROUNDS):
            runs["sequential"].append(await sequential(service, questions))
            runs["concurrent"].append(await concurrent(service, questions))
    finally:
        await service.close()
    return {mode: {"seconds": statistics.median(s for s, _ in results),
                   "latency_ms": percentiles(ms for _, values in results for ms in values)}
            for mode, results in runs.items()}


def run(ctx: Context) -> Section:
    count = 16 if ctx.quick else 64
    questions = [q.question for q in ctx.corpora[CORPUS].questions][:count]
    result = asyncio.run(_measure(ctx, questions))
    seq, conc = result["sequential"], result["concurrent"]
    ratio = seq["seconds"] / conc["seconds"]
    section = Section(f"Concurrency ({len(questions)} questions through QAService, {CORPUS} corpus)")
    section.add("one by one: questions/s", len(questions) / seq["seconds"])
    section.add("concurrent: questions/s", len(questions) / conc["seconds"])
    section.add("throughput ratio concurrent / one by one", ratio, "x", RATIO_TARGET)
    section.add("one by one: p95 latency", seq["latency_ms"]["p95"], "ms")
    section.add("concurrent: p95 latency (from common start)", conc["latency_ms"]["p95"], "ms")
    section.details = {**result, "ratio": round(ratio, 3), "rounds": ROUNDS, "questions": len(questions)}
    log(f"concurrency ratio {ratio:.2f}x")
    return section
