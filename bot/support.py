"""Does a generated sentence say what its cited passages say? Facts, words, negation, certainty and roles.

A sentence is supported when every number, date and capitalised name in it occurs in a cited passage, every
content word it uses is there too (same stem; a reporting or light verb; a WordNet synonym, a word one step
more or less general or up to three steps more general; or a word whose single-word vector is close to a
passage word's, unless WordNet calls them opposites), and each of its clauses agrees with the passage clause it
restates: negated exactly when it is, hedged ("may", "plans to", "reportedly") exactly when it is, stating a
certain future ("will", "is scheduled to") exactly when it is, the same direction ("before" is not "after"),
no wider scope ("all", "only", "most"; "the largest" for "one of the largest"),
and naming shared people or places in the same order (so "A fired B" does not pass for "B fired A").
Checked against only the passages it cites, so a sentence that joins facts from two passages must cite both.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations, product
from typing import TYPE_CHECKING

import numpy as np
import nupunkt

from bot.roles import agents_differ, items_traded, names_reordered, numbers_rebound, predicates_traded, verb_stems
from bot.wording import (
    ACRONYM,
    CACHED_TEXTS,
    DATE_WORDS,
    LIGHT_VERBS,
    NUMBER,
    REPORTING_WORDS,
    TOKEN,
    WORD,
    analyzer,
    clauses,
    common_opening,
    weighted_stems,
)
from bot.wordnet import WordNet, wordnet
from index.lexical import STOPWORDS, content_words, fold_accents

if TYPE_CHECKING:
    from bot.entailment import SupportModel

FUNCTION_WORDS = frozenset(
    "even whose toward towards like though although however thus therefore hence among amid amongst across "
    "along around upon within via per onto including".split()
)
"""Words that relate others and claim nothing themselves (the retrieval stopwords lack them): unchecked."""
GENERIC_WORDS = frozenset(
    "people person persons someone somebody anyone anybody everyone everybody thing things".split()
)
"""Words that stand for whoever or whatever the passage names, as a pronoun does ("people along the coast" for
"everyone along the coast"): unchecked."""
QUANTITY_WORDS = frozenset(
    "one two three four five six seven eight nine ten eleven twelve twenty thirty forty fifty hundred hundreds "
    "thousand thousands million millions billion billions trillion dozen dozens first second third fourth fifth "
    "last half quarter double twice triple several few many".split()
)
"""Words that state an amount or a rank: only the same word supports them."""
_OPPOSITE_PAIRS = (("more", "less"), ("more", "fewer"), ("before", "after"), ("above", "below"), ("over", "under"),
                   ("most", "least"), ("earlier", "later"), ("up", "down"), ("next", "last"), ("next", "previous"),
                   ("next", "past"), ("yesterday", "tomorrow"))
OPPOSITES = {word: frozenset(b for a, b in (*_OPPOSITE_PAIRS, *((b, a) for a, b in _OPPOSITE_PAIRS)) if a == word)
             for pair in _OPPOSITE_PAIRS for word in pair}
NEGATIONS = frozenset(
    "not no never none nobody nothing neither nor without cannot denied denies deny refused refuses refuse "
    "rejected failed fails unable".split()
)
MODALITY = frozenset(
    "may might could would should can plan plans planned planning expect expects expected "
    "intend intends intended aim aims hope hopes hoped propose proposes proposed possibly likely "
    "reportedly allegedly allege alleges alleging "
    "potential potentially possible perhaps "
    "maybe must if unless whether intention intentions expectation expectations".split()
)
"""Hedges: a claim made possible, planned, expected, conditional or reported, not stated as fact."""
FUTURE = frozenset("will shall ll won't scheduled slated would".split())
"""A future stated as certain ("will", "is scheduled to", "is set to"; "would" for a future in reported speech):
a sentence that says one needs it in the passage sentence it restates, not just a hedge ("may", "potential")."""
_QUANTIFIER_GROUPS = (
    frozenset("all every each everyone everybody everything entire whole entirely always".split()),
    frozenset("most majority mostly".split()),
    frozenset("only sole solely alone exclusively".split()),
    frozenset("few fewer".split()),
)
QUANTIFIERS = {word: group for group in _QUANTIFIER_GROUPS for word in group}
"""Words of scope ("all", "only", "most", "few"), stopwords to the word check: one in a sentence needs one of its
group in the passage sentence it restates, or the sentence claims more than the passage ("all" for "some")."""
_APPROXIMATELY = frozenset("about around roughly approximately some".split())
EQUIVALENTS = {"later": frozenset({"after", "afterwards", "subsequently"}),
               "earlier": frozenset({"before", "previously", "prior"}),
               "previously": frozenset({"before", "earlier", "prior"}),
               "afterwards": frozenset({"after", "later", "subsequently"}),
               "several": frozenset({"multiple", "various"}), "multiple": frozenset({"several", "various"}),
               "numerous": frozenset({"many"}), "many": frozenset({"numerous"}),
               **{word: _APPROXIMATELY - {word} for word in _APPROXIMATELY}}
"""Words that say the same where WordNet has no link: adverbs of time and prepositions (which it lacks), vague
amounts (which otherwise need the same word) and "roughly" for "about"."""
_UNCHECKED = REPORTING_WORDS | LIGHT_VERBS | FUNCTION_WORDS | GENERIC_WORDS | FUTURE | QUANTIFIERS.keys()
"""The words the word check lets through: what they claim is checked elsewhere, or they claim nothing."""
SOFT_SUPPORT = 0.65
"""Cosine of single-word MiniLM vectors at which a passage word stands for a generated one (calibrated on
tests/data/support_labelled.jsonl; on all the labelled sets together 0.6 or 0.55 kept more paraphrases and more
unsupported sentences, 0.7 and 0.75 fewer paraphrases and no fewer unsupported ones)."""
VERDICTS_KEPT = 256
"""Verdicts a SupportCheck keeps (it serves one answer: three sentences, or a few more that were dropped)."""
LOOKUPS_KEPT = 4096
"""Words outside the snapshot's vocabulary whose vectors a WordVectors keeps (6 MB at 384 dimensions)."""
_NOT_ONLY = re.compile(r"\bnot\s+only\b", re.IGNORECASE)
_CONDITION_BEFORE = re.compile(r"(?:^|[.;:]\s+)\W*(?:if|unless)\b[^,;]*,\s*$", re.IGNORECASE)
_TITLED_NO = re.compile(r"\bNo(?=\s+[A-Z])")
"""'No Country for Old Men': a "No" before a capitalised word is part of a title, not a negation."""
_INTENT = re.compile(r"\b(?:looking|seeking|seeks?|trying|tries|attempts?|attempting)\s+to\b",
                     re.IGNORECASE)
