"""Who did what: a verb keeps its doer, a number keeps its name, two names keep their order, two names or numbers
keep what follows each (the roles part of the support check, `bot/support.py`)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from itertools import permutations

from bot.wording import (
    CACHED_TEXTS,
    DATE_WORDS,
    LIGHT_VERBS,
    NUMBER,
    REPORTING_WORDS,
    WORD,
    analyzer,
    clauses,
    names,
    weighted_stems,
)
from bot.wordnet import WordNet, wordnet
from index.lexical import STOPWORDS, content_words
from index.spans import find_spans

_ASIDE = re.compile(r",\s*(?:which|who|whom|whose|a|an|born|\w+ed)\b[^,]*,")
"""An aside between commas: a relative clause, an apposition, a participle ("MERR, a Lewes-based nonprofit,",
"Hendricks, born Nov. 7, 1907,")."""
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
_COPULA = re.compile(r"\b(?:is|are|was|were)\b(?!\s+(?:not|never|no)\b)", re.IGNORECASE)
_PARTICIPLE = re.compile(r"\w+(?:ed|en|ing)|made|built|held|found|known|seen|set|put|paid|sold|told|led|left|hit|"
                         r"cut|shut|run|won|lost|done|gone|born|taken|given", re.IGNORECASE)
_YEAR = re.compile(r"1[6-9]\d\d|20\d\d")
_NOT_DOERS = REPORTING_WORDS | DATE_WORDS | frozenset(
    "today yesterday tomorrow tonight week month year jan feb mar apr jun jul aug sep sept oct nov dec".split())
_NOT_VERBS = REPORTING_WORDS | LIGHT_VERBS | STOPWORDS
"""Words never taken for the verb whose doer is compared."""
JOINED_WORDS = 3
"""The most content words a piece before "and" / "or" may have to count as part of the same subject."""
PAIR_REACH = 2
"""How many words (names, numbers and content words) after a name or number are taken as what it holds."""
_PIECE_BREAK = re.compile(r"[;:—–()]|,\s*(?:and|but|while|with|whereas|which|who|where|when)\b"
                          r"|\b(?:and|but|while|whereas)\b", re.IGNORECASE)
"""Where what follows a name or number stops being its own: a clause break or a list's "and"."""
Item = tuple[str, str]


def numbers_rebound(sentence: str, passage_sentences: Sequence[str]) -> bool:
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


def items_traded(sentence: str, passage_sentences: Sequence[str]) -> bool:
    """Whether two names or numbers of the sentence trade what follows them in the passages ("5% have autism
    and 1% have ADHD" against "1% have autism, while 5% have ADHD"; "Tiger Woods told Fox News … offered Greg
    Norman $700 million" against the reverse): the sentence has x then a and y then b, the passages x then b
    and y then a, and never x then a or y then b."""
    theirs = frozenset().union(*(_tight_pairs(text) for text in passage_sentences))
    for (x, a), (y, b) in permutations(_tight_pairs(sentence), 2):
        if x[0] != y[0] or len({x, y, a, b}) < 4:
            continue
        if (x, a) not in theirs and (y, b) not in theirs and (x, b) in theirs and (y, a) in theirs:
            return True
    return False


@lru_cache(maxsize=CACHED_TEXTS)
def _tight_pairs(text: str) -> frozenset[tuple[Item, Item]]:
    """(x, a): a name, number or date x and one of the PAIR_REACH words after it in its piece of `text`."""
    pairs = set()
    for piece in _PIECE_BREAK.split(text):
        found = _items(piece)
        for at, item in enumerate(found):
            if item[0] != "word":
                pairs.update((item, after) for after in found[at + 1 : at + 1 + PAIR_REACH] if after != item)
    return frozenset(pairs)


