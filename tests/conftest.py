"""Shared fixtures: the real model, loaded once, and a real index of the seeds, built once."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qa.runtime import configure_process

configure_process(threads=2)  # before torch loads: offline, and threads that do not spin

from qa.config import Settings  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
SHARED = ROOT.parent / "shared"
BENCHMARKS = SHARED / "benchmarks"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update"]


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings(show_progress=False)


@pytest.fixture(scope="session")
def embedder(settings: Settings):
    from qa.embed import embedder_for

    return embedder_for(settings)


@pytest.fixture(scope="session")
def seeds_index(tmp_path_factory: pytest.TempPathFactory, settings: Settings, embedder) -> Path:
    """A real index of seeds/, built once per test session (read-only for tests)."""
    from qa.index import build_index

    path = tmp_path_factory.mktemp("seeds-index") / "index"
    build_index(SEEDS, path, settings=settings, embedder=embedder, log=lambda _line: None)
    return path


@pytest.fixture()
def index_copy(tmp_path: Path, seeds_index: Path) -> Path:
    """A writable copy of the seeds index (at tmp_path/index), so tests skip re-embedding."""
    target = tmp_path / "index"
    shutil.copytree(seeds_index, target)
    return target


@pytest.fixture()
def corpus_copy(tmp_path: Path) -> Path:
    """A writable copy of seeds/ for tests that add, change or delete files."""
    target = tmp_path / "corpus"
    shutil.copytree(SEEDS, target)
    return target


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, once per session (tests skip without it)."""
    if not CHROMIUM.exists():
        pytest.skip("browser tests need Chromium at /usr/bin/chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
