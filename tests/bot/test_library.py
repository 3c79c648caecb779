"""Each server's own sources: adding, updating, quotas, removing, answers kept apart, and the loaded-index budget."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import bot.library as library_module
from bot.config import Settings
from bot.library import GuildLibrary, SourceRefused, read_link, source_documents
from bot.service import QAService, make_builder
from bot.sources import Adder, open_registry
from index.builder import BuildCancelled, BuildInProgress
from index.embedding import Embedder
from index.extract import extract_upload
from tests.conftest import NEWS, make_settings
from tests.fakes.pdf import minimal_pdf
from tests.fakes.web_server import FakeWebServer, page
from tests.index.test_builder import write_articles

ARTICLES = {json.loads(line)["doc_id"]: json.loads(line)
            for line in (NEWS / "corpus.jsonl").read_text(encoding="utf-8").splitlines()}
EDITOR = Adder(42, "editor")
GUILD, OTHER_GUILD = 1001, 2002


def markdown_upload(doc_id: str) -> tuple[str, bytes]:
    article = ARTICLES[doc_id]
    front = f"---\ntitle: {json.dumps(article['title'])}\nurl: {article['url']}\n---\n"
    return f"{doc_id}.md", (front + article["text"]).encode("utf-8")


@pytest.fixture(params=["sqlite", "postgres"])
def library(request: pytest.FixtureRequest, tmp_path: Path, embedder: Embedder):
    """A library with its registry in SQLite, or with everything (registry, files, indexes) in PostgreSQL."""
    url = request.getfixturevalue("database_url") if request.param == "postgres" else None
    settings = make_settings(tmp_path, database_url=url)
    registry = open_registry(settings)
    yield GuildLibrary(settings, embedder, registry)
    registry.close()


def test_an_added_article_is_indexed_recorded_and_audited_for_its_server_only(library: GuildLibrary) -> None:
    added = library.add(GUILD, extract_upload(*markdown_upload("harbor-bridge-2024")), EDITOR)
    assert not added.updated and added.sentences >= 4
    assert added.source.title == ARTICLES["harbor-bridge-2024"]["title"] and added.source.added_by_name == "editor"
    assert [p.name for p in library.corpus_dir(GUILD).iterdir()] == [f"{added.source.name}.jsonl"]
    answer = library.answerer(GUILD).ask("How much did the Lantern Bridge cost?", threshold=0.0)
    assert "$410 million" in answer.answer
    assert answer.citations[0].doc_id == added.source.name
    assert library.answerer(OTHER_GUILD) is None and not library.corpus_dir(OTHER_GUILD).exists()
    assert [(e.action, e.user_id) for e in library.registry.audit(GUILD)] == [("added", 42)]


def test_the_same_article_added_again_is_updated_not_duplicated(library: GuildLibrary) -> None:
    first = library.add(GUILD, extract_upload(*markdown_upload("harbor-bridge-2024")), EDITOR)
    again = library.add(GUILD, extract_upload(*markdown_upload("harbor-bridge-2024")), Adder(7, "other"))
    assert again.updated and again.source.source_id == first.source.source_id
    assert again.source.added_by_name == "editor"  # who first added it stays
    assert len(library.registry.sources(GUILD)) == 1 and len(list(library.corpus_dir(GUILD).iterdir())) == 1
    assert [e.action for e in library.registry.audit(GUILD)] == ["updated", "added"]


def test_quotas_refuse_before_anything_is_written(tmp_path: Path, embedder: Embedder) -> None:
    settings = make_settings(tmp_path, guild_max_sources=1, guild_max_mb=0.0002)
    library = GuildLibrary(settings, embedder, open_registry(settings))
    try:
        with pytest.raises(SourceRefused, match="MB"):
            library.add(GUILD, extract_upload(*markdown_upload("harbor-bridge-2024")), EDITOR)
        assert library.registry.sources(GUILD) == [] and not any(library.corpus_dir(GUILD).glob("*"))
        library.settings = settings.model_copy(update={"guild_max_mb": 10.0})
        library.add(GUILD, extract_upload(*markdown_upload("harbor-bridge-2024")), EDITOR)
        second = next(doc_id for doc_id in ARTICLES if doc_id != "harbor-bridge-2024")
        with pytest.raises(SourceRefused, match="most allowed"):
            library.add(GUILD, extract_upload(*markdown_upload(second)), EDITOR)
        assert len(library.registry.sources(GUILD)) == 1 and len(list(library.corpus_dir(GUILD).iterdir())) == 1
    finally:
        library.registry.close()


def test_a_source_larger_than_the_indexer_reads_is_refused_before_anything_is_written(
        tmp_path: Path, embedder: Embedder) -> None:
    """Stored as JSON lines a source can outgrow the file limit it fit as an upload; the indexer would skip the
    file (and the admin saw its path in the error)."""
    settings = make_settings(tmp_path, max_file_mb=0.0001)
    library = GuildLibrary(settings, embedder, open_registry(settings))
    try:
        with pytest.raises(SourceRefused, match=r"the most one source may hold is 0\.0001 MB") as refused:
            library.add(GUILD, extract_upload(*markdown_upload("harbor-bridge-2024")), EDITOR)
        assert str(tmp_path) not in str(refused.value)
        assert library.registry.sources(GUILD) == [] and not any(library.corpus_dir(GUILD).glob("*"))
    finally:
        library.registry.close()


def test_a_build_that_fails_leaves_nothing_half_added(library: GuildLibrary) -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(BuildCancelled):
        library.add(GUILD, extract_upload(*markdown_upload("harbor-bridge-2024")), EDITOR, stop=stop)
    assert library.registry.sources(GUILD) == [] and list(library.corpus_dir(GUILD).iterdir()) == []
    assert library.registry.audit(GUILD) == [] and library.answerer(GUILD) is None


def test_removing_sources_rebuilds_and_the_last_one_takes_the_index_with_it(library: GuildLibrary) -> None:
    ids = [doc_id for doc_id in ARTICLES][:2]
    added = [library.add(GUILD, extract_upload(*markdown_upload(d)), EDITOR) for d in ids]
    library.remove(GUILD, added[0].source.source_id, Adder(9, "mod"))
    answerer = library.answerer(GUILD)
    assert set(answerer.snapshot.documents) == {added[1].source.name}
    with pytest.raises(SourceRefused, match="no such source"):
        library.remove(GUILD, added[0].source.source_id, EDITOR)
    with pytest.raises(SourceRefused):
        library.remove(OTHER_GUILD, added[1].source.source_id, EDITOR)  # another server's source
    library.remove(GUILD, added[1].source.source_id, EDITOR)
    assert library.answerer(GUILD) is None and library.registry.sources(GUILD) == []
    assert [(e.action, e.user_name) for e in library.registry.audit(GUILD)][:2] == [("removed", "editor"),
                                                                                   ("removed", "mod")]


def test_the_last_source_is_not_removed_while_a_rebuild_holds_the_index(library: GuildLibrary) -> None:
    """A rebuild under way would publish the removed article again after the drop: the removal waits its turn
    (BuildInProgress, as /remove tells the admin), and nothing changes meanwhile."""
    added = library.add(GUILD, extract_upload(*markdown_upload("harbor-bridge-2024")), EDITOR)
    with library.store(GUILD).build_lock(), pytest.raises(BuildInProgress):
        library.remove(GUILD, added.source.source_id, EDITOR)
    assert [s.source_id for s in library.registry.sources(GUILD)] == [added.source.source_id]
    assert library.store(GUILD).current_path() is not None
    assert (library.corpus_dir(GUILD) / f"{added.source.name}.jsonl").is_file()
    library.remove(GUILD, added.source.source_id, EDITOR)
    assert library.answerer(GUILD) is None and library.store(GUILD).current_path() is None


def test_two_processes_changing_one_server_at_once_lose_nothing(library: GuildLibrary, embedder: Embedder,
                                                                 tmp_path: Path) -> None:
    """The first add has published its index and is about to record its source when a second process adds
    another: that one waits, rather than rebuild from a registry without the first (which dropped it from the
    index) or set the first's file aside as unrecorded."""
    shared_db = library.settings.database_url is not None
    settings = library.settings.model_copy(update={"guilds_dir": tmp_path / "two"}) if shared_db else library.settings
    other = GuildLibrary(settings, embedder, open_registry(settings))
    first, second = [d for d in ARTICLES][:2]
    in_window, resume = threading.Event(), threading.Event()
    record = library.registry.record

    def record_after_a_pause(*args, **kwargs):
        in_window.set()
        resume.wait(timeout=60)
        return record(*args, **kwargs)

    library.registry.record = record_after_a_pause
    with ThreadPoolExecutor(2) as pool:
        adding = pool.submit(library.add, GUILD, extract_upload(*markdown_upload(first)), EDITOR)
        assert in_window.wait(timeout=60)
        meanwhile = pool.submit(other.add, GUILD, extract_upload(*markdown_upload(second)), Adder(7, "other"))
        time.sleep(1)
        resume.set()
        names = {adding.result(timeout=60).source.name, meanwhile.result(timeout=60).source.name}
    other.registry.close()
    assert {s.name for s in library.registry.sources(GUILD)} == names
    assert set(library.store(GUILD).load(embedder.name, embedder.dimension).doc_ids) == names