def _items(text: str) -> list[Item]:
    """(kind, key) of the names (by their last word, as `names` gives them), numbers, dates and content-word stems
    of `text`, in order."""
    stemmer = analyzer()
    spans = [(start, end, ("name", name.lower())) for start, end, name in names(text)]
    spans += [(span.start, span.end, (span.kind, span.key.lower())) for span in find_spans(text)
              if span.kind != "name"]
    found = [(start, item) for start, _, item in spans]
    for match in WORD.finditer(text):
        word = match.group(0).lower()
        if len(word) > 2 and word not in STOPWORDS and not any(a <= match.start() < b for a, b, _ in spans):
            found.append((match.start(), ("word", stemmer.stem(word))))
    return [item for _, item in sorted(found)]


def _bound_numbers(text: str) -> list[tuple[str, str]]:
    """(digits, name) for each number of `text` that is not a year, with the name nearest before it in its
    clause, else the nearest after it."""
    bound = []
    for clause in clauses(text):
        spans = names(clause)
        for match in NUMBER.finditer(clause):
            core = match.group("core").replace(",", "")
            if not spans or _YEAR.fullmatch(core):
                continue
            before = [name for _, end, name in spans if end <= match.start()]
            after = [name for start, _, name in spans if start >= match.end()]
            bound.append((core, before[-1] if before else after[0] if after else ""))
    return [(core, name) for core, name in bound if name]


def agents_differ(sentence: str, passage_sentences: Sequence[str], glosses: Sequence[str] = ()) -> bool:
    """Whether a verb of `sentence` that passage sentences also use has another doer in each of them ("Lewes
    responded to MERR" against "MERR, a Lewes-based nonprofit, responded"), each doer mentioned in the other text
    or both doers names ("Mauna Loa erupted" against "Kilauea erupted"); an acronym and its words in `glosses`
    ("DOT Department of Transportation") are one doer."""
    lexicon = wordnet()
    if lexicon is None:
        return False
    sentence_stems = set(weighted_stems(sentence))
    source_stems = {stem for text in passage_sentences for stem in weighted_stems(text)}
    for stem in dict.fromkeys(verb_stems(lexicon, sentence)):
        theirs = [doer for text in passage_sentences for doer in _doers(text, stem)]
        for doer, named in _doers(sentence, stem):
            if doer & source_stems and theirs and all(
                    (other & sentence_stems or (named and other_named))
                    and not _same_doer(doer, other, glosses) for other, other_named in theirs):
                return True
    return False


def verb_stems(lexicon: WordNet, text: str) -> list[str]:
    """Stems of the words of `text` used as verbs, as far as their form tells (`_verbal`)."""
    stemmer = analyzer()
    words = WORD.findall(text)
    return [stemmer.stem(word) for before, word in zip(["", *words], words, strict=False)
            if word.islower() and word not in _NOT_VERBS
            and _verbal(lexicon, word, before)]


def _doers(text: str, stem: str) -> list[tuple[frozenset[str], bool]]:
    """(stems, named) of who does the verb of `stem`, at each place `text` uses it as a verb with a doer: the
    words after "by" in a passive ("was fined by the DOT", "a complaint filed by Columbia Reit"), else the
    subject before it (`_subject`); a passive with no "by" has none. `named`: the doer is a name."""
    stemmer, lexicon = analyzer(), wordnet()
    text = _ASIDE.sub("", text)
    doers = []
    words = list(WORD.finditer(text))
    for before, match in zip([None, *words], words, strict=False):
        word = match.group(0).lower()
        if stemmer.stem(word) != stem or lexicon is None or not _verbal(lexicon, word, before and before.group(0)):
            continue
        by = _BY.match(text, match.end())
        if by is None and _PASSIVE.search(text, 0, match.start()):
            by = _BY.search(text, match.end())
            if by is None:
                continue
        phrase = _AGENT_END.split(text[by.end():], 1)[0] if by is not None else _subject(text[:match.start()])
        doer = frozenset(stemmer.stem(w) for w in _doer_words(phrase))
        if doer:
            named = all(w[0].isupper() for w in WORD.findall(phrase) if w.lower() not in STOPWORDS)
            doers.append((doer, named))
    return doers


