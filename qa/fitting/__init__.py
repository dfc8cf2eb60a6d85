"""Refit the answer composer's fitted constants and compare them with the shipped ones.

    python -m qa.fitting confidence              # ConfidenceModel, on eval/qa_pairs.jsonl + eval/calibration.jsonl
    python -m qa.fitting sentences [--squad 400] # SentenceWeights, on the QA set (+ a seeded SQuAD v1.1 sample)
    python -m qa.fitting answerability [--without coverage,lexical]
                                                 # AnswerabilityModel, on SQuAD v2.0 training articles as asked
                                                 # and paraphrased + eval/calibration.jsonl; threshold on both seed
                                                 # sets and the development questions in users' own words
    python -m qa.fitting ... --config F.toml     # any of them under other settings (e.g. pooled sentence vectors)

Both fit on features computed by the shipped pipeline (`qa.scoring.score_sentences`,
`qa.answerability.confidence_features`) over an index of seeds/ (built in a temporary folder), and
print the refit values beside the shipped defaults with the figure each was chosen for. Nothing is
written: to ship a refit, copy its values into `SentenceWeights` (qa/scoring.py) or
`ConfidenceModel` / `AnswerabilityModel` (qa/answerability.py) and rerun `qa eval` and
`qa bench squad`.

- **Confidence**: class-balanced logistic regression (answerable vs not, L2 with C = 30) on the
  best sentence's cosine, the share of the question's IDF weight in its passage and log1p of the
  passage's BM25 score; reported with leave-one-out ROC AUC. The shipped coefficients were fitted
  before this script was committed; it reproduces them to within 0.2 each, with the same AUC.
- **Answerability**: logistic regression over `qa.answerability.Evidence` (the reader's margins,
  the cosine of its sentence and how far below the best candidate's it is, whether its span is
  the kind of thing asked for, numbers the text never writes, and, unless left out with
  `--without`, coverage and BM25), on a seeded sample of SQuAD v2.0 questions of the *training*
  articles (their paragraphs indexed as an open corpus; held-out articles never enter), the same
  questions in the WordNet paraphrase `qa bench squad` uses, and the short seed questions of
  eval/calibration.jsonl, each set weighing the same and its two classes balanced; the
  abstention threshold is then the one with the lowest class-balanced error on
  eval/qa_pairs.jsonl and eval/calibration.jsonl (the share of answerable questions refused plus
  the share of unanswerable ones answered) plus that of the development questions in users' own
  words (eval/squad_own_words_dev.jsonl), which weigh as much as the seed sets together
  (`--threshold-on-seeds-only`: the seed sets alone). Prints each set's ROC AUC and the trade-off. Yes/no
  questions are left out of the fit: the sentence scorer decides them (`qa.questions.is_polar`),
  so on the seed sets their errors are the same at every threshold.
- **Sentence weights**: a conditional logit over each question's candidate sentences (the
  probability of the sentences that hold the answer, softmax over the candidates), scaled so the
  cosine weight equals the shipped one; reported as the share of questions whose first sentence
  holds the answer ("gold first").
"""

# One module per fit (confidence, sentences, answerability); `common` holds the index, ranking and
# reader evidence they share; `command` is `python -m qa.fitting`. Nothing in the runtime imports
# this package: a refit is copied into qa/answerability.py or qa/scoring.py by hand.

from qa.fitting.answerability import EVIDENCE_SIGNS, fit_answerability, signed_logistic
from qa.fitting.command import main
from qa.fitting.common import THRESHOLD_GRID, answer_evidence, balanced_threshold, scorer_answers
from qa.fitting.confidence import fit_confidence
from qa.fitting.sentences import fit_sentences

__all__ = ["EVIDENCE_SIGNS", "THRESHOLD_GRID", "answer_evidence", "balanced_threshold", "fit_answerability",
           "fit_confidence", "fit_sentences", "main", "scorer_answers", "signed_logistic"]