"""'Is looking to become' states an aim, like 'plans to'."""
_ORDINALS = r"(?:second|third|fourth|fifth|sixth|seventh|eighth|ninth|tenth|\d+(?:st|nd|rd|th))"
_ONE_OF = re.compile(r"\b(?:one|some|among)\s+(?:of\s+)?the\b", re.IGNORECASE)
"""'One of the largest', 'among the first': a superlative claimed of a group, not of one."""
_CAPITALISED_RUN = re.compile(r"[A-Z][\w’'-]*(?:\s+(?:(?:of|and|for|the)\s+)?[A-Z][\w’'-]*)+")
_CONTRACTIONS = {"won't": "will not", "can't": "can not", "shan't": "shall not"}
_CONTRACTION = re.compile(r"\b(?:won|can|shan)['’]t\b", re.IGNORECASE)
_SUFFIXES = {"'t": "not", "'ll": "will", "'re": "are", "'ve": "have"}
_SUFFIX = re.compile(r"(?<=[a-z])n['’]t\b|['’](?:ll|re|ve)\b", re.IGNORECASE)
_DOTTED = re.compile(r"\b(?:[A-Z]\.){2,}")
_NUMBER_SIGN = re.compile(r"\bNo\.\s?(?=\d)")
"""'No. 44' is a rank, not a negation."""
_REPORTED_FUTURE = re.compile(rf"\b(?:{'|'.join(sorted(REPORTING_WORDS))})\b[^.;]*?\bwould\b", re.IGNORECASE)
"""'She said it would close' reports 'it will close': that 'would' is a future, not a hedge."""
_SET_TO = re.compile(r"\b(?:is|are|was|were|be|been|being)\s+set\s+(?:to|for)\b", re.IGNORECASE)
"""'is set to', 'was set for' say what 'is scheduled to', 'was scheduled for' say (their "set" is no content word)."""
_DEMONYM = re.compile(r"(?<=\w{4})(?:ian|an|n|ese|ish|i)$", re.IGNORECASE)
"""An adjective of place ("American", "Iranian", "Lebanese") is supported by its place ("America", "Iran")."""
_YEAR_RANGE = re.compile(r"\b(\d{2})(\d{2})\s?[-–]\s?(\d{2})\b")
_POSSESSIVE = re.compile(r"['’]s?$")
_SCALES = {"%": "percent", "per cent": "percent", "bn": "billion"}
_NOT_NAMES = STOPWORDS | frozenset(
    "according additionally however meanwhile overall yes instead although despite since following among amid "
    "anyone everyone someone nobody each every both either neither outside inside within without throughout "
    "beyond".split()
) | QUANTITY_WORDS
_Clause = tuple[str, str, dict[str, float]]
"""A passage clause, the sentence it is in, and its weighted stems."""


