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
        "semantic": "aliasgate.scorers.semantic:semantic_similarity",
    },
    entry_point_group="aliasgate.scorers",
)


def get_scorer(name: str, **options: Any) -> Scorer:
    """Build the scorer registered as ``name`` (its factory is called with ``options``)."""
    return SCORERS.get(name)(**options)


def available() -> list[str]:
    return SCORERS.names()


__all__ = ["SCORERS", "Score", "Scorer", "available", "get_scorer", "score_batch"]
