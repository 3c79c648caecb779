"""The benchmark corpora: the seed article, the SQuAD 2.0 sample and a synthetic news corpus.

The synthetic corpus is generated deterministically from a seed, without network: each article opens with
two templated news sentences (invented people, places, organisations and numbers) followed by sentences of
the real corpora whose names and numbers are replaced by invented ones.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import ROOT, SHARED
from index.chunking import split_sentences
from index.documents import load_corpus

SEED = ROOT / "corpus"
DEV_QUESTIONS = SHARED / "eval" / "dev_questions.jsonl"
SQUAD = SHARED / "eval" / "squad2_sample"

_SYLLABLES = "ka lo mi ra ve tan sor bel dri nu pa zel or in ta mer vol gan fi ru des ko ul bra".split()
_ROLES = ("finance minister", "chief executive", "mayor", "governor", "union leader", "health commissioner",
          "central bank governor", "energy minister", "police chief", "trade envoy")
_ACTIONS = (("build", "homes"), ("hire", "workers"), ("cut", "jobs"), ("open", "clinics"), ("repair", "bridges"),
            ("import", "tonnes of grain"), ("export", "barrels of oil"), ("plant", "trees"), ("train", "nurses"),
            ("install", "solar panels"))
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_ORG_KINDS = ("Group", "Holdings", "Ministry", "Council", "Authority", "Bank", "Union", "Institute")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_NAME = re.compile(r"(?<=[a-z,;] )[A-Z][a-z]{2,}")


@dataclass(frozen=True)
class Question:
    qid: str
    question: str
    doc_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Corpus:
    name: str
    path: Path
    questions: list[Question]
    documents: int


def read_questions(path: Path) -> list[Question]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [Question(r["qid"], r["question"], tuple(r.get("doc_ids") or ())) for r in rows]


def seed_corpus() -> Corpus:
    return Corpus("seed", SEED, read_questions(DEV_QUESTIONS), len(load_corpus(SEED).documents))


def squad_corpus(folder: Path, questions: int | None = None) -> Corpus:
    """The SQuAD sample; with `questions`, only that many questions, their gold documents and as many others."""
    path, chosen = SQUAD / "corpus.jsonl", read_questions(SQUAD / "questions.jsonl")
    if questions is None:
        return Corpus("squad2", path, chosen, len(load_corpus(path).documents))
    chosen = chosen[:questions]
    lines = path.read_text(encoding="utf-8").splitlines()
    gold = {d for q in chosen for d in q.doc_ids}
    kept = [line for line in lines if json.loads(line)["doc_id"] in gold]
    kept += [line for line in lines if json.loads(line)["doc_id"] not in gold][: len(kept)]
    subset = folder / f"squad2-{questions}.jsonl"
    subset.parent.mkdir(parents=True, exist_ok=True)
    subset.write_text("\n".join(kept) + "\n", encoding="utf-8")
    return Corpus("squad2", subset, chosen, len(kept))


def sentence_pool() -> list[str]:
    """Sentences of 8 to 30 words from the seed and SQuAD corpora, in a fixed order."""
    documents = load_corpus(SEED).documents + load_corpus(SQUAD / "corpus.jsonl").documents
    pool = []
    for document in documents:
        for sentence in split_sentences(document.text):
            text = document.text[sentence.start : sentence.end]
            if 8 <= len(text.split()) <= 30:
                pool.append(text)
    return pool


class NewsGenerator:
    """Deterministic synthetic news articles and questions about them."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.pool = sentence_pool()
        self.people = [f"{self._word(2)} {self._word(3)}" for _ in range(400)]
        self.places = [self._word(3) for _ in range(120)]
        self.orgs = [f"{self._word(2)} {_ORG_KINDS[i % len(_ORG_KINDS)]}" for i in range(150)]

    def _word(self, syllables: int) -> str:
        return "".join(self.rng.choice(_SYLLABLES, syllables)).capitalize()

    def _pick(self, values: list[str] | tuple) -> str:
        return values[int(self.rng.integers(len(values)))]

    def article(self, number: int) -> tuple[dict, Question]:
        person, person2, place, org, org2 = (self._pick(self.people), self._pick(self.people),
                                             self._pick(self.places), self._pick(self.orgs), self._pick(self.orgs))
        role, (verb, noun), weekday = self._pick(_ROLES), self._pick(_ACTIONS), self._pick(_WEEKDAYS)
        count, year, cost = int(self.rng.integers(20, 90_000)), int(self.rng.integers(2026, 2036)), \
            int(self.rng.integers(2, 900))
        lead = (f"{place.upper()} — {person}, the {role} of the {org}, said on {weekday} that it would "
                f"{verb} {count:,} {noun} in {place} by {year}.")
        second = f"The plan will cost about {cost} million dollars, according to {person2} of the {org2}."
        names: dict[str, str] = {}
        body = [self._recombine(self._pick(self.pool), names) for _ in range(int(self.rng.integers(4, 7)))]
        sentences = [lead, second, *body]
        cuts = sorted({int(c) for c in self.rng.integers(1, len(sentences), 2)})
        paragraphs = [" ".join(sentences[a:b]) for a, b in zip([0, *cuts], [*cuts, len(sentences)], strict=True)]
        doc_id = f"news-{number:05d}"
        record = {"doc_id": doc_id, "title": f"{person} says the {org} will {verb} {count:,} {noun}",
                  "text": "\n\n".join(paragraphs)}
        return record, self._question(doc_id, [person, org, role, verb, noun, year])

    def _recombine(self, sentence: str, names: dict[str, str]) -> str:
        """The sentence with invented numbers, and names replaced consistently within the article."""
        sentence = _NUMBER.sub(lambda _: str(int(self.rng.integers(2, 5000))), sentence)
        return _NAME.sub(lambda m: names.setdefault(m.group(0), self._pick(self.places + self.people)), sentence)

    def _question(self, doc_id: str, facts: list) -> Question:
        person, org, role, verb, noun, year = facts
        templates = (f"How many {noun} will the {org} {verb} by {year}?",
                     f"Who is the {role} of the {org}?",
                     f"How much will the plan announced by {person} cost?")
        return Question(f"q-{doc_id}", self._pick(templates), (doc_id,))


def synthetic_corpus(folder: Path, articles: int, seed: int = 20240601, questions: int = 200) -> Corpus:
    """Write `articles` synthetic articles as a JSONL bundle; questions about evenly spaced articles."""
    generator = NewsGenerator(seed)
    pairs = [generator.article(n) for n in range(articles)]
    path = folder / f"synthetic-news-{articles}-{seed}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r, _ in pairs), encoding="utf-8")
    step = max(1, articles // questions)
    return Corpus("synthetic", path, [q for _, q in pairs[::step]][:questions], articles)


def edited_copy(corpus: Corpus, path: Path) -> Path:
    """The corpus bundle with one sentence added to its first article (for an incremental rebuild)."""
    lines = corpus.path.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    first["text"] += " This article was updated after publication to correct a figure."
    path.write_text("\n".join([json.dumps(first, ensure_ascii=False), *lines[1:]]) + "\n", encoding="utf-8")
    return path