class WordVectors:
    """Unit vectors of single words: the snapshot's vocabulary table, else `lookup` (the model's token table),
    whose answers for the last LOOKUPS_KEPT words are kept. One instance serves concurrent checks (a preview and a
    final check run in threads of their own), so the kept answers are read and evicted under a lock."""

    def __init__(self, vocabulary: dict[str, int], table: np.ndarray,
                 lookup: Callable[[Sequence[str]], np.ndarray]) -> None:
        self.vocabulary, self.table, self.lookup = vocabulary, table, lookup
        self._looked_up: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def from_lookup(cls, dimension: int, lookup: Callable[[Sequence[str]], np.ndarray]) -> WordVectors:
        """Vectors from `lookup` alone (the model's token table), with no snapshot vocabulary."""
        return cls({}, np.zeros((0, dimension), np.float32), lookup)

    def __call__(self, words: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(words), self.table.shape[1]), dtype=np.float32)
        known = [row for row, word in enumerate(words) if word in self.vocabulary]
        vectors[known] = self.table[[self.vocabulary[words[row]] for row in known]]
        with self._lock:
            self._fill(words, vectors)
        return vectors

    def _fill(self, words: Sequence[str], vectors: np.ndarray) -> None:
        """Put the looked-up vectors of the words the vocabulary lacks into `vectors` (under the lock)."""
        new = list(dict.fromkeys(w for w in words if w not in self.vocabulary and w not in self._looked_up))
        if new:
            self._looked_up.update(zip(new, self.lookup(new), strict=True))
        for row, word in enumerate(words):
            if word not in self.vocabulary:
                vectors[row] = self._looked_up[word]
                self._looked_up.move_to_end(word)
        while len(self._looked_up) > LOOKUPS_KEPT:
            self._looked_up.popitem(last=False)


@dataclass(frozen=True)
class Findings:
    """What the rules find wrong with a sentence, by tier (None where a tier found nothing or was not run)."""

    fact: str | None
    """A number, date or name that no passage holds."""
    words: str | None
    """Content words that no passage word supports."""
    clauses: str | None
    """A clause that disagrees with the one it restates (negation, certainty, direction, scope, roles)."""

    @property
    def reason(self) -> str | None:
        """The first finding: the rules' verdict."""
        return self.fact or self.words or self.clauses

    @property
    def only_words(self) -> bool:
        """Facts and clauses agree with the passages, but some words are not in them: a paraphrase, or an addition."""
        return self.words is not None and self.fact is None and self.clauses is None


def findings(sentence: str, passages: Sequence[str], vectors: WordVectors | None = None,
             soft_floor: float = SOFT_SUPPORT) -> Findings:
    """Check `sentence` against `passages` tier by tier; once a fact is missing the other tiers are not run.
    With `vectors`, a word the passages lack is supported by a passage word whose cosine reaches `soft_floor`."""
    sentence, passages, glosses = _prepared(sentence, passages)
    fact = unsupported_fact(sentence, passages)
    if fact is not None:
        return Findings(fact, None, None)
    return Findings(None, _unsupported_words(sentence, passages, vectors, soft_floor),
                    _disagreement(sentence, passages, glosses))


