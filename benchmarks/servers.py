"""Per-server corpora: many small servers with a few articles each, added through the product's GuildLibrary.

Figures: seconds to add an article (fetch excluded: the articles are local), bytes on disk per server, the
first answer in a server whose index is not loaded yet (cold: snapshot load + answer), a second answer there
(warm), and the memory that loaded server indexes hold within the LRU's budget.
"""

from __future__ import annotations

import json
import shutil
import time

import psutil

from benchmarks.common import Context, log, percentiles, product_settings
from benchmarks.report import Section, Target
from bot.library import GuildLibrary
from bot.sources import Adder, SourceRegistry
from index.extract import extract_upload

ARTICLES_PER_SERVER = 3
COLD_TARGET = Target("<", 500.0)
BENCH = Adder(0, "bench")


def _library(ctx: Context, budget_mb: float) -> GuildLibrary:
    work = ctx.work / "servers"
    settings = product_settings(corpus_dir=ctx.corpora["seed"].path, index_dir=ctx.settings["seed"].index_dir,
                                guilds_dir=work / "guilds", database_path=work / "footnote.db",
                                guild_cache_mb=budget_mb)
    return GuildLibrary(settings, ctx.embedder, SourceRegistry(work / "footnote.db"))


def _add_servers(ctx: Context, servers: int) -> tuple[list[float], dict[int, str]]:
    """Seconds per added article, and a question (an article's title) per server."""
    rows = [json.loads(line) for line in ctx.corpora["synthetic"].path.read_text(encoding="utf-8").splitlines()]
    library = _library(ctx, 512.0)
    seconds, questions = [], {}
    try:
        for server in range(1, servers + 1):
            for row in rows[(server - 1) * ARTICLES_PER_SERVER : server * ARTICLES_PER_SERVER]:
                started = time.perf_counter()
                library.add(server, extract_upload(f"{row['doc_id']}.jsonl", json.dumps(row).encode()), BENCH)
                seconds.append(time.perf_counter() - started)
                questions.setdefault(server, row["title"])
    finally:
        library.registry.close()
    return seconds, questions


def run(ctx: Context) -> Section:
    shutil.rmtree(ctx.work / "servers", ignore_errors=True)
    servers = 10 if ctx.quick else 100
    add_seconds, questions = _add_servers(ctx, servers)
    disk = sum(p.stat().st_size for p in (ctx.work / "servers" / "guilds").rglob("*") if p.is_file()) / servers
    budget_mb = 16.0
    library = _library(ctx, budget_mb)
    process = psutil.Process()
    rss_before = process.memory_info().rss
    cold, warm = [], []
    try:
        for server, question in questions.items():
            started = time.perf_counter()
            library.answerer(server).ask(question)
            cold.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            library.answerer(server).ask(question)
            warm.append((time.perf_counter() - started) * 1000)
        loaded, held = len(library._loaded), library.loaded_bytes
    finally:
        library.registry.close()
    rss_delta = (process.memory_info().rss - rss_before) / 2**20
    section = Section(f"Servers ({servers} servers × {ARTICLES_PER_SERVER} articles of their own)")
    adds, colds, warms = percentiles(s * 1000 for s in add_seconds), percentiles(cold), percentiles(warm)
    section.add("add one article (index the server incrementally): p50", adds["p50"], "ms")
    section.add("add one article: p95", adds["p95"], "ms")
    section.add("disk per server", disk / 1024, "KiB")
    section.add("first answer in a cold server (load + answer): p50", colds["p50"], "ms")
    section.add("first answer in a cold server: p95", colds["p95"], "ms", COLD_TARGET)
    section.add("next answer in the same server: p50", warms["p50"], "ms")
    section.add(f"server indexes kept loaded within {budget_mb:g} MiB", loaded, "")
    section.add("their size on disk", held / 2**20, "MiB")
    section.add("process RSS growth over all cold loads", rss_delta, "MiB")
    section.details = {"add_ms": adds, "cold_ms": colds, "warm_ms": warms, "disk_bytes_per_server": round(disk),
                       "loaded": loaded, "loaded_bytes": held, "rss_delta_mib": round(rss_delta, 1)}
    log(f"servers: {servers} × {ARTICLES_PER_SERVER} articles, add p50 {adds['p50']} ms, "
        f"cold first answer p95 {colds['p95']} ms")
    return section
