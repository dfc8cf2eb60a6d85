"""Evaluation over a hand-written QA set: the set (`dataset`), the run and its typed results
(`run`), and the report (`report`). `qa eval` is `run_eval` + `write_report` + `summary`."""

from __future__ import annotations

from qa.evaluation.dataset import KINDS, QAPair, QASetError, Span, load_qa_set
from qa.evaluation.report import summary, write_report
from qa.evaluation.run import (
    AbstentionCalibration,
    AbstentionMetrics,
    AnswerMetrics,
    AnswerRecord,
    CitationMetrics,
    EvalResult,
    RetrievalScores,
    SweepRow,
    abstention_metrics,
    answer_metrics,
    calibrate_abstention,
    citation_is_correct,
    citation_metrics,
    load_records,
    retrieval_scores,
    run_eval,
    score_answer,
    short_answer,
)

__all__ = [
    "KINDS", "AbstentionCalibration", "AbstentionMetrics", "AnswerMetrics", "AnswerRecord", "CitationMetrics",
    "EvalResult", "QAPair", "QASetError", "RetrievalScores", "Span", "SweepRow", "abstention_metrics",
    "answer_metrics", "calibrate_abstention", "citation_is_correct", "citation_metrics", "load_qa_set",
    "load_records", "retrieval_scores", "run_eval", "score_answer", "short_answer", "summary", "write_report",
]
