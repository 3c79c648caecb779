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
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from itertools import combinations, product

import numpy as np
import nupunkt

from bot.wordnet import WordNet, wordnet
from index.lexical import STOPWORDS, Analyzer, content_words, fold_accents
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
FUNCTION_WORDS = frozenset(
    "even whose toward towards like though although however thus therefore hence among amid amongst across "
    "along around upon within via per onto including".split()
)
"""Words that relate others and claim nothing themselves (the retrieval stopwords lack them): unchecked."""
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
    "reportedly allegedly potential if unless whether".split()
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
SOFT_SUPPORT = 0.65
"""Cosine of single-word MiniLM vectors at which a passage word stands for a generated one (calibrated on
tests/data/support_labelled.jsonl: see tests/bot/test_support.py)."""
LOOKUPS_KEPT = 4096
"""Words outside the snapshot's vocabulary whose vectors a WordVectors keeps (6 MB at 384 dimensions)."""
CACHED_TEXTS = 4096
"""Clauses and passage sentences whose names, clauses and stems are kept (an answer's sentences share passages)."""
NAME_WEIGHT = 0.5
"""What a shared name counts for when finding the passage clause a clause restates (other words count 1):
a sentence's names run through all its clauses, its other words say what each claims."""
_TOKEN = re.compile(r"[^\W_]+(?:n't)?|n't", re.IGNORECASE)
_CLAUSE_BREAK = re.compile(r"[,;:—–()]|\b(?:which|who|that|while|but|although|whereas)\b"
                           r"|\band\s+(?=(?:has|have|had|is|are|was|were|will|would|could|may|might|can)\b)")
_NOT_ONLY = re.compile(r"\bnot\s+only\b", re.IGNORECASE)
_ONE_OF = re.compile(r"\b(?:one|some|among)\s+(?:of\s+)?the\b", re.IGNORECASE)
"""'One of the largest', 'among the first': a superlative claimed of a group, not of one."""
_ACRONYM = re.compile(r"[A-Z]{2,6}")
_CAPITALISED_RUN = re.compile(r"[A-Z][\w’'-]*(?:\s+(?:(?:of|and|for|the)\s+)?[A-Z][\w’'-]*)+")
_ASIDE = re.compile(r",\s*(?:which|who|whom|whose|a|an)\b[^,]*,")
_BY = re.compile(r"\s+by\s+")
_SUBJECT_START = re.compile(r"([,;:—–()]|\b(?:and|but|or|where|when|while|after|before|because|as|since|although|"
                            r"though|if|that)\b)", re.IGNORECASE)
_AGENT_END = re.compile(
    rf"{_SUBJECT_START.pattern}|\b(?:for|to|with|over|from|in|on|at|after|against|about|into|under|during|than)\b",
    re.IGNORECASE)
_PREPOSITIONAL = re.compile(r"\s*(?:on|in|at|for|with|by|from|of|to|under|after|before|during|according|"
                            r"despite|without)\b", re.IGNORECASE)
