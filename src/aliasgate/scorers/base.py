"""Scorer protocol and the :class:`Score` value."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from aliasgate.datasets.base import Case


@dataclass(frozen=True)
class Score:
    """One scorer's verdict on one case.

    Attributes:
        value: The number aggregated into the metric (0..1 for most scorers); ``None`` means
            unmeasured — never silently 0.
        label: Optional categorical verdict (``full_refusal``...).
        error: Why the value is missing, when it is.
        detail: Extra explanation kept in the per-case table.
    """

    value: float | None
    label: str | None = None
    error: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def measured(self) -> bool:
        return self.value is not None

    @classmethod
    def unmeasured(cls, error: str) -> Score:
        return cls(value=None, error=error)


@runtime_checkable
class Scorer(Protocol):
    """Scores outputs against cases. ``name`` becomes the metric name (``<suite>.<name>``)."""

    name: str

    def __call__(self, output: str, case: Case) -> Score: ...


def score_batch(scorer: Scorer, outputs: Sequence[str], cases: Sequence[Case]) -> list[Score]:
    """Score many outputs, using the scorer's own ``batch`` method when it has one.

    Any exception from the scorer becomes an unmeasured score carrying the error, per case.
    """
    batch = getattr(scorer, "batch", None)
    if batch is not None:
        try:
            return list(batch(outputs, cases))
        except Exception:  # fall back to per-case so one bad case cannot sink the rest
            pass
    scores = []
    for output, case in zip(outputs, cases, strict=True):
        try:
            scores.append(scorer(output, case))
        except Exception as exc:  # noqa: BLE001 - recorded, not swallowed
            scores.append(Score.unmeasured(f"{type(exc).__name__}: {exc}"))
    return scores
