"""QAService: the live snapshot, the answerer, worker threads, micro-batching and snapshot swaps.

The asyncio side (Discord, the terminal chat) only awaits; embedding, search and builds run in worker
threads. Questions wait in a bounded queue that one consumer task drains: those that arrive while the
answering thread is busy are answered together with one embedding call, and a full queue answers "busy".
A rebuild runs in its own thread and swaps the answerer in one assignment, so questions
keep being answered from the old snapshot until the new one is published.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import statistics
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from bot.answer import CONFIDENCE_FEATURES, Answer, AnswerConfig, Answerer, SentenceFinder, Turn
from bot.config import Settings
from bot.features import FEATURES, SPAN_FEATURES
from bot.generation import DeltaCallback, LLMClient, generate_answer
from bot.scorer import MODEL_PATH, load_model
from bot.sources import Adder, Source
from bot.support import SupportCheck
from bot.wordnet import wordnet
from index.backends import BackendChoice
from index.builder import BuildInProgress, BuildProgress, BuildReport, IndexBuilder
from index.chunking import ChunkingConfig
from index.embedding import Embedder
from index.extract import Extracted
from index.pgstore import CHANNEL, SHARED_STORE, PgSnapshotStore, parse_notification
from index.search import SearchConfig
from index.store import SnapshotError, SnapshotStore
from index.urls import safe_url

if TYPE_CHECKING:
    from bot.entailment import SupportModel
    from bot.library import Added, GuildLibrary

MAX_BATCH = 64
LATENCIES_KEPT = 1_000
"""The latest answers' latencies each server's /stats reports from."""
FOLLOW_RETRY_SECONDS = 5.0
log = logging.getLogger(__name__)


def search_config(settings: Settings) -> SearchConfig:
    return SearchConfig(k=settings.retrieve_k, candidates=settings.candidates_k, rrf_k=settings.rrf_k,
                        dense_weight=settings.dense_weight, bm25_weight=settings.bm25_weight)


def answer_config(settings: Settings) -> AnswerConfig:
    return AnswerConfig(max_chars=settings.max_answer_chars, max_sentences=settings.max_answer_sentences,
                        abstain_threshold=settings.abstain_threshold,
                        max_question_chars=settings.max_question_chars)


def make_embedder(settings: Settings) -> Embedder:
    return Embedder(settings.embed_model, batch_size=settings.embed_batch_size,
                    batch_tokens=settings.embed_batch_tokens, precision=settings.embed_precision,
                    backend=settings.embed_backend, cache_dir=settings.model_cache_dir)


def load_support_model(settings: Settings, embedder: Embedder) -> SupportModel | None:
    """The learned support check, ready to answer (exported to ONNX on first use, the exports of models shipped
    before it removed), unless turned off (FOOTNOTE_SUPPORT_MODEL=false) or trained on another encoder than
    `embedder`'s."""
    from bot.entailment import SupportModel, remove_stale_exports

    if not settings.support_model:
        return None
    model = SupportModel.for_embedder(embedder)
    if model is not None:
        model.runtime()
        remove_stale_exports(model.onnx_file)
    return model


def make_store(settings: Settings, name: str = SHARED_STORE) -> SnapshotStore:
    """The snapshot store: PostgreSQL's store `name` when FOOTNOTE_DATABASE_URL is set (index_dir is then this
    process's local copy), else the folder index_dir."""
    if settings.database_url is None:
        return SnapshotStore(settings.index_dir)
    return PgSnapshotStore(settings.database_url.get_secret_value(), settings.index_dir, name)


def make_builder(settings: Settings, embedder: Embedder, store: SnapshotStore | None = None) -> IndexBuilder:
    """A builder into `store` (default: the settings' shared store)."""
    chunking = ChunkingConfig(target_words=settings.chunk_words,
                              overlap_sentences=settings.chunk_overlap_sentences,
                              max_tokens=embedder.max_seq_length)
    return IndexBuilder(embedder, store or make_store(settings), chunking,
                        hnsw_threshold=settings.hnsw_threshold,
                        max_file_bytes=int(settings.max_file_mb * 1024 * 1024))


def load_answerer(settings: Settings, embedder: Embedder, store: SnapshotStore | None = None) -> Answerer:
    """The answerer over the current snapshot of `store` (default: the settings' shared store); SnapshotError
    when there is none or it is stale."""
    snapshot = (store or make_store(settings)).load(embedder.name, embedder.dimension, settings.hnsw_ef_search,
                                                    embedder.fingerprint)
    model = load_model(FEATURES, CONFIDENCE_FEATURES, SPAN_FEATURES, settings.answer_model or MODEL_PATH)
    return Answerer(SentenceFinder(snapshot, embedder, search_config(settings), answer_config(settings)), model)


