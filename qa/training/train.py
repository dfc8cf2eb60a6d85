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

`--own-words-train` adds questions in users' own words (`qa.training.own_words`) to every epoch;
`--own-words-dev` adds development ones to the choice of epoch.
"""

# About 440 lines in one module: the run reads top to bottom as the recipe (data, network,
# epochs with their checkpoints, the choice, export, held-out figures); the parts that stand alone
# (examples, checkpoints, export, validation, the card) are modules of their own.


from __future__ import annotations

import json
import math
import os
import platform
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from qa.embed import model_path
from qa.load import sha256_file
from qa.reader.model import CONFIG_FILE, WEIGHTS_DIR, WEIGHTS_FILE
from qa.runtime import cpu_summary
from qa.training.card import model_card
from qa.training.checkpoint import Best, resume_checkpoint, save_checkpoint, snapshot
from qa.training.data import QAItem, SquadData, load_squad
from qa.training.examples import (
    Feature,
    FeatureMaker,
    batches,
    mentions,
    other_paragraph,
    reworded_question,
    swapped_question,
    wordnet_rewording,
)
from qa.training.export import (
    INIT_LOGIT_GAP,
    export_fp32,
    load_onnx_weights,
    quantize_int8,
)
from qa.training.network import batch_tensors, onnx_logits, torch_logits, torch_model
from qa.training.own_words import own_words_items
from qa.training.recipe import (
    BASE_LICENCE,
    BASE_MODEL,
    CARD_FILE,
    CHECKPOINT_FILE,
    FP32_FILE,
    QUANTIZATIONS,
    TrainConfig,
    TrainReport,
    init_file,
    missing_init,
)
from qa.training.validation import (
    Scores,
    best_threshold,
    own_words_score,
    read_gold,
    reworded_score,
    score,
    validate,
)

# The training pieces live in modules of their own (recipe, examples, network, validation,
# export, card); they stay importable from here, where the CLI and the tests have found them.
__all__ = [
    "BASE_LICENCE", "BASE_MODEL", "CARD_FILE", "CHECKPOINT_FILE", "FP32_FILE", "INIT_LOGIT_GAP",
    "QUANTIZATIONS", "Feature", "FeatureMaker", "Scores", "TrainConfig", "TrainReport", "mentions",
    "torch_model", "batches", "best_threshold", "export_fp32", "init_file", "load_onnx_weights",
    "missing_init", "model_card", "onnx_logits", "other_paragraph", "quantize_int8", "read_gold",
    "reworded_question", "score", "swapped_question", "torch_logits", "train_reader", "validate",
    "wordnet_rewording",
]



@dataclass(frozen=True)
class _Parts:
    """The questions of one run: training, validation and held-out ones, by SQuAD version."""

    squad: SquadData
    train: list[QAItem]
    valid_v1: list[QAItem]
    valid_v2: list[QAItem]
    held_v1: list[QAItem]
    held_v2: list[QAItem]
    # Questions in users' own words (`qa.training.own_words`): trained on, and chosen on.
    own_train: list[QAItem] = field(default_factory=list)
    own_dev: list[QAItem] = field(default_factory=list)


def train_reader(data: Path | None = None, out: Path = WEIGHTS_DIR,
                 config: TrainConfig = TrainConfig(),
                 log: Callable[[str], None] = print, progress: bool = True) -> TrainReport:
    """Train, select by validation F1, export int8 ONNX to `out`, evaluate on held-out articles,
    write reader.json and MODEL_CARD.md. Returns the figures.

    Raises:
        BenchmarkDataError: the SQuAD folders are missing.
    """
    if config.epochs < 0 or (config.epochs == 0 and not config.init):
        raise ValueError("epochs must be 1 or more (0 only when continuing weights: config.init)")
    started = time.perf_counter()
    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    rng = random.Random(config.seed)
    parts = _parts(data, config, rng)
    report = _new_report(config, parts)
    split = parts.squad.split
    log(f"training on {len(parts.train)} questions of {len(split.train)} articles "
        f"({report.examples['train_unanswerable']} unanswerable); model selection on "
        f"{len(split.valid)} other training articles; {len(split.held_out)} articles held out"
        + (f"; {report.examples['own_words_train']} questions in users' own words, {config.own_words_repeat} times "
           "an epoch" if parts.own_train else "")
        + (f"; {len(parts.own_dev)} development questions in users' own words join the choice"
           if parts.own_dev else ""))

    model = _base_model(config, report, log)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = _optimizer(model, config)
    reword = wordnet_rewording() if config.paraphrase_prob else None
    maker = FeatureMaker(config, reword)
    # With paraphrase augmentation on, the epoch is chosen on the validation questions as asked
    # and in other words (the same deterministic rewording `qa bench squad` reports), so that a
    # run cannot win by fitting SQuAD's borrowed wording alone.
    valid_reworded = ([QAItem(q.qid, q.title, reword(q.question, q.context), q.context, q.answers)
                       for q in parts.valid_v1] if reword is not None else [])
    # Each epoch trains on SQuAD's questions, then on those in users' own words `own_words_repeat` times.
    training = parts.train + parts.own_train * config.own_words_repeat
    epoch_features = [maker.features(training, random.Random(config.seed + e))
                      for e in range(config.epochs)]
    total = sum(math.ceil(len(f) / config.batch) for f in epoch_features)
    scheduler = _scheduler(optimizer, config, total)
    _log_plan(config, report, maker, epoch_features, total, params, log)

    checkpoint = Path(out) / CHECKPOINT_FILE
    best, first_epoch = _starting_point(checkpoint, config, model, optimizer, scheduler, rng, parts,
                                        valid_reworded, report, log)
    done = sum(math.ceil(len(f) / config.batch) for f in epoch_features[:first_epoch])
    bar = tqdm(total=total, initial=done, desc="train-reader", unit="step", disable=not progress)
    for epoch in range(first_epoch, config.epochs):
        if _stop_before(epoch, first_epoch, config, report, log):
            break
        model.train()
        losses = _train_epoch(model, epoch_features[epoch], params, optimizer, scheduler, config, rng, bar)
        model.eval()
        key = _validate_epoch(model, epoch, losses, parts, valid_reworded, config, report, started, log)
        if best is None or key > best[0]:
            best = (key, snapshot(model))
            report.best_epoch = epoch + 1
        # Every epoch ends in a checkpoint, so a run cut short (a session's end) resumes here.
        save_checkpoint(checkpoint, config, model, optimizer, scheduler, rng, best, report)
    bar.close()
    assert best is not None
    _restore_best(model, best, report)

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights, threshold = _export_int8(model, out, parts, config, report, log)
    _held_out_figures(weights, parts, threshold, config, report, log)
    report.seconds = round(time.perf_counter() - started, 1)
    log(f"held-out v1.1 (gold paragraph): EM {report.held_out['v1']['em']} F1 {report.held_out['v1']['f1']}; v2.0: "
        f"F1 {report.held_out['v2']['f1']} AUC {report.held_out['v2']['auc']} "
        f"({report.seconds:.0f} s in all)")
    _write_run(out, weights, threshold, config, report, parts.squad)
    return report


def _parts(data: Path | None, config: TrainConfig, rng: random.Random) -> _Parts:
    """The SQuAD questions of each part, `config.limit` of each drawn for a quick run."""
    squad: SquadData = load_squad(data)
    split = squad.split
    own_train = [item for n, path in enumerate(config.own_words_train, 1)
                 for item in own_words_items(Path(path), squad, 1, split.train, f"own-train{n}")]
    own_dev = (own_words_items(Path(config.own_words_dev), squad, 2, split.train | split.valid, "own-dev")
               if config.own_words_dev else [])
    return _Parts(squad=squad,
                  own_train=_limit(own_train, config.limit, rng),
                  own_dev=_limit(own_dev, config.limit, rng),
                  train=_limit(squad.training(split.train), config.limit, rng),
                  valid_v1=_limit(squad.part(1, split.valid), config.limit, rng),
                  valid_v2=_limit(squad.part(2, split.valid), config.limit, rng),
                  held_v1=_limit(squad.part(1, split.held_out), config.limit, rng),
                  held_v2=_limit(squad.part(2, split.held_out), config.limit, rng))


def _new_report(config: TrainConfig, parts: _Parts) -> TrainReport:
    split = parts.squad.split
    return TrainReport(config=asdict(config), examples={
        "train_questions": len(parts.train),
        "train_unanswerable": sum(not q.answerable for q in parts.train),
        "train_articles": len(split.train), "valid_articles": len(split.valid),
        "held_out_articles": len(split.held_out),
        "valid_v1": len(parts.valid_v1), "valid_v2": len(parts.valid_v2),
        "held_out_v1": len(parts.held_v1), "held_out_v2": len(parts.held_v2),
        "own_words_train": len(parts.own_train),
        "own_words_dev": len(parts.own_dev)},
        hardware=_hardware(config.threads, config.device))


def _base_model(config: TrainConfig, report: TrainReport, log: Callable[[str], None]) -> Any:
    """The torch network to train, on `config.device`: all-MiniLM-L6-v2 with a new head, or the
    weights `--init` continues; its embeddings frozen."""
    model = torch_model(model_path("all-MiniLM-L6-v2"))
    if config.init:
        start_file = init_file(Path(config.init))
        load_onnx_weights(model, start_file)
        report.earlier = _earlier_runs(Path(config.init))
        report.init_file = start_file.name
        log(f"continuing from {start_file}{' (int8, dequantized)' if report.from_int8 else ''}")
    for p in model.bert.embeddings.parameters():
        p.requires_grad = False
    model.to(config.device)
    return model


def _optimizer(model: Any, config: TrainConfig) -> Any:
    """AdamW over the trained weights, with weight decay on the matrices only."""
    decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim <= 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": config.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=config.lr)


def _scheduler(optimizer: Any, config: TrainConfig, total: int) -> Any:
    """Linear warm-up over `config.warmup` of the `total` steps, then linear decay."""
    warm = max(1, int(config.warmup * total))
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warm, max(0.0, (total - s) / max(1, total - warm))))


def _log_plan(config: TrainConfig, report: TrainReport, maker: FeatureMaker, epoch_features: list[list[Feature]],
              total: int, params: list[Any], log: Callable[[str], None]) -> None:
    if config.epochs:
        report.examples["swapped_first_epoch"] = maker.swapped_counts[0]
        log(f"{sum(len(f) for f in epoch_features)} windows over {config.epochs} epochs "
            f"(counting {sum(maker.swapped_counts)} entity-swapped unanswerable questions), "
            f"{total} steps of {config.batch}; {sum(p.numel() for p in params):,} weights trained")
    else:
        log("no training (--epochs 0): the weights continued are exported again, each int8 form scored")


def _starting_point(checkpoint: Path, config: TrainConfig, model: Any, optimizer: Any, scheduler: Any,
                    rng: random.Random, parts: _Parts, valid_reworded: list[QAItem], report: TrainReport,
                    log: Callable[[str], None]) -> tuple[Best | None, int]:
    """The best weights so far and the first epoch to train: from the checkpoint with --resume,
    the weights continued with --init (a candidate too), else none and epoch 0."""
    if config.resume and checkpoint.is_file():
        return resume_checkpoint(checkpoint, config, model, optimizer, scheduler, rng, report, log)
    if config.init:
        # The weights continued are a candidate too: no epoch that scores worse on validation ships.
        v1, v2, _ = validate(parts.valid_v1, parts.valid_v2, torch_logits(model), config.max_len)
        reworded = reworded_score(valid_reworded, torch_logits(model), config.max_len)
        own = own_words_score(parts.own_dev, torch_logits(model), config.max_len)
        report.start_valid = {"v1": asdict(v1), "v2": asdict(v2),
                              **({"v1_reworded": asdict(reworded)} if reworded else {}),
                              **({"own_words_dev": asdict(own)} if own else {})}
        best = (v1.f1 + v2.f1 + (reworded.f1 if reworded else 0.0) + (own.f1 if own else 0.0), snapshot(model))
        log(f"start: validation v1.1 EM/F1 {v1.em}/{v1.f1}; v2.0 F1 {v2.f1}, AUC {v2.auc}")
        return best, 0
    return None, 0


def _stop_before(epoch: int, first_epoch: int, config: TrainConfig, report: TrainReport,
                 log: Callable[[str], None]) -> bool:
    """Whether to train no more epochs: --finish, or no improvement for `patience` epochs."""
    if config.finish:
        log(f"--finish: exporting the best of the {first_epoch} epochs trained; {config.epochs - epoch} not run")
        return True
    if config.patience and report.epochs and epoch - report.best_epoch >= config.patience:
        log(f"validation has not improved for {config.patience} epochs: stopping after epoch {epoch}")
        return True
    return False


def _train_epoch(model: Any, features: list[Feature], params: list[Any], optimizer: Any, scheduler: Any,
                 config: TrainConfig, rng: random.Random, bar: Any) -> list[float]:
    """One pass over `features` in batches; returns each step's loss."""
    losses: list[float] = []
    for batch in batches(features, config.batch, rng):
        ids, mask, types, allowed, starts, ends = batch_tensors(batch, config.device)
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
    return losses


