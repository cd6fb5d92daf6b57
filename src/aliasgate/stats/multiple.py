"""Multiple-testing correction for a family of gate decisions."""

from __future__ import annotations

import math
from collections.abc import Sequence


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm–Bonferroni adjusted p-values, in the input order.

    Sort the ``m`` p-values ascending; the i-th smallest (i = 1..m) is multiplied by
    ``m - i + 1``, a running maximum makes the sequence monotone (step-down), and the result is
    capped at 1. Rejecting every hypothesis whose adjusted p is below ``alpha`` controls the
    family-wise error rate at ``alpha`` under any dependence. Equal raw p-values get equal
    adjusted p-values, and a smaller raw p never gets a larger adjusted p.

    Args:
        p_values: Raw p-values, each in ``[0, 1]``.

    Returns:
        Adjusted p-values (``[]`` for no input).

    Raises:
        ValueError: if a p-value is NaN, not a number, or outside ``[0, 1]``.
    """
    raw: list[float] = []
    for i, p in enumerate(p_values):
        try:
            value = float(p)
        except (TypeError, ValueError):
            raise ValueError(f"p_values[{i}] is not a number: {p!r}") from None
        if math.isnan(value) or not 0.0 <= value <= 1.0:
            raise ValueError(f"p_values[{i}] must be in [0, 1], got {p!r}")
        raw.append(value)
    m = len(raw)
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=raw.__getitem__)):
        running = max(running, min(1.0, (m - rank) * raw[i]))
        adjusted[i] = running
    return adjusted
