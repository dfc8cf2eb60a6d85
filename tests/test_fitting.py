"""qa/fitting.py: the refits run on the real pipeline's features and report beside the shipped values."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from qa import fitting
from qa.answerability import CONFIDENCE_MODEL
from qa.config import Settings
from qa.index import load_index
from qa.scoring import SENTENCE_WEIGHTS

from .conftest import ROOT


def _subset(path: Path, target: Path, keep: int) -> Path:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    target.write_text("\n".join(lines[:keep] + lines[-keep:]) + "\n", encoding="utf-8")
    return target


def test_confidence_refit_is_close_to_the_shipped_model(seeds_index: Path, settings, tmp_path: Path) -> None:
    from qa.fitting import fit_confidence

    r = fit_confidence(ROOT / "eval" / "qa_pairs.jsonl", ROOT / "eval" / "calibration.jsonl", settings,
                       index=load_index(seeds_index))
    assert (r["questions"], r["answerable"]) == (167, 131)
    assert r["shipped"] == CONFIDENCE_MODEL and 0.85 < r["shipped_auc"] < 0.92
    for name in ("cosine", "coverage", "lexical", "bias"):   # the committed fit reproduces the shipped one
        assert math.isclose(getattr(r["refit"], name), getattr(CONFIDENCE_MODEL, name), abs_tol=0.25), name
    assert abs(r["refit_auc"] - r["shipped_auc"]) < 0.01 and 0.8 < r["refit_leave_one_out_auc"] <= r["refit_auc"]


def test_sentence_refit_reports_gold_first(seeds_index: Path, settings, tmp_path: Path) -> None:
    from qa.fitting import fit_sentences

    qa_set = _subset(ROOT / "eval" / "qa_pairs.jsonl", tmp_path / "set.jsonl", 30)
    r = fit_sentences(qa_set, settings, squad=0, squad_folder=None, index=load_index(seeds_index))
    assert r["shipped"] == SENTENCE_WEIGHTS and r["squad_questions"] == 0 and r["questions"] > 10
    assert r["refit"].cosine == SENTENCE_WEIGHTS.cosine      # scaled to the shipped cosine weight
    # The fitted weights put the answer first more often than cosine alone (measured: 0.81 vs 0.60).
    assert r["shipped_gold_first"] > r["cosine_only_gold_first"]
    assert json.dumps({k: v for k, v in r.items() if isinstance(v, float | int)})


def test_config_file_sets_what_a_refit_runs_under(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    seen = []

    def fake_fit(qa_set: Path, calibration: Path, settings: Settings, c: float) -> dict[str, object]:
        seen.append(settings)
        raise SystemExit(0)

    monkeypatch.setattr(fitting, "fit_confidence", fake_fit)
    config = tmp_path / "pooled.toml"
    config.write_text('sentence_vectors = "pooled"\ncorpus = "elsewhere"\n', encoding="utf-8")
    with pytest.raises(SystemExit):
        fitting.main(["confidence", "--config", str(config), "--corpus", str(tmp_path)])
    assert seen[0].sentence_vectors == "pooled" and seen[0].corpus == tmp_path
    with pytest.raises(SystemExit):
        fitting.main(["confidence"])
    assert seen[1].sentence_vectors == Settings().sentence_vectors
    config.write_text('sentence_vectors = "bagged"\n', encoding="utf-8")
    assert fitting.main(["confidence", "--config", str(config)]) == 2
    assert fitting.main(["confidence", "--config", str(tmp_path / "missing.toml")]) == 2
    assert "Invalid sentence_vectors value" in capsys.readouterr().err and len(seen) == 2


def test_the_abstention_threshold_balances_the_two_error_rates() -> None:
    """Each class counts as a share, as the product is judged (false abstentions, unanswerable answered)."""
    import numpy as np

    # 100 answerable questions (90 confident, 10 not) and 10 unanswerable ones (6 at 0.4, 4 at 0.9).
    conf = np.array([0.8] * 90 + [0.3] * 10 + [0.4] * 6 + [0.9] * 4)
    answerable = np.array([True] * 100 + [False] * 10)
    # A plain error count picks 0.1 (10 errors: every unanswerable question answered) over 0.5 (14);
    # the balanced error is 1.0 at 0.1, 0.1 + 1.0 at 0.35 and 0.1 + 0.4 at 0.5.
    assert fitting.balanced_threshold(conf, answerable, [0.1, 0.35, 0.5]) == 0.5
    # Ties go to the value nearest 0.5.
    assert fitting.balanced_threshold(np.array([0.9, 0.1]), np.array([True, False]), [0.2, 0.45, 0.8]) == 0.45
    # Yes/no questions (decided elsewhere, the same at every threshold) count in each class's total.
    two = np.array([0.3, 0.3, 0.6])
    labels = np.array([True, True, False])
    assert fitting.balanced_threshold(two, labels, [0.2, 0.7]) == 0.7   # 0 + 1/1 against 2/2 + 0: tie, nearer 0.5
    assert fitting.balanced_threshold(two, labels, [0.2, 0.7], 0, 1, polar_answerable=0, polar_total=9) == 0.2
