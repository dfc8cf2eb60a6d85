"""qa/fitting/: the refits run on the real pipeline's features and report beside the shipped values."""

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

    monkeypatch.setattr(fitting.command, "fit_confidence", fake_fit)   # the name `main` calls
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
    # Another set (questions in users' own words) adds its own balanced error, weighing as much as
    # the seed questions together: its answerable questions score low, so the threshold comes down.
    own = (np.array([0.25] * 8 + [0.6] * 2 + [0.1] * 10), np.array([True] * 10 + [False] * 10))
    assert fitting.balanced_threshold(conf, answerable, [0.1, 0.2, 0.35, 0.5]) == 0.5
    # 0.5: 0.1 + 0.4 + 0.8 + 0; 0.2: 0 + 1.0 + 0 + 0; 0.35: 0.1 + 1.0 + 0.8 + 0.
    assert fitting.balanced_threshold(conf, answerable, [0.1, 0.2, 0.35, 0.5], also=[own]) == 0.2
    # Smoothed, a dip at one grid point loses to a broad valley. Errors (refused answerable +
    # answered unanswerable, of 5 each) over the grid: 5, 3, 3, 3, 5, 2, 5. Alone 0.7 is best;
    # with its neighbours it averages 4, and 0.4 averages 3.
    dip = np.array([0.55, 0.55, 0.75, 0.75, 0.75, 0.2, 0.2, 0.65, 0.65, 0.65])
    truth = np.array([True] * 5 + [False] * 5)
    grid = [0.1, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8]
    assert fitting.balanced_threshold(dip, truth, grid) == 0.7
    assert fitting.balanced_threshold(dip, truth, grid, smooth=1) == 0.4


def _squad_fixture(root: Path) -> Path:
    """SQuAD v1.1/v2.0 dev in miniature: titles at even positions of the v2.0 order are trained on
    (Avalon, Corvid), the one between is held out (Bryn)."""
    paragraphs = {
        "Avalon": "Avalon Harbour was founded in 1802 by Mara Quill. It exports salt and timber to Norway.",
        "Bryn": "Bryn is a hill town. Its mayor is Ollie Brandt.",
        "Corvid": "The Corvid Institute studies crows. It was opened in 1977 and employs 42 researchers.",
    }
    rows = [{"pid": f"{t}#0", "title": t, "para_index": 0, "context": c} for t, c in paragraphs.items()]
    questions = [
        ("a1", "Avalon", "Who founded Avalon Harbour?", ["Mara Quill"]),
        ("a2", "Avalon", "What does Avalon export to Norway?", ["salt and timber"]),
        ("a3", "Avalon", "Who founded Avalon Harbour in 1950?", []),
        ("a4", "Avalon", "What does Avalon import from Sweden?", []),
        ("b1", "Bryn", "Who is the mayor of Bryn?", ["Ollie Brandt"]),
        ("c1", "Corvid", "When was the Corvid Institute opened?", ["1977"]),
        ("c2", "Corvid", "How many researchers does the Corvid Institute employ?", ["42"]),
        ("c3", "Corvid", "How many crows does the Corvid Institute keep?", []),
        ("c4", "Corvid", "Who closed the Corvid Institute in 1999?", []),
    ]
    for name in ("squad-v1.1-dev", "squad-v2.0-dev"):
        folder = root / name
        folder.mkdir(parents=True)
        kept = [q for q in questions if q[3] or name == "squad-v2.0-dev"]
        (folder / "paragraphs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        (folder / "questions.jsonl").write_text("".join(
            json.dumps({"id": i, "pid": f"{t}#0", "title": t, "question": q, "answers": a,
                        "is_impossible": not a}) + "\n" for i, t, q, a in kept), encoding="utf-8")
    return root