def test_a_pdf_is_indexed_page_by_page_and_citations_name_the_page(library: GuildLibrary) -> None:
    pdf = minimal_pdf(["The council met on Monday to discuss the harbour budget.",
                       "",
                       "The council approved 12 new ferries for the harbour route."], title="Council minutes")
    added = library.add(GUILD, extract_upload("minutes.pdf", pdf), EDITOR)
    assert [d.title for d in added.documents] == ["Council minutes, p. 1", "Council minutes, p. 3"]
    answer = library.answerer(GUILD).ask("How many ferries did the council approve?", threshold=0.0)
    assert "12 new ferries" in answer.answer and answer.citations[0].title == "Council minutes, p. 3"


def test_source_documents_of_a_bundle_are_numbered_under_the_stored_name() -> None:
    bundle = "\n".join(json.dumps({"doc_id": d, "text": a["text"], "title": a["title"]})
                       for d, a in list(ARTICLES.items())[:2]).encode()
    documents = source_documents(extract_upload("two.jsonl", bundle), "stored-name")
    assert [d.doc_id for d in documents] == ["stored-name-1", "stored-name-2"]


def test_loaded_server_indexes_stay_within_the_memory_budget(tmp_path: Path, embedder: Embedder) -> None:
    settings = make_settings(tmp_path, guild_cache_mb=0.01)
    library = GuildLibrary(settings, embedder, open_registry(settings))
    try:
        for guild, doc_id in zip((GUILD, OTHER_GUILD), ARTICLES, strict=False):
            library.add(guild, extract_upload(*markdown_upload(doc_id)), EDITOR)
        assert list(library._loaded) == [OTHER_GUILD]  # each index is larger than the budget: one stays loaded
        assert library.answerer(GUILD) is not None and list(library._loaded) == [GUILD]
    finally:
        library.registry.close()


