"""ROUGE-L (``rouge_score``), maximised over the accepted answers."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from aliasgate.datasets.base import Case
from aliasgate.scorers.base import Score
from aliasgate.scorers.reference import NO_REFERENCE, accepted_answers, require_text

NO_ROUGE_TOKENS = "no reference answer has ROUGE tokens (rouge_score keeps only a-z and 0-9)"


class _MemoTokenizer:
    """rouge_score's default tokenizer with memoised Porter stemming (same tokens, ~6x faster).

    Stemming each word dominates ROUGE's cost; words repeat a lot across outputs, so the stem of
    each distinct word and the tokens of recent texts are cached.
    """

    def __init__(self, stemmer: Any, tokenize: Any):
        self._stem = lru_cache(maxsize=1 << 16)(stemmer.stem)
        self._tokenize = tokenize
        self.tokenize = lru_cache(maxsize=4096)(self._tokens)

    def stem(self, word: str) -> str:
        return self._stem(word)

    def _tokens(self, text: str) -> tuple[str, ...]:
        return tuple(self._tokenize(text, self))


class RougeL:
    """ROUGE-L F-measure (LCS-based, Porter-stemmed) of the output against each accepted answer.

    Attributes:
        name: Metric name (``rouge_l``).
    """

    #: Every value lies in [0, 1] (gate rules are checked against it).
    value_range = (0.0, 1.0)

    name = "rouge_l"

    def __init__(self) -> None:
        from nltk.stem import porter  # deferred: rouge_score (and nltk) are heavy imports
        from rouge_score import rouge_scorer, tokenize

        self._tokenizer = _MemoTokenizer(porter.PorterStemmer(), tokenize.tokenize)
        # Identical to RougeScorer(["rougeL"], use_stemmer=True), whose default tokenizer is
        # tokenize.tokenize with a PorterStemmer; only the caching differs.
        self._scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=self._tokenizer)

    def __call__(self, output: str, case: Case) -> Score:
        answers = accepted_answers(case)
        if not answers:
            return Score.unmeasured(NO_REFERENCE)
        output = require_text(output)
        answers = tuple(a for a in answers if self._tokenizer.tokenize(a))
        if not answers:
            return Score.unmeasured(NO_ROUGE_TOKENS)
        best, matched = 0.0, None
        for answer in answers:
            value = float(self._scorer.score(answer, output)["rougeL"].fmeasure)
            if value > best:
                best, matched = value, answer
        return Score(value=best, detail={"matched": matched})


def rouge_l() -> RougeL:
    """Scorer for ROUGE-L F-measure (``rouge_score``, Porter stemming), max over accepted answers.

    ``rouge_score`` lower-cases and keeps only ``[a-z0-9]`` tokens, so a reference answer with no
    such token (e.g. non-Latin script) cannot be scored: when no accepted answer has a token the
    case is unmeasured. Cases without accepted answers are unmeasured; an empty output scores 0.
    ``rouge_score`` is imported, and its scorer built, once per scorer object.

    Returns:
        A scorer named ``rouge_l`` whose values are in [0, 1].
    """
    return RougeL()
