"""The usual LangChain stack (recursive splitter, FAISS, HuggingFaceEmbeddings) against Footnote on SQuAD.

Both answer the same questions in turn, question by question, so that drift of the machine hits both alike.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from benchmarks.common import Context, log, percentiles
from benchmarks.corpora import Corpus, Question
from benchmarks.report import Section, Target
from bot.service import load_answerer
from index.embedding import default_model_path

CORPUS = "squad2"
CHUNK_CHARS, OVERLAP_CHARS, K = 800, 100, 5
FASTER = Target("<", 1.0)
WARM_UP = 5


def recall(ranked: list[list[str]], questions: list[Question], k: int) -> float:
    """Share of questions whose gold document is among the first `k` retrieved documents."""
    hits = sum(bool(set(q.doc_ids) & set(r[:k])) for q, r in zip(questions, ranked, strict=True))
    return hits / len(questions)


def _langchain_store(corpus: Corpus):
    """(store, build seconds, chunks): split, embed and index the corpus; the model loads before the clock
    and a first, unmeasured build warms it up, as the build benchmark does for Footnote."""
    from langchain_community.vectorstores import FAISS
    from langchain_core.documents import Document
    from langchain_huggingface import HuggingFaceEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    embeddings = HuggingFaceEmbeddings(model_name=str(default_model_path()), model_kwargs={"device": "cpu"},
                                       encode_kwargs={"normalize_embeddings": True})
    embeddings.embed_query("warm up")
    records = [json.loads(line) for line in corpus.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def build():
        splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_CHARS, chunk_overlap=OVERLAP_CHARS)
        documents = splitter.split_documents(
            [Document(page_content=r["text"], metadata={"doc_id": r["doc_id"]}) for r in records])
        return FAISS.from_documents(documents, embeddings), len(documents)

    build()  # warm-up, unmeasured
    started = time.perf_counter()
    store, chunks = build()
    return store, time.perf_counter() - started, chunks


def _documents_of(store) -> Callable[[str], list[str]]:
    """Document ids of LangChain's top-k chunks for a question, in order."""
    return lambda question: list(dict.fromkeys(d.metadata["doc_id"] for d in store.similarity_search(question, k=K)))


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
    store, lc_build, lc_chunks = _langchain_store(corpus)
    answerer = load_answerer(ctx.settings[CORPUS], ctx.embedder)
    systems = {"langchain": _documents_of(store), "ask": answerer.ask, "retrieval": answerer.ranked_documents}
    ranked, samples = _interleaved(systems, [q.question for q in corpus.questions])
    ms = {name: percentiles(values) for name, values in samples.items()}
    built = ctx.results["build"][CORPUS]
    section = Section(f"Peer: LangChain (RecursiveCharacterTextSplitter {CHUNK_CHARS}/{OVERLAP_CHARS}, FAISS, "
                      f"HuggingFaceEmbeddings) vs Footnote on {CORPUS}, {len(corpus.questions)} questions")
    section.add(f"LangChain build ({lc_chunks} chunks embedded)", lc_build, "s")
    section.add(f"Footnote build ({built['embedded_texts']:,} chunks embedded)",
                built["build_seconds"], "s")
    section.add("build time ratio Footnote / LangChain", built["build_seconds"] / lc_build, "x", FASTER)
    for p in ("p50", "p95"):
        section.add(f"LangChain similarity_search k={K}: {p}", ms["langchain"][p], "ms")
        section.add(f"Footnote ask (full answer): {p}", ms["ask"][p], "ms")
        section.add(f"{p} ratio Footnote ask / LangChain", ms["ask"][p] / ms["langchain"][p], "x", FASTER)
        section.add(f"Footnote retrieval only (ranked_documents): {p}", ms["retrieval"][p], "ms")
    for k in (1, 5):
        lc_recall, fn_recall = (recall(ranked[name], corpus.questions, k) for name in ("langchain", "retrieval"))
        section.add(f"LangChain recall@{k}", lc_recall)
        section.add(f"Footnote recall@{k}", fn_recall)
        section.add(f"recall@{k} Footnote - LangChain", fn_recall - lc_recall, "", Target(">=", 0.0))
    section.details = {"langchain": {"build_seconds": round(lc_build, 3), "chunks": lc_chunks},
                       "footnote": {"build_seconds": built["build_seconds"]}, "query_ms": ms}
    log(f"peer: LangChain build {lc_build:.1f} s, p50 {ms['langchain']['p50']} ms, Footnote ask {ms['ask']['p50']} ms")
    return section
