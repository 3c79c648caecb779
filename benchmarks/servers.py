"""Per-server corpora through the product's GuildLibrary: adding, many servers, a link added and answered.

- adds: articles added one by one to a few servers (each add rebuilds that server's index incrementally);
- many servers: one server's index of `ARTICLES_PER_SERVER` articles is built for real and hard-linked into
  every other server's folder (same bytes on disk, a separate load and memory in the process), then the first
  answer in servers whose index is not loaded (cold) is timed, with the loaded set bounded by the budget;
- a link: a 1,500-word article served by a local web server on 127.0.0.1, fetched by the safe fetcher,
  extracted, indexed and answered.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import threading
import time
from pathlib import Path

import psutil
from aiohttp import web

from benchmarks.common import Context, log, percentiles, product_settings
from benchmarks.report import Section, Target
from bot.library import GuildLibrary, read_link
from bot.sources import Adder, open_registry
from index.extract import extract_upload

COLD_TARGET = Target("<=", 1000.0)
LINK_TARGET = Target("<=", 5.0)
BENCH = Adder(0, "bench")
BUDGET_MB = 64.0
COLD_SAMPLES = 200


def _library(ctx: Context, **overrides: object) -> GuildLibrary:
    work = ctx.work / "servers"
    settings = product_settings(corpus_dir=ctx.corpora["seed"].path, index_dir=ctx.indexed("seed").index_dir,
                                guilds_dir=work / "guilds", database_path=work / "footnote.db",
                                fetch_allow_hosts=["127.0.0.1"], **overrides)
    return GuildLibrary(settings, ctx.embedder, open_registry(settings))


def _articles(ctx: Context) -> list[dict]:
    return [json.loads(line) for line in ctx.corpora["synthetic"].path.read_text(encoding="utf-8").splitlines()]


def _upload(rows: list[dict]) -> list:
    return extract_upload("articles.jsonl", "".join(json.dumps(row) + "\n" for row in rows).encode())


def _adds(ctx: Context, library: GuildLibrary, servers: int, per: int) -> list[float]:
    """Milliseconds per article added one by one to `servers` servers."""
    rows, samples = _articles(ctx), []
    for server in range(1, servers + 1):
        for row in rows[(server - 1) * per : server * per]:
            started = time.perf_counter()
            library.add(server, _upload([row]), BENCH)
            samples.append((time.perf_counter() - started) * 1000)
    return samples


def _many_servers(ctx: Context, servers: int, per: int) -> tuple[dict, dict]:
    """Cold first answers over `servers` servers of `per` articles each, and the memory they held."""
    rows = _articles(ctx)[:per]
    first = 100_000
    builder = _library(ctx)
    builder.add(first, _upload(rows), BENCH)
    builder.registry.close()
    source = builder.settings_for(first).index_dir
    for server in range(first + 1, first + servers):
        _hard_link_tree(source, builder.settings_for(server).index_dir)
    library = _library(ctx, guild_cache_mb=BUDGET_MB)
    process = psutil.Process()
    rss_before = process.memory_info().rss
    order = random.Random(7).sample(range(first, first + servers), min(servers, COLD_SAMPLES))
    cold = []
    try:
        for server in order:
            started = time.perf_counter()
            library.answerer(server).ask(rows[server % per]["title"])
            cold.append((time.perf_counter() - started) * 1000)
        memory = {"loaded": len(library._loaded), "loaded_mib": round(library.loaded_bytes / 2**20, 1),
                  "rss_growth_mib": round((process.memory_info().rss - rss_before) / 2**20, 1)}
    finally:
        library.registry.close()
    return percentiles(cold), memory


def _hard_link_tree(source: Path, target: Path) -> None:
    for path in source.rglob("*"):
        destination = target / path.relative_to(source)
        if path.is_dir():
            destination.mkdir(parents=True, exist_ok=True)
        else:
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.link(path, destination)


def _link_added_seconds(ctx: Context, library: GuildLibrary) -> tuple[float, int]:
    """Seconds from `/add url:` to the first answer for a 1,500-word article on a local server, and its words."""
    rows = _articles(ctx)[len(_articles(ctx)) // 2 :]
    paragraphs, words = [], 0
    for row in rows:
        paragraphs += row["text"].split("\n\n")
        words = sum(len(p.split()) for p in paragraphs)
        if words >= 1500:
            break
    html = ("<html><head><title>Harbour council report</title></head><body><article><h1>Harbour council report"
            "</h1>" + "".join(f"<p>{p}</p>" for p in paragraphs) + "</article></body></html>")
    with LocalSite(html) as url:
        started = time.perf_counter()
        extracted, origin = asyncio.run(read_link(url, library.settings))
        added = library.add(9, extracted, BENCH, origin)
        library.answerer(9).ask(rows[0]["title"])
        return time.perf_counter() - started, words if added.sentences else 0


class LocalSite:
    """An aiohttp server on 127.0.0.1 in its own thread, serving one HTML page."""

    def __init__(self, html: str) -> None:
        self.html, self.ready, self.loop = html, threading.Event(), asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=10)

    async def _start(self) -> str:
        app = web.Application()
        app.router.add_get("/article", lambda _: web.Response(text=self.html, content_type="text/html"))
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0).start()
        return f"http://127.0.0.1:{self.runner.addresses[0][1]}/article"

    def __exit__(self, *exc_info: object) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def run(ctx: Context) -> Section:
    shutil.rmtree(ctx.work / "servers", ignore_errors=True)
    servers, per = (50, 5) if ctx.quick else (1000, 20)
    library = _library(ctx)
    try:
        adds = percentiles(_adds(ctx, library, 5, 3))
        link_seconds, link_words = _link_added_seconds(ctx, library)
    finally:
        library.registry.close()
    cold, memory = _many_servers(ctx, servers, per)
    section = Section(f"Servers: per-server corpora ({servers:,} servers × {per} articles for cold answers)")
    section.add("add one article to a server (incremental rebuild): p50", adds["p50"], "ms")
    section.add("add one article to a server: p95", adds["p95"], "ms")
    section.add(f"link added and answered ({link_words:,}-word article, local server)", link_seconds, "s",
                LINK_TARGET)
    section.add("first answer in a cold server (load + answer): p50", cold["p50"], "ms")
    section.add("first answer in a cold server: p95", cold["p95"], "ms", COLD_TARGET)
    section.add(f"server indexes kept loaded within {BUDGET_MB:g} MiB", memory["loaded"], "")
    section.add("their size on disk", memory["loaded_mib"], "MiB")
    section.add(f"process RSS growth over {min(servers, COLD_SAMPLES)} cold loads", memory["rss_growth_mib"], "MiB")
    section.details = {"add_ms": adds, "cold_ms": cold, "link_seconds": round(link_seconds, 3), **memory}
    section.notes.append("the many servers share one built index by hard links: each is still loaded and "
                         "answered on its own")
    log(f"servers: add p50 {adds['p50']} ms, link {link_seconds:.1f} s, cold p95 {cold['p95']} ms")
    return section
