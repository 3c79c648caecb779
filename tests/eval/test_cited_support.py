from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from index.embedding import Embedder
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "eval"))
import cited_support

PARAGRAPHS = [" ".join(f"Paragraph {p} sentence {s} tells of the harbour and its {p * 10 + s} ships."
                       for s in range(12)) for p in range(4)]


@pytest.fixture(scope="module")
def finder(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> cited_support.CitedChunks:
    corpus = tmp_path_factory.mktemp("cited") / "corpus.jsonl"
    corpus.write_text(json.dumps({"doc_id": "harbour", "text": "\n\n".join(PARAGRAPHS)}) + "\n", encoding="utf-8")
    return cited_support.CitedChunks(embedder, [corpus], labels={("support_harbour", "Ships and ships."): True})


def _chunks(finder: cited_support.CitedChunks) -> list[str]:
    text = finder.texts["harbour"]
    return [text[chunk.start : chunk.end] for chunk in finder.chunker.split("harbour", text)[1]]


def test_a_quoted_passage_becomes_the_chunk_that_holds_it(finder: cited_support.CitedChunks) -> None:
    chunks = _chunks(finder)
    assert len(chunks) >= 3
    quoted = next(s for s in chunks[1].split(". ") if s not in chunks[0] and s not in chunks[2]) + "."
    row = finder.cited({"sentence": "There were ships.", "supported": True, "passages": [quoted]})
    assert row is not None and row["doc_id"] == "harbour" and row["passages"] == [chunks[1]]


def test_a_passage_that_runs_on_into_the_next_chunk_cites_both(finder: cited_support.CitedChunks) -> None:
    text = finder.texts["harbour"]
    first, second = finder.chunker.split("harbour", text)[1][:2]
    quoted = text[first.start + (first.end - first.start) // 3 : second.end - (second.end - second.start) // 2]
    row = finder.cited({"sentence": "Ships.", "supported": True, "passages": [quoted.strip()]})
    assert row is not None and row["passages"] == [text[first.start : first.end], text[second.start : second.end]]


def test_a_passage_from_no_known_article_is_left_out(finder: cited_support.CitedChunks) -> None:
    assert finder.cited({"sentence": "x", "supported": False, "passages": ["Nothing like this is in the corpus."]}) \
        is None


def test_the_script_writes_the_sets_found_and_skips_the_others(tmp_path: Path, finder, monkeypatch) -> None:
    found = tmp_path / "support_harbour.jsonl"
    found.write_text(json.dumps({"sentence": "Ships.", "supported": True,
                                 "passages": [PARAGRAPHS[0][:120]]}) + "\n", encoding="utf-8")
    elsewhere = tmp_path / "support_seed.jsonl"
    elsewhere.write_text(json.dumps({"sentence": "x", "supported": True, "passages": ["Not here."]}) + "\n",
                         encoding="utf-8")
    monkeypatch.setattr(cited_support, "CitedChunks", lambda embedder: finder)
    monkeypatch.setattr(cited_support, "Embedder", lambda **options: None)
    assert cited_support.main([str(tmp_path / "out"), str(found), str(elsewhere)]) == 0
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["support_harbour_cited.jsonl"]


def test_a_sentence_judged_again_against_its_chunks_takes_that_label_in_its_set_only(finder) -> None:
    row = {"sentence": "Ships and ships.", "supported": False, "passages": [PARAGRAPHS[1][:120]]}
    other = {**row, "sentence": "No ships."}
    assert [r["supported"] for r in finder.cited_rows([row, other], "support_harbour")] == [True, False]
    assert [r["supported"] for r in finder.cited_rows([row, other], "support_elsewhere")] == [False, False]


def test_the_shipped_labels_as_cited_name_sentences_of_their_sets() -> None:
    labels = cited_support.cited_labels()
    assert len(labels) > 100 and all(supported for supported in labels.values())
    for set_name in {name for name, _ in labels}:
        quoted = (ROOT / "tests" / "data" / f"{set_name}.jsonl").read_text(encoding="utf-8")
        sentences = {json.loads(line)["sentence"] for line in quoted.splitlines()}
        assert {sentence for name, sentence in labels if name == set_name} <= sentences
