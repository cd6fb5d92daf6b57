"""Answer length: how many words the model wrote, a per-group bias signal.

A model that answers some groups at length and others with one curt line treats them
differently even when its decisions agree; the length per group and the gap between groups
(``group_metrics`` with ``metrics: [answer_length]``) show it. Words are runs of letters, digits, apostrophes or hyphens
(``"don't"``, ``"well-known"`` and ``"42"`` are one word each), so punctuation, markup and
whitespace do not count; the count is comparable across tokenizers, unlike token counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aliasgate.datasets.base import Case
from aliasgate.scorers.base import Score
from aliasgate.scorers.reference import require_text

__all__ = ["AnswerLength", "answer_length", "count_words"]

_WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")


def count_words(text: str) -> int:
    """Words in ``text``: runs of letters/digits, joined by inner apostrophes or hyphens.

    Args:
        text: Any text.
    """
    return len(_WORD.findall(text))


@dataclass(frozen=True)
class AnswerLength:
    """Scores an output by its number of words (see :func:`count_words`).

    Attributes:
        name: Metric name.
    """

    name: str = "answer_length"
    #: A word count.
    value_range = (0.0, float("inf"))

    def __call__(self, output: str, case: Case) -> Score:
        return Score(value=float(count_words(require_text(output))))


def answer_length() -> AnswerLength:
    """Scorer for the length of an answer, in words.

    An empty (or punctuation-only) output scores 0 — it was measured; a missing output (a failed
    call) is never scored (the runner records the case as unmeasured).

    Returns:
        A scorer named ``answer_length`` whose values are word counts (0, 1, 2...).
    """
    return AnswerLength()
