"""Statistics of 0/1 outcomes: the Wilson score interval and the exact McNemar test.

Both are closed-form (no resampling): Wilson gives a proportion's interval that stays inside
``[0, 1]`` and behaves at 0 and ``n`` successes; McNemar compares two systems scored on the same
cases using only the discordant pairs.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Literal

from aliasgate.stats._checks import as_count, check_open_unit

Alternative = Literal["two-sided", "greater", "less"]
_ALTERNATIVES = ("two-sided", "greater", "less")


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a binomial proportion ``successes / n``.

    ``centre ± half`` with ``centre = (k + z²/2) / (n + z²)`` and
    ``half = z / (n + z²) · sqrt(k (n - k) / n + z² / 4)``, ``z`` the two-sided normal quantile.
    The bounds are clipped to ``[0, 1]``; the lower bound is exactly 0 at ``k = 0`` and the upper
    bound exactly 1 at ``k = n``.

    Args:
        successes: Number of successes ``k`` (0 <= k <= n).
        n: Number of trials (> 0).
        confidence: Two-sided confidence level, strictly between 0 and 1.

    Returns:
        ``(low, high)``.

    Raises:
        ValueError: if ``n == 0``, ``successes`` is outside ``[0, n]``, a count is not a whole
            number, or ``confidence`` is out of range.
    """
    k, trials = as_count(successes, "successes"), as_count(n, "n")
    if trials == 0:
        raise ValueError("wilson_interval needs n > 0")
    if k > trials:
        raise ValueError(f"successes ({k}) must be between 0 and n ({trials})")
    level = check_open_unit(confidence, "confidence")
    z = NormalDist().inv_cdf((1.0 + level) / 2.0)
    z2 = z * z
    centre = (k + z2 / 2.0) / (trials + z2)
    half = z / (trials + z2) * math.sqrt(k * (trials - k) / trials + z2 / 4.0)
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == trials else min(1.0, centre + half)
    return low, high


def mcnemar_exact(b: int, c: int, *, alternative: Alternative = "two-sided") -> float:
    """Exact McNemar test: a binomial test of ``b`` successes in ``b + c`` trials at ``p = 0.5``.

    Under H0 (both systems equally good) a discordant pair is equally likely to go either way.

    Args:
        b: Pairs where the candidate succeeded and the baseline failed.
        c: Pairs where the baseline succeeded and the candidate failed.
        alternative: ``"greater"`` tests "candidate better" (``b`` large), ``"less"`` tests
            "candidate worse", ``"two-sided"`` either.

    Returns:
        The p-value (``scipy.stats.binomtest``); 1.0 when there is no discordant pair.

    Raises:
        ValueError: if a count is negative or not whole, or ``alternative`` is unknown.
    """
    wins, losses = as_count(b, "b"), as_count(c, "c")
    if alternative not in _ALTERNATIVES:
        raise ValueError(f"alternative must be one of {_ALTERNATIVES}, got {alternative!r}")
    if wins + losses == 0:
        return 1.0
    from scipy.stats import binomtest  # deferred: scipy.stats is slow to import

    return float(binomtest(wins, wins + losses, 0.5, alternative=alternative).pvalue)
