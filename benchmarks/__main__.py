"""`python -m benchmarks [--quick]`: every section in one run, a table per section, var/bench/latest.json."""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata

import index  # noqa: F401  (process defaults: offline, OMP_WAIT_POLICY=PASSIVE, before torch loads)
from benchmarks import (
    build,
    concurrency,
    encoders,
    memory,
    peer,
    postgres,
    query,
    report,
    scale,
    servers,
    support,
)
from benchmarks.common import ROOT, SHARED, WORK, Context, log
from benchmarks.corpora import seed_corpus, squad_corpus, synthetic_corpus
from index.backends import cpu_has_amx, cpu_model
from index.embedding import Embedder

SECTIONS = (("encoders", encoders), ("build", build), ("query", query), ("concurrency", concurrency), ("peer", peer),
            ("scale", scale), ("postgres", postgres), ("servers", servers), ("support", support),
            ("memory", memory))


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small corpora and indexes: a smoke run")
    parser.add_argument("--scale-rows", type=int, help="vectors in the HNSW scale index (default 1,000,000)")
    parser.add_argument("--postgres-rows", type=_sizes, default=(),
                        help="comma-separated chunk counts for the PostgreSQL section (default 10,000 and 100,000; "
                             "1000000 takes about half an hour)")
    parser.add_argument("--only", type=lambda text: text.split(","), default=[s for s, _ in SECTIONS],
                        help=f"comma-separated sections to run (of {', '.join(s for s, _ in SECTIONS)})")
    return parser.parse_args()


def _sizes(text: str) -> tuple[int, ...]:
    return tuple(int(size.replace("_", "")) for size in text.split(","))


def _context(args: argparse.Namespace) -> Context:
    work = WORK / ("quick" if args.quick else "full")
    embedder = Embedder()
    embedder.encode(["warm up the encoder"] * 8)
    ctx = Context(embedder, args.quick, work, args.scale_rows or (10_000 if args.quick else 1_000_000),
                  postgres_rows=args.postgres_rows)
    corpora = [seed_corpus(), squad_corpus(work / "corpora", 20 if args.quick else None),
               synthetic_corpus(work / "corpora", 60 if args.quick else 1000, questions=64)]
    ctx.corpora = {c.name: c for c in corpora}
    return ctx


def _meta(ctx: Context, seconds: float) -> dict:
    import torch

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    versions = {name: metadata.version(name) for name in
                ("torch", "sentence-transformers", "faiss-cpu", "bm25s", "langchain-community")}
    return {"when": datetime.now(UTC).isoformat(timespec="seconds"), "quick": ctx.quick,
            "wall_seconds": round(seconds, 1), "load_average_at_end": os.getloadavg(),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "commit": commit.stdout.strip(), "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(), "python": platform.python_version(), "versions": versions,
            "corpora": {n: {"documents": c.documents, "questions": len(c.questions), "path": str(c.path)}
                        for n, c in ctx.corpora.items()}}


def machine_line(embedder: Embedder) -> str:
    """What the figures were measured on: CPU model, AMX or not, the encoder runtimes, threads and precision."""
    import torch

    return (f"machine: {cpu_model()}, {os.cpu_count()} CPUs, {'AMX' if cpu_has_amx() else 'no AMX'}; "
            f"encoder: {embedder.choice.line()}; torch {torch.__version__} with {torch.get_num_threads()} threads; "
            f"builds in {embedder.build_precision}")


def main() -> int:
    args = _arguments()
    if not SHARED.is_dir():
        print(f"benchmarks: they read the evaluation data in {SHARED} (../shared beside the repository), "
              "which is not there", file=sys.stderr)
        return 2
    started = time.perf_counter()
    ctx = _context(args)
    log(machine_line(ctx.embedder))
    log("corpora ready: " + ", ".join(f"{n} ({c.documents} docs)" for n, c in ctx.corpora.items()))
    sections = []
    for name, module in SECTIONS:
        if name not in args.only:
            continue
        section = module.run(ctx)
        ctx.results[name] = section.details
        sections.append(section)
    seconds = time.perf_counter() - started
    print(machine_line(ctx.embedder))
    print(report.render(sections))
    print(f"\n{report.summary(sections)}; wall time {seconds:.0f} s")
    partial = "" if len(args.only) == len(SECTIONS) else "-" + "-".join(args.only)  # a full run's file stays
    path = WORK / f"{'quick' if args.quick else 'latest'}{partial}.json"
    report.write_json(path, sections, _meta(ctx, seconds))
    print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