async def test_a_servers_sources_answer_there_and_nowhere_else(tmp_path: Path, seed_settings, embedder) -> None:
    service = QAService(seed_settings.model_copy(update={"guilds_dir": tmp_path / "guilds",
                                                         "database_path": tmp_path / "footnote.db"}), embedder)
    await service.start()
    try:
        await service.add_source(GUILD, extract_upload(*markdown_upload("harbor-bridge-2024")), EDITOR)
        question = "How much did the Lantern Bridge in Harbor City cost?"
        here = await service.ask(question, guild_id=GUILD)
        elsewhere, in_dm = await service.ask(question, guild_id=OTHER_GUILD), await service.ask(question)
        assert not here.abstained and "$410 million" in here.answer
        assert all("410" not in a.answer for a in (elsewhere, in_dm))
        shared = await service.ask("Who did Raisi meet in Caracas?", guild_id=GUILD)
        assert "Maduro" in shared.answer  # the shared corpus still answers in the server
        assert service.stats(GUILD).documents == service.stats().documents + 1
    finally:
        await service.close()


def test_the_same_link_with_new_text_updates_its_source(library: GuildLibrary) -> None:
    name, data = markdown_upload("harbor-bridge-2024")
    first = library.add(GUILD, extract_upload(name, data), EDITOR)
    edited = data.replace(b"$410 million", b"$415 million")
    again = library.add(GUILD, extract_upload(name, edited), EDITOR)
    assert again.updated and again.source.source_id == first.source.source_id
    assert "$415 million" in library.answerer(GUILD).ask("How much did the Lantern Bridge cost?", threshold=0.0).answer