_AFTER_REPORTING = re.compile(rf"\b(?:{'|'.join(sorted(REPORTING_WORDS))})\b", re.IGNORECASE)
_VERB_MARKERS = frozenset("to will would can could may might should must did does do not never".split())
_RELATIVE = re.compile(r"\b(?:who|whom|whose|which)\b", re.IGNORECASE)
_PASSIVE = re.compile(r"\b(?:is|are|was|were|be|been|being|get|gets|got)\s+(?:\w+ly\s+)?$", re.IGNORECASE)
_CONTRACTIONS = {"won't": "will not", "can't": "can not", "shan't": "shall not"}
_CONTRACTION = re.compile(r"\b(?:won|can|shan)['’]t\b", re.IGNORECASE)
_SUFFIXES = {"'t": "not", "'ll": "will", "'re": "are", "'ve": "have"}
_SUFFIX = re.compile(r"(?<=[a-z])n['’]t\b|['’](?:ll|re|ve)\b", re.IGNORECASE)
_DOTTED = re.compile(r"\b(?:[A-Z]\.){2,}")
_SET_TO = re.compile(r"\b(?:is|are|was|were|be|been|being)\s+set\s+(?:to|for)\b", re.IGNORECASE)
"""'is set to', 'was set for' say what 'is scheduled to', 'was scheduled for' say (their "set" is no content word)."""
_NUMBER = re.compile(
    r"[$€£]?(?P<core>\d(?:[\d,]*\d)?(?:\.\d+)?)"
    r"(?:\s?(?P<scale>%|(?:percent|per cent|thousand|million|billion|trillion|bn)\b))?",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_][\w’']*")
_DEMONYM = re.compile(r"(?<=\w{4})(?:ian|an|n|ese|ish|i)$", re.IGNORECASE)
"""An adjective of place ("American", "Iranian", "Lebanese") is supported by its place ("America", "Iran")."""
_YEAR_RANGE = re.compile(r"\b(\d{2})(\d{2})\s?[-–]\s?(\d{2})\b")
_YEAR = re.compile(r"1[6-9]\d\d|20\d\d")
_POSSESSIVE = re.compile(r"['’]s?$")
_SCALES = {"%": "percent", "per cent": "percent", "bn": "billion"}
_DATE_WORDS = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday january february march april may june july "
    "august september october november december".split()
)
_NOT_DOERS = REPORTING_WORDS | _DATE_WORDS | frozenset("today yesterday tomorrow tonight week month year".split())
_NOT_NAMES = STOPWORDS | frozenset(
    "according additionally however meanwhile overall yes instead although despite since following".split()
)


@lru_cache(maxsize=1)
def _analyzer() -> Analyzer:
    return Analyzer()


class WordVectors:
    """Unit vectors of single words: the snapshot's vocabulary table, else `lookup` (the model's token table),
    whose answers for the last LOOKUPS_KEPT words are kept."""

    def __init__(self, vocabulary: dict[str, int], table: np.ndarray,
                 lookup: Callable[[Sequence[str]], np.ndarray]) -> None:
        self.vocabulary, self.table, self.lookup = vocabulary, table, lookup
        self._looked_up: OrderedDict[str, np.ndarray] = OrderedDict()

    def __call__(self, words: Sequence[str]) -> np.ndarray:
        vectors = np.zeros((len(words), self.table.shape[1]), dtype=np.float32)
        known = [row for row, word in enumerate(words) if word in self.vocabulary]
        vectors[known] = self.table[[self.vocabulary[words[row]] for row in known]]
        new = list(dict.fromkeys(w for w in words if w not in self.vocabulary and w not in self._looked_up))
        if new:
            self._looked_up.update(zip(new, self.lookup(new), strict=True))
        for row, word in enumerate(words):
            if word not in self.vocabulary:
                vectors[row] = self._looked_up[word]
                self._looked_up.move_to_end(word)
        while len(self._looked_up) > LOOKUPS_KEPT:
            self._looked_up.popitem(last=False)
        return vectors


def unsupported(sentence: str, passages: Sequence[str], vectors: WordVectors | None = None,
                soft_floor: float = SOFT_SUPPORT) -> str | None:
    """Why `sentence` is not supported by `passages` (e.g. 'word "storm" not in'), or None. With `vectors`,
    a word the passages lack is supported by a passage word whose cosine reaches `soft_floor`."""
    sentence, passages = _normalised(sentence), [_normalised(p) for p in passages]
    passages = [*passages, *_acronym_glosses(sentence, passages)]
    return (unsupported_fact(sentence, passages) or _unsupported_words(sentence, passages, vectors, soft_floor)
            or _disagreement(sentence, passages))


