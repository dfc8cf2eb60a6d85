"""A small reader of Princeton WordNet 3.0's database files, as Debian's `wordnet-base` installs
them (/usr/share/wordnet: index.*, data.*, *.exc, cntlist.rev; formats in wndb(5)).

Why not nltk: its WordNet reader (3.10) wants a `lexnames` table the package lacks, refuses a
root outside `nltk.data.path` and symlinks that lead out of its root, and on loading maps
versions through its own downloaded "wordnet" corpus (a LookupError offline); past three
workarounds of its internals it read the Debian files, in 14 s. This reader needs none of that
and has nothing to parse up front: index lines are found by binary search (the files are sorted
by lemma, byte order), data lines read at their byte offset.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from qa.errors import BenchmarkDataError

DEBIAN_WORDNET = Path("/usr/share/wordnet")
POS_FILES = {"n": "noun", "v": "verb", "a": "adj", "r": "adv"}
_FILES = ("cntlist.rev", *(f"{kind}.{name}" for name in POS_FILES.values() for kind in ("index", "data")))
# The sense-key number of each synset type (a satellite adjective "s" is 5).
_SS_TYPE = {"n": "1", "v": "2", "a": "3", "s": "5", "r": "4"}
# Morphy's detachment rules (wnintro(7) "morphy"): suffix -> ending of the base form, in order.
_RULES = {
    "n": (("s", ""), ("ses", "s"), ("ves", "f"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
          ("men", "man"), ("ies", "y")),
    "v": (("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"), ("ed", ""), ("ing", "e"), ("ing", "")),
    "a": (("er", ""), ("est", ""), ("er", "e"), ("est", "e")),
    "r": (),
}
# An adjective's syntactic marker in data.adj: "large(a)", "galore(ip)".
_MARKER = re.compile(r"\([a-z]+\)$")


def missing_message(folder: Path) -> str:
    return (f"WordNet 3.0 not found at {folder} (it needs {', '.join(_FILES)}). Install Debian's wordnet-base "
            "(apt-get install wordnet-base; `make install` does it when run as root).")


@dataclass(frozen=True)
class Lemma:
    """A word of a synset as WordNet writes it (underscores for spaces) and how often that sense
    is tagged in the SemCor corpus (cntlist.rev; 0 when never)."""

    name: str
    count: int


@dataclass(frozen=True)
class Synset:
    """One sense: its byte offset in data.<pos>, its synset type (n, v, a, s, r) and its words."""

    offset: int
    ss_type: str
    lemmas: tuple[Lemma, ...]


@dataclass(frozen=True)
class IndexEntry:
    """A lemma's line of index.<pos>: its synsets, most frequent sense first, and how many of its
    senses are tagged in SemCor (a measure of how common the word is in this part of speech)."""

    offsets: tuple[int, ...]
    tagged_senses: int


@dataclass
class WordNet:
    """WordNet 3.0 read from `folder`; each part of speech loads when first asked for.

    Parts of speech are WordNet's letters: n (noun), v (verb), a (adjective), r (adverb).
    """

    folder: Path = DEBIAN_WORDNET
    _index: dict[str, bytes] = field(default_factory=dict, repr=False)
    _entries: dict[tuple[str, str], IndexEntry | None] = field(default_factory=dict, repr=False)
    _data: dict[str, bytes] = field(default_factory=dict, repr=False)
    _exceptions: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict, repr=False)
    _counts: dict[str, int] | None = field(default=None, repr=False)

    @classmethod
    def load(cls, folder: Path = DEBIAN_WORDNET) -> WordNet:
        """A reader of the WordNet files in `folder`, checked to be there.

        Raises:
            BenchmarkDataError: a file is missing (the message says how to install them).
        """
        folder = Path(folder)
        if not all((folder / name).is_file() for name in _FILES):
            raise BenchmarkDataError(missing_message(folder))
        return cls(folder)

    # ---- lookups ------------------------------------------------------------------------------

    def entry(self, lemma: str, pos: str) -> IndexEntry | None:
        """The index entry of `lemma` (any case; spaces or underscores) in `pos`, if any."""
        key = (lemma.lower().replace(" ", "_"), pos)
        if key not in self._entries:
            line = _find_line(self._index_of(pos), key[0].encode("utf-8"))
            self._entries[key] = _entry(line.decode("utf-8", errors="replace")) if line is not None else None
        return self._entries[key]

    def base_forms(self, word: str, pos: str) -> list[str]:
        """The forms of `word` that are lemmas in `pos`, the word itself first when it is one:
        WordNet's morphy (the exception list, else one round of suffix rules)."""
        word = word.lower()
        exceptions = self._exceptions_of(pos).get(word)
        candidates = [word, *exceptions] if exceptions else [word] + [
            word[: len(word) - len(suffix)] + ending for suffix, ending in _RULES[pos]
            if word.endswith(suffix) and len(word) > len(suffix)]
        return list(dict.fromkeys(c for c in candidates if self.entry(c, pos) is not None))

    def synsets(self, lemma: str, pos: str) -> list[Synset]:
        """The senses of `lemma` in `pos`, most frequent first (WordNet's order)."""
        found = self.entry(lemma, pos)
        return [self._synset(pos, offset) for offset in found.offsets] if found else []

    def inflected_forms(self, base: str, pos: str) -> tuple[str, ...]:
        """The irregular forms the exception list gives for `base` ("take" -> "taken", "took")."""
        return tuple(sorted(word for word, bases in self._exceptions_of(pos).items() if base in bases))

    # ---- files --------------------------------------------------------------------------------

    def _index_of(self, pos: str) -> bytes:
        if pos not in self._index:
            self._index[pos] = (self.folder / f"index.{POS_FILES[pos]}").read_bytes()
        return self._index[pos]

    def _exceptions_of(self, pos: str) -> dict[str, tuple[str, ...]]:
        if pos not in self._exceptions:
            path = self.folder / f"{POS_FILES[pos]}.exc"
            rows = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
            self._exceptions[pos] = {p[0]: tuple(p[1:]) for p in (r.split() for r in rows) if len(p) > 1}
        return self._exceptions[pos]

    def _synset(self, pos: str, offset: int) -> Synset:
        if pos not in self._data:
            self._data[pos] = (self.folder / f"data.{POS_FILES[pos]}").read_bytes()
        data = self._data[pos]
        line = data[offset:data.index(b"\n", offset)].decode("utf-8", errors="replace")
        # offset lex_filenum ss_type w_cnt(hex) word lex_id(hex) [word lex_id...] p_cnt ... | gloss
        parts = line.split(" ")
        lex_file, ss_type, words = parts[1], parts[2], int(parts[3], 16)
        counts = self._sense_counts()
        lemmas = []
        for i in range(words):
            name = _MARKER.sub("", parts[4 + 2 * i])
            key = f"{name.lower()}%{_SS_TYPE[ss_type]}:{lex_file}:{int(parts[5 + 2 * i], 16):02d}"
            lemmas.append(Lemma(name, counts.get(key, 0)))
        return Synset(offset, ss_type, tuple(lemmas))

    def _sense_counts(self) -> dict[str, int]:
        """SemCor tag counts by sense key without its head word ("large%3:00:00" -> 139)."""
        if self._counts is None:
            counts: dict[str, int] = {}
            for row in (self.folder / "cntlist.rev").read_text(encoding="utf-8").splitlines():
                parts = row.split()
                if len(parts) == 3:
                    key = parts[0].rsplit(":", 2)[0]
                    counts[key] = counts.get(key, 0) + int(parts[2])
            self._counts = counts
        return self._counts


def _find_line(data: bytes, key: bytes) -> bytes | None:
    """The line of a sorted index file whose first field is `key`, by binary search; the licence
    header (lines opening with two spaces) sorts before every lemma."""
    lo, hi = 0, len(data)
    while lo < hi:
        mid = (lo + hi) // 2
        start = data.rfind(b"\n", 0, mid) + 1
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        line = data[start:end]
        word = line.split(b" ", 1)[0]
        if line.startswith(b"  ") or word < key:
            lo = end + 1
        elif word > key:
            hi = start
        else:
            return line
    return None


def _entry(line: str) -> IndexEntry:
    # lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset...
    parts = line.split()
    synsets, pointers = int(parts[2]), int(parts[3])
    return IndexEntry(tuple(int(x) for x in parts[6 + pointers:6 + pointers + synsets]), int(parts[5 + pointers]))
