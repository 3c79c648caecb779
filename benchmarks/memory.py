"""Peak RSS serving each index, each in its own child process, and seconds from process start to first answer.

Children (also used by other sections for measurements that need a fresh process) run as
`python -m benchmarks.memory KIND JSON-ARGS` and print one JSON line, with their peak RSS (VmHWM), so no
measurement mixes with the benchmark process or another child.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import ROOT, Context, log, percentiles, product_settings, settings_for
from benchmarks.report import Section, Target

STARTUP_TARGET = Target("<=", 3.0)
SERVE_QUESTIONS = 20
STARTUP = """
import sys
from bot.config import Settings
from bot.service import load_answerer, make_embedder
settings = Settings(_env_file=None, corpus_dir=sys.argv[1], index_dir=sys.argv[2])
answer = load_answerer(settings, make_embedder(settings)).ask(sys.argv[3])
print(answer.answer[:60], flush=True)
"""


def _peak_rss() -> int:
    """Peak resident bytes of this process (VmHWM: ru_maxrss would carry the parent's peak over fork)."""
    status = Path("/proc/self/status").read_text(encoding="utf-8")
    return next(int(line.split()[1]) * 1024 for line in status.splitlines() if line.startswith("VmHWM:"))


def serve(corpus: str, index_dir: str, questions: list[str]) -> dict:
    """Load the embedder and the snapshot as the bot does, and answer every question."""
    from bot.service import load_answerer, make_embedder

    settings = settings_for(Path(corpus), Path(index_dir))
    answerer = load_answerer(settings, make_embedder(settings))
    for question in questions:
        answerer.ask(question)
    return {"peak_rss": _peak_rss(), "chunks": len(answerer.snapshot.chunks)}


def latency(corpus: str, index_dir: str, questions: list[str]) -> dict:
    """Percentiles of `ask` in this process (for a run under other environment variables)."""
    from benchmarks.query import time_answers
    from bot.service import load_answerer, make_embedder

    settings = settings_for(Path(corpus), Path(index_dir))
    samples = time_answers(load_answerer(settings, make_embedder(settings)), questions)
    return {part: percentiles(values) for part, values in samples.items()}


def embedder_only(question: str) -> dict:
    """The baseline of `serve`: the embedder loaded and one question embedded, no index."""
    from index.embedding import Embedder

    Embedder().encode([question])
    return {"peak_rss": _peak_rss()}


def scale(hnsw: str, bm25: str, queries: str, questions: list[str]) -> dict:
    """Load the scale index with the product's loaders and run hybrid searches over it."""
    import numpy as np

    from benchmarks.scale import hybrid_search_ms, scale_snapshot
    from index.lexical import LexicalIndex
    from index.store import FaissVectorStore

    settings = product_settings()
    store = FaissVectorStore.load(Path(hnsw), settings.hnsw_ef_search)
    snapshot = scale_snapshot(store, LexicalIndex.load(Path(bm25)), Path(bm25))
    hybrid_search_ms(settings, snapshot, questions, np.load(queries))
    return {"peak_rss": _peak_rss(), "chunks": store.size}


def libraries_only() -> dict:
    """The baseline of `scale`: the retrieval libraries imported, no index."""
    import index.search  # noqa: F401

    return {"peak_rss": _peak_rss()}


CHILDREN = {"serve": serve, "latency": latency, "embedder_only": embedder_only, "scale": scale,
            "libraries_only": libraries_only}


def spawn(kind: str, *args: object, env: dict[str, str] | None = None) -> dict:
    """Run one child and return its JSON line."""
    done = subprocess.run([sys.executable, "-m", "benchmarks.memory", kind, json.dumps(args)], cwd=ROOT,
                          capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout.strip().splitlines()[-1])


def startup_seconds(corpus: Path, index_dir: Path, question: str) -> float:
    """Seconds from spawning `python -c` until it prints its first answer."""
    started = time.perf_counter()
    with subprocess.Popen([sys.executable, "-c", STARTUP, str(corpus), str(index_dir), question], cwd=ROOT,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) as child:
        line = child.stdout.readline() if child.stdout else ""
        seconds = time.perf_counter() - started
    if child.returncode or not line:
        raise RuntimeError(f"start-up child failed with exit code {child.returncode}")
    return seconds


def _memory(ctx: Context, section: Section) -> None:
    embedder = spawn("embedder_only", ctx.corpora["seed"].questions[0].question)["peak_rss"]
    section.add("embedder alone, one question embedded", embedder / 2**20, "MiB")
    section.details["embedder_only_rss"] = embedder
    baseline: dict = {}
    for name, corpus in ctx.corpora.items():
        questions = [q.question for q in corpus.questions][:SERVE_QUESTIONS]
        child = spawn("serve", str(corpus.path), str(ctx.indexed(name).index_dir), questions)
        section.add(f"{name}: peak RSS serving", child["peak_rss"] / 2**20, "MiB")
        baseline = baseline or child
        if child is not baseline:
            per_chunk = (child["peak_rss"] - baseline["peak_rss"]) / (child["chunks"] - baseline["chunks"])
            section.add(f"{name}: bytes per chunk above serving {next(iter(ctx.corpora))}", per_chunk, "B")
            child["bytes_per_chunk"] = round(per_chunk)
        section.details[name] = child
    files = ctx.results["scale"]["files"]
    libraries = spawn("libraries_only")["peak_rss"]
    child = spawn("scale", files["hnsw"], files["bm25"], files["queries"],
                  [q.question for q in ctx.corpora["squad2"].questions][:SERVE_QUESTIONS])
    per_chunk = (child["peak_rss"] - libraries) / child["chunks"]
    section.add(f"scale index ({child['chunks']:,} chunks, no embedder): peak RSS", child["peak_rss"] / 2**20, "MiB")
    section.add("scale index: bytes per chunk above libraries", per_chunk, "B")
    section.details["scale"] = {**child, "libraries_rss": libraries, "bytes_per_chunk": round(per_chunk)}


def run(ctx: Context) -> Section:
    section = Section("Memory (child processes) and start-up")
    _memory(ctx, section)
    log("memory measured")
    seed, settings = ctx.corpora["seed"], ctx.indexed("seed")
    runs = [startup_seconds(seed.path, settings.index_dir, seed.questions[0].question)
            for _ in range(1 if ctx.quick else 3)]
    section.add("start-up to first answer, seed index (median)", statistics.median(runs), "s", STARTUP_TARGET)
    section.details["startup_seconds"] = [round(s, 3) for s in runs]
    log(f"start-up {statistics.median(runs):.2f} s")
    return section


if __name__ == "__main__":
    print(json.dumps(CHILDREN[sys.argv[1]](*json.loads(sys.argv[2]))))
