"""Does a generated sentence say what its cited passages say? Words, negation, certainty and roles.

A sentence is supported when every content word it uses is in a cited passage (same stem, one of a few
reporting words, or a word whose single-word vector is close to a passage word's), and when each of its
clauses agrees with the passage clauses it may restate: negated exactly when they are, hedged ("may", "plans
to", "expected to") exactly when they are, and naming shared people or places in the same order (so "A fired
B" does not pass for "B fired A"). Checked against only the passages it cites, so a sentence that joins
facts from two passages must cite both.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import nupunkt

from index.lexical import Analyzer, content_words
from index.spans import find_spans

REPORTING_WORDS = frozenset(
    "said says say told stated added noted according report reports reported article articles passage passages "
    "also since still two".split()
)
NEGATIONS = frozenset(
    "not no never none nobody nothing neither nor without cannot denied denies deny refused refuses refuse "
    "rejected failed fails unable".split()
)
MODALITY = frozenset(
    "may might could would should will shall can plan plans planned planning expect expects expected "
    "intend intends intended aim aims hope hopes hoped propose proposes proposed possibly likely "
    "reportedly allegedly potential".split()
)
SOFT_SUPPORT = 0.65
"""Cosine of single-word MiniLM vectors at which a passage word stands for a generated one (calibrated on
tests/data/support_labelled.jsonl: see tests/bot/test_support.py)."""
_TOKEN = re.compile(r"[^\W_]+(?:n't)?|n't", re.IGNORECASE)
_CLAUSE_BREAK = re.compile(r"[,;:—–()]|\b(?:which|who|while|but|although|whereas)\b")


@lru_cache(maxsize=1)
def _analyzer() -> Analyzer:
    return Analyzer()


class WordVectors:
    """Unit vectors of single words: the snapshot's vocabulary table, else `lookup` (the model's token table)."""

    def __init__(self, vocabulary: dict[str, int], table: np.ndarray,
                 lookup: Callable[[Sequence[str]], np.ndarray]) -> None:
        self.vocabulary, self.table, self.lookup = vocabulary, table, lookup

    def __call__(self, words: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(words), self.table.shape[1]), dtype=np.float32)
        missing = [row for row, word in enumerate(words) if word not in self.vocabulary]
        known = [row for row, word in enumerate(words) if word in self.vocabulary]
        vectors[known] = self.table[[self.vocabulary[words[row]] for row in known]]
        if missing:
            vectors[missing] = self.lookup([words[row] for row in missing])
        return vectors


def unsupported(sentence: str, passages: Sequence[str], vectors: WordVectors | None = None,
                soft_floor: float = SOFT_SUPPORT) -> str | None:
    """Why `sentence` is not supported by `passages` (e.g. 'words "storm" not in'), or None. With `vectors`,
    a word the passages lack is supported by a passage word whose cosine reaches `soft_floor`."""
    analyzer = _analyzer()
    source_words = list(dict.fromkeys(w for p in passages for w in content_words(p)))
    source_stems = {analyzer.stem(w) for w in source_words}
    extra = [w for w in dict.fromkeys(content_words(sentence))
             if w not in REPORTING_WORDS and analyzer.stem(w) not in source_stems]
    if extra and vectors is not None and source_words:
        closest = (vectors(extra) @ vectors(source_words).T).max(axis=1)
        extra = [w for w, similarity in zip(extra, closest, strict=True) if similarity < soft_floor]
    if extra:
        shown = ", ".join(f'"{w}"' for w in extra)
        return f"{'word' if len(extra) == 1 else 'words'} {shown} not in"
    sentences = [p[start:end] for p in passages for start, end in nupunkt.sent_spans(p)]
    clauses = [(c, whole, _stems(c)) for whole in sentences for c in _clauses(whole)]
    for clause in _clauses(sentence):
        wanted = _stems(clause)
        overlaps = [len(wanted & stems) for _, _, stems in clauses]
        most = max(overlaps, default=0)
        closest = [(c, whole) for (c, whole, _), overlap in zip(clauses, overlaps, strict=True) if overlap == most]
        negated, hedged = _cues(clause, NEGATIONS), _cues(clause, MODALITY)
        for restated, whole in closest:  # every clause it may restate must agree (ties are not a way out)
            if negated != _cues(restated, NEGATIONS):
                return "negation that differs from"
            if hedged != _cues(restated, MODALITY) and not (hedged and _cues(whole, MODALITY)):
                return "certainty that differs from"
            if _roles_swapped(clause, restated):
                return "roles swapped against"
    return None


def _clauses(text: str) -> list[str]:
    """`text` cut at punctuation and clause words, keeping the pieces that hold a content word."""
    return [piece for piece in _CLAUSE_BREAK.split(text) if piece and content_words(piece)] or [text]


def _stems(text: str) -> set[str]:
    """The stems of the content words of `text`."""
    analyzer = _analyzer()
    return {analyzer.stem(w) for w in content_words(text)}


def _cues(text: str, cues: frozenset[str]) -> bool:
    """Whether `text` holds one of `cues` (a word ending in "n't" counts as a negation)."""
    tokens = {t.lower().replace("’", "'") for t in _TOKEN.findall(text)}
    if cues is NEGATIONS and any(t.endswith("n't") for t in tokens):
        return True
    return bool(tokens & cues)


def _roles_swapped(sentence: str, restated: str) -> bool:
    """Names (each once in both) in another order than in the clause restated, neither passive."""
    if " by " in f" {sentence} " or " by " in f" {restated} ":
        return False
    mine = [span.key.split()[-1] for span in find_spans(sentence) if span.kind == "name"]
    theirs = [span.key.split()[-1] for span in find_spans(restated) if span.kind == "name"]
    shared = [name for name in mine if mine.count(name) == 1 and theirs.count(name) == 1]
    return len(shared) >= 2 and sorted(shared, key=theirs.index) != shared


@dataclass(frozen=True)
class SupportReport:
    """How the check does on a labelled file of {"passages", "sentence", "supported"} rows."""

    supported: int
    unsupported: int
    kept_supported: int
    kept_unsupported: list[str]
    seconds_p95: float

    @property
    def precision(self) -> float:
        kept = self.kept_supported + len(self.kept_unsupported)
        return self.kept_supported / kept if kept else 1.0

    @property
    def recall(self) -> float:
        return self.kept_supported / self.supported if self.supported else 1.0

    def line(self) -> str:
        return (f"support check: precision {self.precision:.1%}, recall {self.recall:.1%} "
                f"({self.kept_supported} of {self.supported} supported sentences kept, "
                f"{len(self.kept_unsupported)} of {self.unsupported} unsupported ones), "
                f"p95 {self.seconds_p95 * 1000:.1f} ms per sentence")


def score_labelled(rows: Sequence[dict], vectors: WordVectors | None) -> SupportReport:
    """Run the check on every labelled row, timing each sentence."""
    kept_supported, kept_unsupported, seconds = 0, [], []
    for row in rows:
        started = time.perf_counter()
        kept = unsupported(row["sentence"], row["passages"], vectors) is None
        seconds.append(time.perf_counter() - started)
        if kept and row["supported"]:
            kept_supported += 1
        elif kept:
            kept_unsupported.append(row["sentence"])
    supported = sum(bool(row["supported"]) for row in rows)
    return SupportReport(supported, len(rows) - supported, kept_supported, kept_unsupported,
                         float(np.percentile(seconds, 95)) if seconds else 0.0)