def unsupported(sentence: str, passages: Sequence[str], vectors: WordVectors | None = None,
                soft_floor: float = SOFT_SUPPORT) -> str | None:
    """Why `sentence` is not supported by `passages` (e.g. 'word "storm" not in'), or None: the rules alone,
    the first finding of `findings`, each tier run only while the earlier ones find nothing."""
    sentence, passages, glosses = _prepared(sentence, passages)
    return (unsupported_fact(sentence, passages) or _unsupported_words(sentence, passages, vectors, soft_floor)
            or _disagreement(sentence, passages, glosses))


def _prepared(sentence: str, passages: Sequence[str]) -> tuple[str, list[str], list[str]]:
    """The sentence and passages normalised, the passages followed by the acronym glosses, and the glosses."""
    sentence, passages = _normalised(sentence), [_normalised(p) for p in passages]
    glosses = _acronym_glosses(sentence, passages)
    return sentence, [*passages, *glosses], glosses


class SupportCheck:
    """The whole check of a generated sentence: the rules (`findings`), then the learned model when one is given
    (`bot.entailment`). A sentence the rules keep is shown when the model scores it at its threshold; one that only
    the word check refuses (its facts and clauses agree with the passages, some words do not occur there) when the
    model scores it at its higher rescue threshold: a paraphrase in the model's judgement. Verdicts are kept for
    the last `verdicts_kept` (sentence, passages): a streamed answer's previews check its complete sentences again
    at every delta, and the final check once more."""

    def __init__(self, vectors: WordVectors | None = None, model: SupportModel | None = None,
                 verdicts_kept: int = VERDICTS_KEPT) -> None:
        self.vectors, self.model, self.verdicts_kept = vectors, model, verdicts_kept
        self._verdicts: OrderedDict[tuple[str, tuple[str, ...]], str | None] = OrderedDict()

    def __call__(self, sentence: str, passages: Sequence[str]) -> str | None:
        """Why `passages` do not support `sentence` (ending in a word such as "in" or "against" that the
        passages' names follow), or None."""
        key = (sentence, tuple(passages))
        if key in self._verdicts:
            self._verdicts.move_to_end(key)
            return self._verdicts[key]
        verdict = self._verdicts[key] = self._verdict(sentence, passages)
        while len(self._verdicts) > self.verdicts_kept:
            self._verdicts.popitem(last=False)
        return verdict

    def _verdict(self, sentence: str, passages: Sequence[str]) -> str | None:
        if self.model is None:
            return unsupported(sentence, passages, self.vectors)
        found = findings(sentence, passages, self.vectors)
        if not (found.reason is None or found.only_words):
            return found.reason
        score = self.model.probability(sentence, passages)
        needed = self.model.threshold if found.reason is None else self.model.rescue_threshold
        if score >= needed:
            return None
        return found.reason or f"support model score {score:.2f} below {needed:.2f} against"


def _acronym_glosses(sentence: str, passages: Sequence[str]) -> list[str]:
    """"DEA Drug Enforcement Administration" for each acronym that `sentence` uses and the passages spell out, or
    spells out where the passages use it: one more (gloss) passage each, so either form supports the other."""
    sentence_names, passage_names = _capitalised_runs(sentence), _capitalised_runs(" ".join(passages))
    passage_words, sentence_words = _plain_words(" ".join(passages)), _plain_words(sentence)
    glosses = [f"{word} {' '.join(passage_names[word])}" for word in sentence_words
               if ACRONYM.fullmatch(word) and word not in passage_words and word in passage_names]
    glosses += [f"{acronym} {' '.join(words)}" for acronym, words in sentence_names.items()
                if acronym in passage_words and acronym not in sentence_words]
    return glosses


@lru_cache(maxsize=CACHED_TEXTS)
def _plain_words(text: str) -> frozenset[str]:
    """The words of `text`, without a possessive "'s"."""
    return frozenset(_POSSESSIVE.sub("", word) for word in WORD.findall(text))


@lru_cache(maxsize=CACHED_TEXTS)
def _capitalised_runs(text: str) -> dict[str, list[str]]:
    """Each run of two or more capitalised words (joined by "of", "and", "for", "the") by its initials, with and
    without the joining words' ("DT" and "DOT" for "Department of Transportation")."""
    runs: dict[str, list[str]] = {}
    for match in _CAPITALISED_RUN.finditer(text):
        words = match.group(0).split()
        for start, end in combinations(range(len(words) + 1), 2):
            run = words[start:end]
            if len(run) > 1 and run[0][0].isupper() and run[-1][0].isupper():
                runs.setdefault("".join(w[0] for w in run if w[0].isupper()), run)
                runs.setdefault("".join(w[0] for w in run).upper(), run)
    return runs