def settle_heap() -> None:
    """For a process that goes on answering: move what is loaded (model, snapshot) out of the garbage
    collector's sight, since a full collection over it paused an answer for 250 ms at 1,000 articles. What a
    swap drops is unfrozen and collected first. The collection costs about 0.25 s, so one-shot commands skip
    it."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


BUSY = "I'm answering many questions right now: please try again in a moment."


class ServiceClosed(RuntimeError):
    """The service is not running (not started yet, or shutting down)."""


@dataclass
class _Request:
    question: str
    history: list[Turn]
    future: asyncio.Future[Answer]
    guild_id: int | None = None


def better_answer(shared: Answer, own: Answer) -> Answer:
    """Of the shared corpus' answer and a server's own, the one that answers, with the higher confidence."""
    if shared.refusal or shared.abstained != own.abstained:
        return shared if shared.refusal or own.abstained else own
    return shared if shared.confidence >= own.confidence else own


@dataclass
class Activity:
    """One server's answering since start-up: questions, abstentions and the latest latencies."""

    questions: int = 0
    abstentions: int = 0
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCIES_KEPT))


@dataclass
class ServiceStats:
    snapshot_id: str
    documents: int
    chunks: int
    questions: int
    abstentions: int
    p50_ms: float | None
    p95_ms: float | None
    uptime_seconds: float
    encoder: str


