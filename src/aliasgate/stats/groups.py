"""The gap between the best and the worst group (bias slices), with a stratified bootstrap CI."""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aliasgate.stats._checks import (
    as_values,
    check_open_unit,
    check_resampling,
    json_safe,
    unit_codes,
)
from aliasgate.stats.bootstrap import _resample_ratio_means


@dataclass(frozen=True)
class GroupStat:
    """One group's mean and its percentile interval from the stratified resamples.

    Attributes:
        mean: Mean of the group's values.
        n: Number of values in the group.
        ci_low: Lower bound (equal to ``mean`` when the group has a single unit).
        ci_high: Upper bound.
    """

    mean: float
    n: int
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class GroupGap:
    """Largest difference between group means, with its bootstrap interval.

    Attributes:
        gap: Highest group mean minus lowest group mean.
        ci_low: Lower bound of the gap's interval (:func:`max_gap_interval`).
        ci_high: Upper bound.
        confidence: Two-sided confidence level.
        groups: Per-group statistics, keyed by group label (sorted).
        worst: ``(highest-mean group, lowest-mean group)``.
        method: ``"simultaneous"``, or ``"degenerate"`` when every resample gives the same gap
            (e.g. each group holds a single unit, or all values are equal).
        seed: RNG seed of the resamples.
        n_resamples: Bootstrap resamples drawn.
    """

    gap: float
    ci_low: float
    ci_high: float
    confidence: float
    groups: dict[str, GroupStat]
    worst: tuple[str, str]
    method: str
    seed: int
    n_resamples: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict (non-finite floats become ``None``, tuples become lists)."""
        return json_safe(dataclasses.asdict(self))


def strata_gap(means: np.ndarray, strata: Sequence[Sequence[int]]) -> np.ndarray:
    """Per row of ``means``: the largest max-minus-min gap within any one stratum.

    Args:
        means: Group means, one row per (re)sample, one column per (stratum, group) cell; NaN
            marks a group absent from that row.
        strata: For each stratum, the columns of its groups (a stratum with fewer than two
            columns is ignored).

    Returns:
        One gap per row; NaN where no stratum has two groups present.
    """
    out = np.full(means.shape[0], np.nan)
    for cols in strata:
        if len(cols) < 2:
            continue
        sub = means[:, list(cols)]
        present = np.isfinite(sub)
        enough = present.sum(axis=1) >= 2
        high = np.where(present, sub, -np.inf).max(axis=1)
        low = np.where(present, sub, np.inf).min(axis=1)
        out = np.fmax(out, np.where(enough, high - low, np.nan))
    return out


def max_gap_interval(
    boot: np.ndarray, means: np.ndarray, confidence: float, limit: float = math.inf
) -> tuple[float, float, float]:
    """Interval of a max-minus-min gap from simultaneous bounds on all pairwise differences.

    The percentile interval of resampled max-minus-min gaps is biased upwards (noise alone makes
    a resample's extreme groups farther apart), so the estimate can fall below it. Instead: with
    ``d_g = boot_g - mean_g`` the resampled deviation of each group, ``c`` is the
    ``confidence``-quantile of ``max_g d_g - min_g d_g`` = the largest deviation of any pairwise
    difference. Every pairwise difference is then within ``c`` of its estimate simultaneously, so
    the true gap (the largest true pairwise difference) lies in ``[gap - c, gap + c]`` (clipped
    at 0): the interval always contains the estimate and covers at least ``confidence``
    (conservatively for one gap).

    Args:
        boot: Resampled group means, one row per resample (NaN: group absent in a resample).
        means: The groups' estimated means (columns of ``boot``).
        confidence: Confidence level.
        limit: The largest gap possible (the values' range: 1 for 0/1 values); the upper bound
            is clipped to it.

    Returns:
        ``(low, high, c)``; NaN bounds when no resample has two groups.
    """
    dev = boot - means[None, :]
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows
        spread = np.nanmax(dev, axis=1) - np.nanmin(dev, axis=1)
    spread = spread[np.isfinite(spread)]
    gap = float(np.nanmax(means) - np.nanmin(means))
    if spread.size == 0:
        return math.nan, math.nan, math.nan
    c = float(np.quantile(spread, confidence))
    return max(0.0, gap - c), min(limit, gap + c), c


def group_gap(
    values: Sequence[float],
    groups: Sequence[str],
    *,
    clusters: Sequence[Hashable | None] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> GroupGap:
    """Max-minus-min gap between group means with a stratified bootstrap interval.

    Each resample draws, independently within every group, that group's units with replacement
    (its clusters when ``clusters`` is given — a cluster's cases inside one group move together —
    else its cases), computes each group's pooled mean and then the gap. Group sizes are thus
    fixed, as in the design. The gap's interval bounds every pairwise difference at once
    (:func:`max_gap_interval`); each group's interval is the percentile interval of its
    resampled means.

    Caveats, documented rather than hidden:
        * The gap is a max-minus-min, so the estimate is biased upwards by noise (with equal true
          means it sits above 0). The interval is :func:`max_gap_interval`'s simultaneous one,
          which contains the estimate and covers the true gap conservatively.
        * Groups are resampled independently. When one template (cluster) appears in several
          groups (e.g. the same sentence with different demographic terms), that cross-group
          pairing is ignored, which widens the interval when the groups move together.
        * A group with a single value or a single cluster is allowed, but contributes no
          variability: its interval is degenerate (``ci_low == ci_high == mean``). Gates should
          require a minimum number of cases (and clusters) per group.

    Args:
        values: Per-case scores (no NaN/inf: drop unmeasured cases first).
        groups: Group label (a string) per case.
        clusters: Optional cluster id per case (``None``: a cluster of its own).
        confidence: Two-sided confidence level, strictly between 0 and 1.
        n_resamples: Bootstrap resamples.
        seed: RNG seed (``numpy.random.default_rng``), so the result is reproducible.

    Raises:
        ValueError: fewer than two groups, lengths differ, a label is not a string, values hold
            NaN/inf, or an option is out of range.
    """
    x = as_values(values, "values")
    labels = list(groups)
    if len(labels) != x.size:
        raise ValueError(f"groups has {len(labels)} labels for {x.size} values")
    for i, label in enumerate(labels):
        if not isinstance(label, str):
            raise ValueError(f"groups[{i}] must be a string label, got {label!r}")
    names = sorted(set(labels))
    if len(names) < 2:
        raise ValueError(f"group_gap needs at least two groups, got {names}")
    level = check_open_unit(confidence, "confidence")
    resamples, seed = check_resampling(n_resamples, seed)
    codes, _ = unit_codes(clusters, x.size)
    label_array = np.asarray(labels, dtype=object)

    rng = np.random.default_rng(seed)
    means = np.empty(len(names))
    sizes = np.empty(len(names), dtype=int)
    boot = np.empty((resamples, len(names)))
    for g, name in enumerate(names):
        member = label_array == name
        _, units = np.unique(codes[member], return_inverse=True)
        unit_sums = np.bincount(units, weights=x[member])
        unit_sizes = np.bincount(units).astype(float)
        means[g] = unit_sums.sum() / unit_sizes.sum()
        sizes[g] = int(member.sum())
        boot[:, g] = _resample_ratio_means(unit_sums, unit_sizes, resamples, rng)

    gap = float(means.max() - means.min())
    low, high, spread = max_gap_interval(boot, means, level, limit=float(np.ptp(x)))
    tail = 100 * (1.0 - level) / 2.0
    group_low, group_high = np.percentile(boot, [tail, 100 - tail], axis=0)
    stats = {
        name: GroupStat(float(means[g]), int(sizes[g]), float(group_low[g]), float(group_high[g]))
        for g, name in enumerate(names)
    }
    highest = int(np.argmax(means))  # first of the highest
    lowest = len(names) - 1 - int(np.argmin(means[::-1]))  # last of the lowest: distinct on ties
    return GroupGap(
        gap=gap,
        ci_low=float(low),
        ci_high=float(high),
        confidence=level,
        groups=stats,
        worst=(names[highest], names[lowest]),
        method="degenerate" if spread == 0 else "simultaneous",
        seed=int(seed),
        n_resamples=resamples,
    )