@lru_cache(maxsize=CACHED_TEXTS)
def _normalised(text: str) -> str:
    """`text` with contractions spelled out ("didn't" → "did not", "she'll" → "she will"), acronyms without
    their dots ("U.S." → "US"), "No. 44" as "number 44", the "would" of reported speech as "will" and "is set
    to" as "is scheduled to"."""
    text = _CONTRACTION.sub(lambda match: _CONTRACTIONS[match.group(0).lower().replace("’", "'")], text)
    text = _SUFFIX.sub(lambda match: " " + _SUFFIXES[match.group(0).lower().replace("’", "'").lstrip("n")], text)
    text = _DOTTED.sub(lambda match: match.group(0).replace(".", ""), text)
    text = _NUMBER_SIGN.sub("number ", text)
    if "would" in text:
        text = _REPORTED_FUTURE.sub(lambda match: match.group(0)[:-5] + "will", text)
    return _SET_TO.sub(lambda match: "{} scheduled {}".format(*match.group(0).split()[::2]), text)


def unsupported_fact(sentence: str, passages: Sequence[str]) -> str | None:
    """The first number, date or name of `sentence` that no passage contains, e.g. 'number "$30 billion" is
    not in'."""
    source = _source(tuple(passages))
    facts = [*_unsupported_numbers(sentence, source), *_unsupported_names(sentence, source)]
    if not facts:
        return None
    _, kind, surface = min(facts)
    return f'{kind} "{surface}" is not in'


@lru_cache(maxsize=CACHED_TEXTS)
def _source(passages: tuple[str, ...]) -> str:
    return _fold(" ".join(passages))


@lru_cache(maxsize=CACHED_TEXTS)
def _numbers_in(source: str) -> tuple[frozenset[tuple[str, str]], frozenset[str]]:
    """(digits, scale) of each number in `source` ("1977-81" holds 1981), and the digits alone."""
    known = frozenset(_number(m)[1:] for m in NUMBER.finditer(_YEAR_RANGE.sub(r"\1\2-\1\3", source)))
    return known, frozenset(core for core, _ in known)


def _unsupported_numbers(sentence: str, source: str) -> list[tuple[int, str, str]]:
    """Numbers absent from `source`; one without a scale word matches the same digits with any scale."""
    known, digits = _numbers_in(source)
    found = []
    for match in NUMBER.finditer(sentence):
        surface, core, scale = _number(match)
        if (core, scale) not in known and (scale or core not in digits):
            found.append((match.start(), "number", surface))
    return found


def _unsupported_names(sentence: str, source: str) -> list[tuple[int, str, str]]:
    """Capitalised words (names, weekdays, months) that do not begin any word of `source`."""
    found = []
    for match in WORD.finditer(sentence):
        word = _POSSESSIVE.sub("", match.group(0))
        if len(word) < 2 or not word[0].isupper() or word.lower() in _NOT_NAMES:
            continue
        if match.start() == 0 and (common_opening(word) or re.search(rf"\b{re.escape(word.lower())}\b", source)):
            continue  # "Later, …", "Participants …": capitalised for being first; the word check has it
        if not any(re.search(form, source, re.IGNORECASE) for form in _name_forms(_fold(word))):
            found.append((match.start(), "date" if word.lower() in DATE_WORDS else "name", word))
    return found


def _name_forms(word: str) -> list[str]:
    """Patterns of what a name may be in the passages: a word it begins, its singular's ("Republicans"), the
    place of an adjective of place ("American" → "Americ…"), the adjective of a place ("Ukraine" → "Ukrainian",
    "Kenya" → "Kenyan", never "Maria" → "Marie")."""
    singular = word[:-1] if word.endswith("s") and len(word) > 4 else word
    forms = [rf"\b{re.escape(form)}" for form in dict.fromkeys((word, singular, _DEMONYM.sub("", singular)))]
    if len(word) >= 5 and word[-1] in "aeiou":
        forms.append(rf"\b{re.escape(word[:-1])}(?:ian|an|ese|ish|i)s?\b")
    return forms


