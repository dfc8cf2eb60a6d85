"""`qa bench fairness`: a normal question's latency while hostile requests hit the chat server.

The server runs as a user runs it (`qa serve`, in a child process, over an index of the corpus).
A normal client asks ordinary questions one at a time through the HTTP API in four phases:

1. the server is idle;
2. four hostile requests are in flight with each question (sent a moment before it): the issue's
   case, where four such requests once filled every answer slot and a normal question waited
   32 s. The target is within 2x of idle. They are:
   - a history sent as one 8,000-character string (once read character by character as turns);
   - a history of 10,000 turns (about 600 KB of JSON; it once cost 34 s of CPU);
   - a question of 1,000,000 characters;
   - a history of 3,000 plain strings instead of messages;
3. four maximal valid requests are in flight with each question: a question at the 2,000-character
   limit with a 400-message history that fits the body limit, answered in full. Not hostile,
   but the most work the server accepts per request; the normal question queues behind them on
   the shared encoder;
4. four hostile requests to the OpenAI-compatible route (`/v1/chat/completions`) are in flight
   with each question: a body of 10,000 messages (over the body limit), a 1,000,000-character
   question (over it too), 1,001 short messages (over the message limit) and a valid request at
   the question-length limit. The normal question still goes to /ask: the new route must not
   starve the old one;
5. a sustained flood: `HOSTILE_CLIENTS` processes send all of the above back to back, on the same
   machine. The worst case: on two cores the attackers' own processes and the server's request
   handling share the CPU with the normal question; per-request bounds cannot fix that, only a
   per-client limit in front of the server could.

The report gives p50/p95 of the normal question in each phase, their ratios to idle, and what
the server answered the other requests.
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
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qa.bench.registry import BenchRun
from qa.bench.report import Report
from qa.config import Settings
from qa.errors import QAError
from qa.evaluation.metrics import percentile
from qa.index import build_index
from qa.runtime import thread_report

TITLE = "Fairness: a normal question while hostile requests hit the server"
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


def openai_payloads(model: str) -> list[tuple[str, bytes]]:
    """Hostile and maximal requests to the OpenAI-compatible route for the collection `model`,
    as (name, JSON body of a POST to /v1/chat/completions); names start with "v1 " (see `send`)."""
    def body(messages: list[dict[str, str]]) -> bytes:
        return json.dumps({"model": model, "messages": messages}).encode()

    question = ("Where is TikTok's US user data stored and why? " * 50)[:2000]
    return [
        ("v1 10,000 messages", body([{"role": "user", "content": f"What did TikTok say, part {i}?"}
                                     for i in range(10_000)])),
        ("v1 1,000,000-character question", body([{"role": "user", "content": "why " * 250_000}])),
        ("v1 1,001 messages", body([{"role": "user", "content": "why?"}] * 1001)),
        ("v1 2,000-character question", body([{"role": "user", "content": question}])),
    ]


def send(url: str, name: str, body: bytes, timeout: float = 120.0) -> str:
    """One request named `name` ("v1 ..." to /v1/chat/completions, else /ask); its outcome."""
    return ask_v1(url, body, timeout) if name.startswith("v1 ") else ask(url, body, timeout)


def ask_v1(url: str, body: bytes, timeout: float = 120.0) -> str:
    """One /v1/chat/completions call; returns "answered" or "HTTP <code>"."""
    request = urllib.request.Request(url + "v1/chat/completions", data=body,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return "answered" if json.loads(response.read()).get("choices") else "error"
    except urllib.error.HTTPError as refused:
        return f"HTTP {refused.code}"


def hostile_payloads() -> list[tuple[str, bytes]]:
    """The hostile requests, as (name, JSON body of a POST to /gradio_api/call/ask)."""
    turns = [{"role": "user", "content": f"What did TikTok say about data, part {i}?"} for i in range(10_000)]
    strings = [f"What did TikTok say about data, part {i}?" for i in range(3_000)]
    return [
        ("history as an 8,000-character string", json.dumps({"data": ["And where?", "x" * 8000]}).encode()),
        ("10,000-turn history", json.dumps({"data": ["And where is the backup kept?", turns]}).encode()),
        ("1,000,000-character question", json.dumps({"data": ["why " * 250_000, None]}).encode()),
        ("history of 3,000 plain strings", json.dumps({"data": ["And where is it?", strings]}).encode()),
    ]


def maximal_payloads() -> list[tuple[str, bytes]]:
    """The most expensive valid request, four times: a question at the length limit with a
    400-message history that fits the body limit."""
    fitting = [{"role": "user" if i % 2 == 0 else "assistant", "content": "TikTok user data question " * 20}
               for i in range(400)]
    question = ("Where is TikTok's US user data stored and why? " * 50)[:2000]
    body = json.dumps({"data": [question, fitting]}).encode()
    return [("2,000-character question, 400-message history", body)] * 4


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


def _flood(url: str, model: str, stop: Any, counts: Any) -> None:
    """A hostile client: cycles through the hostile and maximal requests until `stop` is set."""
    payloads = [*hostile_payloads(), maximal_payloads()[0], *openai_payloads(model)]
    seen: Counter[str] = Counter()
    i = 0
    while not stop.is_set():
        name, body = payloads[i % len(payloads)]
        try:
            seen[f"{name}: {send(url, name, body, timeout=60)}"] += 1
        except OSError as exc:
            seen[f"{name}: {type(exc).__name__}"] += 1
        i += 1
    counts.put(dict(seen))


def _normal_latencies(url: str, rounds: int, burst: Counter[str] | None = None,
                      payloads: list[tuple[str, bytes]] | None = None) -> list[float]:
    """Latencies of the normal questions; with `payloads`, each question is sent while those
    requests (sent just before it) are in flight, and their outcomes are counted in `burst`."""
    payloads = payloads or []
    times = []
    for _ in range(rounds):
        for question in NORMAL_QUESTIONS:
            threads = []
            if burst is not None and payloads:
                def hostile(name: str, body: bytes) -> None:
                    try:
                        outcome = send(url, name, body, timeout=60)
                    except OSError as exc:
                        outcome = type(exc).__name__
                    burst[f"{name}: {outcome}"] += 1

                threads = [threading.Thread(target=hostile, args=p) for p in payloads]
                for t in threads:
                    t.start()
                time.sleep(0.002)  # the hostile requests go first and are running
            body = json.dumps({"data": [question, None]}).encode()
            started = time.perf_counter()
            outcome = ask(url, body)
            times.append((time.perf_counter() - started) * 1000)
            for t in threads:
                t.join()
            if outcome != "answered":
                raise QAError(f"The normal question {question!r} was not answered ({outcome}).")
    return times


def run(job: BenchRun) -> Report:
    """`qa bench fairness` (qa.bench.registry), each phase asking every normal question `ROUNDS` times."""
    return fairness_report(job.settings, job.report_dir, job.echo)


def run_fairness(report_dir: Path | None = None, settings: Settings | None = None,
                 echo: Callable[[str], None] | None = None, rounds: int = ROUNDS) -> dict[str, Any]:
    """Measure, write report.md and results.json into `report_dir`, and return the figures.

    Each phase asks every normal question `rounds` times.
    """
    report_dir = report_dir or Path("eval/reports/fairness")
    report = fairness_report(settings or Settings(), report_dir, echo, rounds)
    report.save()
    report.echo(f"\nReport written to {report_dir}/report.md")
    return report.data


def fairness_report(settings: Settings, report_dir: Path, echo: Callable[[str], None] | None = None,
                    rounds: int = ROUNDS) -> Report:
    """Measure (`measure_fairness`) and make the report; its lines are shown through `echo`."""
    report = Report(TITLE, report_dir, echo)
    report.data.update(measure_fairness(settings, rounds, report.echo))
    _render(report)
    return report


def measure_fairness(settings: Settings, rounds: int = ROUNDS,
                     say: Callable[[str], None] = lambda _line: None) -> dict[str, Any]:
    """The figures: each phase's latencies of the normal question and what the server answered
    the other requests (the keys of results.json). `say` tells each phase as it ends."""
    # Imported here, not at the top: the flood's client processes import this module (spawned)
    # and need nothing of the index stack, whose import is seconds of CPU on 2 cores.
    with tempfile.TemporaryDirectory() as tmp:
        index = Path(tmp) / "index"
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
            results = _phases(url, rounds, say)
        finally:
            server.terminate()
            server.wait(timeout=30)
    return results | {"concurrency": settings.concurrency, "threads": thread_report(),
                      "machine": platform.machine()}   # the processor and CPU count are in "threads"


def _phases(url: str, rounds: int, say: Callable[[str], None]) -> dict[str, Any]:
    """The five phases against the server at `url` (see the module's docstring)."""
    _normal_latencies(url, 1)  # warm-up: first calls allocate
    idle = _normal_latencies(url, rounds)
    say(f"Idle: p50 {percentile(idle, 50):.1f} ms over {len(idle)} questions.")
    burst: Counter[str] = Counter()
    in_flight = _normal_latencies(url, rounds, burst, hostile_payloads())
    say(f"Four hostile requests in flight: p50 {percentile(in_flight, 50):.1f} ms.")
    maximal_outcomes: Counter[str] = Counter()
    maximal = _normal_latencies(url, rounds, maximal_outcomes, maximal_payloads())
    say(f"Four maximal valid requests in flight: p50 {percentile(maximal, 50):.1f} ms.")
    v1_outcomes: Counter[str] = Counter()
    model = json.load(urllib.request.urlopen(url + "v1/models", timeout=30))["data"][0]["id"]
    v1 = _normal_latencies(url, rounds, v1_outcomes, openai_payloads(model))
    say(f"Four requests to /v1/chat/completions in flight: p50 {percentile(v1, 50):.1f} ms.")
    loaded, flood_s, hostile = _flooded(url, model, rounds)

    def phase(times: list[float]) -> dict[str, float]:
        return {"p50": percentile(times, 50), "p95": percentile(times, 95), "n": len(times),
                "ratio_p50": percentile(times, 50) / percentile(idle, 50),
                "ratio_p95": percentile(times, 95) / percentile(idle, 95)}

    return {
        "idle_ms": phase(idle), "in_flight_ms": phase(in_flight), "maximal_ms": phase(maximal),
        "v1_ms": phase(v1), "flood_ms": phase(loaded),
        "in_flight_requests": dict(burst) | dict(maximal_outcomes) | dict(v1_outcomes),
        "hostile_clients": HOSTILE_CLIENTS, "flood_seconds": flood_s, "hostile_requests": dict(hostile),
    }


def _flooded(url: str, model: str, rounds: int) -> tuple[list[float], float, Counter[str]]:
    """The normal questions' latencies during a sustained flood by `HOSTILE_CLIENTS` processes,
    the flood's length in seconds, and what the server answered the flood."""
    spawn = multiprocessing.get_context("spawn")
    counts: Any = spawn.Queue()
    stop = spawn.Event()
    clients = [spawn.Process(target=_flood, args=(url, model, stop, counts)) for _ in range(HOSTILE_CLIENTS)]
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
    return loaded, flood_s, hostile


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


def _render(report: Report) -> None:
    """The figures in `report.data` as the report's tables."""
    r = report.data
    idle = r["idle_ms"]
    report.text(f"Server: qa serve, {r['concurrency']} questions answered at once; {r['machine']}.")
    report.text("Threads: " + ", ".join(f"{k}={v}" for k, v in r["threads"].items()) + ".")
    report.text()
    phases = [
        ("four hostile requests in flight", r["in_flight_ms"]),
        ("four maximal valid requests in flight (2,000-character question)", r["maximal_ms"]),
        ("four requests to /v1/chat/completions in flight (three over its limits, one 2,000-character question)",
         r["v1_ms"]),
        (f"sustained flood by {r['hostile_clients']} client processes on the same machine", r["flood_ms"]),
    ]
    report.table(["normal question, /ask over HTTP", "p50 ms", "p95 ms", "p50 / idle", "p95 / idle", "n"],
                 [["idle server", f"{idle['p50']:.1f}", f"{idle['p95']:.1f}", "1.00x", "1.00x", str(idle["n"])]]
                 + [[name, f"{v['p50']:.1f}", f"{v['p95']:.1f}", f"{v['ratio_p50']:.2f}x", f"{v['ratio_p95']:.2f}x",
                     str(v["n"])] for name, v in phases])
    report.text("What the server answered the other requests:")
    report.text()
    names = sorted(set(r["in_flight_requests"]) | set(r["hostile_requests"]))
    report.table(["request: outcome", "in flight with a question", "during the flood"],
                 [[n, str(r["in_flight_requests"].get(n, 0)), str(r["hostile_requests"].get(n, 0))] for n in names])
    report.text(f"The flood ran for {r['flood_seconds']:.0f} s while its normal questions were asked.")
