"""Words and clauses of a claim, shared by the support check and its roles check: word lists, tokens,
clauses, stems weighted by whether they are names, and names (each kept for an answer's sentences, which share
their passages)."""

from __future__ import annotations

import re
from functools import lru_cache

from bot.wordnet import wordnet
from index.lexical import Analyzer, content_words
from index.spans import find_spans

REPORTING_WORDS = frozenset(
    "said says say told stated added noted according report reports reported article articles passage passages "
    "also since still two speak speaks spoke spoken asserted asserts explained explains announced announces "
    "mentioned mentions".split()
)
LIGHT_VERBS = frozenset(
    "make makes made making take takes took taken taking get gets got gotten getting give gives gave given giving "
    "go goes went gone going come comes came coming hold holds held holding put puts putting keep keeps kept "
    "become becomes became becoming seem seems seemed".split()
)
"""Verbs that carry little of a sentence's content: unchecked in it, and never standing for another word."""
CACHED_TEXTS = 4096
"""Clauses and passage sentences whose names, clauses and stems are kept (an answer's sentences share passages)."""
NAME_WEIGHT = 0.5
"""What a shared name counts for when finding the passage clause a clause restates (other words count 1):
a sentence's names run through all its clauses, its other words say what each claims."""
TOKEN = re.compile(r"[^\W_]+(?:n't)?|n't", re.IGNORECASE)
_CLAUSE_BREAK = re.compile(r"(?<!\d),|,(?!\d)|[;:—–()]|\b(?:which|who|that|while|but|although|whereas)\b"
                           r"|\band\s+(?=(?:has|have|had|is|are|was|were|will|would|could|may|might|can|do|does|"
                           r"did)\b)")
ACRONYM = re.compile(r"[A-Z]{2,6}")
NUMBER = re.compile(
    r"[$€£]?(?P<core>\d(?:[\d,]*\d)?(?:\.\d+)?)"
    r"(?:\s?(?P<scale>%|(?:percent|per cent|thousand|million|billion|trillion|bn)\b))?",
    re.IGNORECASE,
)
WORD = re.compile(r"[^\W\d_][\w’']*")
DATE_WORDS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday january february march april may june july "
    "august september october november december".split()
)


@lru_cache(maxsize=1)
def analyzer() -> Analyzer:
    return Analyzer()


@lru_cache(maxsize=CACHED_TEXTS)
def names(text: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, last word) of each name in `text`, in order; a word that is capitalised only for opening the
    text and that WordNet knows ("Fewer than 30 …") is none."""
    return tuple((span.start, span.end, span.key.split()[-1]) for span in find_spans(text) if span.kind == "name"
                 and not (span.start == 0 and " " not in span.text and common_opening(span.text)))


def common_opening(word: str) -> bool:
    """Whether a capitalised word that opens a text is a common word rather than a name: WordNet knows it only
    as an adjective or adverb ("Later"), or as a form of another word ("Participants", "Fewer")."""
    lexicon = wordnet()
    return lexicon is not None and (lexicon.only_modifier(word) or lexicon.base_forms(word) != {word.lower()})


@lru_cache(maxsize=CACHED_TEXTS)
def clauses(text: str) -> tuple[str, ...]:
    """`text` cut at punctuation and clause words, keeping the pieces that hold a content word."""
    return tuple(piece for piece in _CLAUSE_BREAK.split(text) if piece and content_words(piece)) or (text,)


@lru_cache(maxsize=CACHED_TEXTS)
def weighted_stems(text: str, name_weight: float = NAME_WEIGHT) -> dict[str, float]:
    """The stems of the content words of `text`, names (capitalised past the first word) at `name_weight`."""
    stemmer = analyzer()
    capitalised = {w.lower() for w in WORD.findall(text)[1:] if w[0].isupper()}
    weights: dict[str, float] = {}
    for word in content_words(text):
        stem = stemmer.stem(word)
        weights[stem] = max(weights.get(stem, 0.0), name_weight if word in capitalised else 1.0)
    return weights