def _acronym_glosses(sentence: str, passages: Sequence[str]) -> list[str]:
    """"DEA Drug Enforcement Administration" for each acronym that `sentence` uses and the passages spell out, or
    spells out where the passages use it: one more (gloss) passage each, so either form supports the other."""
    sentence_names, passage_names = _capitalised_runs(sentence), _capitalised_runs(" ".join(passages))
    passage_words = {_POSSESSIVE.sub("", word) for p in passages for word in _WORD.findall(p)}
    sentence_words = {_POSSESSIVE.sub("", word) for word in _WORD.findall(sentence)}
    glosses = [f"{word} {' '.join(passage_names[word])}" for word in sentence_words
               if _ACRONYM.fullmatch(word) and word not in passage_words and word in passage_names]
    glosses += [f"{acronym} {' '.join(words)}" for acronym, words in sentence_names.items()
                if acronym in passage_words and acronym not in sentence_words]
    return glosses


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


def _normalised(text: str) -> str:
    """`text` with contractions spelled out ("didn't" → "did not", "she'll" → "she will"), acronyms without
    their dots ("U.S." → "US") and "is set to" said as "is scheduled to"."""
    text = _CONTRACTION.sub(lambda match: _CONTRACTIONS[match.group(0).lower().replace("’", "'")], text)
    text = _SUFFIX.sub(lambda match: " " + _SUFFIXES[match.group(0).lower().replace("’", "'").lstrip("n")], text)
    text = _DOTTED.sub(lambda match: match.group(0).replace(".", ""), text)
    return _SET_TO.sub(lambda match: "{} scheduled {}".format(*match.group(0).split()[::2]), text)


def unsupported_fact(sentence: str, passages: Sequence[str]) -> str | None:
    """The first number, date or name of `sentence` that no passage contains, e.g. 'number "$30 billion" is
    not in'."""
    source = _fold(" ".join(passages))
    facts = [*_unsupported_numbers(sentence, source), *_unsupported_names(sentence, source)]
    if not facts:
        return None
    _, kind, surface = min(facts)
    return f'{kind} "{surface}" is not in'


def _unsupported_numbers(sentence: str, source: str) -> list[tuple[int, str, str]]:
    """Numbers absent from `source`; one without a scale word matches the same digits with any scale."""
    source = _YEAR_RANGE.sub(r"\1\2-\1\3", source)  # "1977-81" holds 1981
    known = {_number(m)[1:] for m in _NUMBER.finditer(source)}
    digits = {core for core, _ in known}
    found = []
    for match in _NUMBER.finditer(sentence):
        surface, core, scale = _number(match)
        if (core, scale) not in known and (scale or core not in digits):
            found.append((match.start(), "number", surface))
    return found


