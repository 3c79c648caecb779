from __future__ import annotations

import json
import sys

import pytest

from index.embedding import Embedder
from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "eval"))
import cited_support
import train_support

HARBOUR = " ".join(f"Sentence {s} tells of the harbour, its cranes and its {s * 10} ships." for s in range(40))
TABLE = " ".join(f"Runner{n} Town{n} Club{n} {n}" for n in range(50)) + " finished."


@pytest.fixture(scope="module")
def finder(tmp_path_factory: pytest.TempPathFactory, embedder: Embedder) -> cited_support.CitedChunks:
    corpus = tmp_path_factory.mktemp("train_support") / "corpus.jsonl"
    corpus.write_text(json.dumps({"doc_id": "harbour", "text": HARBOUR}) + "\n", encoding="utf-8")
    return cited_support.CitedChunks(embedder, [corpus], labels={})


def test_the_model_trains_on_every_labelled_set_but_the_tuning_and_held_out_ones() -> None:
    names = train_support.training_sets()
    assert {"support_answers_train", "support_short_train", "support_labelled"} <= set(names)
    assert train_support.TUNE not in names and not set(train_support.HELD_OUT) & set(names)


def test_no_copied_sentence_leaves_the_passage_too_little_room(embedder: Embedder) -> None:
    """A table read as one 200-word sentence, copied as a supported sentence, once stopped training."""
    passages = [f"{TABLE} The harbour opened on Monday with twelve new cranes. The mayor cut a ribbon there."]
    rows = [{"passages": [f"{passages[0]} Row {n}."], "sentence": "x", "supported": True} for n in range(60)]
    copies = train_support.passage_copies(rows, train_support.RuleMadePairs(0))
    sizes = embedder.count_tokens([copy["sentence"] for copy in copies])
    assert copies and max(sizes) < train_support.MAX_TOKENS // 2
    assert max(len(copy["sentence"].split()) for copy in copies) <= 2 * train_support.COPIED_WORDS


def test_rows_whose_missing_fact_a_chunk_may_hold_are_not_copied_as_cited(finder: cited_support.CitedChunks,
                                                                        embedder: Embedder) -> None:
    quoted = "Sentence 12 tells of the harbour, its cranes and its 120 ships."
    rows = [{"passages": [quoted], "sentence": f"The harbour had {n} cranes.", "supported": supported, "kind": kind}
            for n in range(30) for kind in ("uncited", "mixed_passages", "reversal") for supported in (True, False)]
    made = train_support.cited_copies(rows, finder, embedder, seed=0)
    kinds = {(row["kind"], row["supported"]) for row in made}
    assert ("reversal", False) in kinds and ("uncited", True) in kinds and ("mixed_passages", True) in kinds
    assert not kinds & {("uncited", False), ("mixed_passages", False)}
    assert all(quoted in " ".join(row["passages"]) for row in made)
