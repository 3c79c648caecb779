"""The learned parts of answering, read from one small versioned JSON file.

`AnswerModel` holds three logistic regressions trained by `eval/train_scorer.py`: one gives each candidate
sentence the probability that it holds the answer (over `bot.features.FEATURES`), one turns the chosen
answer's signals into the calibrated probability that the shown answer is right (`CONFIDENCE_FEATURES`), and
one gives each name, number or date in the shown sentences the probability that it is the short answer.
The file also names its training data and the thresholds chosen on the tuning split. Inference is a dot
product in NumPy: scikit-learn is needed only to train.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

MODEL_PATH = Path(__file__).parent / "models" / "answer_model.json"
MODEL_VERSION = 1


class ModelError(Exception):
    """The answer model file is missing, unreadable, or made for other features."""


@dataclass(frozen=True)
class LinearModel:
    """Standardised logistic regression: p = σ(((x − mean) / scale) · coef + intercept)."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def logit(self, rows: np.ndarray) -> np.ndarray:
        return ((rows - self.mean) / self.scale) @ self.coef + self.intercept

    def probability(self, rows: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(self.logit(rows), -30, 30)))

    def to_json(self) -> dict:
        return {"features": list(self.features), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept}

    @classmethod
    def from_json(cls, data: dict, expected: tuple[str, ...]) -> LinearModel:
        features = tuple(data["features"])
        if features != expected:
            differ = sorted(set(features) ^ set(expected)) or ["their order"]
            raise ModelError(f"the answer model does not match this Footnote's features (differing: "
                             f"{', '.join(differ)}): retrain it with `python eval/train_scorer.py`")
        return cls(features, np.asarray(data["mean"], float), np.asarray(data["scale"], float),
                   np.asarray(data["coef"], float), float(data["intercept"]))


@dataclass(frozen=True)
class AnswerModel:
    sentence: LinearModel
    confidence: LinearModel
    span: LinearModel
    abstain_below: float
    short_answer_from: float
    baseline_abstain_below: float = 0.5
    provenance: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        return {"version": MODEL_VERSION, "provenance": self.provenance, "abstain_below": self.abstain_below,
                "short_answer_from": self.short_answer_from, "baseline_abstain_below": self.baseline_abstain_below,
                "sentence": self.sentence.to_json(), "span": self.span.to_json(),
                "confidence": self.confidence.to_json()}

    def save(self, path: Path = MODEL_PATH) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")


def load_model(sentence_features: tuple[str, ...], confidence_features: tuple[str, ...],
               span_features: tuple[str, ...], path: Path = MODEL_PATH) -> AnswerModel:
    """Read the model file, checking it matches the features this code computes."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read the answer model {path}: {exc}") from exc
    if data.get("version") != MODEL_VERSION:
        raise ModelError(f"answer model {path} has version {data.get('version')}, expected {MODEL_VERSION}")
    return AnswerModel(LinearModel.from_json(data["sentence"], sentence_features),
                       LinearModel.from_json(data["confidence"], confidence_features),
                       LinearModel.from_json(data["span"], span_features),
                       float(data["abstain_below"]), float(data["short_answer_from"]),
                       float(data["baseline_abstain_below"]), data.get("provenance", {}))