async def test_a_source_added_during_a_reindex_waits_for_it_and_is_added(
        tmp_path: Path, embedder: Embedder, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedder, "batch_size", 2)  # many small batches: the reindex lasts a moment
    corpus = tmp_path / "corpus"
    write_articles(corpus, 30)
    settings = make_settings(tmp_path, corpus)
    make_builder(settings, embedder).build(corpus)
    service = QAService(settings, embedder)
    await service.start()
    try:
        reindex = asyncio.create_task(service.reindex(full=True))
        await asyncio.sleep(0)
        assert service.building
        added = await service.add_source(GUILD, extract_upload(*markdown_upload("harbor-bridge-2024")), EDITOR)
        assert reindex.done() and (await reindex).documents == 30  # the add waited for the reindex
        assert added.sentences >= 4 and service.sources(GUILD)[0].source_id == added.source.source_id
    finally:
        await service.close()


def two_machines(tmp_path: Path, database_url: str, **overrides: object) -> list[Settings]:
    """Settings of two processes on two machines: one database, each its own var folder."""
    return [make_settings(tmp_path / machine, tmp_path / "corpus", database_url=database_url, **overrides)
            for machine in ("one", "two")]


def test_a_servers_sources_outlive_the_machine_that_added_them(tmp_path: Path, database_url: str,
                                                               embedder: Embedder) -> None:
    first, second = (GuildLibrary(s, embedder, open_registry(s)) for s in two_machines(tmp_path, database_url))
    try:
        bridge = first.add(GUILD, extract_upload(*markdown_upload("harbor-bridge-2024")), EDITOR).source
        assert not second.corpus_dir(GUILD).exists()
        answer = second.answerer(GUILD).ask("How much did the Lantern Bridge cost?", threshold=0.0)
        assert "$410 million" in answer.answer  # from the published version, copied from the database

        other = next(doc_id for doc_id in ARTICLES if doc_id != "harbor-bridge-2024")
        added = second.add(GUILD, extract_upload(*markdown_upload(other)), EDITOR).source
        names = {bridge.name, added.name}
        assert {p.stem for p in second.corpus_dir(GUILD).iterdir()} == names  # the first file restored, then built
        assert set(second.answerer(GUILD).snapshot.documents) == names

        first.remove(GUILD, bridge.source_id, EDITOR)  # the first machine gets the second's file before building
        assert set(first.answerer(GUILD).snapshot.documents) == {added.name}
        second.rebuild(GUILD)  # and the second lets the removed one go
        assert {p.stem for p in second.corpus_dir(GUILD).iterdir()} == {added.name}
        assert set(second.answerer(GUILD).snapshot.documents) == {added.name}
    finally:
        first.registry.close()
        second.registry.close()


async def test_a_source_added_in_one_process_answers_in_the_other(tmp_path: Path, database_url: str,
                                                                 embedder: Embedder) -> None:
    write_articles(tmp_path / "corpus", 3)
    settings = two_machines(tmp_path, database_url, abstain_threshold=0.0)
    make_builder(settings[0], embedder).build(settings[0].corpus_dir)
    first, second = (QAService(s, embedder) for s in settings)
    await first.start()
    await second.start()
    question = "How much did the Lantern Bridge in Harbor City cost?"

    async def answered_in_second(figure: str) -> None:
        async with asyncio.timeout(30):  # NOTIFY reaches the second process, which lets its answerer go
            while figure not in (await second.ask(question, guild_id=GUILD)).answer:
                await asyncio.sleep(0.05)

    try:
        assert "410" not in (await second.ask(question, guild_id=GUILD)).answer  # no sources there yet
        name, data = markdown_upload("harbor-bridge-2024")
        await first.add_source(GUILD, extract_upload(name, data), EDITOR)
        await answered_in_second("$410 million")
        await first.add_source(GUILD, extract_upload(name, data.replace(b"$410 million", b"$415 million")), EDITOR)
        await answered_in_second("$415 million")
        assert second.library.answerer(GUILD).snapshot.snapshot_id == first.library.answerer(GUILD).snapshot.snapshot_id
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize("upload_name", [None, "notes.md"])
async def test_a_fetched_page_or_upload_is_extracted_off_the_event_loop(tmp_path: Path, monkeypatch,
                                                                       upload_name: str | None) -> None:
    threads = []
    extract = library_module.extract_upload if upload_name else library_module.extract_fetched
    target = "extract_upload" if upload_name else "extract_fetched"
    monkeypatch.setattr(library_module, target,
                        lambda *args: threads.append(threading.current_thread()) or extract(*args))
    settings = make_settings(tmp_path, fetch_allow_hosts=["127.0.0.1"])
    article = "# Harbour\n\nThe harbour office said that port traffic rose again in the third week of May."
    async with FakeWebServer() as web:
        web.route("/notes.md", page(f"<html><head><title>Harbour</title></head><body><article><p>{article}</p>"
                                    "</article></body></html>" if upload_name is None else article))
        extracted, _ = await read_link(web.url("/notes.md"), settings, upload_name)
    assert extracted and "port traffic rose" in extracted[0].document.text
    assert threads and threads[0] is not threading.main_thread()


