"""The usual LangChain stack (recursive splitter, FAISS, HuggingFaceEmbeddings) against Footnote on SQuAD.

Both build the corpus in turn, three times each after a warm-up (the median is reported), and answer the same
questions in turn, question by question, so that drift of the machine hits both alike.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from collections.abc import Callable

from benchmarks.common import Context, log, percentiles, settings_for
from benchmarks.corpora import Corpus, Question
from benchmarks.report import Section, Target
from bot.config import Settings
from bot.service import load_answerer, make_builder
from index.embedding import Embedder, default_model_path

CORPUS = "squad2"
CHUNK_CHARS, OVERLAP_CHARS, SEARCH_K = 800, 100, 20
FASTER = Target("<", 1.0)
WARM_UP = 5
BUILD_ROUNDS = 3


def recall(ranked: list[list[str]], questions: list[Question], k: int) -> float:
    """Share of questions whose gold document is among the first `k` retrieved documents."""
    hits = sum(bool(set(q.doc_ids) & set(r[:k])) for q, r in zip(questions, ranked, strict=True))
    return hits / len(questions)


def _langchain_builder(corpus: Corpus) -> Callable[[], tuple[object, int]]:
    """A function that splits, embeds and indexes the corpus the LangChain way: (store, chunks). The model
    loads here, before any clock."""
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    embeddings = HuggingFaceEmbeddings(model_name=str(default_model_path()), model_kwargs={"device": "cpu"},
                                       encode_kwargs={"normalize_embeddings": True})
    embeddings.embed_query("warm up")
    records = [json.loads(line) for line in corpus.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def build() -> tuple[object, int]:
        splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_CHARS, chunk_overlap=OVERLAP_CHARS)
        documents = splitter.split_documents(
            [Document(page_content=r["text"], metadata={"doc_id": r["doc_id"]}) for r in records])
        return FAISS.from_documents(documents, embeddings), len(documents)

    return build


def _footnote_builder(settings: Settings, embedder: Embedder) -> Callable[[], tuple[object, int]]:
    """A function that makes a full Footnote build of the corpus with `settings` (a folder of its own):
    (report, chunks)."""

    def build() -> tuple[object, int]:
        report = make_builder(settings, embedder).build(settings.corpus_dir, full=True)
        return report, report.chunks

    return build


def _timed_builds(builders: dict[str, Callable[[], tuple[object, int]]]) -> dict[str, tuple[object, float, int]]:
    """Each builder run once unmeasured, then BUILD_ROUNDS times in turn: (its last result, median seconds,
    chunks) by name."""
    seconds: dict[str, list[float]] = {name: [] for name in builders}
    results: dict[str, tuple[object, int]] = {name: build() for name, build in builders.items()}  # warm-up
    for _ in range(BUILD_ROUNDS):
        for name, build in builders.items():
            started = time.perf_counter()
            results[name] = build()
            seconds[name].append(time.perf_counter() - started)
    return {name: (results[name][0], statistics.median(seconds[name]), results[name][1]) for name in builders}


def _documents_of(store) -> Callable[[str], list[str]]:
    """Document ids of LangChain's top chunks for a question, in order: SEARCH_K chunks, so that its recall@5
    counts five articles as Footnote's does (its top 5 chunks held 4.45 articles on average)."""
    return lambda question: list(dict.fromkeys(d.metadata["doc_id"]
                                               for d in store.similarity_search(question, k=SEARCH_K)))


def _interleaved(systems: dict[str, Callable], questions: list[str]) -> tuple[dict[str, list], dict[str, list]]:
    """Each system's results and milliseconds, the systems taking turns on every question."""
    results: dict[str, list] = {name: [] for name in systems}
    latencies: dict[str, list[float]] = {name: [] for name in systems}
    for question in questions[:WARM_UP]:
        for function in systems.values():
            function(question)
    for question in questions:
        for name, function in systems.items():
            started = time.perf_counter()
            results[name].append(function(question))
            latencies[name].append((time.perf_counter() - started) * 1000)
    return results, latencies


def run(ctx: Context) -> Section:
    corpus = ctx.corpora[CORPUS]
    shutil.rmtree(ctx.work / "peer", ignore_errors=True)
    settings = settings_for(corpus.path, ctx.work / "peer" / "index")
    builds = _timed_builds({"langchain": _langchain_builder(corpus), "footnote": _footnote_builder(settings,
                                                                                                  ctx.embedder)})
    (store, lc_build, lc_chunks), (_, fn_build, fn_chunks) = builds["langchain"], builds["footnote"]
    answerer = load_answerer(settings, ctx.embedder)
    systems = {"langchain": _documents_of(store), "ask": answerer.ask, "retrieval": answerer.ranked_documents}
    ranked, samples = _interleaved(systems, [q.question for q in corpus.questions])
    ms = {name: percentiles(values) for name, values in samples.items()}
    section = Section(f"Peer: LangChain (RecursiveCharacterTextSplitter {CHUNK_CHARS}/{OVERLAP_CHARS}, FAISS, "
                      f"HuggingFaceEmbeddings) vs Footnote on {CORPUS}, {len(corpus.questions)} questions")
    section.add(f"LangChain build ({lc_chunks} chunks embedded), median of {BUILD_ROUNDS}", lc_build, "s")
    section.add(f"Footnote build ({fn_chunks} chunks embedded), median of {BUILD_ROUNDS}", fn_build, "s")
    section.add("build time ratio Footnote / LangChain", fn_build / lc_build, "x", FASTER)
    for p in ("p50", "p95"):
        section.add(f"LangChain similarity_search k={SEARCH_K}: {p}", ms["langchain"][p], "ms")
        section.add(f"Footnote ask (full answer): {p}", ms["ask"][p], "ms")
        section.add(f"{p} ratio Footnote ask / LangChain", ms["ask"][p] / ms["langchain"][p], "x", FASTER)
        section.add(f"Footnote retrieval only (ranked_documents): {p}", ms["retrieval"][p], "ms")
    for k in (1, 5):
        lc_recall, fn_recall = (recall(ranked[name], corpus.questions, k) for name in ("langchain", "retrieval"))
        section.add(f"LangChain recall@{k}", lc_recall)
        section.add(f"Footnote recall@{k}", fn_recall)
        section.add(f"recall@{k} Footnote - LangChain", fn_recall - lc_recall, "", Target(">=", 0.0))
    section.details = {"langchain": {"build_seconds": round(lc_build, 3), "chunks": lc_chunks},
                       "footnote": {"build_seconds": round(fn_build, 3), "chunks": fn_chunks}, "query_ms": ms}
    log(f"peer: LangChain build {lc_build:.1f} s, p50 {ms['langchain']['p50']} ms, Footnote ask {ms['ask']['p50']} ms")
    return section
