"""Candidate short answers inside a sentence: names, numbers and dates, found without a tagger.

A name is a run of capitalised words (joined by "of", "the", "de", "&" … and trailing numbers, as in
"Bank of America" or "Title 42"); a sentence's first word counts only when it is not a common word. Numbers
carry their currency and scale ("$787.5 million", "34", "6.6%"); dates are months, days, years and ranges of
years ("1999-2013", "1977–81": one span, so "When did Chávez rule?" is not answered "2013").
A span's `kind` is "name", "number" or "date"; its offsets are relative to the sentence text.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence, Set
from dataclasses import dataclass

import numpy as np

from index.lexical import STOPWORDS, content_words, fold_accents

MONTHS = ("january february march april may june july august september october november december "
          "jan feb mar apr jun jul aug sep sept oct nov dec").split()
WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_MONTH = r"(?:January|February|March|April|May|June|July|August|September|October|November|December|" \
         r"Jan\.?|Feb\.?|Mar\.?|Apr\.?|Jun\.?|Jul\.?|Aug\.?|Sept?\.?|Oct\.?|Nov\.?|Dec\.?)"
_DATE = re.compile(
    rf"\b(?:{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?(?:,?\s+\d{{4}})?|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH}(?:,?\s+\d{{4}})?"
    rf"|{_MONTH}(?:,?\s+\d{{4}})?|(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
    rf"|(?:1[6-9]|20)\d\d\s?[-–]\s?(?:(?:1[6-9]|20)\d\d|\d\d)|(?:1[6-9]|20)\d\d(?:s)?)(?![\w-])"
)
_NUMBER_WORD = (r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
                r"sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
                r"hundred|dozen|dozens|hundreds|thousands|millions)")
_SCALE = r"(?:\s?(?:%|percent|per cent|million|billion|trillion|thousand|hundred|bn|m|k)\b|%)"
_NUMBER = re.compile(
    rf"(?:[$€£]\s?)?\d+(?:[.,]\d+)*(?:[-–]\d+(?:[.,]\d+)*)?{_SCALE}?"
    rf"|\b{_NUMBER_WORD}(?:[- ]{_NUMBER_WORD})*{_SCALE}?\b",
    re.IGNORECASE,
)
_TOKEN = re.compile(r"\S+")
_EDGE = "\"“”‘’'()[]{},.;:!?—–-*"
_CONNECTORS = frozenset("of de del da di du la le von van der den al bin & for on y".split())
_LOWER_WORD = re.compile(r"(?<![\w'’-])[a-z][\w'’-]*")
_DETERMINERS = ("the ", "a ", "an ")
COMMON_STARTERS = STOPWORDS | frozenset(
    """after as but when while in on at for this that these those some many most more other officials police
    experts according however meanwhile also still now here there if although though since because last next
    earlier later then yet so despite during before with without among it its we you they he she i new
    several both each every all one two three four five six seven eight nine ten while once under over
    like unlike instead sunday monday tuesday wednesday thursday friday saturday what who which where why how
    yes no not today yesterday tomorrow read watch see click photo video editor""".split()
)


TITLES = frozenset(
    """gov governor sen senator rep representative president vice mayor mr mrs ms dr prime minister ceo secretary
    judge justice coach king queen prince princess pope chancellor premier speaker leader chairman chairwoman
    chair director gen general lt col sgt officer commissioner ambassador attorney sheriff chief emperor
    sir dame lord lady archbishop bishop cardinal rev star quarterback actor actress singer rapper""".split()
)


@dataclass(frozen=True)
class Span:
    """A name, number or date at [start, end) of a sentence; `key` is its text folded for comparison and
    voting ("The Apollo" and "the apollo" agree), `words` its content words (both worked out when first read)."""

    start: int
    end: int
    kind: str
    text: str

    @functools.cached_property
    def key(self) -> str:
        key = fold_accents(self.text.lower()).replace("’", "'")
        for determiner in _DETERMINERS:
            key = key.removeprefix(determiner)
        return key.removesuffix("'s")

    @functools.cached_property
    def words(self) -> tuple[str, ...]:
        return tuple(content_words(self.text))


KINDS = ("name", "number", "date")


def span_rows(text: str, sentences: Sequence[tuple[int, int]]) -> np.ndarray:
    """int32 rows (sentence index, start, end, kind code) of the spans of each (start, end) sentence of
    `text`; span offsets are relative to the sentence's start. What snapshots store."""
    common = COMMON_STARTERS | set(_LOWER_WORD.findall(text))
    rows = [(index, span.start, span.end, KINDS.index(span.kind))
            for index, (start, end) in enumerate(sentences) for span in find_spans(text[start:end], common)]
    return np.array(rows, dtype=np.int32).reshape(-1, 4)