def _unsupported_names(sentence: str, source: str) -> list[tuple[int, str, str]]:
    """Capitalised words (names, weekdays, months) that do not begin any word of `source`."""
    found = []
    lexicon = wordnet()
    for match in _WORD.finditer(sentence):
        word = _POSSESSIVE.sub("", match.group(0))
        if len(word) < 2 or not word[0].isupper() or word.lower() in _NOT_NAMES:
            continue
        if match.start() == 0 and lexicon is not None and (lexicon.only_modifier(word)
                                                           or lexicon.base_forms(word) != {word.lower()}):
            continue  # "Later, …", "Participants …": capitalised for being first; the word check has it
        if not re.search(r"\b" + _DEMONYM.sub("", re.escape(_fold(word))), source, re.IGNORECASE):
            found.append((match.start(), "date" if word.lower() in _DATE_WORDS else "name", word))
    return found


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
    analyzer = _analyzer()
    source_words = list(dict.fromkeys(w for p in passages for w in content_words(p)))
    source_stems = {analyzer.stem(w) for w in source_words}
    source_tokens = {t.lower() for p in passages for t in _TOKEN.findall(p)}
    extra = [w for w in dict.fromkeys(content_words(sentence))
             if not {w} & (REPORTING_WORDS | LIGHT_VERBS | FUNCTION_WORDS | FUTURE | QUANTIFIERS.keys())
             and analyzer.stem(w) not in source_stems and not _of_place(w, source_words)
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


def _related(lexicon: WordNet, word: str, source_words: Sequence[str], bases: set[str]) -> bool:
    """Whether a passage word shares a sense with `word` or is one step more or less general in WordNet (in
    either direction); a light verb of the passage only by sharing a sense ("come" for "arrive")."""
    light = bases & LIGHT_VERBS
    if lexicon.related(word) & (bases - light) or lexicon.synonyms(word) & light:
        return True
    mine = lexicon.base_forms(word)
    return any(mine & (lexicon.related(w) | lexicon.ancestors(w)) for w in source_words if w not in LIGHT_VERBS)


def _disagreement(sentence: str, passages: Sequence[str]) -> str | None:
    """How a clause of `sentence` disagrees with the passage clause it restates, or None."""
    sentences = [p[start:end] for p in passages for start, end in nupunkt.sent_spans(p)]
    clauses = [(c, whole, _weighted_stems(c)) for whole in sentences for c in _clauses(whole)]
    for clause in _clauses(sentence):
        closest = _restated(_weighted_stems(clause), clauses) + _restated(_weighted_stems(clause, 0.0), clauses)
        negated, hedged, future = _cues(clause, NEGATIONS), _cues(clause, MODALITY), _cues(clause, FUTURE)
        for restated, whole in closest:  # every clause it may restate must agree (ties are not a way out)
            if negated != _cues(restated, NEGATIONS):
                return "negation that differs from"
            if hedged != _cues(restated, MODALITY) and not (hedged and _cues(whole, MODALITY)):
                return "certainty that differs from"
            if future != _cues(restated, FUTURE) and not (future and _cues(whole, FUTURE)):
                return "certainty that differs from"
            if _opposite_direction(clause, whole):
                return "direction that differs from"
            if _overstated(clause, whole):
                return "scope that differs from"
            if _roles_swapped(clause, restated):
                return "roles swapped against"
    if _agents_differ(sentence, sentences):
        return "roles swapped against"
    return "a number tied to another name than in" if _numbers_rebound(sentence, sentences) else None


def _numbers_rebound(sentence: str, passage_sentences: Sequence[str]) -> bool:
    """Whether two names trade numbers: the sentence gives a number to one name and the passages give it to
    another, which has a number of its own in the sentence, or the first has one in the passages ("Swayman has
    39 wins, Ullmark 23" against "Ullmark has 39 wins and Swayman has 23"). Years are left out: they say when,
    not whose."""
    mine = _bound_numbers(sentence)
    theirs = [pair for text in passage_sentences for pair in _bound_numbers(text)]
    for number, name in mine:
        others = {other for found, other in theirs if found == number}
        if others and name not in others and any(
                any(n == other for _, n in mine) or any(n == name for _, n in theirs) for other in others):
            return True
    return False


def _bound_numbers(text: str) -> list[tuple[str, str]]:
    """(digits, name) for each number of `text` that is not a year, with the name nearest before it in its
    clause, else the nearest after it."""
    bound = []
    for clause in _clauses(text):
        names = _names(clause)
        for match in _NUMBER.finditer(clause):
            core = match.group("core").replace(",", "")
            if not names or _YEAR.fullmatch(core):
                continue
            before = [name for _, end, name in names if end <= match.start()]
            after = [name for start, _, name in names if start >= match.end()]
            bound.append((core, before[-1] if before else after[0] if after else ""))
    return [(core, name) for core, name in bound if name]


def _agents_differ(sentence: str, passage_sentences: Sequence[str]) -> bool:
    """Whether a verb of `sentence` that passage sentences also use has another doer in each of them ("Lewes
    responded to MERR" against "MERR, a Lewes-based nonprofit, responded"), each doer mentioned in the other text
    or both doers names ("Mauna Loa erupted" against "Kilauea erupted")."""
    lexicon = wordnet()
    if lexicon is None:
        return False
    sentence_stems = set(_weighted_stems(sentence))
    source_stems = {stem for text in passage_sentences for stem in _weighted_stems(text)}
    for stem in dict.fromkeys(_verb_stems(lexicon, sentence)):
        theirs = [doer for text in passage_sentences for doer in _doers(text, stem)]
        for doer, named in _doers(sentence, stem):
            if doer & source_stems and theirs and all(
                    (other & sentence_stems or (named and other_named))
                    and not _same_doer(doer, other, passage_sentences) for other, other_named in theirs):
                return True
    return False


def _verb_stems(lexicon: WordNet, text: str) -> list[str]:
    """Stems of the words of `text` used as verbs, as far as their form tells (`_verbal`)."""
    analyzer = _analyzer()
    words = _WORD.findall(text)
    return [analyzer.stem(word) for before, word in zip(["", *words], words, strict=False)
            if word.islower() and not {word} & (REPORTING_WORDS | LIGHT_VERBS | STOPWORDS)
            and _verbal(lexicon, word, before)]


def _doers(text: str, stem: str) -> list[tuple[frozenset[str], bool]]:
    """(stems, named) of who does the verb of `stem`, at each place `text` uses it as a verb with a doer: the
    words after "by" in a passive ("was fined by the DOT", "a complaint filed by Columbia Reit"), else the
    subject before it (`_subject`); a passive with no "by" has none. `named`: the doer is a name."""
    analyzer, lexicon = _analyzer(), wordnet()
    text = _ASIDE.sub("", text)
    doers = []
    words = list(_WORD.finditer(text))
    for before, match in zip([None, *words], words, strict=False):
        word = match.group(0).lower()
        if analyzer.stem(word) != stem or lexicon is None or not _verbal(lexicon, word, before and before.group(0)):
            continue
        by = _BY.match(text, match.end())
        if by is None and _PASSIVE.search(text, 0, match.start()):
            by = _BY.search(text, match.end())
            if by is None:
                continue
        phrase = _AGENT_END.split(text[by.end():], 1)[0] if by is not None else _subject(text[:match.start()])
        doer = frozenset(analyzer.stem(w) for w in content_words(phrase) if w not in _NOT_DOERS)
        if doer:
            named = all(w[0].isupper() for w in _WORD.findall(phrase) if w.lower() not in STOPWORDS)
            doers.append((doer, named))
    return doers


def _subject(text: str) -> str:
    """The subject at the end of `text` (which ends before a verb): its last piece after a clause break or a
    reporting verb, cut before a relative clause ("The two women who rode with Caleb" → "The two women"),
    stepping back over asides between commas with no content word or a preposition first ("Keough, on behalf
    of the Trust, has" → "Keough"), never over "and" (the subject of "… traveled and found" is not at hand)."""
    parts = _SUBJECT_START.split(text)
    for at in range(len(parts) - 1, -1, -2):
        piece = _RELATIVE.split(_AFTER_REPORTING.split(parts[at])[-1], 1)[0]
        if not _PREPOSITIONAL.match(piece) and [w for w in content_words(piece) if w not in _NOT_DOERS]:
            return piece
        if at and parts[at - 1].strip().lower() in ("and", "or", "but"):
            return ""
    return ""


def _verbal(lexicon: WordNet, word: str, before: str | None) -> bool:
    """Whether the word's form makes it a verb: a regular or irregular past ("responded", "won") or a word
    after "to" or a modal ("to increase", "will sign")."""
    bases = lexicon.lemmas(word, "v")
    past = any(base != word for base in bases) and not word.endswith(("s", "ing"))
    return bool(bases) and (past or (before or "").lower() in _VERB_MARKERS)


def _same_doer(doer: frozenset[str], other: frozenset[str], passage_sentences: Sequence[str]) -> bool:
    """Doers that share a word, or an acronym and its words ("DOT" and "Department of Transportation", as
    glossed by `_acronym_glosses`)."""
    if doer & other:
        return True
    glosses = [set(_weighted_stems(text)) for text in passage_sentences if _ACRONYM.fullmatch(text.split()[0])]
    return any(doer & gloss and other & gloss for gloss in glosses)


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"\b{re.escape(name)}", text, re.IGNORECASE) is not None