def _number(match: re.Match[str]) -> tuple[str, str, str]:
    """(surface, digits without thousands separators, normalised scale word or "")."""
    scale = (match.group("scale") or "").lower()
    return match.group(0), match.group("core").replace(",", ""), _SCALES.get(scale, scale)


def _fold(text: str) -> str:
    return fold_accents(text).replace("’", "'")


def _of_place(word: str, source_words: Sequence[str]) -> bool:
    """Whether `word` is an adjective of place ("american") of a passage word ("america")."""
    place = _DEMONYM.sub("", word)
    return place != word and any(w.startswith(place) for w in source_words)


def _unsupported_words(sentence: str, passages: Sequence[str], vectors: WordVectors | None,
                       soft_floor: float) -> str | None:
    """'word "storm" not in' for content words of `sentence` that no passage word supports."""
    stemmer = analyzer()
    source_words, source_stems, source_tokens = _vocabulary(tuple(passages))
    extra = [w for w in dict.fromkeys(content_words(sentence))
             if w not in _UNCHECKED
             and stemmer.stem(w) not in source_stems and not _of_place(w, source_words)
             and not EQUIVALENTS.get(w, frozenset()) & source_tokens]
    lexicon = wordnet()
    bases: set[str] = set()
    if extra and lexicon is not None:
        bases = {base for w in source_words for base in lexicon.base_forms(w)}
        extra = [w for w in extra if w in QUANTITY_WORDS or not _related(lexicon, w, source_words, bases)]
    if extra and vectors is not None and source_words:
        softened = [w for w in extra if w not in QUANTITY_WORDS and not (lexicon and lexicon.antonyms(w) & bases)]
        if softened:
            similarity = vectors(softened) @ vectors(source_words).T
            if lexicon is not None:  # sister terms are alternatives, however close their vectors
                for (row, word), (column, source) in product(enumerate(softened), enumerate(source_words)):
                    if similarity[row, column] >= soft_floor and lexicon.alternatives(word, source):
                        similarity[row, column] = -1.0
            closest = dict(zip(softened, similarity.max(axis=1), strict=True))
            extra = [w for w in extra if closest.get(w, -1.0) < soft_floor]
    if extra:
        shown = ", ".join(f'"{w}"' for w in extra)
        return f"{'word' if len(extra) == 1 else 'words'} {shown} not in"
    return None


@lru_cache(maxsize=CACHED_TEXTS)
def _vocabulary(passages: tuple[str, ...]) -> tuple[tuple[str, ...], frozenset[str], frozenset[str]]:
    """The passages' content words (in order, once each), their stems, and all their tokens in lower case."""
    stemmer = analyzer()
    words = tuple(dict.fromkeys(w for p in passages for w in content_words(p)))
    return (words, frozenset(stemmer.stem(w) for w in words),
            frozenset(t.lower() for p in passages for t in TOKEN.findall(p)))


def _related(lexicon: WordNet, word: str, source_words: Sequence[str], bases: set[str]) -> bool:
    """Whether a passage word shares a sense with `word` or is one step more or less general in WordNet (in
    either direction); a light verb of the passage only by sharing a sense ("come" for "arrive")."""
    light = bases & LIGHT_VERBS
    if lexicon.related(word) & (bases - light) or lexicon.synonyms(word) & light:
        return True
    return bool(lexicon.base_forms(word) & _widened(lexicon, tuple(source_words)))


@lru_cache(maxsize=CACHED_TEXTS)
def _widened(lexicon: WordNet, source_words: tuple[str, ...]) -> frozenset[str]:
    """Every word that one of `source_words` (light verbs aside) relates to or has as an ancestor."""
    return frozenset().union(*(lexicon.related(w) | lexicon.ancestors(w) for w in source_words if w not in LIGHT_VERBS))