def _validate_epoch(model: Any, epoch: int, losses: list[float], parts: _Parts, valid_reworded: list[QAItem],
                    config: TrainConfig, report: TrainReport, started: float, log: Callable[[str], None]) -> float:
    """Score the epoch's weights on validation, add its row to `report`; returns the key the
    best epoch is chosen by (v1.1 F1 + v2.0 F1, + reworded v1.1 F1 when there are such questions,
    + the SQuAD 2.0 F1 of the development questions in users' own words when there are those)."""
    v1, v2, t2 = validate(parts.valid_v1, parts.valid_v2, torch_logits(model), config.max_len)
    reworded = reworded_score(valid_reworded, torch_logits(model), config.max_len)
    own = own_words_score(parts.own_dev, torch_logits(model), config.max_len)
    row = {"epoch": epoch + 1, "loss": round(float(np.mean(losses)), 4),
           "valid_v1": asdict(v1), "valid_v2": asdict(v2),
           **({"valid_v1_reworded": asdict(reworded)} if reworded else {}),
           **({"own_words_dev": asdict(own)} if own else {}),
           "seconds": round(time.perf_counter() - started, 1)}
    report.epochs.append(row)
    log(f"epoch {epoch + 1}: loss {row['loss']}; validation v1.1 EM/F1 {v1.em}/{v1.f1}; "
        f"v2.0 F1 {v2.f1} at margin {t2:.2f}, AUC {v2.auc}"
        + (f"; v1.1 reworded F1 {reworded.f1}" if reworded else "")
        + (f"; own words (dev) F1 {own.f1} at margin {own.threshold:.2f}, AUC {own.auc}" if own else ""))
    return v1.f1 + v2.f1 + (reworded.f1 if reworded else 0.0) + (own.f1 if own else 0.0)


