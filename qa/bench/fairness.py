"""`qa bench fairness`: a normal question's latency while hostile clients flood the chat server.

The server runs as a user runs it (`qa serve`, in a child process, over an index of the corpus).
A normal client asks ordinary questions one at a time through the HTTP API, first while the
server is idle, then while `HOSTILE_CLIENTS` other processes send hostile requests back to back:

- a history sent as one 8,000-character string (once read character by character as turns);
- a history of 10,000 turns (about 600 KB of JSON);
- a question of 1,000,000 characters;
- a question at the length limit with a 400-message history that fits the body limit: the most
  expensive request the server accepts, answered in full.

The report gives p50/p95 of the normal question for both phases and their ratio (the issue's
target: within 2x of idle), and what the server answered the hostile requests.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa.config import Settings
from qa.errors import QAError
from qa.metrics import percentile

HOSTILE_CLIENTS = 4
NORMAL_QUESTIONS = (
    "Where is TikTok's US user data stored?",
    "How many times has TikTok been downloaded?",
    "Who is TikTok's chief information and security officer?",
    "What did Liz Truss say about Chinese companies?",
    "Which agency reached out to TikTok about disinformation?",
    "Who founded ByteDance?",
)
ROUNDS = 5


def hostile_payloads() -> list[tuple[str, bytes]]:
    """The hostile requests, as (name, JSON body of a POST to /gradio_api/call/ask)."""
    turns = [{"role": "user", "content": f"What did TikTok say about data, part {i}?"} for i in range(10_000)]
    fitting = [{"role": "user" if i % 2 == 0 else "assistant", "content": "TikTok user data question " * 20}
               for i in range(400)]
    return [
        ("history as an 8,000-character string", json.dumps({"data": ["And where?", "x" * 8000]}).encode()),
        ("10,000-turn history", json.dumps({"data": ["And where is the backup kept?", turns]}).encode()),
        ("1,000,000-character question", json.dumps({"data": ["why " * 250_000, None]}).encode()),
        ("2,000-character question, 400-message history",
         json.dumps({"data": [("Where is TikTok's US user data stored and why? " * 50)[:2000], fitting]}).encode()),
    ]


def ask(url: str, body: bytes, timeout: float = 120.0) -> str:
    """One /ask call through Gradio's HTTP API; returns "answered", "error" or "HTTP <code>"."""
    request = urllib.request.Request(url + "gradio_api/call/ask", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        event_id = json.load(urllib.request.urlopen(request, timeout=timeout))["event_id"]
        stream = urllib.request.urlopen(f"{url}gradio_api/call/ask/{event_id}", timeout=timeout).read()
    except urllib.error.HTTPError as refused:
        return f"HTTP {refused.code}"
    return "answered" if stream.startswith(b"event: complete") else "error"


def _flood(url: str, stop: Any, counts: Any) -> None:
    """A hostile client: cycles through the hostile requests until `stop` is set."""
    payloads = hostile_payloads()
    seen: Counter[str] = Counter()
    i = 0
    while not stop.is_set():
        name, body = payloads[i % len(payloads)]
        try:
            seen[f"{name}: {ask(url, body, timeout=60)}"] += 1
        except OSError as exc:
            seen[f"{name}: {type(exc).__name__}"] += 1
        i += 1
    counts.put(dict(seen))


def _normal_latencies(url: str, rounds: int) -> list[float]:
    times = []
    for _ in range(rounds):
        for question in NORMAL_QUESTIONS:
            body = json.dumps({"data": [question, None]}).encode()
            started = time.perf_counter()
            outcome = ask(url, body)
            times.append((time.perf_counter() - started) * 1000)
            if outcome != "answered":
                raise QAError(f"The normal question {question!r} was not answered ({outcome}).")
    return times


def run_fairness(report_dir: Path | None = None, settings: Settings | None = None,
                 echo: Callable[[str], None] | None = None, rounds: int = ROUNDS) -> dict[str, Any]:
    """Measure, write report.md and results.json into `report_dir`, and return the figures.

    Each phase asks every normal question `rounds` times.
    """
    settings = settings or Settings()
    say = echo or (lambda _line: None)
    report_dir = report_dir or Path("eval/reports/fairness")
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
        from qa.index import build_index

        build_index(settings.corpus, index, settings=settings.replace(show_progress=False))
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        url = f"http://127.0.0.1:{port}/"
        server = subprocess.Popen(
            [sys.executable, "-m", "qa.cli", "serve", "--index", str(index), "--port", str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
            env={**os.environ, "OMP_NUM_THREADS": str(settings.threads)})
        try:
            _wait_for(url, server)
            say(f"Server up at {url} (qa serve, concurrency {settings.concurrency}); warming up...")
            _normal_latencies(url, 1)  # warm-up: first calls allocate
            idle = _normal_latencies(url, rounds)
            say(f"Idle: p50 {percentile(idle, 50):.1f} ms over {len(idle)} questions.")
            spawn = multiprocessing.get_context("spawn")
            counts: Any = spawn.Queue()
            stop = spawn.Event()
            clients = [spawn.Process(target=_flood, args=(url, stop, counts)) for _ in range(HOSTILE_CLIENTS)]
            for client in clients:
                client.start()
            time.sleep(5.0)  # the clients start and reach a steady flood
            started = time.monotonic()
            loaded = _normal_latencies(url, rounds)
            flood_s = time.monotonic() - started
            stop.set()
            hostile: Counter[str] = Counter()
            for _ in clients:
                hostile.update(counts.get(timeout=120))
            for client in clients:
                client.join(timeout=30)
        finally:
            server.terminate()
            server.wait(timeout=30)
    from qa.runtime import thread_report

    results: dict[str, Any] = {
        "idle_ms": {"p50": percentile(idle, 50), "p95": percentile(idle, 95), "n": len(idle)},
        "under_attack_ms": {"p50": percentile(loaded, 50), "p95": percentile(loaded, 95), "n": len(loaded)},
        "ratio_p50": percentile(loaded, 50) / percentile(idle, 50),
        "ratio_p95": percentile(loaded, 95) / percentile(idle, 95),
        "hostile_clients": HOSTILE_CLIENTS, "flood_seconds": flood_s, "hostile_requests": dict(hostile),
        "concurrency": settings.concurrency, "threads": thread_report(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
    }
    text = _render(results)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "report.md").write_text(text + "\n", encoding="utf-8")
    (report_dir / "results.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    say(text)
    say(f"\nReport written to {report_dir}/report.md")
    return results


def _wait_for(url: str, server: subprocess.Popen[str], timeout_s: float = 180.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            said = server.stderr.read() if server.stderr else ""
            raise QAError(f"The server stopped before it was up: {said[-500:]}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    raise QAError(f"The server at {url} did not come up within {timeout_s:.0f} s.")


def _render(r: dict[str, Any]) -> str:
    lines = [
        "# Fairness: a normal question while hostile clients flood the server",
        "",
        f"{r['hostile_clients']} hostile client processes, {r['concurrency']} questions answered at once, "
        f"{r['machine']}.",
        "Threads: " + ", ".join(f"{k}={v}" for k, v in r["threads"].items()) + ".",
        "",
        "| normal question, /ask over HTTP | p50 ms | p95 ms | n |",
        "|---|---|---|---|",
        f"| idle server | {r['idle_ms']['p50']:.1f} | {r['idle_ms']['p95']:.1f} | {r['idle_ms']['n']} |",
        f"| while {r['hostile_clients']} clients send hostile requests | {r['under_attack_ms']['p50']:.1f} | "
        f"{r['under_attack_ms']['p95']:.1f} | {r['under_attack_ms']['n']} |",
        f"| ratio | {r['ratio_p50']:.2f}x | {r['ratio_p95']:.2f}x | |",
        "",
        f"What the server answered the hostile requests during the {r['flood_seconds']:.0f} s measured:",
        "",
        "| request: outcome | count |",
        "|---|---|",
    ]
    lines += [f"| {name} | {count} |" for name, count in sorted(r["hostile_requests"].items())]
    return "\n".join(lines)
