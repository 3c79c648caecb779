"""Train Footnote's answer model (bot/models/answer_model.json).

    python eval/train_scorer.py [--train news_2024 squad-half] [--tune news_2023h1:tune seed-calibration]

1. Every question of the training sets is examined as the bot would (retrieval, candidate sentences, features);
   a sentence is positive when it holds an answer string. A logistic regression learns P(sentence answers).
2. Out-of-fold sentence probabilities (5 folds by question) compose each training question's answer as the bot
   would; a second logistic regression learns P(answer right) from the answer's signals: the confidence.
3. On the tuning sets the abstention threshold is the lowest confidence at which shown answers reach the target
   precision (by the Wilson lower bound at z = 1, so a few lucky answers cannot set it), and the short-answer
   threshold likewise for short answers. news_2023h1's held-out weeks
   (eval/splits.json) are never read here; `python -m bot eval … --split heldout` reports them.
Sets: news_2024, news_2023h1[:tune], news_2024-single (one-article corpora cut from news_2024, each with one
answerable and one unanswerable question; eval/single_articles.py), squad-half (the SQuAD sample indexed with half
of its paragraphs, so half of its questions are unanswerable; eval/split_squad_half.py) and seed-calibration (our
own questions about the seed article, eval/calibration_seed.jsonl). Needs scikit-learn (installed with
sentence-transformers); the bot itself only reads the JSON.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

ROOT = Path(__file__).resolve().parents[1]
SHARED_EVAL = ROOT.parent / "shared" / "eval"
sys.path.insert(0, str(ROOT))

import single_articles  # noqa: E402
import split_squad_half  # noqa: E402

from bot.answer import CONFIDENCE_FEATURES, Answerer, Examined, SentenceFinder, span_rows  # noqa: E402
from bot.baseline import SentenceBaseline  # noqa: E402
from bot.cli import _shared_embedder, build_index, corpus_settings  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.evaluation import EvalQuestion, is_correct, matches, names_answer, read_questions, select_split  # noqa: E402
from bot.features import FEATURES, SPAN_FEATURES  # noqa: E402
from bot.scorer import MODEL_PATH, AnswerModel, LinearModel  # noqa: E402
from bot.service import answer_config, search_config  # noqa: E402
from index.store import SnapshotStore  # noqa: E402

TARGET_PRECISION = 0.85
SHORT_TARGET = 0.85
CONFIDENCE_Z = 1.0
FOLDS = 5


@dataclass(frozen=True)
class Dataset:
    name: str
    questions: Path
    corpus: Path
    split: str | None = None

    def digest(self) -> dict:
        return {"set": self.name, "split": self.split or "all", "questions_sha256": _digest(self.questions),
                "corpus_sha256": _digest(self.corpus) if self.corpus.is_file() else "folder"}


def datasets(spec: str) -> list[Dataset]:
    """The sets a name stands for, optionally with a split ("news_2023h1:tune")."""
    name, _, split = spec.partition(":")
    if name == "squad-half":
        folder = ROOT / "var" / "squad-half"
        if not (folder / "questions.jsonl").is_file():
            split_squad_half.main(SHARED_EVAL / "squad2_sample", folder)
        return [Dataset(name, folder / "questions.jsonl", folder / "corpus.jsonl")]
    if name == "seed-calibration":
        return [Dataset(name, ROOT / "eval" / "calibration_seed.jsonl", ROOT / "corpus")]
    if name.endswith("-single"):
        folders = single_articles.main(SHARED_EVAL / name.removesuffix("-single"), ROOT / "var" / name)
        return [Dataset(name, f / "questions.jsonl", f / "corpus.jsonl") for f in folders]
    folder = SHARED_EVAL / name
    return [Dataset(name, folder / "questions.jsonl", folder / "corpus.jsonl", split or None)]


@dataclass
class Example:
    question: EvalQuestion
    examined: Examined
    finder: SentenceFinder


def examine(data: Dataset) -> list[Example]:
    """Index the set's corpus (cached) and examine its questions as the bot would."""
    settings = corpus_settings(load_settings(), data.corpus)
    build_index(settings, corpus=settings.corpus_dir)
    embedder = _shared_embedder(settings)
    snapshot = SnapshotStore(settings.index_dir).load(embedder.name, embedder.dimension, settings.hnsw_ef_search)
    finder = SentenceFinder(snapshot, embedder, search_config(settings), answer_config(settings))
    questions = select_split(read_questions(data.questions), data.questions.parent.name, data.split)
    examples = []
    for start in range(0, len(questions), 32):
        batch = questions[start : start + 32]
        for question, examined in zip(batch, finder.examine_many([(q.question, []) for q in batch]), strict=True):
            examples.append(Example(question, examined, finder))
    return examples


