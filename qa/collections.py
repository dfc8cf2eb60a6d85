"""Collections: several corpora, each with its own index, served side by side by one server.

A collection is a name, a corpus folder and an index folder. `qa serve` serves

- each `--collection NAME=CORPUS:INDEX` (setting `collections`), building the index from its
  corpus when it is missing;
- each sub-folder of `--collections DIR` (setting `collections_folder`) that is a qa index,
  named after the sub-folder, over the corpus its manifest records;
- and when neither is given, one collection: `settings.corpus` and `settings.index`, named after
  the corpus folder the index was built from.

The name is what the chat's selector shows, what a saved conversation remembers and what an
OpenAI client sends as `model`, so it is short and plain: letters, digits, `.`, `_`, `-`, at
most 64 characters. A server holds at most `MAX_COLLECTIONS` (each keeps its index open).
The Python API and the CLI keep taking `index=`; collections are a server's concern only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.config import Settings
from qa.errors import QAError, SettingsError
from qa.index import Index, is_index_folder
from qa.index.atomic import MANIFEST
from qa.live import LiveIndex, open_index

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
MAX_COLLECTIONS = 32
_TEMPORARY = re.compile(r"\.(?:tmp|old)-[0-9a-f]+$")   # a build's own folders beside an index


@dataclass(frozen=True)
class CollectionSpec:
    """What to serve: a collection's name, corpus folder and index folder."""

    name: str
    corpus: Path
    index: Path


@dataclass(frozen=True)
class Collection:
    """A collection being served: its settings (`corpus` and `index` are its own) and the index
    it answers from."""

    name: str
    settings: Settings
    live: LiveIndex

    @property
    def index(self) -> Index:
        """The index last answered from (what a page shows; questions use `live.get()`)."""
        return self.live.shown()[0]


def check_name(name: str, where: str) -> str:
    """`name` when it can name a collection.

    Raises:
        SettingsError: it cannot (`where` says which input held it).
    """
    if not NAME.fullmatch(name):
        raise SettingsError(f"Invalid collection name {name[:80]!r} in {where}: use 1 to 64 letters, digits, "
                            "'.', '_' or '-', starting with a letter or digit.")
    return name


def parse_collection(text: str) -> CollectionSpec:
    """`NAME=CORPUS:INDEX` (the form of `--collection` and of the setting `collections`).

    Raises:
        SettingsError: the text is not of that form, or the name cannot name a collection.
    """
    name, equals, paths = text.partition("=")
    corpus, colon, index = paths.partition(":")
    if not equals or not colon or not corpus.strip() or not index.strip() or ":" in index:
        raise SettingsError(f"Invalid collection {text[:200]!r}: write it as NAME=CORPUS:INDEX, e.g. "
                            "story=~/stories/story:~/stories/story.index (neither path may hold a ':').")
    where = f"collection {text[:200]!r}"
    return CollectionSpec(check_name(name.strip(), where), Path(corpus.strip()).expanduser(),
                          Path(index.strip()).expanduser())


def collections_in(folder: Path, log_line: Callable[[str], None] | None = None) -> list[CollectionSpec]:
    """Every qa index directly inside `folder`, as a collection named after its folder, over the
    corpus its manifest records (sorted by name). Other entries are passed over; one line each
    goes to `log_line` for folders that look meant but cannot be used.

    Raises:
        SettingsError: `folder` is not a folder, or holds no qa index.
    """
    say = log_line or (lambda _line: None)
    if not folder.is_dir():
        raise SettingsError(f"The collections folder {folder} is not a folder. Pass a folder whose sub-folders "
                            "are qa indexes (qa index --corpus DIR --index FOLDER/NAME).")
    found = []
    for entry in sorted(folder.iterdir()):
        if _TEMPORARY.search(entry.name) or not is_index_folder(entry):
            continue
        if not NAME.fullmatch(entry.name):
            say(f"Skipped the index {entry}: its folder name cannot name a collection "
                "(letters, digits, '.', '_', '-').")
            continue
        try:
            corpus = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))["corpus"]
        except (OSError, ValueError, KeyError, TypeError):
            say(f"Skipped the index {entry}: its {MANIFEST} cannot be read; rebuild it with qa index.")
            continue
        found.append(CollectionSpec(entry.name, Path(str(corpus)), entry))
    if not found:
        raise SettingsError(f"The collections folder {folder} holds no qa index. Build one into it with "
                            f"`qa index --corpus DIR --index {folder}/NAME`.")
    return found


def collection_specs(settings: Settings, log_line: Callable[[str], None] | None = None) -> list[CollectionSpec]:
    """The collections `settings` asks to serve (`collections_folder` first, then `collections`);
    empty when it names none (serve `settings.index` alone).

    Raises:
        SettingsError: a spec is malformed, two collections share a name or an index, or there
            are more than `MAX_COLLECTIONS`.
    """
    specs = collections_in(settings.collections_folder, log_line) if settings.collections_folder else []
    specs += [parse_collection(text) for text in settings.collections]
    names = [s.name for s in specs]
    indexes = [str(s.index.resolve()) for s in specs]
    for values, what in ((names, "named"), (indexes, "served from the index")):
        doubled = next((v for v in values if values.count(v) > 1), None)
        if doubled is not None:
            raise SettingsError(f"Two collections are {what} {doubled}; give each its own name and index.")
    if len(specs) > MAX_COLLECTIONS:
        raise SettingsError(f"{len(specs)} collections were given; one server serves at most {MAX_COLLECTIONS}.")
    return specs


def default_name(index: Index) -> str:
    """The name of a lone collection: its corpus folder's name, made plain."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", Path(index.manifest.corpus or "documents").name)
    name = name.lstrip("._-")[:64]
    return name if NAME.fullmatch(name) else "documents"


def open_collections(settings: Settings, log_line: Callable[[str], None] | None = None, *,
                     index: Index | None = None, update: bool = False) -> list[Collection]:
    """Load (building when missing, or updating with `update`) every collection `settings`
    names, in order; with none named, the one of `settings.corpus` and `settings.index` (or the
    already loaded `index`).

    Raises:
        SettingsError: the collections given cannot be served (see `collection_specs`).
        QAError: an index cannot be built or opened (its message names the collection).
    """
    specs = collection_specs(settings, log_line)
    if not specs:
        loaded = index if index is not None else open_index(settings, log_line, update=update)
        corpus = Path(loaded.manifest.corpus) if loaded.manifest.corpus else settings.corpus
        own = settings.replace(corpus=corpus, index=loaded.path)
        return [Collection(default_name(loaded), own, LiveIndex(loaded, settings.index_memory_mb))]
    served = []
    for spec in specs:
        own = settings.replace(corpus=spec.corpus, index=spec.index)
        try:
            loaded = open_index(own, log_line, update=update)
        except QAError as exc:
            raise type(exc)(f"Collection {spec.name}: {exc}") from None
        served.append(Collection(spec.name, own, LiveIndex(loaded, settings.index_memory_mb)))
    return served


def by_name(collections: Sequence[Collection], name: str | None) -> Collection | None:
    """The collection called `name`, or None."""
    return next((c for c in collections if c.name == name), None)
