"""The settings and the record of a `qa train-reader` run (see `qa.training.train` for the recipe)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qa.reader.model import WEIGHTS_FILE

BASE_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
BASE_LICENCE = "Apache-2.0"
CARD_FILE = "MODEL_CARD.md"
FP32_FILE = "reader-fp32.onnx"
CHECKPOINT_FILE = "checkpoint/last-epoch.pt"   # weights, optimizer and schedule after the last epoch


# The int8 forms tried on every export, (per channel, 7-bit weights) each, and the one chosen by
# validation F1 unless `TrainConfig.quantization` names one. One scale per weight matrix
# ("per-tensor") is what the first shipped model used; one per output column ("per-channel") keeps
# columns with small weights apart from the matrix's largest ones. "per-channel-7bit"
# (onnxruntime's `reduce_range`) keeps weights in -64..64, so an int8 kernel that adds pairs of
# 8-bit products in 16 bits (CPUs without VNNI) cannot saturate and computes what a VNNI CPU does;
# the shipped reader is in this form (docs/reader.md, "Quantization is chosen by measurement").
QUANTIZATIONS = {"per-channel": (True, False), "per-channel-7bit": (True, True), "per-tensor": (False, False)}


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
    # Questions in users' own words to train on as well (`qa.training.own_words`): the files, in
    # order (one named twice is seen twice as often), each question `own_words_repeat` times an
    # epoch. Runs before 2026-12-03 wrote one path here ("" = none).
    own_words_train: tuple[str, ...] = ()
    own_words_repeat: int = 2
    # Development questions in users' own words (a path, "" = none): their SQuAD 2.0 F1, gold
    # paragraph given, joins the key each epoch is chosen by.
    own_words_dev: str = ""
    # The int8 form to ship (a name in QUANTIZATIONS); "" = the best on validation. Every form is
    # scored either way.
    quantization: str = ""
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


def own_words_files(named: str | Sequence[str]) -> tuple[str, ...]:
    """A run's `own_words_train` as a tuple of files: runs before 2026-12-03 wrote one path, or ""
    for none (their training.json and checkpoints still say so)."""
    if isinstance(named, str):
        return (named,) if named else ()
    return tuple(named)