def _restore_best(model: Any, best: Best, report: TrainReport) -> None:
    """Load the chosen weights back, on the CPU, and record their validation figures."""
    model.load_state_dict(best[1])
    model.to("cpu")  # the export and everything after it run as the product does, on the CPU
    model.eval()
    chosen_row = next((e for e in report.epochs if e["epoch"] == report.best_epoch), None)
    report.valid_fp32 = ({"v1": chosen_row["valid_v1"], "v2": chosen_row["valid_v2"]} if chosen_row
                         else report.start_valid)


def _export_int8(model: Any, out: Path, parts: _Parts, config: TrainConfig, report: TrainReport,
                 log: Callable[[str], None]) -> tuple[Path, float]:
    """Export fp32 ONNX to `out`, score each int8 form on validation and ship the best one.
    Returns the shipped file and its abstention threshold."""
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
            v1, v2, t2 = validate(parts.valid_v1, parts.valid_v2, onnx_logits(path, config.threads), config.max_len)
            report.quantizations[name] = {"v1": asdict(v1), "v2": asdict(v2)}
            tried[name] = (v1.f1 + v2.f1, path, report.quantizations[name], t2)
            log(f"int8 {name}: validation v1.1 F1 {v1.f1}; v2.0 F1 {v2.f1}, AUC {v2.auc}")
        report.quantization = config.quantization or max(tried, key=lambda n: tried[n][0])
        _, chosen, report.valid_int8, threshold = tried[report.quantization]
        shutil.copyfile(chosen, weights)
    report.size_bytes = weights.stat().st_size
    report.threshold = threshold
    log(f"exported {weights} ({report.size_bytes / 1e6:.1f} MB, int8 {report.quantization})")
    return weights, threshold


