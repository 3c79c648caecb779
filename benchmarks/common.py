"""Shared paths, settings, timers and percentile helpers for the benchmark sections."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bot.config import Settings
from index.embedding import Embedder

if TYPE_CHECKING:
    from benchmarks.corpora import Corpus

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
WORK = ROOT / "var" / "bench"
CACHE = WORK / "cache"


def product_settings(**overrides: object) -> Settings:
    """The product's settings (defaults and FOOTNOTE_ variables), ignoring any `.env` file."""
    return Settings(_env_file=None, **overrides)


def settings_for(corpus: Path, index_dir: Path) -> Settings:
    """Product settings for one corpus, with the index in `index_dir`."""
    return product_settings(corpus_dir=corpus, index_dir=index_dir, database_path=index_dir.parent / "footnote.db")


def percentiles(samples_ms: Iterable[float]) -> dict[str, float]:
    """p50/p95/p99 and mean of millisecond samples, rounded to 0.01 ms."""
    values = np.asarray(list(samples_ms), dtype=np.float64)
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"n": len(values), "p50": round(float(p50), 2), "p95": round(float(p95), 2),
            "p99": round(float(p99), 2), "mean": round(float(values.mean()), 2)}


def log(message: str) -> None:
    """A progress line on stderr, stamped with the seconds since the benchmarks started."""
    print(f"[{time.perf_counter() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


_STARTED = time.perf_counter()


@dataclass
class Context:
    """What the sections share: the one embedder, the corpora, their built indexes and earlier results."""

    embedder: Embedder
    quick: bool
    work: Path
    scale_rows: int
    postgres_rows: tuple[int, ...] = ()
    corpora: dict[str, Corpus] = field(default_factory=dict)
    settings: dict[str, Settings] = field(default_factory=dict)
    results: dict[str, dict] = field(default_factory=dict)
    raw_model: object | None = None  # sentence-transformers' own model, loaded by the sections that compare with it

    def indexed(self, name: str) -> Settings:
        """The settings of corpus `name`'s index: the one the build section made, else built now (unmeasured),
        so that any section runs alone (`--only query`)."""
        if name not in self.settings:
            from bot.service import make_builder

            corpus = self.corpora[name]
            self.settings[name] = settings_for(corpus.path, self.work / "indexes" / name)
            make_builder(self.settings[name], self.embedder).build(corpus.path)
        return self.settings[name]