class QAService:
    """Owns the embedder, the live answerer and the one task that answers queued questions; use it from
    one event loop, between `await start()` and `await close()`."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self.embedder = embedder
        self.answerer: Answerer | None = None
        self.library: GuildLibrary | None = None
        self._answer_thread = ThreadPoolExecutor(1, thread_name_prefix="footnote-answer")
        self._build_thread = ThreadPoolExecutor(1, thread_name_prefix="footnote-build")
        self._queue: asyncio.Queue[_Request] = asyncio.Queue(settings.max_pending_questions)
        self._consumer: asyncio.Task[None] | None = None
        self._follower: asyncio.Task[None] | None = None
        self._stop_build = threading.Event()
        self._building = False
        self._activity: defaultdict[int | None, Activity] = defaultdict(Activity)  # by server (None: DMs)
        self._started = time.monotonic()
        self.llm = LLMClient.from_settings(settings)
        self.support_model: SupportModel | None = None
        self._loaded_snapshot_id: str | None = None  # the shared version this process loaded last

    async def start(self) -> None:
        """Load the model and the current snapshot in the worker thread, then start answering; ServiceClosed
        when `close()` came first (SIGTERM while starting)."""
        try:
            await self._start()
        except RuntimeError:  # the worker threads were shut down under it
            if self._stop_build.is_set():
                raise ServiceClosed("Footnote was stopped while it was starting") from None
            raise

    async def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.embedder is None:
            self.embedder = await loop.run_in_executor(self._answer_thread, make_embedder, self.settings)
        await loop.run_in_executor(self._answer_thread, self.embedder.warm_up)
        if self.llm is not None:  # the support check of generated sentences: WordNet (0.3 s) and the model
            await loop.run_in_executor(self._answer_thread, wordnet)
            self.support_model = await loop.run_in_executor(self._answer_thread, load_support_model,
                                                            self.settings, self.embedder)
        self.answerer = await loop.run_in_executor(self._answer_thread, load_answerer, self.settings,
                                                   self.embedder)
        self._loaded_snapshot_id = self.answerer.snapshot.snapshot_id
        self.library = await loop.run_in_executor(self._answer_thread, _open_library, self.settings,
                                                  self.embedder)
        await loop.run_in_executor(self._answer_thread, settle_heap)
        self._consumer = asyncio.create_task(self._consume(), name="footnote-answers")
        if self.settings.database_url is not None:
            self._follower = asyncio.create_task(self._follow_published(), name="footnote-snapshots")

    def stop_building(self) -> None:
        """Ask a running build to stop at its next batch (the previous snapshot stays published)."""
        self._stop_build.set()

    async def close(self) -> None:
        """Stop answering (every waiting question fails with ServiceClosed), stop a running build at its
        next batch (the previous snapshot stays published) and wait for the worker threads."""
        self.stop_building()
        for task in (self._consumer, self._follower):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        while not self._queue.empty():
            _fail([self._queue.get_nowait()], ServiceClosed("Footnote is shutting down"))
        for executor in (self._answer_thread, self._build_thread):
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)
        if self.llm is not None:
            await self.llm.aclose()
        if self.library is not None:
            self.library.registry.close()

    async def ask(self, question: str, history: list[Turn] | None = None,
                  on_delta: DeltaCallback | None = None, guild_id: int | None = None) -> Answer:
        """Answer in the worker thread (questions that wait together share one embedding call), then, when
        an LLM is configured, let it rephrase from the same evidence, verified, with the extractive answer
        as the fallback; `on_delta` sees the verified generated text as it grows. When too many questions
        wait, the answer is a polite "busy" refusal. In a server (`guild_id`), the server's own sources
        answer beside the shared corpus."""
        if self._consumer is None or self._consumer.done():
            raise ServiceClosed("the QA service is not running")
        future = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Request(question, list(history or []), future, guild_id))
        except asyncio.QueueFull:
            return Answer(question, BUSY, True, [], refusal=BUSY)
        answer = await future
        if self.llm is None or answer.refusal:
            return answer
        check = SupportCheck(self.answerer.word_vectors, self.support_model)
        return await generate_answer(answer, answer.evidence, self.llm, on_delta, history or [], check)

    async def _consume(self) -> None:
        """Answer queued questions, all those waiting (up to MAX_BATCH) in one call."""
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < MAX_BATCH and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            batch = [request for request in batch if not request.future.done()]  # askers that gave up
            if not batch:
                continue

            def ready(position: int, answer: Answer, batch: list[_Request] = batch) -> None:  # answer thread
                loop.call_soon_threadsafe(self._resolve, batch[position], answer)

            def failed(positions: list[int], error: Exception, batch: list[_Request] = batch) -> None:
                loop.call_soon_threadsafe(_fail, [batch[p] for p in positions], error)

            try:
                await loop.run_in_executor(self._answer_thread, self._answer_batch, batch, ready, failed)
            except asyncio.CancelledError:
                _fail(batch, ServiceClosed("Footnote is shutting down"))
                raise
            except Exception as exc:  # every waiter still waiting gets the failure, none hangs
                _fail(batch, exc)

    async def _follow_published(self) -> None:
        """With the PostgreSQL store: swap to every shared version another process publishes, as /reindex does
        here, and let the servers' answerers of older versions go (LISTEN footnote_snapshots; a lost
        connection is re-opened after a pause)."""
        import psycopg

        url = self.settings.database_url.get_secret_value()
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    await self._swap_to_published()  # anything published before LISTEN took effect
                    self._library().forget_all()  # servers' versions published while this was not listening
                    async for notice in conn.notifies():
                        store, snapshot_id = parse_notification(notice.payload)
                        if store == SHARED_STORE:
                            await self._swap_to_published()
                        else:
                            self._library().published(store, snapshot_id)
            except (psycopg.Error, SnapshotError) as exc:
                log.warning("following published snapshots at %s: %s; retrying in %s s", safe_url(url),
                            type(exc).__name__, FOLLOW_RETRY_SECONDS)
            except Exception:  # a full disk while a snapshot is copied: the follower must not end unseen
                log.exception("following published snapshots failed; retrying in %s s", FOLLOW_RETRY_SECONDS)
            await asyncio.sleep(FOLLOW_RETRY_SECONDS)

    async def _swap_to_published(self) -> None:
        answerer = await asyncio.get_running_loop().run_in_executor(self._build_thread, self._newer_answerer)
        if answerer is not None:
            self.answerer = answerer
            log.info("now answering from snapshot %s, published by another process", answerer.snapshot.snapshot_id)

    def _newer_answerer(self) -> Answerer | None:
        """The answerer over the published version, unless this process loaded that version last (the build
        thread, where reindexes load theirs too: the notice of this process's own publication loads nothing)."""
        current = make_store(self.settings).current_id()
        if current is None or current == self._loaded_snapshot_id:
            return None
        return self._settled_answerer()

    def _answer_batch(self, batch: list[_Request], ready: Callable[[int, Answer], None],
                      failed: Callable[[list[int], Exception], None]) -> None:
        """Answer the batch server by server (worker thread): from the shared corpus alone, or, for a server
        with its own sources, the better of the two answers. A server whose answering fails fails its own
        questions only."""
        groups: dict[int | None, list[int]] = {}
        for position, request in enumerate(batch):
            groups.setdefault(request.guild_id, []).append(position)
        for guild_id, positions in groups.items():
            try:
                self._answer_group(guild_id, [(batch[p].question, batch[p].history) for p in positions],
                                   lambda i, answer, at=positions: ready(at[i], answer))
            except Exception as error:
                log.exception("answering %d questions of server %s failed", len(positions), guild_id)
                failed(positions, error)

    def _answer_group(self, guild_id: int | None, questions: list[tuple[str, list[Turn]]],
                      ready: Callable[[int, Answer], None]) -> None:
        own = self.library.answerer(guild_id) if guild_id is not None and self.library else None
        if own is None:
            self.answerer.ask_many(questions, on_answer=ready)
            return
        shared = self.answerer.ask_many(questions)
        for position, (first, second) in enumerate(zip(shared, own.ask_many(questions), strict=True)):
            ready(position, better_answer(first, second))

    def _resolve(self, request: _Request, answer: Answer) -> None:
        """Hand one answer to its asker (on the event loop) as soon as it is composed."""
        self._record(request.guild_id, answer)
        if not request.future.done():
            request.future.set_result(answer)

    def _record(self, guild_id: int | None, answer: Answer) -> None:
        if answer.refusal:
            return
        activity = self._activity[guild_id]
        activity.questions += 1
        activity.abstentions += answer.abstained
        activity.latencies.append(answer.timings_ms.get("total", 0.0))

    @property
    def building(self) -> bool:
        return self._building

    async def reindex(self, full: bool = False, progress: Callable[[BuildProgress], None] | None = None,
                      guild_id: int | None = None) -> BuildReport | None:
        """Build in the build thread, then swap to the new snapshot; questions go on meanwhile. With
        `guild_id`, only that server's own sources are rebuilt (None when it has none)."""
        if guild_id is not None:
            return await self._in_build_thread(self._library().rebuild, guild_id, full, progress, self._stop_build)
        report, answerer = await self._in_build_thread(self._build, full, progress)
        self.answerer = answerer
        return report

    async def add_source(self, guild_id: int, extracted: list[Extracted], by: Adder, origin: str = "") -> Added:
        """Store and index a server's new source (SourceRefused for quotas) after any build that is running;
        questions go on meanwhile."""
        return await self._after_builds(self._library().add, guild_id, extracted, by, origin, self._stop_build)

    async def remove_source(self, guild_id: int, source_id: int, by: Adder) -> Source:
        """Remove one of a server's sources and rebuild its index (SourceRefused when there is no such source)."""
        return await self._after_builds(self._library().remove, guild_id, source_id, by, self._stop_build)

    def sources(self, guild_id: int) -> list[Source]:
        return self._library().registry.sources(guild_id)

    def _library(self) -> GuildLibrary:
        if self.library is None:
            raise ServiceClosed("the QA service is not running")
        return self.library

    async def _in_build_thread(self, work: Callable, *args):
        """Run a reindex in the build thread; BuildInProgress when one is running already."""
        if self._building:
            raise BuildInProgress("a reindex is already running")
        self._building = True
        try:
            return await self._after_builds(work, *args)
        finally:
            self._building = False

    async def _after_builds(self, work: Callable, *args):
        """Run `work` in the build thread, after the builds before it (one at a time)."""
        return await asyncio.get_running_loop().run_in_executor(self._build_thread, work, *args)

    def _build(self, full: bool, progress: Callable[[BuildProgress], None] | None) -> tuple[BuildReport, Answerer]:
        assert self.embedder is not None
        report = make_builder(self.settings, self.embedder).build(Path(self.settings.corpus_dir), full, progress,
                                                                  self._stop_build)
        return report, self._settled_answerer()

    def _settled_answerer(self) -> Answerer:
        """The answerer over the current snapshot, with the heap settled for serving (a worker thread)."""
        answerer = load_answerer(self.settings, self.embedder)
        self._loaded_snapshot_id = answerer.snapshot.snapshot_id
        settle_heap()
        return answerer

    def stats(self, guild_id: int | None = None) -> ServiceStats:
        """Figures of the shared corpus, plus the server's own sources when `guild_id` is given, and of the
        questions asked in that server (or in DMs, for None) only."""
        activity = self._activity.get(guild_id, Activity())
        latencies = sorted(activity.latencies)
        snapshot = self.answerer.snapshot if self.answerer else None
        own = self.library.answerer(guild_id) if guild_id is not None and self.library else None
        snapshots = [s for s in (snapshot, own.snapshot if own else None) if s is not None]
        return ServiceStats(
            snapshot_id=" + ".join(s.snapshot_id for s in snapshots) or "none",
            documents=sum(len(s.documents) for s in snapshots),
            chunks=sum(len(s.chunks) for s in snapshots),
            questions=activity.questions, abstentions=activity.abstentions,
            p50_ms=statistics.median(latencies) if latencies else None,
            p95_ms=latencies[int(0.95 * (len(latencies) - 1))] if latencies else None,
            uptime_seconds=time.monotonic() - self._started,
            encoder=_encoder_line(self.embedder.chosen if self.embedder else None),
        )



def _open_library(settings: Settings, embedder: Embedder) -> GuildLibrary:
    from bot.library import GuildLibrary  # it builds on this module's factories
    from bot.sources import open_registry

    return GuildLibrary(settings, embedder, open_registry(settings))


def _encoder_line(choice: BackendChoice | None) -> str:
    return f"{choice.query} for questions, {choice.build} for builds" if choice else "not chosen yet"


def _fail(requests: list[_Request], error: Exception) -> None:
    for request in requests:
        if not request.future.done():
            request.future.set_exception(error)
