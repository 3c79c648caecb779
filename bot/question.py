"""What a question asks for: its content words, the kind of answer it wants, and whether it is a follow-up.

Quiz-style news questions often open with a statement and end with the question ("Damar Hamlin suffered a
medical emergency this week. He plays for which team?"). Every content word of both parts is kept for
retrieval; the wanted kind comes from the wh-phrase ("which team" → an organisation, "how many" → a number).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from index.lexical import content_words

QUESTION_WORDS = frozenset(
    "who whom whose what which when where why how many much did does do is are was were has have had "
    "article articles mentioned mention say says said according tell kind type sort name named called "
    "describe described happen happened".split()
)

# The head nouns of "which X" / "what X" phrases, by the kind of answer they ask for.
_KIND_NOUNS = {
    "person": """person people man woman men women boy girl president pope king queen prince princess emperor
        actor actress singer rapper musician artist player athlete star celebrity comedian golfer quarterback
        pitcher coach manager ceo founder leader lawmaker senator congressman congresswoman representative
        governor mayor politician official minister author writer novelist director producer host anchor
        judge justice candidate billionaire journalist reporter chef model figure officer general secretary
        speaker chancellor premier dictator monarch astronaut scientist doctor physician entrepreneur
        executive owner heir magnate member teenager actor's designer poet tennis swimmer boxer gymnast skier driver
        rider fighter wrestler cyclist sprinter runner nominee winner champion survivor victim suspect
        whistleblower activist economist investor philanthropist influencer youtuber star's daughter son
        mother father wife husband brother sister""",
    "organisation": """company firm corporation business team club band group airline carrier automaker carmaker
        retailer chain brand network broadcaster channel university college school agency organization
        organisation party union bank lender startup platform app service store publisher studio league
        manufacturer maker restaurant outlet newspaper magazine pharmacy institution charity foundation
        giant conglomerate insurer supermarket grocer franchise label exchange website site court
        ministry department committee council parliament congress government administration military""",
    "place": """country nation state city town village county province region island continent capital place
        location territory sea ocean river lake mountain park venue stadium arena airport country's
        state's city's nation's neighborhood district borough desert volcano""",
    "work": """movie film show series song album book novel game play musical sequel remake trailer documentary
        episode podcast award prize title franchise tournament championship holiday event festival race
        competition ride""",
    "quantity": """number amount percentage percent share rate age price cost total score sum budget salary
        population fine sentence jackpot value worth temperature speed distance height weight
        length size toll""",
    "date": "year day date month time decade season week era century hour",
    "name": "name nickname",
}
KIND_OF_NOUN = {noun: kind for kind, nouns in _KIND_NOUNS.items() for noun in nouns.split()}

_HOW = re.compile(r"\bhow (many|much|old|long|far|tall|big|large|often|high|fast|deep|heavy)\b", re.I)
_WHICH_WHAT = re.compile(r"\b(which|what)\b((?:\s+[\w'’.-]+){1,5})", re.I)
_THE_X_OF = re.compile(
    r"\b(?:what|which) (?:is|was|are|were|will be) (?:the|its|his|her|their)\b((?:\s+[\w'’.-]+){1,4})", re.I)
_NAME_THE = re.compile(r"\bname (?:of )?(?:the|this|that|a|an)\b((?:\s+[\w'’.-]+){1,4})", re.I)
_TYPE_OF = re.compile(r"\b(?:which|what) (?:type|kind|sort|form|brand|breed|variety) of((?:\s+[\w'’.-]+){1,4})", re.I)
_CLAUSE_START = r"(?:^|[.?!:;]\s+|,\s+|\b(?:to|by|with|for|from|of|and|but|so)\s+)"
_WHO = re.compile(_CLAUSE_START + r"(who|whom|whose)\b", re.I)
_WHEN_WHERE = re.compile(_CLAUSE_START + r"(when|where)\b", re.I)
_NP_STOP = frozenset(
    """is are was were be been being did does do has have had will would can could should may might must the a an
    of in on at to for from by with about as into over after before during since than that this these those who
    whom which what when where while and or but not this past recently now currently just also its his her their
    first last said says say announced became began broke brought built bought came chose drew drove fell flew
    gave got grew heard held hit kept knew laid led left lost made met paid put ran rose sang sank sat saw sent
    set shot sold spent spoke stole stood struck swept swore took taught told thought threw won wrote sought
    fought caught beat overtook plans wants makes gets takes""".split()
)
_RECENT = re.compile(
    r"\b(this (?:past )?(?:week|weekend|month|year|morning|season)|last (?:week|weekend)|recent(?:ly)?|latest|"
    r"newly|new|just|today|yesterday|upcoming|next week|on (?:monday|tuesday|wednesday|thursday|friday|"
    r"saturday|sunday))\b",
    re.I,
)
_SENTENCE_END = re.compile(r"(?<=[.!?:])\s+(?=[A-Z“\"])")
_WH = re.compile(r"\b(who|whom|whose|what|which|when|where|why|how)\b", re.I)
_FOLLOW_UP_START = re.compile(r"^\s*(and|but|also|then|so|what about|how about|and what about)\b", re.I)
_PRONOUN = re.compile(r"\b(he|she|they|it|him|her|them|his|hers|their|its|there|that|this|those)\b", re.I)
_NAME = re.compile(r"(?<!^)(?<![.?!]\s)\b[A-Z][\w’'-]+")


