from __future__ import annotations

import json
import sys

import numpy as np
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
    assert train_support.ANSWERS_TUNE not in names


def test_the_answer_shaped_tuning_set_shares_no_article_with_training() -> None:
    tuning, training = ({row["doc_id"] for row in train_support.read(name)}
                        for name in (train_support.ANSWERS_TUNE, "support_answers_train"))
    assert len(tuning) >= 100 and len(training) >= 300 and not tuning & training


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


def test_the_veto_threshold_weighs_precision_above_recall() -> None:
    """Six supported sentences and five unsupported ones score 0.35, four supported 0.9, five unsupported 0.05.
    Keeping those from 0.35 up is 67 % precise at full recall (F_0.5 0.71, F_1 0.80); from 0.9 up, 100 % at 40 %
    recall (F_0.5 0.77, F_1 0.57): F_0.5 vetoes the 0.35s. When the rules refuse the unsupported 0.35s, the veto
    keeps everything above the rest."""
    supported = np.array([True] * 10 + [False] * 10)
    probabilities = np.array([0.35] * 6 + [0.9] * 4 + [0.35] * 5 + [0.05] * 5)
    rules = np.ones(20, bool)
    assert train_support.threshold(probabilities, rules, supported) == 0.36
    rules[10:15] = False
    assert train_support.threshold(probabilities, rules, supported) == 0.06