@lru_cache(maxsize=CACHED_TEXTS)
def _names(text: str) -> tuple[tuple[int, int, str], ...]:
    """(start, end, last word) of each name in `text`, in order."""
    return tuple((span.start, span.end, span.key.split()[-1]) for span in find_spans(text) if span.kind == "name")


def _restated(wanted: dict[str, float], clauses: list[tuple[str, str, dict[str, float]]]) -> list[tuple[str, str]]:
    """The passage clauses (with their sentences) that share the most weight of `wanted` stems (none when no
    clause shares any)."""
    overlaps = [sum(weight for stem, weight in wanted.items() if stem in stems) for _, _, stems in clauses]
    most = max(overlaps, default=0.0)
    return [(clause, whole) for (clause, whole, _), overlap in zip(clauses, overlaps, strict=True)
            if overlap == most > 0]


@lru_cache(maxsize=CACHED_TEXTS)
def _clauses(text: str) -> tuple[str, ...]:
    """`text` cut at punctuation and clause words, keeping the pieces that hold a content word."""
    return tuple(piece for piece in _CLAUSE_BREAK.split(text) if piece and content_words(piece)) or (text,)


@lru_cache(maxsize=CACHED_TEXTS)
def _weighted_stems(text: str, name_weight: float = NAME_WEIGHT) -> dict[str, float]:
    """The stems of the content words of `text`, names (capitalised past the first word) at `name_weight`."""
    analyzer = _analyzer()
    names = {w.lower() for w in _WORD.findall(text)[1:] if w[0].isupper()}
    weights: dict[str, float] = {}
    for word in content_words(text):
        stem = analyzer.stem(word)
        weights[stem] = max(weights.get(stem, 0.0), name_weight if word in names else 1.0)
    return weights


