"""Bootstrap confidence intervals for a mean and for a paired mean difference, with cluster resampling.

Method, in order:

* All values equal: the interval collapses to the mean (``method="degenerate"``). The bootstrap
  cannot see variability that is not in the sample, so e.g. 3 correct answers out of 3 give
  ``[1, 1]``: gates should also require a minimum sample size.
* Fewer than two independent units (one cluster) with values that differ: no interval can be
  estimated; ``low`` and ``high`` are NaN (``method="undefined"``), which fails any comparison,
  so gates built on them fail closed.
* Independent values (no clusters, or every case its own cluster): ``scipy.stats.bootstrap`` with
  the BCa method (bias-corrected and accelerated, jackknife acceleration); above
  ``SCIPY_MAX_N`` values the same BCa algorithm runs in numpy, because scipy's jackknife costs
  O(n²).
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
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from aliasgate.stats._checks import as_values, unit_codes

SCIPY_MAX_N = 20_000
"""Largest sample handed to ``scipy.stats.bootstrap`` (its BCa jackknife is O(n²))."""

_CHUNK_ELEMENTS = 1 << 21  # resample matrices are built in chunks of at most this many cells
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


def _distribution(
    x: np.ndarray, codes: np.ndarray | None, confidence: float, n_resamples: int, seed: int | None
) -> BootstrapDistribution:
    n = int(x.size)
    estimate = float(x.mean())
    n_units = n if codes is None else int(codes.max()) + 1

    def result(
        low: float, high: float, method: str, boot: np.ndarray = _EMPTY, jack: np.ndarray = _EMPTY
    ) -> BootstrapDistribution:
        ci = BootstrapCI(estimate, low, high, confidence, method, n, n_units, int(boot.size))
        boot.flags.writeable = jack.flags.writeable = False  # frozen, like the interval
        return BootstrapDistribution(ci, boot, jack)

    if np.ptp(x) == 0:
        return result(estimate, estimate, "degenerate")
    if n_units < 2:
        return result(math.nan, math.nan, "undefined")
    rng = np.random.default_rng(seed)
    if codes is None and n <= SCIPY_MAX_N:
        low, high, method, boot = _scipy_iid(x, confidence, n_resamples, rng)
        return result(low, high, method, boot, (x.sum() - x) / (n - 1))
    if codes is None:
        sums, counts = x, np.ones(n)
    else:
        sums = np.bincount(codes, weights=x, minlength=n_units)
        counts = np.bincount(codes, minlength=n_units).astype(float)
    theta = float(sums.sum() / counts.sum())
    boot = _resample_ratio_means(sums, counts, n_resamples, rng)
    jack = (sums.sum() - sums) / (counts.sum() - counts)  # leave one unit out
    low, high, method = _interval(boot, theta, jack, confidence)
    return result(low, high, method, boot, jack)


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
    sums: np.ndarray, counts: np.ndarray, n_resamples: int, rng: np.random.Generator
) -> np.ndarray:
    """Pooled mean of each resample of the units (drawn with replacement), in bounded memory."""
    k = sums.size
    out = np.empty(n_resamples)
    step = max(1, _CHUNK_ELEMENTS // k)
    for start in range(0, n_resamples, step):
        stop = min(start + step, n_resamples)
        idx = rng.integers(0, k, size=(stop - start, k))
        out[start:stop] = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    return out


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
    denominator = float((u**2).sum())
    if denominator == 0.0:
        return None
    accel = float((u**3).sum()) / (6.0 * denominator**1.5)
    return z0, accel


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
