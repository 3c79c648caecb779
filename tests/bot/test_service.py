"""QAService's serving path: one consumer task, a bounded queue, and a close that leaves nothing behind."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from bot.answer import Answer, Answerer, Turn
from bot.service import BUSY, QAService, ServiceClosed, make_builder
from index.builder import BuildCancelled, BuildProgress
from index.embedding import Embedder
from index.store import BUILD_PREFIX, SnapshotStore
from tests.conftest import make_settings
from tests.index.test_builder import write_articles


class GatedAnswerer:
    """The real answerer, except that each batch waits until the test opens the gate."""

    def __init__(self, answerer: Answerer) -> None:
        self.answerer = answerer
        self.snapshot = answerer.snapshot
        self.entered = threading.Event()
        self.gate = threading.Event()
        self.batches: list[list[str]] = []

    def ask_many(self, questions: list[tuple[str, list[Turn]]], on_answer=None) -> list[Answer]:
        self.batches.append([q for q, _ in questions])
        self.entered.set()
        self.gate.wait(timeout=30)
        return self.answerer.ask_many(questions, threshold=0.0, on_answer=on_answer)


async def started_service(settings, embedder: Embedder, **overrides: object) -> tuple[QAService, GatedAnswerer]:
    service = QAService(settings.model_copy(update=overrides), embedder)
    await service.start()
    gated = GatedAnswerer(service.answerer)
    service.answerer = gated  # type: ignore[assignment]
    return service, gated


async def test_waiting_questions_share_a_batch_and_a_full_queue_answers_busy(seed_settings, embedder) -> None:
    service, gated = await started_service(seed_settings, embedder, max_pending_questions=2)
    first = asyncio.create_task(service.ask("Who did Raisi meet in Caracas?"))
    await asyncio.to_thread(gated.entered.wait, 10)  # the first question is in the answering thread
    waiting = [asyncio.create_task(service.ask(q)) for q in ("When does the tour end?", "Which countries?")]
    await asyncio.sleep(0)  # both are queued
    busy = await service.ask("One question too many?")
    assert busy.refusal == BUSY and busy.abstained and not busy.citations
    gated.gate.set()
    answers = await asyncio.gather(first, *waiting)
    assert "Maduro" in answers[0].answer
    assert gated.batches == [["Who did Raisi meet in Caracas?"], ["When does the tour end?", "Which countries?"]]
    assert all(not a.refusal for a in answers)
    await service.close()


async def test_close_fails_every_waiter_and_leaves_no_task(seed_settings, embedder) -> None:
    service, gated = await started_service(seed_settings, embedder)
    running = asyncio.create_task(service.ask("Who did Raisi meet in Caracas?"))
    await asyncio.to_thread(gated.entered.wait, 10)
    queued = asyncio.create_task(service.ask("When does the tour end?"))
    await asyncio.sleep(0)
    closing = asyncio.create_task(service.close())
    for waiter in (running, queued):
        with pytest.raises(ServiceClosed):
            await asyncio.wait_for(waiter, 10)
    gated.gate.set()  # the answering thread finishes its batch; close() waits for it
    await asyncio.wait_for(closing, 30)
    with pytest.raises(ServiceClosed):
        await service.ask("Anyone there?")
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert not [t for t in others if "footnote" in t.get_name()]


async def test_ask_before_start_is_refused(seed_settings, embedder) -> None:
    service = QAService(seed_settings, embedder)
    with pytest.raises(ServiceClosed):
        await service.ask("Who did Raisi meet?")
    await service.close()


async def test_close_stops_a_running_build_and_the_previous_index_keeps_serving(
        tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    write_articles(corpus, 3)
    settings = make_settings(tmp_path, corpus)
    make_builder(settings, embedder).build(corpus)
    store = SnapshotStore(settings.index_dir)
    before = store.current_path()
    write_articles(corpus, 60)
    monkeypatch.setattr(embedder, "batch_size", 2)  # many batches: the build can be stopped between them
    service = QAService(settings, embedder)
    await service.start()
    loop = asyncio.get_running_loop()
    embedding = asyncio.Event()

    def progress(event: BuildProgress) -> None:
        if event.stage == "embedding":
            loop.call_soon_threadsafe(embedding.set)

    build = asyncio.create_task(service.reindex(full=True, progress=progress))
    await asyncio.wait_for(embedding.wait(), 60)
    await service.close()
    with pytest.raises(BuildCancelled):
        await build
    assert store.current_path() == before and not list(settings.index_dir.glob(f"{BUILD_PREFIX}*"))
    assert len(store.load(embedder.name, embedder.dimension).documents) == 3


async def test_each_asker_gets_its_answer_when_it_is_composed_not_when_the_batch_ends(seed_settings, embedder) -> None:
    service, gated = await started_service(seed_settings, embedder)
    first_delivered = threading.Event()
    real_answer = gated.answerer.answer

    def answer_then_wait(examined, threshold=None):  # the second answer waits until the first was delivered
        if examined.text == "When does the tour end?":
            assert first_delivered.wait(timeout=30)
        return real_answer(examined, threshold)

    gated.answerer.answer = answer_then_wait
    blocker = asyncio.create_task(service.ask("Which countries?"))
    await asyncio.to_thread(gated.entered.wait, 10)
    gated.entered.clear()
    first = asyncio.create_task(service.ask("Who did Raisi meet in Caracas?"))
    second = asyncio.create_task(service.ask("When does the tour end?"))
    await asyncio.sleep(0)
    gated.gate.set()
    await blocker
    answer = await asyncio.wait_for(first, 10)  # resolved while the second is still being composed
    assert "Maduro" in answer.answer and not second.done()
    first_delivered.set()
    assert not (await asyncio.wait_for(second, 10)).refusal
    assert gated.batches[1] == ["Who did Raisi meet in Caracas?", "When does the tour end?"]
    await service.close()


async def _started_on_postgresql(tmp_path: Path, embedder: Embedder, database_url: str) -> QAService:
    """A started service whose shared corpus (two articles in tmp_path/corpus) is published in PostgreSQL."""
    corpus = tmp_path / "corpus"
    write_articles(corpus, 2)
    settings = make_settings(tmp_path / "one", corpus, database_url=database_url)
    make_builder(settings, embedder).build(corpus)
    service = QAService(settings, embedder)
    await service.start()
    return service


def _published_by_another_process(service: QAService, tmp_path: Path, embedder: Embedder) -> str:
    """The snapshot id of a third article's version of the shared corpus, built and published from another
    index folder."""
    corpus = service.settings.corpus_dir
    write_articles(corpus, 3)
    other_settings = service.settings.model_copy(update={"index_dir": tmp_path / "two" / "index"})
    return make_builder(other_settings, embedder).build(corpus, full=True).snapshot_id


async def _until_serving(service: QAService, snapshot_id: str) -> None:
    async with asyncio.timeout(30):
        while service.answerer.snapshot.snapshot_id != snapshot_id:
            await asyncio.sleep(0.05)


async def test_with_postgresql_a_process_loads_its_own_publication_once_and_anothers_at_once(
        tmp_path: Path, embedder: Embedder, database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import bot.service

    service = await _started_on_postgresql(tmp_path, embedder, database_url)
    loaded: list[str] = []

    def counted(*args, **kwargs) -> Answerer:
        answerer = load_answerer(*args, **kwargs)
        loaded.append(answerer.snapshot.snapshot_id)
        return answerer

    load_answerer = bot.service.load_answerer
    monkeypatch.setattr(bot.service, "load_answerer", counted)
    try:
        write_articles(service.settings.corpus_dir, 3)
        own = await service.reindex()
        other = _published_by_another_process(service, tmp_path, embedder)
        await _until_serving(service, other)  # the notices arrive in order: its own first, then the other's
        assert loaded == [own.snapshot_id, other]
    finally:
        await service.close()


async def test_with_postgresql_an_unexpected_error_while_following_is_logged_and_retried(
        tmp_path: Path, embedder: Embedder, database_url: str, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    import bot.service

    service = await _started_on_postgresql(tmp_path, embedder, database_url)
    load_answerer, failures = bot.service.load_answerer, [OSError(28, "No space left on device")]

    def failing_once(*args, **kwargs) -> Answerer:
        if failures:
            raise failures.pop()
        return load_answerer(*args, **kwargs)

    monkeypatch.setattr(bot.service, "load_answerer", failing_once)
    monkeypatch.setattr(bot.service, "FOLLOW_RETRY_SECONDS", 0.1)
    try:
        await _until_serving(service, _published_by_another_process(service, tmp_path, embedder))
    finally:
        await service.close()
    assert not failures
    logged = [r for r in caplog.records if "following published snapshots failed" in r.getMessage()]
    assert logged and logged[0].exc_info and "No space left" in str(logged[0].exc_info[1])


async def test_a_server_whose_answering_fails_fails_its_own_questions_only(seed_settings, embedder,
                                                                          monkeypatch) -> None:
    """One batch, three servers: loading one server's index fails (a full disk), another's answering raises;
    the first still answers from the shared articles, the second's askers get the error, the rest their answers."""
    service, gated = await started_service(seed_settings, embedder)
    real_ask_many = gated.ask_many

    def raising_for_one_question(questions, on_answer=None):
        if any(question == "Broken?" for question, _ in questions):
            raise RuntimeError("answering failed")
        return real_ask_many(questions, on_answer)

    def disk_full(guild_id: int):
        raise OSError(28, "No space left on device")

    gated.ask_many = raising_for_one_question  # type: ignore[method-assign]
    monkeypatch.setattr(service.library, "store", disk_full)
    first = asyncio.create_task(service.ask("Who did Raisi meet in Caracas?"))
    await asyncio.to_thread(gated.entered.wait, 10)  # the next three wait together: one batch
    batch = [asyncio.create_task(service.ask(question, guild_id=guild))
             for question, guild in (("Where does the tour end?", 1), ("Broken?", 2), ("Which countries?", None))]
    await asyncio.sleep(0)
    gated.gate.set()
    results = await asyncio.gather(first, *batch, return_exceptions=True)
    assert isinstance(results[2], RuntimeError)
    assert all(isinstance(answer, Answer) and not answer.refusal for answer in (results[0], results[1], results[3]))
    await service.close()


async def test_closing_while_it_starts_ends_the_start_as_closed(seed_settings, embedder, monkeypatch) -> None:
    """SIGTERM while the index loads: the start ends with ServiceClosed (a quiet exit), not a RuntimeError
    about an executor shut down under it."""
    import bot.service as service_module

    loading, load = threading.Event(), service_module.load_answerer

    def slow_load(*args, **kwargs):
        loading.set()
        time.sleep(0.5)
        return load(*args, **kwargs)

    monkeypatch.setattr(service_module, "load_answerer", slow_load)
    service = QAService(seed_settings, embedder)
    starting = asyncio.create_task(service.start())
    await asyncio.to_thread(loading.wait, 10)
    await service.close()
    with pytest.raises(ServiceClosed, match="stopped while it was starting"):
        await starting