def _subject(text: str) -> str:
    """The subject at the end of `text` (which ends before a verb): its last piece after a clause break or a
    reporting verb, cut before a relative clause ("The two women who rode with Caleb" → "The two women"), with
    the short piece before it when "and" / "or" joins them ("the Vikings or Norse"), stepping back over asides
    between commas with no content word or a preposition first ("Keough, on behalf of the Trust, has" →
    "Keough"), never over "and" (the subject of "… traveled and found" is not at hand)."""
    parts = _SUBJECT_START.split(text)
    for at in range(len(parts) - 1, -1, -2):
        piece = _RELATIVE.split(_AFTER_REPORTING.split(parts[at])[-1], 1)[0]
        joined = at > 1 and parts[at - 1].strip().lower() in ("and", "or")
        if not _PREPOSITIONAL.match(piece) and _doer_words(piece):
            if joined and 0 < len(_doer_words(parts[at - 2])) <= JOINED_WORDS:
                return _AFTER_REPORTING.split(f"{parts[at - 2]} {parts[at - 1]} {piece}")[-1]
            return piece
        if at and parts[at - 1].strip().lower() in ("and", "or", "but"):
            return ""
    return ""


def _doer_words(text: str) -> list[str]:
    return [w for w in content_words(text) if w not in _NOT_DOERS]


def _verbal(lexicon: WordNet, word: str, before: str | None) -> bool:
    """Whether the word's form makes it a verb: a regular or irregular past ("responded", "won") or a word
    after "to" or a modal ("to increase", "will sign")."""
    bases = lexicon.lemmas(word, "v")
    past = any(base != word for base in bases) and not word.endswith(("s", "ing"))
    return bool(bases) and (past or (before or "").lower() in _VERB_MARKERS)


def _same_doer(doer: frozenset[str], other: frozenset[str], glosses: Sequence[str]) -> bool:
    """Doers that share a word, or an acronym and its words ("DOT" and "Department of Transportation")."""
    return bool(doer & other) or any(doer & stems.keys() and other & stems.keys()
                                     for stems in map(weighted_stems, glosses))


def names_reordered(sentence: str, restated: str) -> bool:
    """Names (each once in both) in another order than in the clause restated, both active or both passive."""
    if (" by " in f" {sentence} ") != (" by " in f" {restated} "):
        return False
    mine = [name for _, _, name in names(sentence)]
    theirs = [name for _, _, name in names(restated)]
    shared = [name for name in mine if mine.count(name) == 1 and theirs.count(name) == 1]
    return len(shared) >= 2 and sorted(shared, key=theirs.index) != shared


def predicates_traded(sentence: str, passage_sentences: Sequence[str]) -> bool:
    """Whether the sentence says of one subject what the passages say of another ("mice are the most likely
    carriers" against "squirrels are the most likely carriers, but mice can also be infected"): a predicate
    after "is" / "are" / "was" / "were" whose words the passages give, in full, only to other subjects that the
    sentence mentions too."""
    sentence_stems = set(weighted_stems(sentence))
    source_stems = {stem for text in passage_sentences for stem in weighted_stems(text)}
    theirs = [pair for text in passage_sentences for pair in _copular(text)]
    for subject, predicate in _copular(sentence):
        others = [other for other, said in theirs if predicate <= said]
        if others and subject & source_stems and all(
                not other & subject and other & sentence_stems for other in others):
            return True
    return False


def _copular(text: str) -> list[tuple[frozenset[str], frozenset[str]]]:
    """(subject stems, predicate stems) of each "X is Y" in `text` whose predicate has two content words or more."""
    stemmer = analyzer()
    found = []
    for match in _COPULA.finditer(text):
        subject = _subject(text[:match.start()])
        predicate = _SUBJECT_START.split(text[match.end():], 1)[0]
        first = WORD.search(predicate)
        if first is None or _PARTICIPLE.fullmatch(first.group(0)):
            continue  # a passive or a progressive ("were involved", "is rising"): a verb, not a predicate
        subject_stems = frozenset(stemmer.stem(w) for w in _doer_words(subject))
        predicate_stems = frozenset(stemmer.stem(w) for w in content_words(predicate))
        if subject_stems and len(predicate_stems) >= 2:
            found.append((subject_stems, predicate_stems))
    return found
