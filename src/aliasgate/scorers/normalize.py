"""SQuAD v1.1 answer normalisation and token F1, as defined by the official ``evaluate-v1.1.py``.

The official script normalises in this order: lower-case, drop every character of
``string.punctuation``, replace the whole words ``a``/``an``/``the`` by a space, then collapse
whitespace. Dropping punctuation *joins* what it separated (``"1,400"`` -> ``"1400"``,
``"2+2=4"`` -> ``"224"``): that is the reference behaviour and is kept on purpose.
"""

from __future__ import annotations

import re
import string
from collections import Counter

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """Normalise an answer the SQuAD v1.1 way.

    Args:
        text: A prediction or a reference answer.

    Returns:
        Lower-cased text without ASCII punctuation or articles, single-space separated.
    """
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def answer_tokens(text: str) -> list[str]:
    """The SQuAD v1.1 tokens of ``text``: its normalised form split on whitespace.

    Args:
        text: A prediction or a reference answer.
    """
    return normalize_answer(text).split()


def exact_match_score(prediction: str, ground_truth: str) -> bool:
    """SQuAD v1.1 exact match: the normalised strings are equal.

    Args:
        prediction: Model output.
        ground_truth: One accepted answer.
    """
    return normalize_answer(prediction) == normalize_answer(ground_truth)


def f1_from_tokens(prediction_tokens: list[str], ground_truth_tokens: list[str]) -> float:
    """Token F1 over multiset overlap; 0.0 when no token is shared (so also when either is empty).

    Args:
        prediction_tokens: Normalised prediction tokens.
        ground_truth_tokens: Normalised tokens of one accepted answer.
    """
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0.0
    precision = num_same / len(prediction_tokens)
    recall = num_same / len(ground_truth_tokens)
    return 2 * precision * recall / (precision + recall)


def f1_score(prediction: str, ground_truth: str) -> float:
    """SQuAD v1.1 token F1 between a prediction and one accepted answer.

    Args:
        prediction: Model output.
        ground_truth: One accepted answer.
    """
    return f1_from_tokens(answer_tokens(prediction), answer_tokens(ground_truth))
