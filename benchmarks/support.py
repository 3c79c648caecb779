"""The check that a generated sentence is supported by its cited passages: time per sentence and its quality,
on the labelled set in tests/data (a sentence's words the passages lack come from the token table)."""

from __future__ import annotations

import json

import numpy as np

from benchmarks.common import ROOT, Context, log
from benchmarks.report import Section, Target
from bot.support import WordVectors, score_labelled

LABELLED = ROOT / "tests" / "data" / "support_labelled.jsonl"
TIME_TARGET = Target("<=", 5.0)
ROUNDS = 5


def run(ctx: Context) -> Section:
    rows = [json.loads(line) for line in LABELLED.read_text(encoding="utf-8").splitlines() if line.strip()]
    vectors = WordVectors({}, np.zeros((0, ctx.embedder.dimension), np.float32), ctx.embedder.word_vectors)
    reports = [score_labelled(rows * 4, vectors) for _ in range(ROUNDS)]
    report = reports[-1]
    p95_ms = 1000 * float(np.median([r.seconds_p95 for r in reports]))
    section = Section(f"Support check of generated sentences ({len(rows)} labelled sentences)")
    section.add("time per sentence: p95", p95_ms, "ms", TIME_TARGET)
    section.add("precision (unsupported sentences kept: 0 is right)", report.precision, "")
    section.add("recall (supported paraphrases kept)", report.recall, "")
    section.details = {"p95_ms": round(p95_ms, 3), "precision": report.precision, "recall": report.recall}
    log(report.line())
    return section
