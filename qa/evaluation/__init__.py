"""Evaluation over a hand-written QA set: the set (`dataset`), the run and its typed results
(`run`), and the report (`report`). `qa eval` is `run_eval` + `write_report` + `summary`."""

from __future__ import annotations

from qa.evaluation.dataset import KINDS, SET_ROLES, QAPair, QASetError, Span, load_qa_set, set_role
from qa.evaluation.report import comparison, summary, write_comparison, write_report
from qa.evaluation.run import (
    AbstentionCalibration,
    AbstentionMetrics,
    AnswerMetrics,
    AnswerRecord,
    CitationMetrics,
    EvalResult,
    RetrievalScores,
    SetFigures,
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
    set_figures,
    short_answer,
)

__all__ = [
    "KINDS", "SET_ROLES", "AbstentionCalibration", "AbstentionMetrics", "AnswerMetrics", "AnswerRecord",
    "CitationMetrics", "EvalResult", "QAPair", "QASetError", "RetrievalScores", "SetFigures", "Span", "SweepRow",
    "abstention_metrics", "answer_metrics", "calibrate_abstention", "citation_is_correct", "citation_metrics",
    "comparison", "load_qa_set", "load_records", "retrieval_scores", "run_eval", "score_answer", "set_figures",
    "set_role", "short_answer", "summary", "write_comparison", "write_report",
]