def _disagreement(sentence: str, passages: Sequence[str], glosses: Sequence[str] = ()) -> str | None:
    """How a clause of `sentence` disagrees with the passage clause it restates, or None (`glosses`: the
    acronym glosses among `passages`)."""
    sentences, passage_clauses = _passage_clauses(tuple(passages))
    for clause in clauses(sentence):
        closest = _copied(clause, passage_clauses) or (_restated(weighted_stems(clause), passage_clauses)
                                                       + _restated(weighted_stems(clause, 0.0), passage_clauses))
        negated, hedged, future = _cues(clause, NEGATIONS), _cues(clause, MODALITY), _cues(clause, FUTURE)
        if closest and negated != any(_cues(restated, NEGATIONS) for restated, _ in closest):
            return "negation that differs from"  # a negation dropped from any clause it may restate, or added
        for restated, whole in closest:  # every clause it may restate must agree (ties are not a way out)
            if hedged != _hedged(restated, whole) and not (hedged and _cues(whole, MODALITY)):
                return "certainty that differs from"
            if future != _cues(restated, FUTURE) and not (future and _cues(whole, FUTURE)):
                return "certainty that differs from"
            if _opposite_direction(clause, whole):
                return "direction that differs from"
            if _overstated(clause, whole):
                return "scope that differs from"
            if names_reordered(clause, restated):
                return "roles swapped against"
        anchored = _anchored(clause, passage_clauses)
        if anchored and all(_cues(c, NEGATIONS) != negated for c, _ in anchored):
            return "negation that differs from"
        if anchored and not hedged and all(_hedged(c, whole) for c, whole in anchored):
            return "certainty that differs from"
    if agents_differ(sentence, sentences, glosses):
        return "roles swapped against"
    if numbers_rebound(sentence, sentences):
        return "a number tied to another name than in"
    if items_traded(sentence, sentences):
        return "details traded between names against"
    return "roles swapped against" if predicates_traded(sentence, sentences) else None


@lru_cache(maxsize=CACHED_TEXTS)
def _passage_clauses(passages: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[_Clause, ...]]:
    """The passages' sentences, and each clause of them with its sentence and weighted stems (an answer's
    sentences cite the same passages)."""
    sentences = tuple(p[start:end] for p in passages for start, end in nupunkt.sent_spans(p))
    return sentences, tuple((c, whole, weighted_stems(c)) for whole in sentences for c in clauses(whole))


def _anchored(clause: str, passage_clauses: Sequence[_Clause]) -> list[tuple[str, str]]:
    """The passage clauses (with their sentences) that use a verb of `clause` ("appeal" in "it will appeal the
    penalty" → "The penalty will not be appealed"): whatever clause the sentence seems to restate, what the
    passages say with its verb must be negated and hedged alike."""
    lexicon = wordnet()
    verbs = set(verb_stems(lexicon, clause)) if lexicon is not None else set()
    return [(c, whole) for c, whole, stems in passage_clauses if verbs & stems.keys()]


def _copied(clause: str, passage_clauses: Sequence[_Clause]) -> list[tuple[str, str]]:
    """The passage clauses (with their sentences) that `clause` copies word for word, case aside: what it restates,
    whatever other clause of a long passage shares as many of its words."""
    words = _clause_words(clause)
    return [(c, whole) for c, whole, _ in passage_clauses if _clause_words(c) == words]


@lru_cache(maxsize=CACHED_TEXTS)
def _clause_words(text: str) -> tuple[str, ...]:
    return tuple(token.lower() for token in TOKEN.findall(text))


def _restated(wanted: dict[str, float],
              passage_clauses: Sequence[_Clause]) -> list[tuple[str, str]]:
    """The passage clauses (with their sentences) that share the most weight of `wanted` stems (none when no
    clause shares any)."""
    overlaps = [sum(weight for stem, weight in wanted.items() if stem in stems) for _, _, stems in passage_clauses]
    most = max(overlaps, default=0.0)
    return [(clause, whole) for (clause, whole, _), overlap in zip(passage_clauses, overlaps, strict=True)
            if overlap == most > 0]


def _cues(text: str, cues: frozenset[str]) -> bool:
    """Whether `text` holds one of `cues` (a word ending in "n't" counts as a negation, "not only" does not)."""
    tokens = _cue_tokens(text)
    if cues is NEGATIONS and any(t.endswith("n't") for t in tokens):
        return True
    return bool(tokens & cues)


@lru_cache(maxsize=CACHED_TEXTS)
def _cue_tokens(text: str) -> frozenset[str]:
    """The words of `text` that cues are looked up in ("not only" and a title's "No" left out; "plan" for an aim)."""
    text = _TITLED_NO.sub("", _NOT_ONLY.sub("only", text))
    tokens = frozenset(t.lower().replace("’", "'") for t in TOKEN.findall(text))
    return tokens | {"plan"} if _INTENT.search(text) else tokens


