"""The training script end to end on the made-up news set: fitted models rank answers and load back."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from bot.answer import CONFIDENCE_FEATURES, Answerer, SentenceFinder
from bot.evaluation import read_questions
from bot.features import FEATURES, SPAN_FEATURES
from bot.scorer import ModelError, load_model
from bot.service import answer_config, search_config
from index.embedding import Embedder
from index.store import SnapshotStore
from tests.conftest import NEWS, ROOT

sys.path.insert(0, str(ROOT / "eval"))
import train_scorer


@pytest.fixture(scope="module")
def examples(news_settings, embedder: Embedder) -> list[train_scorer.Example]:
    snapshot = SnapshotStore(news_settings.index_dir).load(embedder.name, embedder.dimension)
    finder = SentenceFinder(snapshot, embedder, search_config(news_settings), answer_config(news_settings))
    questions = read_questions(NEWS / "questions.jsonl")
    examined = finder.examine_many([(q.question, []) for q in questions])
    return [train_scorer.Example(q, e, finder) for q, e in zip(questions, examined, strict=True)]


def test_training_fits_models_that_rank_answers_and_round_trip(examples, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(train_scorer, "FOLDS", 2)
    sentence = train_scorer.sentence_model(examples)
    top_right = []
    for example in examples:
        if example.question.unanswerable:
            continue
        labels = train_scorer.sentence_labels(example)
        top_right.append(labels[int(np.argmax(sentence.probability(example.examined.features)))])
    assert np.mean(top_right) >= 0.75  # on its own training questions

    folded = train_scorer.out_of_fold(examples)
    assert len(folded) == len(examples) and any(o.right for o in folded) and not all(o.right for o in folded)
    confidence, span = train_scorer.confidence_model(folded), train_scorer.span_model(folded)
    model = train_scorer.AnswerModel(sentence, confidence, span, 0.5, 0.6, 0.4, {"script": "test"})
    path = tmp_path / "model.json"
    model.save(path)
    loaded = load_model(FEATURES, CONFIDENCE_FEATURES, SPAN_FEATURES, path)
    assert loaded.abstain_below == 0.5 and loaded.provenance == {"script": "test"}
    assert np.allclose(loaded.sentence.coef, sentence.coef) and np.allclose(loaded.span.mean, span.mean)
    answer = Answerer(examples[0].finder, loaded).answer(examples[0].examined, threshold=0.0)
    assert answer.citations and 0.0 < answer.confidence < 1.0
    with pytest.raises(ModelError, match="differing: coverage"):
        load_model(tuple(f for f in FEATURES if f != "coverage"), CONFIDENCE_FEATURES, SPAN_FEATURES, path)


def test_thresholds_follow_the_precision_rule() -> None:
    scores = [0.9, 0.8, 0.7, 0.6, 0.5, 0.4]
    right = [True, True, True, False, True, False]
    assert train_scorer.lowest_threshold(scores, right, 0.8, z=0.0) == 0.5  # 4 of the top 5 are right
    assert train_scorer.lowest_threshold(scores, right, 1.0, z=0.0) == 0.7
    assert train_scorer.lowest_threshold(scores, right, 0.5, z=1.0) == 0.5  # 3/3 has a Wilson bound of 0.75
    assert train_scorer.lowest_threshold(scores, right, 0.8, z=1.0) == 1.0  # too few answers to be sure
    assert train_scorer.wilson_lower(85, 100, 1.0) == pytest.approx(0.8108, abs=1e-3)
    assert train_scorer.lowest_threshold([0.3], [False], 0.85) == 1.0  # never reached: answer nothing
    right, unanswerable = [True, True, True, False, False, False], [False, False, False, True, False, True]
    assert train_scorer.most_right_decisions(scores, right, unanswerable) == 0.7


def test_held_out_weeks_cannot_be_trained_on() -> None:
    with pytest.raises(SystemExit):
        train_scorer.main(["--train", "news_2023h1"])