def _held_out_figures(weights: Path, parts: _Parts, threshold: float, config: TrainConfig,
                      report: TrainReport, log: Callable[[str], None]) -> None:
    """The shipped file's figures on the held-out articles, into `report.held_out`."""
    fn = onnx_logits(weights, config.threads)
    h1 = score(parts.held_v1, read_gold(parts.held_v1, fn, config.max_len))
    rh2 = read_gold(parts.held_v2, fn, config.max_len)
    report.held_out = {"v1": asdict(h1), "v2": asdict(score(parts.held_v2, rh2, threshold)),
                       "v2_no_abstention": asdict(score(parts.held_v2, rh2))}


def _write_run(out: Path, weights: Path, threshold: float, config: TrainConfig, report: TrainReport,
               squad: SquadData) -> None:
    """reader.json, training.json and the model card, beside the weights."""
    (out / CONFIG_FILE).write_text(json.dumps({
        "sha256": sha256_file(weights), "max_len": config.max_len, "base_model": BASE_MODEL,
        "details": {"threshold": threshold, "best_epoch": report.best_epoch,
                    "held_out": report.held_out, "valid_int8": report.valid_int8}},
        indent=2) + "\n", encoding="utf-8")
    (out / "training.json").write_text(json.dumps(asdict(report), indent=2) + "\n",
                                       encoding="utf-8")
    (out / CARD_FILE).write_text(model_card(report, squad), encoding="utf-8")


def _limit(items: list[QAItem], n: int, rng: random.Random) -> list[QAItem]:
    if not n or len(items) <= n:
        return items
    return rng.sample(items, n)


def _earlier_runs(folder: Path) -> list[dict[str, Any]]:
    """The run that wrote `folder` (and the runs it continued), from its training.json; [] when
    that file is missing or unreadable (the weights alone can still be continued)."""
    try:
        run = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    keep = ("config", "examples", "epochs", "best_epoch", "seconds", "hardware")
    return [*run.get("earlier", []), {k: run.get(k) for k in keep}]


def _hardware(threads: int, device: str = "cpu") -> str:
    cpu = (f"{platform.machine()} CPU {cpu_summary()}, {os.cpu_count()} cores visible, {threads} torch threads "
           f"(OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})")
    if device != "cpu":
        import torch

        return f"GPU {torch.cuda.get_device_name(0)} (torch {torch.__version__}) for training; {cpu} for the rest"
    return cpu
