"""`python -m qa.fitting`: run one fit and print it beside the shipped values."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

from qa.answerability import (
    Evidence,
)
from qa.config import Settings
from qa.errors import SettingsError
from qa.evaluation import QASetError
from qa.evaluation.own_words_dev import OWN_WORDS_DEV, SEEDS_OWN_WORDS_DEV, DevSetError
from qa.fitting.answerability import fit_answerability
from qa.fitting.common import ROOT
from qa.fitting.confidence import fit_confidence
from qa.fitting.sentences import fit_sentences
from qa.runtime import configure_process
from qa.scoring import SENTENCE_WEIGHTS

USAGE = "Refit the answer composer's fitted constants and compare them with the shipped ones."


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qa.fitting", description=USAGE)
    parser.add_argument("what", choices=("confidence", "sentences", "answerability"))
    parser.add_argument("--set", type=Path, default=ROOT / "eval" / "qa_pairs.jsonl")
    parser.add_argument("--calibration", type=Path, default=ROOT / "eval" / "calibration.jsonl")
    parser.add_argument("--corpus", type=Path, default=ROOT / "seeds")
    parser.add_argument("--squad", type=int, help="SQuAD questions in the fit: v1.1 dev for sentences (default "
                        "400, 0: none), v2.0 training articles for answerability (default and at 0: 1000)")
    parser.add_argument("--data", type=Path, help="the SQuAD v1.1 dev folder, or for answerability the folder "
                        "holding squad-v1.1-dev and squad-v2.0-dev (default: ../shared/benchmarks)")
    parser.add_argument("--C", type=float, default=30.0, dest="c",
                        help="inverse L2 strength of the confidence fit (default 30)")
    parser.add_argument("--without", type=lambda v: [x.strip() for x in v.split(",") if x.strip()], default=[],
                        help="answerability: features to leave out, comma-separated (e.g. coverage,lexical)")
    parser.add_argument("--own-words-dev", type=Path, default=OWN_WORDS_DEV,
                        help="answerability: development questions in users' own words about the SQuAD training "
                        "articles, checked (default: eval/squad_own_words_dev.jsonl)")
    parser.add_argument("--without-own-words-dev", action="store_true",
                        help="answerability: leave the development questions in users' own words out")
    parser.add_argument("--fit-own-words-dev", action="store_true",
                        help="answerability: fit on those development questions too, not only check them")
    parser.add_argument("--seeds-own-words-dev", type=Path, default=SEEDS_OWN_WORDS_DEV,
                        help="answerability: development questions in users' own words about --corpus, checked "
                        "and weighed in the threshold (default: eval/seeds_own_words_dev.jsonl, about seeds/; "
                        "left out for another corpus)")
    parser.add_argument("--threshold-on-seeds-only", action="store_true",
                        help="answerability: choose the threshold on the seed sets alone (by default the "
                        "development questions in users' own words weigh as much as the seed sets together)")
    parser.add_argument("--config", type=Path, help="a TOML file of settings to fit under (e.g. other sentence "
                        "vectors); --corpus wins over its corpus")
    args = parser.parse_args(argv)
    configure_process()
    try:
        settings = Settings.from_file(args.config, corpus=args.corpus) if args.config else Settings(corpus=args.corpus)
    except SettingsError as exc:
        print(f"python -m qa.fitting: {exc}", file=sys.stderr)
        return 2
    if args.what == "confidence":
        r = fit_confidence(args.set, args.calibration, settings, args.c)
        print(f"{r['questions']} questions ({r['answerable']} answerable), class-balanced logistic regression:")
        for label, key in (("refit", "refit"), ("shipped", "shipped")):
            m = r[key]
            print(f"  {label:8} cosine {m.cosine:6.2f}  coverage {m.coverage:6.2f}  lexical {m.lexical:6.2f}  "
                  f"bias {m.bias:6.2f}  ROC AUC {r[key + '_auc']:.3f}")
        print(f"  leave-one-out ROC AUC of the refit: {r['refit_leave_one_out_auc']:.3f}")
    elif args.what == "answerability":
        unknown = set(args.without) - {f.name for f in fields(Evidence)}
        if unknown:
            print(f"python -m qa.fitting: unknown feature(s) {', '.join(sorted(unknown))}; the features are "
                  f"{', '.join(f.name for f in fields(Evidence))}.", file=sys.stderr)
            return 2
        own_words = None if args.without_own_words_dev else args.own_words_dev
        if own_words is not None and not own_words.is_file():
            print(f"python -m qa.fitting: {own_words} is not a file; pass --own-words-dev PATH, or "
                  "--without-own-words-dev to fit without those questions.", file=sys.stderr)
            return 2
        seeds_own_words = args.seeds_own_words_dev
        if seeds_own_words == SEEDS_OWN_WORDS_DEV and args.corpus.resolve() != (ROOT / "seeds").resolve():
            seeds_own_words = None   # the default set is about seeds/, not this corpus
        try:
            r = fit_answerability(args.set, args.calibration, settings, args.squad or 1000, args.data, args.c,
                                  without=args.without, own_words=own_words,
                                  fit_own_words=args.fit_own_words_dev,
                                  threshold_own_words=not args.threshold_on_seeds_only,
                                  seeds_own_words=seeds_own_words)
        except (DevSetError, QASetError) as exc:
            print(f"python -m qa.fitting: {exc}", file=sys.stderr)
            return 2
        for name, info in r["fit_sets"].items():
            print(f"fitted on {name}: {info['questions']} questions ({info['answerable']} answerable; the reader "
                  f"found no span for {info['no_span']})")
        others = "".join(f"{name} and " for name in r["threshold_sets"][2:])
        print(f"threshold: the lowest sum of class-balanced errors on {others}{r['seed_questions']} seed "
              f"questions (qa_pairs.jsonl, calibration.jsonl), {r['seed_polar']} of them yes/no (sentence "
              f"scorer: {r['seed_polar_refused']} refused answerable, {r['seed_polar_wrong']} answered "
              "unanswerable, counted at every threshold):")
        for label in ("refit", "shipped"):
            m = r[label]
            print(f"  {label:8} " + "  ".join(f"{f.name} {getattr(m, f.name):.3f}" for f in fields(m)))
        for name, aucs in r["auc"].items():
            print(f"  ROC AUC on {name}: refit {aucs['refit']:.3f}, shipped {aucs['shipped']:.3f}")
        print(f"  the shipped coefficients' threshold by the same rule: {r['shipped_threshold_by_rule']:.3f} "
              f"(shipped: {r['shipped'].threshold:.3f})")
        dev = [k for k in r["trade_off"][0] if k.endswith(": refused answerable / answered unanswerable")]
        print("  threshold  refit, seeds: refused answerable / answered unanswerable   shipped, seeds: the same"
              + "".join(f"   {k.split(':')[0]}, refit / shipped" for k in dev))
        for row in r["trade_off"]:
            shipped_refused, shipped_wrong = row["shipped_seed_errors"]
            print(f"  {row['threshold']:9.3f}  {row['seed_refused_answerable']:>21} / "
                  f"{row['seed_answered_unanswerable']:<24}  {shipped_refused:>14} / {shipped_wrong:<4}"
                  + "".join(f"   {row[k]['refit'][0]:>3} / {row[k]['refit'][1]:<3} | {row[k]['shipped'][0]:>3} / "
                            f"{row[k]['shipped'][1]:<3}" for k in dev))
    else:
        r = fit_sentences(args.set, settings, 400 if args.squad is None else args.squad, args.data)
        print(f"{r['questions']} questions with an answer among their candidates ({r['seed_questions']} seed, "
              f"{r['squad_questions']} SQuAD), conditional logit, scaled to cosine {SENTENCE_WEIGHTS.cosine}:")
        for label in ("refit", "shipped"):
            w = r[label]
            print(f"  {label:8} " + "  ".join(f"{f.name} {getattr(w, f.name):.3f}" for f in fields(w))
                  + f"  gold first {r[label + '_gold_first']:.3f}")
        print(f"  cosine alone: gold first {r['cosine_only_gold_first']:.3f}")
    return 0