def test_answerability_fit_reads_every_set_and_leaves_out_what_it_is_told(
    seeds_index: Path, settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qa.answerability import FEATURES
    from qa.fitting import fit_answerability

    data = _squad_fixture(tmp_path / "benchmarks")
    monkeypatch.chdir(tmp_path)   # the fixture's open corpus is indexed under .qa_cache here
    # Development questions in users' own words name training paragraphs; one that names a
    # paragraph outside them, or whose answer its paragraph lacks, stops the fit.
    own_words = tmp_path / "own_words_dev.jsonl"
    rows = [{"pid": "Avalon#0", "question": "Whose idea was the harbour at Avalon?", "answerable": True,
             "answer": "Mara Quill"},
            {"pid": "Corvid#0", "question": "How many staff did the crow institute have in 1960?",
             "answerable": False, "answer": ""}]
    own_words.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    from qa.evaluation.own_words_dev import DevSetError, load_own_words_dev
    from qa.training.data import load_squad

    squad = load_squad(data)
    trained = [p for p in squad.v2_paragraphs if p["title"] in squad.split.train | squad.split.valid]
    assert [(q.question, q.answer) for q in load_own_words_dev(own_words, trained)] == [
        ("Whose idea was the harbour at Avalon?", "Mara Quill"),
        ("How many staff did the crow institute have in 1960?", None)]
    for bad in ({"pid": "Bryn#0", "answerable": True, "answer": "Ollie Brandt"},     # held out
                {"pid": "Avalon#0", "answerable": True, "answer": "Ollie Brandt"}):  # not in that paragraph
        drifted = tmp_path / "drifted.jsonl"
        drifted.write_text(json.dumps({"question": "Who runs the town?", **bad}) + "\n", encoding="utf-8")
        with pytest.raises(DevSetError, match="Who runs the town"):
            load_own_words_dev(drifted, trained)
    dev = "squad-v2.0 training articles, users' own words (development)"
    checked_only = fit_answerability(ROOT / "eval" / "qa_pairs.jsonl", ROOT / "eval" / "calibration.jsonl",
                                     settings, squad_sample=50, data=data, index=load_index(seeds_index),
                                     own_words=own_words)
    assert dev in checked_only["auc"] and dev not in checked_only["fit_sets"]
    # The seeds' own development questions in users' own words are checked and weigh in the
    # threshold, never fitted on.
    seeds_dev = "seeds, users' own words (development)"
    assert seeds_dev in checked_only["auc"] and seeds_dev not in checked_only["fit_sets"]
    assert seeds_dev in checked_only["threshold_sets"] and dev in checked_only["threshold_sets"]
    r = fit_answerability(ROOT / "eval" / "qa_pairs.jsonl", ROOT / "eval" / "calibration.jsonl", settings,
                          squad_sample=50, data=data, without=("coverage", "lexical"),
                          index=load_index(seeds_index), own_words=own_words, fit_own_words=True)
    # The trained articles only (Bryn is held out), as asked and paraphrased, the development
    # questions in users' own words (fitted on when asked) and the calibration set.
    sets = r["fit_sets"]
    assert sets["squad-v2.0 training articles"] == {"questions": 8, "answerable": 4,
                                                    "no_span": sets["squad-v2.0 training articles"]["no_span"]}
    assert sets[dev]["questions"] == 2 and dev in r["auc"]
    assert "calibration.jsonl" in sets
    refit = r["refit"]
    assert refit.coverage == 0.0 and refit.lexical == 0.0
    assert any(getattr(refit, f) != 0.0 for f in FEATURES if f not in ("coverage", "lexical"))
    assert 0.05 <= refit.threshold <= 0.95
    assert set(r["auc"]) >= {"squad-v2.0 training articles", "calibration.jsonl", "qa_pairs.jsonl"}
    assert all(0.0 <= a["refit"] <= 1.0 for a in r["auc"].values())
    # Checked, not fitted: answerable questions paraphrased against unanswerable ones as asked.
    mixed = "squad-v2.0 training articles, answerable paraphrased / unanswerable as asked"
    if "squad-v2.0 training articles, paraphrased" in sets:
        assert mixed in r["auc"] and mixed not in sets


def test_users_wording_pairs_paraphrased_answerable_with_unanswerable_as_asked() -> None:
    import numpy as np

    from qa.answerability import Evidence
    from qa.fitting.answerability import users_wording

    def e(margin: float) -> Evidence:
        return Evidence(margin, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)

    labels = np.array([True, False, True])
    asked, reworded = [e(1), e(2), e(3)], [e(-1), e(-2), None]
    (name, found, kept), = users_wording([("asked", asked, labels), ("asked, paraphrased", reworded, labels),
                                          ("own words", asked, labels)])
    assert [x.margin if x else None for x in found] == [-1, 2, None] and kept is labels
    assert users_wording([("asked", asked, labels)]) == []
    assert users_wording([("asked", asked, labels), ("own words", reworded, labels)]) == []


def test_signed_logistic_matches_scikit_learn_when_free_and_holds_its_signs() -> None:
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from qa.fitting import signed_logistic

    rng = np.random.default_rng(5)
    x = rng.normal(size=(300, 3))
    y = (x @ np.array([1.5, -2.0, 0.7]) + rng.normal(size=300) > 0)
    weight = rng.uniform(0.5, 2.0, size=300)
    w, b = signed_logistic(x, y, weight, [0, 0, 0], c=30.0)
    ref = LogisticRegression(C=30.0, max_iter=10_000).fit(x, y, sample_weight=weight)
    assert np.allclose(w, ref.coef_[0], atol=1e-3) and abs(b - ref.intercept_[0]) < 1e-3
    held, _ = signed_logistic(x, y, weight, [1, 1, -1], c=30.0)   # the second may not go negative
    assert held[1] == 0.0 and held[0] > 0 and held[2] <= 0.0


def test_the_development_questions_in_users_words_fit_the_training_articles() -> None:
    """eval/squad_own_words_dev.jsonl: every question names a paragraph of the SQuAD v2.0 training
    articles (never a held-out one) and every answerable one's answer lies in it verbatim; the
    mix is what it says (paraphrases, distractors, near misses)."""
    from qa.evaluation.own_words_dev import OWN_WORDS_DEV, load_own_words_dev
    from qa.training.data import load_squad

    from .conftest import BENCHMARKS

    rows = [json.loads(line) for line in OWN_WORDS_DEV.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) == len({r["question"] for r in rows}) >= 200
    assert all(set(r) == {"pid", "question", "answerable", "answer", "kind", "note"} for r in rows)
    assert all(r["answerable"] == (r["kind"] != "near_miss") and bool(r["answer"]) == r["answerable"] for r in rows)
    assert {r["kind"] for r in rows} == {"paraphrase", "distractor", "near_miss"}
    if not (BENCHMARKS / "squad-v2.0-dev").is_dir():
        pytest.skip(f"SQuAD data not found at {BENCHMARKS} (it lies beside the repository in CI)")
    squad = load_squad(BENCHMARKS)
    trained = squad.split.train | squad.split.valid
    assert not {r["pid"].rsplit("#", 1)[0] for r in rows} & set(squad.split.held_out)
    written = load_own_words_dev(OWN_WORDS_DEV, [p for p in squad.v2_paragraphs if p["title"] in trained])
    assert len(written) == len(rows)


TRAINING_FILES = {   # file: (questions, answerable): files 1-2 have 3 answerable and 2 near misses a
    "squad_own_words_train.jsonl": (1200, 720),     # paragraph, file 3 one paraphrase, one
    "squad_own_words_train_2.jsonl": (1200, 720),   # distractor and 3 near misses
    "squad_own_words_train_3.jsonl": (855, 342),
}


@pytest.mark.parametrize("name", sorted(TRAINING_FILES))
def test_the_training_questions_in_users_words_keep_out_of_every_held_out_and_development_article(name: str) -> None:
    """training-data/: every question names a v1.1 paragraph of a training article that no
    development question is about (never a held-out or validation one), its answer verbatim there;
    no two files share a paragraph."""
    from qa.evaluation.own_words_dev import OWN_WORDS_DEV
    from qa.training.data import load_squad
    from qa.training.own_words import OWN_WORDS_TRAIN, own_words_items

    from .conftest import BENCHMARKS

    path = OWN_WORDS_TRAIN.parent / name
    size, answerable = TRAINING_FILES[name]
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) == size and len({r["question"] for r in rows}) >= size - 10
    assert all(set(r) == {"pid", "question", "answerable", "answer", "kind", "note"} for r in rows)
    assert all(r["answerable"] == (r["kind"] != "near_miss") and bool(r["answer"]) == r["answerable"] for r in rows)
    for other in set(TRAINING_FILES) - {name}:
        other_pids = {json.loads(line)["pid"] for line in (path.parent / other).read_text(encoding="utf-8").splitlines()
                      if line.strip()}
        assert not {r["pid"] for r in rows} & other_pids, other
    dev_titles = {json.loads(line)["pid"].rsplit("#", 1)[0]
                  for line in OWN_WORDS_DEV.read_text(encoding="utf-8").splitlines() if line.strip()}
    assert not {r["pid"].rsplit("#", 1)[0] for r in rows} & dev_titles
    if not (BENCHMARKS / "squad-v1.1-dev").is_dir():
        pytest.skip(f"SQuAD data not found at {BENCHMARKS} (it lies beside the repository in CI)")
    squad = load_squad(BENCHMARKS)
    items = own_words_items(path, squad, 1, squad.split.train, "t")   # raises on any other article
    assert len(items) == size and sum(q.answerable for q in items) == answerable