def sentence_labels(example: Example) -> np.ndarray:
    """1 for each candidate sentence that holds the answer (as `eval` judges answers)."""
    if example.question.unanswerable:
        return np.zeros(len(example.examined.candidates))
    return np.array([matches(example.question, c.text) for c in example.examined.candidates], dtype=float)


def fit_linear(rows: np.ndarray, labels: np.ndarray, features: tuple[str, ...], weights: np.ndarray | None = None,
               c: float = 1.0) -> LinearModel:
    mean, scale = rows.mean(axis=0), rows.std(axis=0)
    scale[scale < 1e-9] = 1.0
    model = LogisticRegression(C=c, max_iter=5000).fit((rows - mean) / scale, labels, sample_weight=weights)
    return LinearModel(features, mean, scale, model.coef_[0], float(model.intercept_[0]))


def sentence_model(examples: list[Example]) -> LinearModel:
    usable = [e for e in examples if e.examined.candidates]
    return fit_linear(np.vstack([e.examined.features for e in usable]),
                      np.concatenate([sentence_labels(e) for e in usable]), FEATURES)


def untrained(features: tuple[str, ...]) -> LinearModel:
    size = len(features)
    return LinearModel(features, np.zeros(size), np.ones(size), np.zeros(size), 0.0)


@dataclass
class Outcome:
    signals: np.ndarray | None  # the answer's CONFIDENCE_FEATURES (None: nothing may answer)
    confidence: float
    right: bool
    span_rows: np.ndarray  # SPAN_FEATURES of the spans in the shown sentences
    span_right: np.ndarray  # whether each names the answer
    span_probabilities: np.ndarray


def outcomes(model: AnswerModel, examples: list[Example]) -> list[Outcome]:
    """Each question answered without abstaining, with the spans a short answer could be."""
    answerers: dict[int, Answerer] = {}
    results = []
    for example in examples:
        answerer = answerers.setdefault(id(example.finder), Answerer(example.finder, model))
        draft = answerer.draft(example.examined)
        answer = answerer.answer(example.examined, threshold=0.0)
        rows, right = span_examples(example, answerer, draft.chosen)
        results.append(Outcome(draft.signals, answer.confidence,
                               is_correct(example.question, answer) and not example.question.unanswerable,
                               rows, right, model.span.probability(rows) if len(rows) else np.zeros(0)))
    return results


