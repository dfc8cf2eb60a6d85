"""Shared fixtures: the real model, loaded once, and a real index of the seeds, built once."""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
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
# The shared server's second collection: two short notes on a subject the seeds never mention.
NOTES = {
    "oslo.txt": "Weather in Oslo\n\nOslo had a cold winter with heavy snow in January, the weather office said.\n",
    "ferry.txt": "Ferry timetable\n\nThe night ferry to Kiel leaves Oslo at 14:00 every day and carries 2,000 "
                 "passengers.\n",
}
LOGINS = {"ana": "ana-password-1", "ben": "ben-password-2"}
API_KEY = "qa-test-key-0123456789abcdef"

# The longest tests start first (measured on 2 cores: the reader's end-to-end training 126 s, the
# Ray build 28 s and its docs example 23 s, the fairness benchmark 20 s), so that with two
# pytest-xdist workers (`make test`) none of them is left running alone at the end.
SLOW_FIRST = ("test_train_reader_runs_end_to_end", "test_ray_build_equals_the_local_build", "--engine ray",
              "test_fairness_refuses_hostile_requests")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: next((k for k, slow in enumerate(SLOW_FIRST) if slow in item.nodeid),
                                     len(SLOW_FIRST)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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


@dataclass
class QaServer:
    """A real `qa serve` in this process, as a user would run it with two collections (the seeds,
    and `NOTES` in a writable corpus whose index the server builds), two logins, an API key and
    its own database; `restart()` stops it and starts it again on the same port."""

    settings: Settings
    app: Any = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}/"

    def start(self) -> None:
        from qa.web import serve

        self.app = serve(self.settings, block=False)

    def restart(self) -> None:
        self.app.close()
        self.start()


@pytest.fixture(scope="session")
def qa_server(tmp_path_factory: pytest.TempPathFactory, settings: Settings, seeds_index: Path,
              embedder) -> Iterator[QaServer]:
    """One server shared by the tests of collections, conversations and the OpenAI API."""
    root = tmp_path_factory.mktemp("served")
    notes = root / "notes"
    notes.mkdir()
    for name, text in NOTES.items():
        (notes / name).write_text(text, encoding="utf-8")
    served = settings.replace(port=free_port(), database=root / "qa.sqlite3", api_key=API_KEY,
                              logins=tuple(f"{user}:{password}" for user, password in LOGINS.items()),
                              collections=(f"seeds={SEEDS}:{seeds_index}", f"notes={notes}:{root / 'notes.index'}"))
    server = QaServer(served)
    server.start()
    try:
        yield server
    finally:
        server.app.close()