def test_the_news_written_for_training_stands_alone_and_keeps_clear_of_the_seeds() -> None:
    """training-data/news_own_words_train.jsonl: 24 news articles helpers wrote, 8 paragraphs
    each, every paragraph carried on its questions' lines with two paraphrases, a distractor and
    two near misses; answers verbatim; read without SQuAD. None of it is about what seeds/ reports:
    no article shares a run of eight words with a seed article, or names the seeds' subjects."""
    import re
    from collections import Counter

    from qa.training.own_words import NEWS_OWN_WORDS_TRAIN, own_words_items

    rows = [json.loads(line) for line in NEWS_OWN_WORDS_TRAIN.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(rows) == len({r["question"] for r in rows}) == 960
    assert all(set(r) == {"pid", "title", "date", "context", "question", "answerable", "answer", "kind", "note"}
               for r in rows)
    assert all(r["answerable"] == (r["kind"] != "near_miss") and bool(r["answer"]) == r["answerable"] for r in rows)
    assert all(r["answer"] in r["context"] and bool(r["note"]) != r["answerable"] for r in rows)
    by_paragraph: dict[str, Counter[str]] = {}
    for r in rows:
        by_paragraph.setdefault(r["pid"], Counter())[r["kind"]] += 1
    assert len(by_paragraph) == 192 and len({r["title"] for r in rows}) == 24
    assert all(kinds == {"paraphrase": 2, "distractor": 1, "near_miss": 2} for kinds in by_paragraph.values())
    items = own_words_items(NEWS_OWN_WORDS_TRAIN, None, 1, frozenset(), "news")
    assert len(items) == 960 and sum(q.answerable for q in items) == 576
    assert {q.context for q in items} == {r["context"] for r in rows}

    def shingles(text: str) -> set[tuple[str, ...]]:
        words = re.findall(r"\w+", text.lower())
        return {tuple(words[k:k + 8]) for k in range(len(words) - 7)}

    seeds = set().union(*(shingles(p.read_text(encoding="utf-8")) for p in (ROOT / "seeds").iterdir() if p.is_file()))
    news = " ".join({r["title"] + " " + r["context"] for r in rows})
    assert not shingles(news) & seeds
    assert not re.search(r"tiktok|bytedance|musical\.ly|douyin|disinformation", news, re.IGNORECASE)