def span_examples(example: Example, answerer: Answerer, chosen: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """SPAN_FEATURES rows of the shown sentences' answer spans, and whether each names the answer."""
    if example.examined.question.kind is None:
        return np.zeros((0, len(SPAN_FEATURES))), np.zeros(0)
    rows, spans = span_rows(answerer.finder.extractor, example.examined, chosen)
    return rows, np.array([names_answer(example.question, span.text) for _, span in spans], dtype=float)


def out_of_fold(examples: list[Example], seed: int = 0) -> list[Outcome]:
    """Every training question answered by a sentence model fitted on the other folds."""
    fold_of = np.random.default_rng(seed).integers(0, FOLDS, len(examples))
    results: list[Outcome | None] = [None] * len(examples)
    for k in range(FOLDS):
        sentence = sentence_model([e for e, f in zip(examples, fold_of, strict=True) if f != k])
        held = [i for i, f in enumerate(fold_of) if f == k]
        model = AnswerModel(sentence, untrained(CONFIDENCE_FEATURES), untrained(SPAN_FEATURES), 0.0, 2.0)
        for i, outcome in zip(held, outcomes(model, [examples[i] for i in held]), strict=True):
            results[i] = outcome
    return [r for r in results if r is not None]


def confidence_model(folded: list[Outcome]) -> LinearModel:
    """P(answer right) from out-of-fold answers' signals."""
    usable = [o for o in folded if o.signals is not None]
    return fit_linear(np.vstack([o.signals for o in usable]), np.array([o.right for o in usable], dtype=float),
                      CONFIDENCE_FEATURES)


def span_model(folded: list[Outcome]) -> LinearModel:
    """P(span names the answer) from the spans of out-of-fold answers."""
    return fit_linear(np.vstack([o.span_rows for o in folded if len(o.span_rows)]),
                      np.concatenate([o.span_right for o in folded if len(o.span_rows)]), SPAN_FEATURES)


def lowest_threshold(scores: list[float], right: list[bool], target: float, z: float = CONFIDENCE_Z) -> float:
    """The lowest score at which the items at or above it are right at least `target` of the time, by the
    Wilson lower bound at `z` (so a handful of lucky answers does not set the threshold); 1.0 if never."""
    order = np.argsort(scores)[::-1]
    best, hits = 1.0, 0
    for count, i in enumerate(order, start=1):
        hits += right[i]
        if wilson_lower(hits, count, z) >= target:
            best = float(scores[i])
    return best


def wilson_lower(hits: int, count: int, z: float) -> float:
    """Lower bound of the Wilson score interval of a proportion (z = 1: about 84 % one-sided)."""
    p = hits / count
    centre = p + z * z / (2 * count)
    spread = z * math.sqrt(p * (1 - p) / count + z * z / (4 * count * count))
    return (centre - spread) / (1 + z * z / count)


def most_right_decisions(scores: list[float], right: list[bool], unanswerable: list[bool]) -> float:
    """The threshold that maximises answered-right plus abstained-on-unanswerable (the baseline's rule)."""
    def right_decisions(t: float) -> int:
        return sum((s >= t and r) or (s < t and u) for s, r, u in zip(scores, right, unanswerable, strict=True))
    return max(sorted(set(scores)), key=right_decisions)


def baseline_threshold(examples: list[Example]) -> float:
    baselines: dict[int, SentenceBaseline] = {}
    scores, right = [], []
    for example in examples:
        finder = example.finder
        baseline = baselines.setdefault(id(finder), SentenceBaseline(finder.snapshot, finder.embedder))
        answer = baseline.ask(example.question.question)
        scores.append(answer.confidence)
        right.append(is_correct(example.question, answer) and not example.question.unanswerable)
    return most_right_decisions(scores, right, [e.question.unanswerable for e in examples])


def provenance_of(sets: list[Dataset]) -> list[dict]:
    """Each set's name, split and file hashes; one-article corpora are summarised as one entry."""
    entries: dict[str, dict] = {}
    for data in sets:
        if data.name.endswith("-single"):
            entry = entries.setdefault(data.name, {"set": data.name, "corpora": 0, "script": "eval/single_articles.py"})
            entry["corpora"] += 1
        else:
            entries[f"{data.name}:{data.split}"] = data.digest()
    return list(entries.values())


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", nargs="+",
                        default=["news_2024", "news_2024-single", "squad-half", "seed-calibration"])
    parser.add_argument("--tune", nargs="+", default=["news_2023h1:tune"])
    parser.add_argument("--output", type=Path, default=None, help="model file (default: the bot's)")
    args = parser.parse_args(argv)
    if any(spec.startswith("news_2023h1") and not spec.endswith(":tune") for spec in args.train + args.tune):
        parser.error("news_2023h1 may only be used as news_2023h1:tune (its held-out weeks are for reporting)")

    train_sets = [data for spec in args.train for data in datasets(spec)]
    tune_sets = [data for spec in args.tune for data in datasets(spec)]
    train = [example for data in train_sets for example in examine(data)]
    sentence = sentence_model(train)
    folded = out_of_fold(train)
    confidence, span = confidence_model(folded), span_model(folded)
    tune = [example for data in tune_sets for example in examine(data)]
    tuned = outcomes(AnswerModel(sentence, confidence, span, 0.0, 0.0), tune)
    threshold = lowest_threshold([o.confidence for o in tuned], [o.right for o in tuned], TARGET_PRECISION)
    best_spans = [(o.span_probabilities.max(), bool(o.span_right[o.span_probabilities.argmax()]))
                  for o in tuned if len(o.span_rows) and o.confidence >= threshold]
    short_from = lowest_threshold([p for p, _ in best_spans], [r for _, r in best_spans], SHORT_TARGET)
    provenance = {
        "trained": datetime.now(UTC).strftime("%Y-%m-%d"), "script": "eval/train_scorer.py",
        "sentence_and_confidence_models": provenance_of(train_sets),
        "thresholds": {"sets": provenance_of(tune_sets), "target_precision": TARGET_PRECISION,
                       "short_answer_target": SHORT_TARGET, "rule": f"Wilson lower bound at z={CONFIDENCE_Z}"},
    }
    model = AnswerModel(sentence, confidence, span, threshold, short_from, baseline_threshold(tune), provenance)
    model.save(args.output or MODEL_PATH)
    for name, weight in sorted(zip(FEATURES, sentence.coef, strict=True), key=lambda p: -abs(p[1])):
        print(f"sentence   {name:22} {weight:+.3f}")
    for name, weight in zip(CONFIDENCE_FEATURES, confidence.coef, strict=True):
        print(f"confidence {name:22} {weight:+.3f}")
    for name, weight in zip(SPAN_FEATURES, span.coef, strict=True):
        print(f"span       {name:22} {weight:+.3f}")
    print(f"{len(train)} training questions, {len(tune)} tuning questions; abstain below {threshold:.3f}; short "
          f"answers from {short_from:.3f}; baseline abstains below cosine {model.baseline_abstain_below:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
