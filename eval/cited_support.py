"""The labelled support sets on whole chunks: each passage replaced by the chunk(s) of its article that hold it.

A generated sentence cites the answer's evidence, one sentence per passage, as the labelled sets quote them; a
passage can be longer (several cited at once, a long sentence), and these sets measure the harder case where every
passage is a whole chunk (about 120 words). (The `_cited` suffix and "as cited" in reports come from when chunks
were thought to be what a generated sentence cites.) This writes `<set>_cited.jsonl` for each set whose articles
are in the news corpora. Labels are kept, but for the sentences in `CITED_LABELS`: a chunk
can hold the fact that an "unsupported" sentence adds. Every unsupported sentence of the tuning set and the held-out
ones (2,424) was judged again, blind, against the chunks it cites, with a fifth of the supported ones mixed in
(478 of 484 judged supported again); 191 are supported as cited, 178 of them sentences that join facts from two
passages but cite one ("mixed_passages"; 45 % of those), 13 of the other kinds (0.6 %).
Usage: python eval/cited_support.py OUT_DIR SET.jsonl [SET.jsonl ...]
"""

from __future__ import annotations

import bisect
import json
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_EVAL = ROOT.parent / "shared" / "eval"
CORPORA = ("news_2024", "news_2023h1")
sys.path.insert(0, str(ROOT))

from index.chunking import Chunk, Chunker  # noqa: E402
from index.documents import normalise_text  # noqa: E402
from index.embedding import Embedder  # noqa: E402
from index.store import read_jsonl  # noqa: E402

QUOTED_CHARS = 50
"""A passage's article is the one whose text holds the passage's opening this long."""
CITED_LABELS = ROOT / "tests" / "data" / "cited_labels.jsonl"
"""{"set", "sentence", "supported"} of the sentences whose label differs as cited."""


def cited_labels(path: Path = CITED_LABELS) -> dict[tuple[str, str], bool]:
    """The labels as cited that differ from the quoted ones, by (set name, sentence)."""
    rows = read_jsonl(path)
    return {(row["set"], row["sentence"]): bool(row["supported"]) for row in rows}


class CitedChunks:
    """Finds a quoted passage's article in the news corpora and the chunks of it that hold the passage."""

    def __init__(self, embedder: Embedder,
                 corpus_files: Iterable[Path] = tuple(SHARED_EVAL / name / "corpus.jsonl" for name in CORPORA),
                 labels: dict[tuple[str, str], bool] | None = None) -> None:
        """`labels`: the labels as cited that differ from the quoted ones (`cited_labels()` when None)."""
        self.labels = cited_labels() if labels is None else labels
        texts = {}
        for corpus_file in corpus_files:
            for article in read_jsonl(Path(corpus_file)):
                texts[article["doc_id"]] = normalise_text(article["text"])
        self.doc_ids, self.texts = list(texts), texts
        self.starts = []
        at = 0
        for doc_id in self.doc_ids:
            self.starts.append(at)
            at += len(texts[doc_id]) + 1
        self.joined = "\0".join(texts[doc_id] for doc_id in self.doc_ids)
        self.chunker = Chunker(embedder.tokenize_texts, embedder.special_tokens)
        self._chunks: dict[str, list[Chunk]] = {}

    def cited(self, row: dict) -> dict | None:
        """`row` with its passages replaced by the chunks that hold them, or None when its article is unknown."""
        doc_id = row.get("doc_id") or self._article(row["passages"][0])
        if doc_id not in self.texts:
            return None
        text, cited = self.texts[doc_id], []
        for passage in row["passages"]:
            quoted = normalise_text(passage)
            start = text.find(quoted[:QUOTED_CHARS])
            if start < 0:
                return None
            end = start + len(quoted)
            cited += [chunk for chunk in self._holding(doc_id, start, end) if chunk not in cited]
        return {**row, "doc_id": doc_id, "passages": [text[chunk.start : chunk.end] for chunk in cited]}

    def cited_rows(self, rows: Iterable[dict], set_name: str) -> list[dict]:
        """The rows of the set `set_name` whose article is known, as cited (`cited`), labelled as cited."""
        cited = [row for row in map(self.cited, rows) if row is not None]
        return [{**row, "supported": self.labels.get((set_name, row["sentence"]), row["supported"])}
                for row in cited]

    def _article(self, passage: str) -> str | None:
        where = self.joined.find(normalise_text(passage)[:QUOTED_CHARS])
        return None if where < 0 else self.doc_ids[bisect.bisect_right(self.starts, where) - 1]

    def _holding(self, doc_id: str, start: int, end: int) -> list[Chunk]:
        """The chunk that overlaps [start, end) most, and the next one when the passage runs on into it."""
        if doc_id not in self._chunks:
            self._chunks[doc_id] = self.chunker.split(doc_id, self.texts[doc_id])[1]
        chunks = self._chunks[doc_id]
        best = max(chunks, key=lambda chunk: min(chunk.end, end) - max(chunk.start, start))
        after = [chunk for chunk in chunks if chunk.end > best.end and chunk.start < end]
        return [best, *after[:1]]


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    finder = CitedChunks(Embedder(cache_dir=ROOT / "var" / "models"))
    for path in map(Path, argv[1:]):
        rows = read_jsonl(path)
        cited = finder.cited_rows(rows, path.stem)
        if len(cited) < 0.9 * len(rows):
            continue  # not a set on the news corpora (the seed article's, say)
        target = out / f"{path.stem}_cited.jsonl"
        target.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in cited), encoding="utf-8")
        print(f"{target}: {len(cited)} of {len(rows)} rows", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