def _cues(text: str, cues: frozenset[str]) -> bool:
    """Whether `text` holds one of `cues` (a word ending in "n't" counts as a negation, "not only" does not)."""
    tokens = {t.lower().replace("’", "'") for t in _TOKEN.findall(_NOT_ONLY.sub("only", text))}
    if cues is NEGATIONS and any(t.endswith("n't") for t in tokens):
        return True
    return bool(tokens & cues)


def _opposite_direction(clause: str, passage_sentence: str) -> bool:
    """A direction word ("before", "more", "up") whose opposite, and not itself, the passage sentence uses."""
    mine = {t.lower() for t in _TOKEN.findall(clause)}
    theirs = {t.lower() for t in _TOKEN.findall(passage_sentence)}
    return any(word not in theirs and OPPOSITES.get(word, frozenset()) & theirs for word in mine)


def _overstated(clause: str, passage_sentence: str) -> bool:
    """A scope word ("all", "only", "most") with none of its group in the passage sentence, or a superlative
    stated of one where the passage says "one of the" / "among the"."""
    mine = [t.lower() for t in _TOKEN.findall(_NOT_ONLY.sub("", clause))]
    theirs = {t.lower() for t in _TOKEN.findall(passage_sentence)}
    if any(word in QUANTIFIERS and not QUANTIFIERS[word] & theirs for word in mine):
        return True
    return bool(_ONE_OF.search(passage_sentence) and not _ONE_OF.search(clause) and any(map(_superlative, mine)))


def _superlative(word: str) -> bool:
    """'most', 'least', or an adjective ending in -est whose base WordNet knows ("largest", not "interest")."""
    if word in ("most", "least", "best", "worst"):
        return True
    lexicon = wordnet()
    return word.endswith("est") and lexicon is not None and any(base != word for base in lexicon.lemmas(word, "a"))


def _roles_swapped(sentence: str, restated: str) -> bool:
    """Names (each once in both) in another order than in the clause restated, both active or both passive."""
    if (" by " in f" {sentence} ") != (" by " in f" {restated} "):
        return False
    mine = [name for _, _, name in _names(sentence)]
    theirs = [name for _, _, name in _names(restated)]
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
