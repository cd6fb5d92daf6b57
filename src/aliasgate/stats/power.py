"""Minimum detectable effects (MDE) for one-sided tests at a given sample size.

The MDE is the true effect a one-sided level-``alpha`` test detects with probability ``power``:
``(z_{1-alpha} + z_{power}) · SE`` under the normal approximation. A gate can record it next to its
margin: when the MDE exceeds the margin, "not shown" says little about the candidate.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from statistics import NormalDist

import numpy as np

from aliasgate.stats._checks import as_count, as_values, check_open_unit, unit_codes


def _z_sum(alpha: float, power: float) -> float:
    a = check_open_unit(alpha, "alpha", high=0.5)
    b = check_open_unit(power, "power")
    if b < 0.5:
        raise ValueError(f"power must be in [0.5, 1), got {power!r}")
    normal = NormalDist()
    return normal.inv_cdf(1.0 - a) + normal.inv_cdf(b)


def paired_mde(
    diffs: Sequence[float],
    *,
    clusters: Sequence[Hashable | None] | None = None,
    alpha: float = 0.025,
    power: float = 0.8,
) -> float:
    """Minimum detectable mean paired difference for a one-sided test at this sample size.

    ``MDE = (z_{1-alpha} + z_{power}) · SE``. Without clusters ``SE = sd(diffs, ddof=1) / sqrt(n)``.
    With clusters ``SE`` is the cluster-robust (linearisation) standard error of the pooled
    ("ratio") mean that the cluster bootstrap also uses: with cluster sums ``s_j``, sizes ``m_j``,
    ``k`` clusters and ``r = Σ s_j / Σ m_j``,
    ``SE² = k / (k - 1) · Σ (s_j - r m_j)² / (Σ m_j)²``. This carries the design effect (it is
    ``≈ 1 + (m - 1)·ICC`` times the iid variance), and reduces exactly to ``sd / sqrt(n)`` when
    every case is its own cluster.

    Edge cases:
        * Fewer than two independent units (one case, or one cluster): no variance can be
          estimated and the MDE is ``inf`` — nothing is shown to be detectable (fails closed).
        * All differences equal (``sd == 0``) with at least two units: ``0.0``, mirroring the
          degenerate bootstrap interval. The sample shows no variability, which small samples
          often do by chance (e.g. 3 of 3 cases unchanged): gates should also require a minimum
          ``n``.

    Args:
        diffs: Per-case paired differences (candidate - baseline); no NaN/inf.
        clusters: Optional cluster id per case (``None``: a cluster of its own).
        alpha: One-sided significance level, in ``(0, 0.5)``.
        power: Desired power, in ``[0.5, 1)``.

    Returns:
        The MDE, in the units of ``diffs`` (``>= 0``).

    Raises:
        ValueError: if ``diffs`` is empty or holds NaN/inf, ``clusters`` has another length, or
            ``alpha``/``power`` is out of range.
    """
    x = as_values(diffs, "diffs")
    factor = _z_sum(alpha, power)
    codes, n_units = unit_codes(clusters, x.size)
    if n_units < 2:
        return math.inf
    if np.ptp(x) == 0:
        return 0.0
    return factor * _ratio_mean_se(x, codes, n_units)


def _ratio_mean_se(x: np.ndarray, codes: np.ndarray, n_units: int) -> float:
    sums = np.bincount(codes, weights=x, minlength=n_units)
    sizes = np.bincount(codes, minlength=n_units).astype(float)
    total = float(sizes.sum())
    ratio = float(sums.sum()) / total
    residuals = sums - ratio * sizes
    variance = n_units / (n_units - 1) * float(residuals @ residuals) / total**2
    return math.sqrt(variance)


def proportion_mde(p: float, n: int, *, alpha: float = 0.025, power: float = 0.8) -> float:
    """Minimum detectable change of a proportion near ``p`` measured on ``n`` independent cases.

    ``MDE = (z_{1-alpha} + z_{power}) · sqrt(p (1 - p) / n)`` (normal approximation with the
    variance at ``p``; one-sided). It is 0 at ``p`` of 0 or 1, where the approximation says
    nothing: use a planning value away from the extremes.

    Args:
        p: The (expected) proportion, in ``[0, 1]``.
        n: Number of independent cases (> 0).
        alpha: One-sided significance level, in ``(0, 0.5)``.
        power: Desired power, in ``[0.5, 1)``.

    Raises:
        ValueError: if ``p`` is outside ``[0, 1]``, ``n`` is not a positive whole number, or
            ``alpha``/``power`` is out of range.
    """
    try:
        proportion = float(p)
    except (TypeError, ValueError):
        raise ValueError(f"p must be a number, got {p!r}") from None
    if not 0.0 <= proportion <= 1.0:  # also rejects NaN
        raise ValueError(f"p must be in [0, 1], got {p!r}")
    trials = as_count(n, "n")
    if trials == 0:
        raise ValueError("proportion_mde needs n > 0")
    return _z_sum(alpha, power) * math.sqrt(proportion * (1.0 - proportion) / trials)
