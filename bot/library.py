"""Each server's own sources beside the operator's shared corpus (no Discord import).

A server's sources are files `<guilds_dir>/<guild id>/corpus/<name>.jsonl` (one article a line, named by
`index.extract.source_name`, never by user input) with their own snapshot store in `<guild id>/index`, so
adding to one server never touches another's answers. Answerers of servers are loaded when a server asks and
kept in a least-recently-used set bounded by a memory budget (estimated by the snapshots' bytes on disk).

With FOOTNOTE_DATABASE_URL a server outlives the machine: the registry stores each source's file, the server's
corpus folder is made to match those files before every build, and the server's versions are published into
PostgreSQL as the store "guild:<id>" (`<guild id>/index` is then this process's local copy).

Adding or removing a source changes the file, rebuilds the server's index incrementally and only then records
the change in the registry; when the build fails, the file is put back as it was, and when an add fails to be
recorded the index is rebuilt without it, so nothing half-added stays. Before every build the corpus folder is
made to hold exactly the sources the registry lists (a file left by an add killed before it was recorded is
set aside in `<guild id>/unrecorded`). One change of a server's sources runs at a time in every process that
shares them (a PostgreSQL advisory lock, else a lock file beside the server's index), so a second process
never rebuilds from a registry that lacks what the first is about to record.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from filelock import FileLock, Timeout

from bot.answer import Answerer
from bot.config import Settings
from bot.service import load_answerer, make_builder, make_store
from bot.sources import Adder, Source, SourceRegistry
from index.builder import BuildInProgress, BuildProgress, BuildReport
from index.documents import SUPPORTED_SUFFIXES, Document
from index.extract import Extracted, canonical_url, extract_fetched, extract_upload, source_name
from index.fetch import Fetcher, FetchLimits, FetchRefused
from index.pgstore import SHARED_STORE, change_lock
from index.store import SnapshotError, SnapshotStore, StoreLocked

log = logging.getLogger(__name__)
SHARED = 0
"""The guild id under which the operator's CLI adds to the shared corpus (FOOTNOTE_CORPUS_DIR)."""
GUILD_STORE = "guild:"
CHANGE_WAIT_SECONDS = 120.0
"""How long a change of a server's sources waits for the one under way (adds take seconds, rebuilds minutes)."""


class SourceRefused(Exception):
    """The source cannot be added or removed; the message is one sentence for the asker."""


@dataclass(frozen=True)
class Added:
    source: Source
    updated: bool  # the same article was there already and was replaced
    report: BuildReport
    documents: list[Document]
    sentences: int  # sentences of this source in the server's new index


def source_documents(extracted: Sequence[Extracted], name: str) -> list[Document]:
    """The documents one source stores, with doc_ids derived from its stored name: a PDF becomes one document
    per page with text, titled "<title>, p. N" so that every citation names its page; a bundle's articles
    are numbered; a single article is named `name`."""
    if len(extracted) == 1 and not extracted[0].page_starts:
        return [replace(extracted[0].document, doc_id=name)]
    documents = []
    for position, item in enumerate(extracted, start=1):
        document = item.document
        if not item.page_starts:
            documents.append(replace(document, doc_id=f"{name}-{position}"))
            continue
        ends = [*item.page_starts[1:], len(document.text)]
        for page, (start, end) in enumerate(zip(item.page_starts, ends, strict=True), start=1):
            if text := document.text[start:end].strip():
                documents.append(replace(document, doc_id=f"{name}-p{page}", text=text,
                                         title=f"{document.title}, p. {page}"))
    return documents


def store_name(guild_id: int) -> str:
    """The name of a server's snapshot store in PostgreSQL (SHARED: the shared corpus' store)."""
    return SHARED_STORE if guild_id == SHARED else f"{GUILD_STORE}{guild_id}"


def check_file_size(size: int, settings: Settings) -> None:
    """Refuse, before reading it, a file (an attachment, a local file) larger than FOOTNOTE_FETCH_MAX_MB."""
    if size > _max_bytes(settings):
        raise FetchRefused(f"The file is larger than {settings.fetch_max_mb:g} MB.")


def _max_bytes(settings: Settings) -> int:
    return int(settings.fetch_max_mb * 1024 * 1024)