def _bundle(*doc_ids: str) -> list:
    """A JSON-lines bundle of the articles, without links (so its stored name comes from its first one's text)."""
    lines = [json.dumps({"doc_id": d, "title": ARTICLES[d]["title"], "text": ARTICLES[d]["text"]}) for d in doc_ids]
    return extract_upload("bundle.jsonl", "\n".join(lines).encode())


def test_two_bundles_that_open_with_the_same_article_are_two_sources(library: GuildLibrary) -> None:
    first_id, second_id, third_id = list(ARTICLES)[:3]
    week1 = library.add(GUILD, _bundle(first_id, second_id), EDITOR)
    week2 = library.add(GUILD, _bundle(first_id, third_id), EDITOR)
    assert not week2.updated and week2.source.name != week1.source.name
    assert sorted(s.source_id for s in library.registry.sources(GUILD)) == [week1.source.source_id,
                                                                          week2.source.source_id]
    titles = {d.title for d in library.answerer(GUILD).snapshot.documents.values()}
    assert {ARTICLES[d]["title"] for d in (first_id, second_id, third_id)} <= titles


def test_a_source_the_registry_fails_to_record_is_taken_out_of_the_index(library: GuildLibrary, monkeypatch) -> None:
    kept = library.add(GUILD, extract_upload(*markdown_upload("harbor-bridge-2024")), EDITOR)
    other = next(doc_id for doc_id in ARTICLES if doc_id != "harbor-bridge-2024")

    def failing(*args, **kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(library.registry, "record", failing)
    with pytest.raises(RuntimeError, match="went away"):
        library.add(GUILD, extract_upload(*markdown_upload(other)), EDITOR)
    assert [s.source_id for s in library.registry.sources(GUILD)] == [kept.source.source_id]
    assert [p.name for p in library.corpus_dir(GUILD).iterdir()] == [f"{kept.source.name}.jsonl"]
    assert set(library.answerer(GUILD).snapshot.documents) == {kept.source.name}


def test_a_file_no_source_lists_is_set_aside_not_indexed(tmp_path: Path, embedder: Embedder) -> None:
    settings = make_settings(tmp_path)
    library = GuildLibrary(settings, embedder, open_registry(settings))
    try:
        corpus = library.corpus_dir(GUILD)
        corpus.mkdir(parents=True)
        unrecorded = corpus / "killed-mid-add.jsonl"  # as an add killed between its build and its record leaves
        article = ARTICLES["harbor-bridge-2024"]
        unrecorded.write_text(json.dumps({"doc_id": "killed-mid-add", "title": article["title"],
                                          "text": article["text"]}) + "\n", encoding="utf-8")
        other = next(doc_id for doc_id in ARTICLES if doc_id != "harbor-bridge-2024")
        added = library.add(GUILD, extract_upload(*markdown_upload(other)), EDITOR)
        assert set(library.answerer(GUILD).snapshot.documents) == {added.source.name}
        assert [p.name for p in corpus.iterdir()] == [f"{added.source.name}.jsonl"]
        assert (corpus.parent / "unrecorded" / unrecorded.name).is_file()
    finally:
        library.registry.close()