def spans_from_rows(text: str, rows: np.ndarray) -> list[Span]:
    """The spans of one sentence (`text`) from its stored rows."""
    return [Span(start, end, KINDS[kind], text[start:end]) for _, start, end, kind in rows.tolist()]


def find_spans(text: str, common: Set[str] = COMMON_STARTERS) -> list[Span]:
    """Names, numbers and dates in `text`, in order, never overlapping (dates win over names, names over
    numbers, so "Title 42" is a name and "May 11" a date). A capitalised word that opens the text starts no
    name when it is in `common` (common words; snapshots add the words their article writes in lower case)."""
    taken = bytearray(len(text))
    spans = []
    dates = ((m.start(), m.end()) for m in _DATE.finditer(text))
    numbers = ((m.start(), m.end()) for m in _NUMBER.finditer(text))
    for kind, found in (("date", dates), ("name", _name_runs(text, common)), ("number", numbers)):
        for start, end in found:
            if not any(taken[start:end]):
                spans.append(Span(start, end, kind, text[start:end]))
                taken[start:end] = b"\x01" * (end - start)
    return sorted(spans, key=lambda s: s.start)


def _name_runs(text: str, common: Set[str]) -> list[tuple[int, int]]:
    """(start, end) of each run of capitalised words; a title before a name ends the run before it
    ("Florida Gov. Ron DeSantis" → "Florida", "Ron DeSantis")."""
    tokens = _tokens(text)
    runs: list[tuple[int, int]] = []
    run: list[tuple[int, int]] = []
    pending: list[tuple[int, int]] = []  # connectors waiting for a capitalised word to follow
    for index, (core, start, end, opens, closes) in enumerate(tokens):
        if opens and run:
            runs, run, pending = _close(runs, run, text, common), [], []
        capitalised = _is_capitalised(core)
        if capitalised and _is_title(core) and index + 1 < len(tokens) and _is_capitalised(tokens[index + 1][0]):
            runs, run, pending = _close(runs, run, text, common), [], []
            continue
        if capitalised:
            run += [*pending, (start, end)]
            pending = []
        elif run and core.isdigit():
            run.append((start, end))
        elif run and not closes and (core.lower() in _CONNECTORS or (
                core.lower() == "the" and [text[s:e].lower() for s, e in pending] == ["of"])):
            pending.append((start, end))
        else:
            runs, run, pending = _close(runs, run, text, common), [], []
            continue
        if closes:
            runs, run, pending = _close(runs, run, text, common), [], []
    return _close(runs, run, text, common)


def _tokens(text: str) -> list[tuple[str, int, int, bool, bool]]:
    """(word, start, end, opens, closes) per whitespace token: the word without surrounding punctuation or a
    possessive, whether punctuation opens it (a quote), and whether it ends a name (punctuation after it,
    a possessive, or a full stop that is not an abbreviation's)."""
    tokens = []
    for match in _TOKEN.finditer(text):
        raw = match.group(0)
        core = raw.strip(_EDGE)
        if not core:
            tokens.append(("", match.start(), match.start(), True, True))
            continue
        lead = raw.index(core)
        trail = raw[lead + len(core) :]
        possessive = core.endswith(("'s", "’s"))
        if possessive:
            core = core[:-2]
        if not core:
            tokens.append(("", match.start(), match.start(), True, True))
            continue
        start = match.start() + lead
        closes = possessive or trail not in ("", ".") or (trail == "." and not _abbreviation(core))
        tokens.append((core, start, start + len(core), lead > 0, closes))
    return tokens


def _close(runs: list[tuple[int, int]], run: list[tuple[int, int]], text: str,
           common: Set[str]) -> list[tuple[int, int]]:
    """`runs` with `run` added, less the common words that open the text ("The", "Officials", capitalised
    only because a sentence starts with them)."""
    opens_place = (text[run[0][0] : run[-1][1]].lower() + " ").startswith(_PLACE_PREFIXES) if run else False
    while (run and not opens_place and text[run[0][0] : run[0][1]].lower() in common
           and not text[: run[0][0]].strip(_EDGE)):
        run = run[1:]
    if run:
        runs.append((run[0][0], run[-1][1]))
    return runs


