"""Scorers, one file per family. Add one: write the factory, add one line to ``SCORERS``."""

from __future__ import annotations

from typing import Any

from aliasgate._registry import Registry
from aliasgate.scorers.base import Score, Scorer, score_batch

SCORERS = Registry(
    "scorer",
    {
        "exact_match": "aliasgate.scorers.reference:exact_match",
        "token_f1": "aliasgate.scorers.reference:token_f1",
        "contains": "aliasgate.scorers.reference:contains",
        "rouge_l": "aliasgate.scorers.rouge:rouge_l",
        "refusal": "aliasgate.scorers.safety:refusal",
        "refused": "aliasgate.scorers.safety:refused",
        "toxicity": "aliasgate.scorers.safety:toxicity",
        "pii_leak": "aliasgate.scorers.pii:pii_leak",
        "canary_leak": "aliasgate.scorers.canary:canary_leak",
        "mc_answer": "aliasgate.scorers.bias:mc_answer",
        "yes_no": "aliasgate.scorers.bias:yes_no",
        "answer_length": "aliasgate.scorers.length:answer_length",
        "semantic": "aliasgate.scorers.semantic:semantic_similarity",
        "geval": "aliasgate.scorers.judge_deepeval:geval",
        "answer_relevancy": "aliasgate.scorers.judge_deepeval:answer_relevancy",
        "deepeval_bias": "aliasgate.scorers.judge_deepeval:deepeval_bias",
        "deepeval_toxicity": "aliasgate.scorers.judge_deepeval:deepeval_toxicity",
        "ragas_faithfulness": "aliasgate.scorers.judge_ragas:ragas_faithfulness",
        "ragas_answer_correctness": "aliasgate.scorers.judge_ragas:ragas_answer_correctness",
    },
    entry_point_group="aliasgate.scorers",
)


def get_scorer(name: str, **options: Any) -> Scorer:
    """Build the scorer registered as ``name`` (its factory is called with ``options``)."""
    return SCORERS.get(name)(**options)


def available() -> list[str]:
    return SCORERS.names()


__all__ = ["SCORERS", "Score", "Scorer", "available", "get_scorer", "score_batch"]