@dataclass(frozen=True)
class Turn:
    """One earlier exchange of a conversation (for follow-up questions)."""

    question: str
    answer: str = ""


@dataclass(frozen=True)
class Question:
    """A question as the answerer reads it.

    `text` is what retrieval searches (the previous question joined in for a follow-up); `words` maps each
    content word to its weight (1, or 0.6 when it comes from the previous turn); `kind` is the wanted kind of
    answer (person, organisation, place, work, quantity, date, or None for anything); `type_words` are the
    wh-phrase's words ("nfl team"); `recent` says the question is about recent events ("this week"); `focus`
    holds the content words of the sentence that asks (a quiz's "He plays for which team?" after its statement).
    """

    text: str
    words: dict[str, float]
    kind: str | None
    type_words: tuple[str, ...] = ()
    recent: bool = False
    follow_up: bool = False
    focus: frozenset[str] = frozenset()


def analyse(question: str, history: list[Turn] | None = None) -> Question:
    """Read a question, joining the previous one in when this one is a follow-up ("and on Wednesday?")."""
    words = {w: 1.0 for w in content_words(question) if w not in QUESTION_WORDS}
    kind, type_words = wanted_kind(question)
    recent = bool(_RECENT.search(question))
    previous = history[-1].question if history else ""
    focus = frozenset(w for w in content_words(asking_sentence(question)) if w in words)
    if previous and is_follow_up(question, len(words)):
        for word in content_words(previous):
            if word not in QUESTION_WORDS:
                words.setdefault(word, 0.6)
        if kind is None:
            kind, type_words = wanted_kind(previous)
        return Question(f"{previous} {question}", words, kind, type_words,
                        recent or bool(_RECENT.search(previous)), follow_up=True, focus=focus or frozenset(words))
    return Question(question, words, kind, type_words, recent, focus=focus or frozenset(words))


def asking_sentence(question: str) -> str:
    """The sentence of a question that asks (the last one with a wh-word or a question mark)."""
    sentences = [s for s in _SENTENCE_END.split(question) if s.strip()]
    asking = [s for s in sentences if "?" in s or _WH.search(s)]
    return (asking or sentences or [question])[-1]


def is_follow_up(question: str, content_word_count: int) -> bool:
    """A follow-up opens with a cue ("and", "what about"), has no content word of its own, or leans on a
    pronoun with no name in it to resolve ("Where did he go?"); "Who is Maduro?" stands alone."""
    if _FOLLOW_UP_START.search(question) or content_word_count == 0:
        return True
    return content_word_count <= 3 and bool(_PRONOUN.search(question)) and not _NAME.search(question)


def wanted_kind(question: str) -> tuple[str | None, tuple[str, ...]]:
    """The kind of answer a question wants and the words of its wh-phrase (possibly empty)."""
    how = _HOW.search(question)
    if how:
        return "quantity", (how.group(1).lower(),)
    for pattern in (_NAME_THE, _TYPE_OF, _THE_X_OF, _WHICH_WHAT):
        for match in pattern.finditer(question):
            phrase = _noun_phrase(match.group(match.lastindex), possessive_ends=pattern is _WHICH_WHAT)
            kind = _kind_of_phrase(phrase)
            if kind:
                return kind, phrase
    when_where = _WHEN_WHERE.search(question)
    if when_where:
        return ("date" if when_where.group(1).lower() == "when" else "place"), ()
    if _WHO.search(question):
        return "person", ()
    match = _WHICH_WHAT.search(question)
    return None, _noun_phrase(match.group(2)) if match else ()


def _noun_phrase(words: str, possessive_ends: bool = True) -> tuple[str, ...]:
    """The words after "which"/"what" up to the first verb-like or function word. A possessive ends it when
    `possessive_ends` ("which state's board" asks for a state, "the rocket's name" for a name); so does a word
    in -s right after a known noun ("which city hosts …")."""
    phrase: list[str] = []
    for raw in words.split():
        word = raw.lower().strip(".,;:?!\"“”")
        possessive = word.endswith(("'s", "’s"))
        word = word.removesuffix("'s").removesuffix("’s")
        verb_like = phrase and (word.endswith(("ed", "ly")) or (
            word.endswith("s") and not word.endswith("ss") and phrase[-1] in KIND_OF_NOUN))
        if not word or word in _NP_STOP or verb_like:
            break
        phrase.append(word)
        if (possessive and possessive_ends) or raw.endswith((",", "?", ".")):
            break
    return tuple(phrase)


def _kind_of_phrase(phrase: tuple[str, ...]) -> str | None:
    """The kind named by a noun phrase's last known head noun ("social media platform" → organisation)."""
    for word in reversed(phrase):
        kind = KIND_OF_NOUN.get(word) or KIND_OF_NOUN.get(word.removesuffix("s"))
        if kind:
            return kind
    return None