def _is_capitalised(word: str) -> bool:
    lowered = word.lower()
    return bool(word) and word[0].isupper() and lowered not in WEEKDAYS and lowered.rstrip(".") not in MONTHS


def _is_title(word: str) -> bool:
    return word.lower().rstrip(".") in TITLES


def _abbreviation(word: str) -> bool:
    """"U.S", "Jr", "St": a dot after these does not end the name."""
    return "." in word or (len(word) <= 3 and word[0].isupper())


# Places named in news: countries, US states, large cities, continents and oceans (folded, lower case).
_ONE_WORD_PLACES = """afghanistan albania algeria andorra angola argentina armenia australia austria azerbaijan
    bahamas bahrain bangladesh barbados belarus belgium belize benin bhutan bolivia bosnia botswana brazil brunei
    bulgaria burundi cambodia cameroon canada chad chile china colombia comoros congo croatia cuba cyprus czechia
    denmark djibouti dominica ecuador egypt eritrea estonia eswatini ethiopia fiji finland france gabon gambia
    georgia germany ghana greece grenada guatemala guinea guyana haiti honduras hungary iceland india indonesia
    iran iraq ireland israel italy jamaica japan jordan kazakhstan kenya kiribati kosovo kuwait kyrgyzstan laos
    latvia lebanon lesotho liberia libya liechtenstein lithuania luxembourg madagascar malawi malaysia maldives
    mali malta mauritania mauritius mexico micronesia moldova monaco mongolia montenegro morocco mozambique
    myanmar namibia nauru nepal netherlands nicaragua niger nigeria norway oman pakistan palau palestine panama
    paraguay peru philippines poland portugal qatar romania russia rwanda samoa senegal serbia seychelles
    singapore slovakia slovenia somalia spain sudan suriname sweden switzerland syria taiwan tajikistan tanzania
    thailand togo tonga tunisia turkey turkiye turkmenistan tuvalu uganda ukraine uruguay uzbekistan vanuatu
    venezuela vietnam yemen zambia zimbabwe uk us usa u.s u.k britain england scotland wales vatican gaza
    greenland alabama alaska arizona arkansas california colorado connecticut delaware florida hawaii idaho
    illinois indiana iowa kansas kentucky louisiana maine maryland massachusetts michigan minnesota mississippi
    missouri montana nebraska nevada ohio oklahoma oregon pennsylvania tennessee texas utah vermont virginia
    washington wisconsin wyoming london paris berlin madrid rome moscow beijing tokyo delhi mumbai shanghai sydney
    toronto chicago houston boston seattle miami atlanta dallas denver phoenix philadelphia detroit baltimore
    nashville austin portland cleveland memphis orlando tampa kyiv kiev istanbul dubai cairo lagos nairobi seoul
    jerusalem tehran caracas havana manila jakarta bangkok hanoi brussels vienna amsterdam stockholm oslo dublin
    lisbon athens warsaw prague budapest geneva zurich munich milan venice barcelona africa asia europe
    antarctica pacific atlantic arctic mediterranean"""
_MULTI_WORD_PLACES = """new zealand, north korea, south korea, south africa, south sudan, saudi arabia, sri lanka,
    costa rica, el salvador, united kingdom, united states, united arab emirates, great britain, northern ireland,
    vatican city, hong kong, west bank, puerto rico, dominican republic, ivory coast, sierra leone,
    czech republic, burkina faso, new hampshire, new jersey, new mexico, new york, north carolina, north dakota,
    rhode island, south carolina, south dakota, west virginia, district of columbia, los angeles, san francisco,
    san diego, san jose, las vegas, new orleans, washington dc, washington d.c, mexico city, rio de janeiro,
    sao paulo, buenos aires, tel aviv, new delhi, salt lake city, kansas city, new york city, north america,
    south america, latin america, middle east"""
PLACES = frozenset(_ONE_WORD_PLACES.split()) | frozenset(p.strip() for p in _MULTI_WORD_PLACES.split(","))
_PLACE_PREFIXES = tuple(p.strip() + " " for p in _MULTI_WORD_PLACES.split(","))