async def read_link(url: str, settings: Settings, upload_name: str | None = None) -> tuple[list[Extracted], str]:
    """Fetch a link by the safe-fetching rules and extract its articles, with the page's final URL; an
    `upload_name` (an attachment on Discord's CDN) is read by its file name's suffix instead. Extraction runs in a
    worker thread: a large page or PDF takes seconds to parse."""
    limits = FetchLimits(max_bytes=_max_bytes(settings), total_seconds=settings.fetch_timeout_seconds)
    async with Fetcher(limits, allow_hosts=settings.fetch_allow_hosts) as fetcher:
        fetched = await fetcher.fetch(url)
    if upload_name is not None:
        return await asyncio.to_thread(extract_upload, upload_name, fetched.content), ""
    return await asyncio.to_thread(extract_fetched, fetched), fetched.url


class GuildLibrary:
    """The servers' corpora: adding, removing, rebuilding, and their answerers loaded on demand."""

    def __init__(self, settings: Settings, embedder, registry: SourceRegistry) -> None:
        self.settings, self.embedder, self.registry = settings, embedder, registry
        self.root = Path(settings.guilds_dir)
        self.budget = int(settings.guild_cache_mb * 1024 * 1024)
        self._loaded: OrderedDict[int, tuple[Answerer, int]] = OrderedDict()
        # PostgreSQL only, where asking costs a round trip: servers known to have no index (`published` and
        # `forget_all`, on other processes' publications, correct it)
        self._unindexed: set[int] | None = None if settings.database_url is None else set()
        self._lock = threading.Lock()

    def corpus_dir(self, guild_id: int) -> Path:
        return Path(self.settings.corpus_dir) if guild_id == SHARED else self.root / str(guild_id) / "corpus"

    def settings_for(self, guild_id: int) -> Settings:
        """The settings with the server's own corpus and index folders (SHARED: the settings themselves)."""
        if guild_id == SHARED:
            return self.settings
        return self.settings.model_copy(update={"corpus_dir": self.corpus_dir(guild_id),
                                                "index_dir": self.root / str(guild_id) / "index"})

    def store(self, guild_id: int) -> SnapshotStore:
        """The server's snapshot store (in files, or its own store in PostgreSQL)."""
        return make_store(self.settings_for(guild_id), store_name(guild_id))

    @property
    def loaded_bytes(self) -> int:
        with self._lock:
            return sum(size for _, size in self._loaded.values())

    def answerer(self, guild_id: int) -> Answerer | None:
        """The server's answerer, loaded on first use; None when the server has added nothing."""
        with self._lock:
            if guild_id in self._loaded:
                self._loaded.move_to_end(guild_id)
                return self._loaded[guild_id][0]
            if self._unindexed is not None and guild_id in self._unindexed:
                return None
        try:
            store = self.store(guild_id)
            if store.current_path() is None:
                with self._lock:
                    if self._unindexed is not None:
                        self._unindexed.add(guild_id)
                return None
            answerer = load_answerer(self.settings_for(guild_id), self.embedder, store)
        except SnapshotError as error:  # also an unreachable database: the shared corpus still answers
            log.warning("server %s: its index cannot be loaded (%s)", guild_id, error)
            return None
        except Exception:  # a full disk while its copy is made, a database gone mid-read: the same
            log.exception("server %s: loading its index failed", guild_id)
            return None
        self._keep(guild_id, answerer)
        return answerer

    def published(self, store: str, snapshot_id: str | None) -> None:
        """Another process published version `snapshot_id` of the store `store` (None: dropped it): a server's
        answerer of another version is let go, so that its next question loads the new one."""
        if not store.startswith(GUILD_STORE):
            return
        guild_id = int(store.removeprefix(GUILD_STORE))
        with self._lock:
            if self._unindexed is not None:
                self._unindexed.discard(guild_id)
            loaded = self._loaded.get(guild_id)
            if loaded is not None and loaded[0].snapshot.snapshot_id != snapshot_id:
                del self._loaded[guild_id]

    def forget_all(self) -> None:
        """Let every server's answerer go (after publications may have been missed)."""
        with self._lock:
            self._loaded.clear()
            if self._unindexed is not None:
                self._unindexed.clear()

    def _keep(self, guild_id: int, answerer: Answerer) -> None:
        size = _folder_bytes(answerer.snapshot.path)
        with self._lock:
            if self._unindexed is not None:
                self._unindexed.discard(guild_id)
            self._loaded.pop(guild_id, None)
            self._loaded[guild_id] = (answerer, size)
            total = sum(s for _, s in self._loaded.values())
            while total > self.budget and len(self._loaded) > 1:
                _, (_, dropped) = self._loaded.popitem(last=False)
                total -= dropped

    def _forget(self, guild_id: int) -> None:
        with self._lock:
            self._loaded.pop(guild_id, None)

    @contextmanager
    def _changing(self, guild_id: int) -> Iterator[None]:
        """One change of the server's sources at a time (an add, a removal, a rebuild), in every process that
        shares them (all of them with PostgreSQL, else this machine's): its files are restored, rebuilt and
        recorded as one step, so no process publishes an index without a source another has just recorded.
        Waits CHANGE_WAIT_SECONDS, then BuildInProgress."""
        try:
            if self.settings.database_url is not None:
                url = self.settings.database_url.get_secret_value()
                with change_lock(url, store_name(guild_id), CHANGE_WAIT_SECONDS):
                    yield
            else:
                index = Path(self.settings_for(guild_id).index_dir)
                index.parent.mkdir(parents=True, exist_ok=True)
                with FileLock(index.with_name(f"{index.name}.changes.lock"), timeout=CHANGE_WAIT_SECONDS):
                    yield
        except (StoreLocked, Timeout):
            raise BuildInProgress("another change of this server's sources is under way") from None

    def add(self, guild_id: int, extracted: Sequence[Extracted], by: Adder, origin: str = "",
            stop: threading.Event | None = None) -> Added:
        """Store the documents as one source of the server (replacing the same article added before), rebuild
        the server's index and record who added it. Raises SourceRefused for quotas."""
        if not extracted:
            raise SourceRefused("That source has no text to index.")
        with self._changing(guild_id):
            return self._add(guild_id, extracted, by, origin, stop)

    def _add(self, guild_id: int, extracted: Sequence[Extracted], by: Adder, origin: str,
             stop: threading.Event | None) -> Added:
        first = extracted[0].document
        url = canonical_url(first.url or origin)
        text_sha256 = hashlib.sha256("\n\n".join(e.document.text for e in extracted).encode("utf-8")).hexdigest()
        existing = self.registry.same_article(guild_id, url, text_sha256)
        name = existing.name if existing else self._free_name(guild_id, source_name(first), text_sha256)
        documents = source_documents(extracted, name)
        if not documents:
            raise SourceRefused("That source has no text to index.")
        payload = "".join(json.dumps(_bundle_line(d), ensure_ascii=False) + "\n" for d in documents).encode()
        self._check_quota(guild_id, len(payload), existing)
        before = self._file(guild_id, name)
        report = self._change_file(guild_id, name, payload, before, stop)
        source = Source(0, guild_id, name, first.title, first.url or origin, url, text_sha256, len(documents),
                        len(payload), by.user_id, by.name, 0.0, 0.0)
        try:
            recorded = self.registry.record(source, by, replaces=existing, content=payload)
        except BaseException:  # the index must not hold what the registry does not list
            self._change_file(guild_id, name, before, payload, None)
            raise
        sentences = self._sentences_of(guild_id, {d.doc_id for d in documents})
        return Added(recorded, existing is not None, report, documents, sentences)

    def _file(self, guild_id: int, name: str) -> bytes | None:
        """The content of the server's source file `name` (None: there is none), its folder restored first."""
        self._restore_files(guild_id)
        path = self.corpus_dir(guild_id) / f"{name}.jsonl"
        return path.read_bytes() if path.is_file() else None

    def _free_name(self, guild_id: int, name: str, text_sha256: str) -> str:
        """`name`, or, when another source of the server has it (two bundles without links whose first article is
        the same), `name` with the whole text's hash."""
        taken = {source.name for source in self.registry.sources(guild_id)}
        return name if name not in taken else f"{name}-{text_sha256[:8]}"

    def _sentences_of(self, guild_id: int, doc_ids: set[str]) -> int:
        answerer = self.answerer(guild_id)
        if answerer is None:
            return 0
        snapshot = answerer.snapshot
        rows = [row for row, doc_id in enumerate(snapshot.doc_ids) if doc_id in doc_ids]
        return int(np.isin(snapshot.sentences[:, 0], rows).sum())

    def remove(self, guild_id: int, source_id: int, by: Adder, stop: threading.Event | None = None) -> Source:
        """Delete one of the server's sources and rebuild its index (or drop the index when none is left)."""
        with self._changing(guild_id):
            source = self.registry.get(guild_id, source_id)
            if source is None:
                raise SourceRefused("This server has no such source (it may have been removed already).")
            self._change_file(guild_id, source.name, None, self._file(guild_id, source.name), stop)
            removed = self.registry.remove(guild_id, source_id, by)
            return removed or source

    def rebuild(self, guild_id: int, full: bool = False, progress: Callable[[BuildProgress], None] | None = None,
                stop: threading.Event | None = None) -> BuildReport | None:
        """Rebuild the server's index from its files; None when the server has no sources."""
        with self._changing(guild_id):
            self._restore_files(guild_id)
            return self._build(guild_id, full, progress, stop)

    def _build(self, guild_id: int, full: bool = False, progress: Callable[[BuildProgress], None] | None = None,
               stop: threading.Event | None = None) -> BuildReport | None:
        corpus = self.corpus_dir(guild_id)
        if not any(p.suffix.lower() in SUPPORTED_SUFFIXES for p in corpus.rglob("*") if p.is_file()):
            return None
        settings, store = self.settings_for(guild_id), self.store(guild_id)
        report = make_builder(settings, self.embedder, store).build(corpus, full, progress, stop)
        self._keep(guild_id, load_answerer(settings, self.embedder, store))
        return report

    def _restore_files(self, guild_id: int) -> None:
        """Make the server's corpus folder hold exactly the sources the registry lists. Where the registry keeps
        the files, this machine may have missed sources added, changed or removed by another process (a source
        stored without its file keeps the local one). Elsewhere the folder holds the only copy, and a file no
        source lists (an add killed before it was recorded) is moved to `unrecorded/` beside it, never indexed."""
        if guild_id == SHARED:
            return
        corpus = self.corpus_dir(guild_id)
        if self.registry.keeps_files:
            stored = self.registry.files(guild_id)
        else:
            stored = dict.fromkeys((source.name for source in self.registry.sources(guild_id)), None)
        corpus.mkdir(parents=True, exist_ok=True)
        for path in corpus.glob("*.jsonl"):
            if path.stem in stored:
                continue
            if self.registry.keeps_files:
                path.unlink()
            else:
                aside = corpus.parent / "unrecorded" / path.name
                aside.parent.mkdir(exist_ok=True)
                path.replace(aside)
                log.warning("server %s: %s is no recorded source; moved to %s", guild_id, path.name, aside)
        for name, content in stored.items():
            path = corpus / f"{name}.jsonl"
            if content is not None and (not path.is_file() or path.read_bytes() != content):
                _write(path, content)

    def _check_quota(self, guild_id: int, size: int, existing: Source | None) -> None:
        if size > self.settings.max_file_mb * 1024 * 1024:  # the indexer would skip its file
            raise SourceRefused(f"This source holds {size / 2**20:.2g} MB of text once stored; the most one source "
                                f"may hold is {self.settings.max_file_mb:g} MB.")
        count, used = self.registry.usage(guild_id)
        if existing is not None:
            count, used = count - 1, used - existing.bytes
        if count + 1 > self.settings.guild_max_sources:
            raise SourceRefused(f"This server already has {count} sources, the most allowed; remove one first.")
        limit = self.settings.guild_max_mb * 1024 * 1024
        if used + size > limit:
            raise SourceRefused(f"This source would take the server past its {self.settings.guild_max_mb:g} MB "
                                "of sources; remove some first.")

    def _change_file(self, guild_id: int, name: str, payload: bytes | None, before: bytes | None,
                     stop: threading.Event | None) -> BuildReport | None:
        """Write (or, with None, delete) a source file whose content is now `before` (`_file`, which restores the
        folder first) and rebuild; on any failure the file is put back to `before`."""
        path = self.corpus_dir(guild_id) / f"{name}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            _write(path, payload)
            report = self._build(guild_id, stop=stop)
            if report is None:  # the server's last source is gone: so is its index
                self._drop(guild_id)
            return report
        except BaseException:
            _write(path, before)
            raise

    def _drop(self, guild_id: int) -> None:
        """Unpublish the server's index under its build lock: a rebuild under way (another process's, or one that
        read the corpus before its last file went) would publish the removed articles again after the drop."""
        store = self.store(guild_id)
        try:
            with store.build_lock():
                self._forget(guild_id)
                store.drop()
        except StoreLocked as exc:
            raise BuildInProgress(str(exc)) from None


def _bundle_line(document: Document) -> dict:
    record = {"doc_id": document.doc_id, "text": document.text}
    record.update({key: value for key in ("title", "author", "url", "published")
                   if (value := getattr(document, key))})
    return record


def _write(path: Path, payload: bytes | None) -> None:
    """Replace the file atomically with `payload`, or delete it for None."""
    if payload is None:
        path.unlink(missing_ok=True)
        return
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    with partial.open("wb") as handle:
        handle.write(payload)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(partial, path)


def _folder_bytes(path: Path | None) -> int:
    if path is None or not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