@lru_cache(maxsize=CACHED_TEXTS)
def _hedged(restated: str, passage_sentence: str) -> bool:
    """Whether a passage clause is hedged, by its own words or by the clause it depends on: a leading condition
    ("If granted, the plant is expected …") or a hedged "… that" before it ("It's possible that the insects
    have …")."""
    if _cues(restated, MODALITY):
        return True
    before = passage_sentence[:passage_sentence.find(restated)] if restated in passage_sentence else ""
    if _CONDITION_BEFORE.search(before):
        return True
    words = before.rstrip().lower()
    return words.endswith("that") and _cues(re.split(r"[,;.]", words)[-1], MODALITY)


def _opposite_direction(clause: str, passage_sentence: str) -> bool:
    """A direction word ("before", "more", "up") whose opposite, and not itself, the passage sentence uses."""
    mine = {t.lower() for t in TOKEN.findall(clause)}
    theirs = {t.lower() for t in TOKEN.findall(passage_sentence)}
    return any(word not in theirs and OPPOSITES.get(word, frozenset()) & theirs for word in mine)


def _overstated(clause: str, passage_sentence: str) -> bool:
    """A scope word ("all", "only", "most") with none of its group in the passage sentence ("most" also takes
    a superlative there: "the largest number"), a superlative without the rank the passage gives it ("highest"
    for "second-highest"), or a superlative stated of one where the passage says "one of the" / "among the"."""
    mine = [t.lower() for t in TOKEN.findall(_NOT_ONLY.sub("", clause))]
    theirs = {t.lower() for t in TOKEN.findall(passage_sentence)}
    if any(word in QUANTIFIERS and not QUANTIFIERS[word] & theirs
           and not (word == "most" and any(map(_superlative, theirs))) for word in mine):
        return True
    if any(_superlative(word) and not re.search(rf"\b{_ORDINALS}[- ]{word}\b", clause, re.IGNORECASE)
           and re.search(rf"\b{_ORDINALS}[- ]{word}\b", passage_sentence, re.IGNORECASE) for word in set(mine)):
        return True  # "the highest court" for "the second-highest court"
    return bool(_ONE_OF.search(passage_sentence) and not _ONE_OF.search(clause) and any(map(_superlative, mine)))


def _superlative(word: str) -> bool:
    """'most', 'least', or an adjective ending in -est whose base WordNet knows ("largest", not "interest")."""
    if word in ("most", "least", "best", "worst"):
        return True
    lexicon = wordnet()
    return word.endswith("est") and lexicon is not None and any(base != word for base in lexicon.lemmas(word, "a"))


@dataclass(frozen=True)
class SupportReport:
    """How the check does on a labelled file of {"passages", "sentence", "supported"} rows."""

    supported: int
    unsupported: int
    kept_supported: int
    kept_unsupported: list[str]
    seconds_p95: float

    @property
    def precision(self) -> float | None:
        """Supported sentences among those kept; None when none is kept (no precision to speak of)."""
        kept = self.kept_supported + len(self.kept_unsupported)
        return self.kept_supported / kept if kept else None

    @property
    def recall(self) -> float | None:
        """Supported sentences kept among the supported ones; None when the set has none."""
        return self.kept_supported / self.supported if self.supported else None

    def line(self) -> str:
        return (f"support check: precision {_percent(self.precision)}, recall {_percent(self.recall)} "
                f"({self.kept_supported} of {self.supported} supported sentences kept, "
                f"{len(self.kept_unsupported)} of {self.unsupported} unsupported ones), "
                f"p95 {self.seconds_p95 * 1000:.1f} ms per sentence")


def _percent(ratio: float | None) -> str:
    return "n/a" if ratio is None else f"{ratio:.1%}"


def score_labelled(rows: Sequence[dict], check: SupportCheck) -> SupportReport:
    """Run the check on every labelled row, timing each sentence."""
    kept_supported, kept_unsupported, seconds = 0, [], []
    for row in rows:
        started = time.perf_counter()
        kept = check(row["sentence"], row["passages"]) is None
        seconds.append(time.perf_counter() - started)
        if kept and row["supported"]:
            kept_supported += 1
        elif kept:
            kept_unsupported.append(row["sentence"])
    supported = sum(bool(row["supported"]) for row in rows)
    return SupportReport(supported, len(rows) - supported, kept_supported, kept_unsupported,
                         float(np.percentile(seconds, 95)) if seconds else 0.0)
