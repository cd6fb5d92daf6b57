"""Reference-answer scorers: exact match, SQuAD token F1 and word-bounded containment.

Each factory returns a :class:`ReferenceScorer` that compares the SQuAD-normalised output
(:func:`~aliasgate.scorers.normalize.normalize_answer`) with every accepted answer of the case
and keeps the best value. ``detail["matched"]`` is the accepted answer that gave it (``None``
when the value is 0).

Unlike the official script, an accepted answer that normalises to the empty string (``"The"``,
``"?"``) is not used: with it an empty output would be a perfect exact match. A case whose
answers are all blank is unmeasured (``"no reference answers"``); one whose answers all normalise
to "" is unmeasured too, with its own reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aliasgate.datasets.base import Case
from aliasgate.scorers.base import Score
from aliasgate.scorers.normalize import f1_from_tokens, normalize_answer

NO_REFERENCE = "no reference answers"
EMPTY_AFTER_NORMALIZATION = "every reference answer is empty after SQuAD normalisation"


def accepted_answers(case: Case) -> tuple[str, ...]:
    """The case's accepted answers, blank ones dropped.

    A bare string is taken as one answer (not as a sequence of characters).

    Args:
        case: The case being scored.

    Raises:
        TypeError: if an accepted answer is not a string.
    """
    expected = case.expected
    if isinstance(expected, str):
        expected = (expected,)
    answers = []
    for answer in expected or ():
        if not isinstance(answer, str):
            raise TypeError(f"case {case.id!r}: accepted answer {answer!r} is not a string")
        if answer.strip():
            answers.append(answer)
    return tuple(answers)


def require_text(output: object) -> str:
    """``output`` itself, checked to be a string (a missing output must not be scored as "").

    Args:
        output: The candidate's output.

    Raises:
        TypeError: if ``output`` is not a string (e.g. ``None`` from a failed call).
    """
    if not isinstance(output, str):
        raise TypeError(f"output must be a string, got {type(output).__name__}")
    return output


@dataclass(frozen=True)
class ReferenceScorer:
    """Best value of ``compare(normalised output, normalised answer)`` over the accepted answers.

    Attributes:
        name: Metric name.
        compare: Similarity in [0, 1] of two SQuAD-normalised strings.
    """

    #: Every value lies in [0, 1] (gate rules are checked against it).
    value_range = (0.0, 1.0)

    name: str
    compare: Callable[[str, str], float]

    def __call__(self, output: str, case: Case) -> Score:
        answers = accepted_answers(case)
        if not answers:
            return Score.unmeasured(NO_REFERENCE)
        prediction = normalize_answer(require_text(output))
        # An answer that normalises to "" ("The", "?") would make an empty output a perfect
        # exact match: such answers are not used, and a case with only those is unmeasured.
        normalized = [(a, n) for a in answers if (n := normalize_answer(a))]
        if not normalized:
            return Score.unmeasured(EMPTY_AFTER_NORMALIZATION)
        best, matched = 0.0, None
        for answer, target in normalized:
            value = float(self.compare(prediction, target))
            if value > best:
                best, matched = value, answer
                if best >= 1.0:
                    break
        return Score(value=best, detail={"matched": matched})


def _equal(prediction: str, answer: str) -> float:
    return 1.0 if prediction == answer else 0.0


def _token_f1(prediction: str, answer: str) -> float:
    return f1_from_tokens(prediction.split(), answer.split())


def _contains(prediction: str, answer: str) -> float:
    # Both sides are single-space separated tokens, so padding with spaces makes the match
    # respect token boundaries.
    return 1.0 if f" {answer} " in f" {prediction} " else 0.0


def exact_match() -> ReferenceScorer:
    """Scorer for SQuAD v1.1 exact match: 1 when the normalised output equals an accepted answer.

    Normalisation lower-cases, drops ASCII punctuation and the articles a/an/the, and collapses
    whitespace. Cases without accepted answers are unmeasured; an empty output scores 0.

    Returns:
        A scorer named ``exact_match`` whose values are 0.0 or 1.0.
    """
    return ReferenceScorer("exact_match", _equal)


def token_f1() -> ReferenceScorer:
    """Scorer for SQuAD v1.1 token F1, maximised over the accepted answers.

    Precision and recall count the multiset of normalised tokens shared by the output and the
    answer; F1 is 0 when they share none. Cases without accepted answers are unmeasured.

    Returns:
        A scorer named ``token_f1`` whose values are in [0, 1].
    """
    return ReferenceScorer("token_f1", _token_f1)


def contains() -> ReferenceScorer:
    """Scorer that checks whether an accepted answer appears in the output as whole words.

    Both sides are SQuAD-normalised first, then the answer's tokens must occur contiguously in the
    output's tokens: ``"paris"`` is found in ``"The capital is Paris."`` but ``"4"`` is not found
    in ``"14"``. Cases without accepted answers are unmeasured; an empty output scores 0.

    Returns:
        A scorer named ``contains`` whose values are 0.0 or 1.0.
    """
    return ReferenceScorer("contains", _contains)
