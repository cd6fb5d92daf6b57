"""Bootstrap confidence intervals for a mean and for a paired mean difference, with cluster resampling.

Method, in order:

* All values equal: the interval collapses to the mean (``method="degenerate"``). The bootstrap
  cannot see variability that is not in the sample, so e.g. 3 correct answers out of 3 give
  ``[1, 1]``: gates should also require a minimum sample size.
* Fewer than two independent units (one cluster) with values that differ: no interval can be
  estimated; ``low`` and ``high`` are NaN (``method="undefined"``), which fails any comparison,
  so gates built on them fail closed.
* Independent values (no clusters, or every case its own cluster): BCa (bias-corrected and
  accelerated, jackknife acceleration), computed in numpy with exactly the algorithm of
  ``scipy.stats.bootstrap(method="BCa", vectorized=True)``: the same resample indices from the
  same generator (so the same replicates, bit for bit), the same bias correction,
  acceleration and percentile levels (bounds equal to scipy's within a few ulps). It skips
  scipy's O(n²) jackknife (the leave-one-out means of a mean are O(n)) and its per-call
  overhead: ~5 ms instead of ~12 ms per metric at n=1000. ``scipy.stats.bootstrap`` itself is
  used for samples of at most ``SCIPY_MAX_N`` values (0 by default: never; tests compare the
  two).
* Clusters (fewer distinct clusters than values): whole clusters are resampled with replacement
  and each resample's statistic is the mean of its pooled values (a ratio estimator, so large
  clusters weigh more, exactly as in the point estimate); BCa uses the leave-one-cluster-out
  jackknife for its acceleration.
* Whenever BCa is not defined (the bias correction or the acceleration is infinite or NaN, e.g.
  when every resample gives the same statistic), the percentile interval of the same resamples is
  returned instead (``method="percentile"``).

The resamples come from ``numpy.random.default_rng(seed)``, so a result is reproducible.

:func:`paired_bootstrap_distribution` and :func:`bootstrap_mean_distribution` return the same
interval together with the resampled statistics it was read from
(:class:`BootstrapDistribution`), whose ``p_value`` inverts that very interval: a one-sided
p-value that agrees with the interval by construction.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist

import numpy as np

from aliasgate.stats._checks import as_values, unit_codes

FEW_VALUES_MAX = 16
"""iid samples with at most this many distinct values (0/1 metrics, paired differences of 0/1
metrics, Likert scores...) are resampled through counts: a resample of ``n`` values drawn with
replacement from the sample is, value by value, ``Multinomial(n, shares of the distinct values)``,
so each replicate mean is ``counts @ values / n`` — the same bootstrap distribution as drawing
``n`` indices, at O(distinct values) instead of O(n) per resample (~10x cheaper at n = 1,000 for
a 0/1 metric). 0 turns it off: every iid sample then draws indices exactly as
``scipy.stats.bootstrap`` does (the tests use that to compare replicates one to one)."""

SCIPY_MAX_N = 0
"""Largest iid sample handed to ``scipy.stats.bootstrap`` instead of the numpy BCa (which is
scipy's algorithm without its O(n²) jackknife); 0 = never. Kept as the reference
implementation for tests."""

_CHUNK_ELEMENTS = 1 << 17  # resamples are drawn in blocks of at most this many cells (1 MB)
_NORMAL = NormalDist()
_EMPTY = np.empty(0)
_EMPTY.flags.writeable = False


@dataclass(frozen=True)
class BootstrapCI:
    """A bootstrap confidence interval and how it was obtained.

    Attributes:
        estimate: The point estimate (mean, or mean difference).
        low: Lower bound (NaN when ``method == "undefined"``).
        high: Upper bound (NaN when ``method == "undefined"``).
        confidence: Confidence level.
        method: ``"bca"``, ``"percentile"``, ``"degenerate"`` (all values equal) or
            ``"undefined"`` (one independent unit).
        n: Number of values.
        n_units: Number of independent units resampled (clusters, or ``n`` when iid).
        n_resamples: Bootstrap resamples drawn (0 when none were needed).
    """

    estimate: float
    low: float
    high: float
    confidence: float
    method: str
    n: int
    n_units: int
    n_resamples: int

    def as_tuple(self) -> tuple[float, float, float]:
        """``(estimate, low, high)``."""
        return self.estimate, self.low, self.high


@dataclass(frozen=True, eq=False)
class BootstrapDistribution:
    """A bootstrap interval with the resampled statistics (replicates) it was read from.

    Attributes:
        ci: The interval, exactly as :func:`bootstrap_mean` / :func:`paired_bootstrap` return it
            for the same arguments.
        replicates: The statistic of each resample, in drawing order (empty when
            ``ci.method`` is ``"degenerate"`` or ``"undefined"``: nothing was resampled).
        jackknife: Leave-one-unit-out statistics used for BCa's acceleration (empty likewise).
    """

    ci: BootstrapCI
    replicates: np.ndarray
    jackknife: np.ndarray

    def p_value(self, threshold: float) -> float:
        """One-sided p-value of H0 ``theta <= threshold`` against ``theta > threshold``.

        The interval is inverted: the p-value is the smallest ``alpha`` at which the one-sided
        ``1 - alpha`` lower bound, read from these replicates by the same method as ``ci``
        (BCa level correction, or plain percentile, with numpy's linear interpolation), lies
        above ``threshold``. Hence ``p < (1 - ci.confidence) / 2`` exactly when
        ``ci.low > threshold``. For the percentile method the p-value is the (interpolated)
        share of replicates at or below ``threshold``: the usual
        ``(1 + #{theta* <= threshold}) / (B + 1)`` within two resamples (``2 / (B - 1)``).
        BCa maps that share through the inverse of its level correction
        (``p = Phi(zeta / (1 + a zeta) - z0)`` with ``zeta = Phi^-1(share) - z0``).

        The result is floored at ``1 / (B + 1)``, the resolution of ``B`` resamples. Without
        resamples: ``"degenerate"`` gives 0.0 when the estimate exceeds ``threshold`` and 1.0
        otherwise; ``"undefined"`` gives 1.0 (fail closed).

        Args:
            threshold: The value under test (e.g. ``-margin`` for non-inferiority).

        Raises:
            ValueError: if ``threshold`` is NaN.
        """
        threshold = float(threshold)
        if math.isnan(threshold):
            raise ValueError("threshold must not be NaN")
        method = self.ci.method
        if method == "undefined":
            return 1.0
        if method == "degenerate" or self.replicates.size == 0:
            return 0.0 if self.ci.estimate > threshold else 1.0
        share = _level_at_or_below(np.sort(self.replicates), threshold)
        p = share
        if method == "bca":
            constants = _bca_constants(self.replicates, self.ci.estimate, self.jackknife)
            if constants is not None:
                p = _bca_inverse(share, *constants)
        return float(max(p, 1.0 / (self.replicates.size + 1)))


def bootstrap_mean(
    values: Sequence[float],
    *,
    clusters: Sequence[Hashable | None] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> BootstrapCI:
    """Mean of ``values`` with its bootstrap confidence interval and the method used.

    Args:
        values: Measured values (no None/NaN/inf: drop unmeasured cases before calling).
        clusters: Optional cluster id per value; values of one cluster are resampled together.
            ``None`` puts a value in a cluster of its own.
        confidence: Confidence level, strictly between 0 and 1.
        n_resamples: Bootstrap resamples.
        seed: RNG seed, so the interval is reproducible.

    Raises:
        ValueError: if ``values`` is empty, not one-dimensional, contains NaN or infinity, or if
            ``clusters`` has a different length, or if an option is out of range.
    """
    x = _as_values(values, "values")
    _check_options(confidence, n_resamples)
    codes = _cluster_codes(clusters, x.size)
    return _bootstrap(x, codes, confidence, n_resamples, seed)


def bootstrap_mean_distribution(
    values: Sequence[float],
    *,
    clusters: Sequence[Hashable | None] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> BootstrapDistribution:
    """:func:`bootstrap_mean` together with its replicates (same resamples, same interval).

    Args:
        values: Measured values (no None/NaN/inf).
        clusters: Optional cluster id per value (``None``: a cluster of its own).
        confidence: Confidence level, strictly between 0 and 1.
        n_resamples: Bootstrap resamples.
        seed: RNG seed.

    Raises:
        ValueError: as :func:`bootstrap_mean`.
    """
    x = _as_values(values, "values")
    _check_options(confidence, n_resamples)
    codes = _cluster_codes(clusters, x.size)
    return _distribution(x, codes, confidence, n_resamples, seed)


def mean_ci(
    values: Sequence[float],
    *,
    clusters: Sequence[Hashable | None] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> tuple[float, float, float]:
    """Mean of ``values`` and its bootstrap confidence interval (see :func:`bootstrap_mean`).

    Args:
        values: Measured values (no None/NaN: drop unmeasured cases before calling).
        clusters: Optional cluster id per value; cases of one cluster are resampled together.
        confidence: Confidence level.
        n_resamples: Bootstrap resamples.
        seed: RNG seed, so the interval is reproducible.

    Returns:
        ``(mean, ci_low, ci_high)``. One value, or all equal: the interval collapses to the mean.
        One cluster holding values that differ: the bounds are NaN.

    Raises:
        ValueError: if ``values`` is empty or holds NaN/inf, or ``clusters`` has another length.
    """
    return bootstrap_mean(
        values, clusters=clusters, confidence=confidence, n_resamples=n_resamples, seed=seed
    ).as_tuple()


def mean_cis(
    columns: Sequence[Sequence[float]],
    *,
    clusters: Sequence[Hashable | None] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> list[tuple[float, float, float]]:
    """:func:`mean_ci` of several metrics measured on the same cases, in one go.

    Every column must hold one value per case (same length, same ``clusters``). Each result is
    exactly ``mean_ci(column, clusters=clusters, ...)``: every column is resampled with the
    same indices as a fresh generator seeded with ``seed`` would draw, and those indices are
    drawn once for all columns.

    Args:
        columns: Per-case values of each metric (no None/NaN/inf).
        clusters: Optional cluster id per case, shared by every column.
        confidence: Confidence level.
        n_resamples: Bootstrap resamples.
        seed: RNG seed.

    Raises:
        ValueError: as :func:`mean_ci`, or if the columns differ in length.
    """
    xs = [_as_values(c, "values") for c in columns]
    if len({x.size for x in xs}) > 1:
        raise ValueError(f"columns differ in length: {sorted({x.size for x in xs})}")
    _check_options(confidence, n_resamples)
    if not xs:
        return []
    codes = _cluster_codes(clusters, xs[0].size)
    return [d.ci.as_tuple() for d in _distributions(xs, codes, confidence, n_resamples, seed)]


def paired_bootstrap(
    a: Sequence[float],
    b: Sequence[float],
    *,
    clusters: Sequence[Hashable | None] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> BootstrapCI:
    """Mean paired difference ``a - b`` (same cases, same order) with its bootstrap interval.

    Cases (or whole clusters) are resampled together with both of their values, so the case-level
    correlation between ``a`` and ``b`` narrows the interval as it should.

    Args:
        a: Per-case values of the first system (e.g. the candidate).
        b: Per-case values of the second system (e.g. the champion), aligned with ``a``.
        clusters: Optional cluster id per case.
        confidence: Confidence level.
        n_resamples: Bootstrap resamples.
        seed: RNG seed.

    Raises:
        ValueError: if ``a`` and ``b`` differ in length, are empty or hold NaN/inf, or if
            ``clusters`` has another length.
    """
    diffs, codes = _paired_input(a, b, clusters, confidence, n_resamples)
    return _bootstrap(diffs, codes, confidence, n_resamples, seed)


def paired_bootstrap_distribution(
    a: Sequence[float],
    b: Sequence[float],
    *,
    clusters: Sequence[Hashable | None] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> BootstrapDistribution:
    """:func:`paired_bootstrap` together with its replicates (same resamples, same interval).

    Use ``.p_value(threshold)`` for a one-sided test that agrees with ``.ci`` by construction.

    Args:
        a: Per-case values of the first system (e.g. the candidate).
        b: Per-case values of the second system, aligned with ``a``.
        clusters: Optional cluster id per case.
        confidence: Confidence level.
        n_resamples: Bootstrap resamples.
        seed: RNG seed.

    Raises:
        ValueError: as :func:`paired_bootstrap`.
    """
    diffs, codes = _paired_input(a, b, clusters, confidence, n_resamples)
    return _distribution(diffs, codes, confidence, n_resamples, seed)


def paired_bootstrap_diff(
    a: Sequence[float],
    b: Sequence[float],
    *,
    clusters: Sequence[Hashable | None] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int | None = 0,
) -> tuple[float, float, float]:
    """Mean paired difference ``a - b`` and its bootstrap interval (see :func:`paired_bootstrap`).

    Args:
        a: Per-case values of the first system.
        b: Per-case values of the second system, aligned with ``a``.
        clusters: Optional cluster id per case.
        confidence: Confidence level.
        n_resamples: Bootstrap resamples.
        seed: RNG seed.

    Returns:
        ``(delta, ci_low, ci_high)`` with ``delta = mean(a) - mean(b)``.
    """
    return paired_bootstrap(
        a, b, clusters=clusters, confidence=confidence, n_resamples=n_resamples, seed=seed
    ).as_tuple()


# -- validation ---------------------------------------------------------------------------------


def _paired_input(
    a: Sequence[float],
    b: Sequence[float],
    clusters: Sequence[Hashable | None] | None,
    confidence: float,
    n_resamples: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Validated per-case differences ``a - b`` and cluster codes."""
    xa, xb = _as_values(a, "a"), _as_values(b, "b")
    if xa.size != xb.size:
        raise ValueError(f"paired values differ in length: {xa.size} vs {xb.size}")
    _check_options(confidence, n_resamples)
    return xa - xb, _cluster_codes(clusters, xa.size)


def _as_values(values: Sequence[float], what: str) -> np.ndarray:
    return as_values(values, what)


def _check_options(confidence: float, n_resamples: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be strictly between 0 and 1, got {confidence!r}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")


def _cluster_codes(clusters: Sequence[Hashable | None] | None, n: int) -> np.ndarray | None:
    """Integer cluster index per value (``None`` labels are singletons); None when iid."""
    if clusters is None:
        return None
    codes, n_units = unit_codes(clusters, n)
    return None if n_units == n else codes  # every value its own cluster: plain iid bootstrap


# -- the bootstrap -----------------------------------------------------------------------------


def _bootstrap(
    x: np.ndarray, codes: np.ndarray | None, confidence: float, n_resamples: int, seed: int | None
) -> BootstrapCI:
    return _distribution(x, codes, confidence, n_resamples, seed).ci


@dataclass
class _Plan:
    """One statistic's bootstrap: its resampling units, then (``done``) its result."""

    x: np.ndarray
    estimate: float
    n_units: int
    sums: np.ndarray = field(default_factory=lambda: _EMPTY)
    counts: np.ndarray | None = None  # None: iid, one value per unit
    theta: float = math.nan
    jack: np.ndarray = field(default_factory=lambda: _EMPTY)
    done: BootstrapDistribution | None = None  # no resampling needed (or scipy did it)


def _plan(
    x: np.ndarray, codes: np.ndarray | None, confidence: float, n_resamples: int,
    seed: int | None,
) -> _Plan:
    n = int(x.size)
    estimate = float(x.mean())
    n_units = n if codes is None else int(codes.max()) + 1
    plan = _Plan(x, estimate, n_units)
    if np.ptp(x) == 0:
        plan.done = _result(plan, confidence, estimate, estimate, "degenerate")
    elif n_units < 2:
        plan.done = _result(plan, confidence, math.nan, math.nan, "undefined")
    elif codes is None and n <= SCIPY_MAX_N:
        low, high, method, boot = _scipy_iid(x, confidence, n_resamples,
                                             np.random.default_rng(seed))
        plan.jack = (x.sum() - x) / (n - 1)
        plan.done = _result(plan, confidence, low, high, method, boot)
    elif codes is None:
        plan.sums = x  # iid: every resample holds n values
        plan.theta = float(x.sum() / n)
        plan.jack = (x.sum() - x) / (n - 1)  # leave one out
    else:
        plan.sums = np.bincount(codes, weights=x, minlength=n_units)
        plan.counts = np.bincount(codes, minlength=n_units).astype(float)
        plan.theta = float(plan.sums.sum() / plan.counts.sum())
        plan.jack = (plan.sums.sum() - plan.sums) / (plan.counts.sum() - plan.counts)
    return plan


def _result(
    plan: _Plan, confidence: float, low: float, high: float, method: str,
    boot: np.ndarray = _EMPTY,
) -> BootstrapDistribution:
    jack = plan.jack if boot.size else _EMPTY
    ci = BootstrapCI(plan.estimate, low, high, confidence, method, int(plan.x.size),
                     plan.n_units, int(boot.size))
    boot.flags.writeable = jack.flags.writeable = False  # frozen, like the interval
    return BootstrapDistribution(ci, boot, jack)


def _finish(plan: _Plan, boot: np.ndarray, confidence: float) -> BootstrapDistribution:
    low, high, method = _interval(boot, plan.theta, plan.jack, confidence)
    return _result(plan, confidence, low, high, method, boot)


def _distributions(
    xs: Sequence[np.ndarray], codes: np.ndarray | None, confidence: float, n_resamples: int,
    seed: int | None,
) -> list[BootstrapDistribution]:
    """The bootstrap of each of several statistics over the same units, from one index draw.

    Each result is what :func:`_distribution` gives for that statistic alone: a fresh
    ``default_rng(seed)`` draws the same indices for every statistic, so they are drawn once
    and applied to all.
    """
    plans = [_plan(x, codes, confidence, n_resamples, seed) for x in xs]
    if codes is None and FEW_VALUES_MAX > 0:
        for plan in plans:
            if plan.done is None:
                values, freq = np.unique(plan.x, return_counts=True)
                if values.size <= FEW_VALUES_MAX:
                    counts = np.random.default_rng(seed).multinomial(
                        plan.x.size, freq / plan.x.size, size=n_resamples)
                    plan.done = _finish(plan, counts @ values / plan.x.size, confidence)
    todo = [p for p in plans if p.done is None]
    if todo:
        boots = _resample_many([(p.sums, p.counts) for p in todo], n_resamples,
                               np.random.default_rng(seed))
        for plan, boot in zip(todo, boots, strict=True):
            plan.done = _finish(plan, boot, confidence)
    return [p.done for p in plans if p.done is not None]


def _distribution(
    x: np.ndarray, codes: np.ndarray | None, confidence: float, n_resamples: int, seed: int | None
) -> BootstrapDistribution:
    return _distributions([x], codes, confidence, n_resamples, seed)[0]


def _scipy_iid(
    x: np.ndarray, confidence: float, n_resamples: int, rng: np.random.Generator
) -> tuple[float, float, str, np.ndarray]:
    from scipy import stats  # deferred: scipy.stats costs ~0.3 s to import

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DegenerateDataWarning: handled by the fallback below
        res = stats.bootstrap(
            (x,), np.mean, n_resamples=n_resamples, batch=max(1, _CHUNK_ELEMENTS // x.size),
            vectorized=True, confidence_level=confidence, method="BCa", rng=rng,
        )
    boot = np.asarray(res.bootstrap_distribution, dtype=float).ravel()
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    if math.isfinite(low) and math.isfinite(high):
        return low, high, "bca", boot
    low, high = _percentile(boot, confidence)
    return low, high, "percentile", boot


def _resample_ratio_means(
    sums: np.ndarray, counts: np.ndarray | None, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Pooled mean of each resample of the units (drawn with replacement), in bounded memory.

    ``counts`` None: one value per unit (iid), each resample's mean is its sum over ``k``.
    Indices are drawn as ``scipy.stats.bootstrap`` draws them (``rng.integers(0, k, (B, k))``;
    drawing them in blocks of rows gives the same indices), so iid replicates equal scipy's.
    """
    return _resample_many([(sums, counts)], n_resamples, rng)[0]


def _resample_many(
    units: Sequence[tuple[np.ndarray, np.ndarray | None]], n_resamples: int,
    rng: np.random.Generator,
) -> list[np.ndarray]:
    """:func:`_resample_ratio_means` of several statistics over the same ``k`` units, all with
    the same indices (drawn once, a block of rows at a time).

    Blocks of at most ``_CHUNK_ELEMENTS`` cells go through two preallocated buffers (about a
    megabyte each): no ``B x k`` matrix is ever allocated, which at n=1000 took longer (fresh
    pages from the OS) than the arithmetic.
    """
    k = units[0][0].size
    outs = [np.empty(n_resamples) for _ in units]
    step = max(1, _CHUNK_ELEMENTS // k)
    rows = min(step, n_resamples)
    values = np.empty((rows, k))
    sizes = np.empty((rows, k)) if any(c is not None for _, c in units) else None
    for start in range(0, n_resamples, step):
        stop = min(start + step, n_resamples)
        m = stop - start
        idx = rng.integers(0, k, size=(m, k))
        for (sums, counts), out in zip(units, outs, strict=True):
            # mode='clip': indices are in range; 'raise' would copy through a temporary
            total = np.take(sums, idx, out=values[:m], mode="clip").sum(axis=1)
            if counts is None or sizes is None:
                out[start:stop] = total / k  # what np.mean(sums[idx], axis=1) computes
            else:
                sizes_m = np.take(counts, idx, out=sizes[:m], mode="clip")
                out[start:stop] = total / sizes_m.sum(axis=1)
    return outs


def _interval(
    boot: np.ndarray, theta: float, jack: np.ndarray, confidence: float
) -> tuple[float, float, str]:
    """BCa interval from resampled statistics and jackknife values; percentile if BCa is undefined.

    Same formulas as ``scipy.stats.bootstrap(method="BCa")``.
    """
    levels = _bca_levels(boot, theta, jack, confidence)
    if levels is None:
        low, high = _percentile(boot, confidence)
        return low, high, "percentile"
    low, high = np.percentile(boot, [100 * levels[0], 100 * levels[1]])
    return float(low), float(high), "bca"


def _bca_constants(boot: np.ndarray, theta: float, jack: np.ndarray) -> tuple[float, float] | None:
    """BCa's bias correction ``z0`` and acceleration ``a``; None when either is undefined."""
    share_below = ((boot < theta).sum() + (boot <= theta).sum()) / (2 * boot.size)
    if not 0.0 < share_below < 1.0:
        return None
    z0 = _NORMAL.inv_cdf(float(share_below))
    u = (jack.size - 1) * (jack.mean() - jack)
    peak = float(np.abs(u).max()) if u.size else 0.0
    if peak == 0.0 or not math.isfinite(peak):
        return None
    try:
        with np.errstate(over="ignore", under="ignore", invalid="ignore"):
            numerator, scale = float((u**3).sum()), 6.0 * float((u**2).sum()) ** 1.5
    except OverflowError:
        numerator, scale = math.nan, math.nan
    if not (math.isfinite(numerator) and math.isfinite(scale) and scale > 0.0):
        # values so small (or large) that the powers under- or overflow: the ratio does not
        # depend on the scale of u, so compute it on u / max|u|
        v = u / peak
        numerator, scale = float((v**3).sum()), 6.0 * float((v**2).sum()) ** 1.5
    return z0, numerator / scale


def _bca_levels(
    boot: np.ndarray, theta: float, jack: np.ndarray, confidence: float
) -> tuple[float, float] | None:
    constants = _bca_constants(boot, theta, jack)
    if constants is None:
        return None
    z0, accel = constants
    z = _NORMAL.inv_cdf((1.0 - confidence) / 2.0)
    levels = []
    for zq in (z, -z):
        shifted = z0 + zq
        scale = 1.0 - accel * shifted
        if scale <= 0.0:
            return None
        levels.append(_NORMAL.cdf(z0 + shifted / scale))
    if not all(math.isfinite(v) for v in levels):
        return None
    return levels[0], levels[1]


def _bca_inverse(level: float, z0: float, accel: float) -> float:
    """The ``alpha`` whose BCa-corrected lower level is ``level`` (inverse of the level map).

    BCa reads the ``1 - alpha`` lower bound at level ``Phi(z0 + w / (1 - a w))``,
    ``w = z0 + z_alpha``; solving for ``alpha`` gives ``Phi(zeta / (1 + a zeta) - z0)`` with
    ``zeta = Phi^-1(level) - z0``. Where no ``alpha`` reaches ``level`` (``1 + a zeta <= 0``)
    the bound is above (``zeta < 0``: 0.0) or below (1.0) the threshold at every ``alpha``.
    """
    if level <= 0.0:
        return 0.0
    if level >= 1.0:
        return 1.0
    zeta = _NORMAL.inv_cdf(level) - z0
    scale = 1.0 + accel * zeta
    if scale <= 0.0:
        return 0.0 if zeta < 0.0 else 1.0
    return _NORMAL.cdf(zeta / scale - z0)


def _level_at_or_below(sorted_boot: np.ndarray, threshold: float) -> float:
    """Largest level ``u`` in [0, 1] whose linear-interpolated quantile is <= ``threshold``.

    The inverse of ``np.percentile(boot, 100 * u)`` (numpy's default linear interpolation), so
    ``np.percentile(boot, 100 * u) > threshold`` exactly when ``u`` exceeds the returned level.
    """
    size = sorted_boot.size
    k = int(np.searchsorted(sorted_boot, threshold, side="right"))  # replicates <= threshold
    if k == 0:
        return 0.0
    if k == size:
        return 1.0
    below, above = float(sorted_boot[k - 1]), float(sorted_boot[k])
    return ((k - 1) + (threshold - below) / (above - below)) / (size - 1)


def _percentile(boot: np.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    low, high = np.percentile(np.asarray(boot).ravel(), [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)
