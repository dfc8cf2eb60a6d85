"""The checkpoint `qa train-reader` writes after every epoch (CHECKPOINT_FILE in its output
folder), so that a run cut short resumes with `--resume`, or exports with `--finish`."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from qa.reader.model import ReaderError
from qa.training.recipe import TrainConfig, TrainReport, own_words_files

# The best weights so far: (validation key, a copy of the weights).
Best = tuple[float, dict[str, Any]]


def resume_checkpoint(checkpoint: Path, config: TrainConfig, model: Any, optimizer: Any, scheduler: Any,
            rng: random.Random, report: TrainReport, log: Callable[[str], None]) -> tuple[Best | None, int]:
    """Load the run saved in `checkpoint`, which must have been made with the same settings.

    Raises:
        ReaderError: the checkpoint was written with other settings (it names them).
    """
    state = torch.load(checkpoint, map_location=config.device, weights_only=False)
    # --finish trains nothing more, so the number of epochs asked for does not matter.
    ignored = ("epochs",) if config.finish else ()
    then = {k: v for k, v in state["config"].items() if k not in ignored}
    if "own_words_train" in then:
        then["own_words_train"] = own_words_files(then["own_words_train"])
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
    return best, first_epoch


def save_checkpoint(checkpoint: Path, config: TrainConfig, model: Any, optimizer: Any, scheduler: Any,
                     rng: random.Random, best: Best, report: TrainReport) -> None:
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": _resumable(asdict(config)), "model": model.state_dict(),
                "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                "rng": rng.getstate(), "best_key": best[0], "best": best[1], "epochs": report.epochs,
                "best_epoch": report.best_epoch, "start_valid": report.start_valid},
               checkpoint.with_suffix(".tmp"))
    checkpoint.with_suffix(".tmp").replace(checkpoint)


def _resumable(config: dict[str, Any]) -> dict[str, Any]:
    """The settings a checkpoint must share with the run resuming it (not how it is run)."""
    return {k: v for k, v in config.items() if k not in ("resume", "finish", "threads", "device", "patience",
                                                                  "quantization")}


def _differences(a: dict[str, Any], b: dict[str, Any]) -> str:
    return ", ".join(f"{k}: {a.get(k)!r} then, {b.get(k)!r} now" for k in sorted(set(a) | set(b))
                     if a.get(k) != b.get(k))


def snapshot(model: Any) -> dict[str, Any]:
    """A copy of `model`'s weights (the best so far, to load back after the last epoch)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}
