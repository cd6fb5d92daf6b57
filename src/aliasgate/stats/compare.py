"""Paired comparison of a candidate against the champion: the numbers a gate decision records.

Both systems are scored on the same cases, so the per-case differences carry the comparison.
One cluster-aware paired bootstrap (:func:`aliasgate.stats.bootstrap.paired_bootstrap_distribution`)
gives both the confidence interval and the p-value, so the two always tell the same story.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aliasgate.stats._checks import as_values, check_margin, check_open_unit, json_safe
from aliasgate.stats.binary import mcnemar_exact
from aliasgate.stats.bootstrap import paired_bootstrap_distribution
from aliasgate.stats.power import paired_mde

TESTS = ("non_inferiority", "superiority")


@dataclass(frozen=True)
class PairedComparison:
    """Result of :func:`compare_paired`: everything a gate decision must record.

    Attributes:
        test: ``"non_inferiority"`` or ``"superiority"``.
        n: Paired cases used.
        n_units: Independent units resampled (clusters, or ``n``).
        candidate_mean: Mean candidate score.
        baseline_mean: Mean baseline (champion) score.
        delta: Mean paired difference ``candidate - baseline`` (equal to
            ``candidate_mean - baseline_mean`` up to rounding).
        ci_low: Lower bound of the two-sided interval at ``confidence`` (also the one-sided
            ``(1 + confidence) / 2`` lower bound). NaN when undefined.
        ci_high: Upper bound. NaN when undefined.
        confidence: Two-sided confidence level.
        margin: Margin (``>= 0``); the threshold is ``-margin`` (non-inferiority) or ``+margin``
            (superiority).
        p_value: One-sided p-value of H0 ``delta <= threshold``; see :func:`compare_paired`.
        mde: Minimum detectable difference at ``alpha = (1 - confidence) / 2`` and ``power``
            (``inf`` with fewer than two units).
        power: Power used for ``mde``.
        binary: Whether both series hold only 0 and 1.
        discordant: ``(b, c)`` when binary: cases only the candidate got right, and cases only
            the baseline got right.
        mcnemar_p: Exact one-sided McNemar p ("candidate better") when binary. It ignores the
            margin and the clusters: a supplementary record, not the gate's p-value.
        method: Bootstrap method (``bca``, ``percentile``, ``degenerate``, ``undefined``).
        seed: RNG seed.
        n_resamples: Bootstrap resamples drawn (0 when none were needed: degenerate/undefined).
    """

    test: str
    n: int
    n_units: int
    candidate_mean: float
    baseline_mean: float
    delta: float
    ci_low: float
    ci_high: float
    confidence: float
    margin: float
    p_value: float
    mde: float
    power: float
    binary: bool
    discordant: tuple[int, int] | None
    mcnemar_p: float | None
    method: str
    seed: int
    n_resamples: int

    @property
    def threshold(self) -> float:
        """The value ``delta`` must exceed: ``-margin`` or ``+margin``."""
        return -self.margin if self.test == "non_inferiority" else self.margin

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict: non-finite floats (NaN bounds, infinite MDE) become ``None``."""
        return json_safe(dataclasses.asdict(self))


def compare_paired(
    candidate: Sequence[float],
    baseline: Sequence[float],
    *,
    test: str = "non_inferiority",
    margin: float = 0.0,
    clusters: Sequence[Hashable | None] | None = None,
    confidence: float = 0.95,
    n_resamples: int = 5000,
    seed: int = 0,
    power: float = 0.8,
) -> PairedComparison:
    """Compare candidate and baseline scored on the same cases (non-inferiority or superiority).

    The hypotheses are one-sided on ``delta = mean(candidate - baseline)``: H0 ``delta <= -margin``
    against ``delta > -margin`` (non-inferiority) or H0 ``delta <= +margin`` against
    ``delta > +margin`` (superiority). The interval comes from the cluster-aware paired bootstrap
    of :mod:`aliasgate.stats.bootstrap`; the p-value comes from the same resamples by inverting
    that interval (see ``BootstrapDistribution.p_value``): it is the smallest ``alpha`` at which
    the one-sided ``1 - alpha`` lower bound, computed the same way (BCa or percentile), lies above
    the threshold. For the percentile method this is the share of resampled deltas at or below the
    threshold — the usual ``(1 + #{delta* <= threshold}) / (B + 1)`` within two resamples — and for
    BCa the same share mapped through the BCa level correction. Hence, exactly,
    ``p_value < (1 - confidence) / 2`` iff ``ci_low > threshold`` (for
    ``(1 - confidence) / 2 > 1 / (B + 1)``; the p-value is floored at ``1 / (B + 1)``, the
    resolution of ``B`` resamples).

    Special cases:
        * All paired differences equal (``method == "degenerate"``, the interval is the point
          ``delta``): ``p_value`` is 0.0 when ``delta`` clears the threshold and 1.0 otherwise —
          the data show no variability. Few cases often look like this by chance: gates should
          also require a minimum ``n``.
        * One independent unit with differing values (``method == "undefined"``): NaN bounds
          and ``p_value`` 1.0, so gates fail closed.

    Args:
        candidate: Per-case scores of the candidate (no NaN/inf: drop unmeasured cases from
            both series first).
        baseline: Per-case scores of the baseline, aligned with ``candidate``.
        test: ``"non_inferiority"`` or ``"superiority"``.
        margin: Non-negative margin in score units.
        clusters: Optional cluster id per case; whole clusters are resampled.
        confidence: Two-sided confidence level of the interval; the test's level is
            ``(1 - confidence) / 2``.
        n_resamples: Bootstrap resamples.
        seed: RNG seed, recorded so the decision is reproducible.
        power: Power for the recorded MDE.

    Raises:
        ValueError: unknown ``test``, negative or non-finite ``margin``, lengths differ, NaN/inf
            values, ``clusters`` of another length, or an option out of range.
    """
    if test not in TESTS:
        raise ValueError(f"test must be one of {TESTS}, got {test!r}")
    margin = check_margin(margin)
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an integer (it is recorded), got {seed!r}")
    cand, base = as_values(candidate, "candidate"), as_values(baseline, "baseline")
    if cand.size != base.size:
        raise ValueError(f"paired values differ in length: {cand.size} vs {base.size}")

    alpha = (1.0 - check_open_unit(confidence, "confidence")) / 2.0
    mde = paired_mde(cand - base, clusters=clusters, alpha=alpha, power=power)  # validates first
    dist = paired_bootstrap_distribution(
        cand, base, clusters=clusters, confidence=confidence, n_resamples=n_resamples, seed=seed
    )
    ci = dist.ci
    threshold = -margin if test == "non_inferiority" else margin

    binary = bool(np.isin(cand, (0.0, 1.0)).all() and np.isin(base, (0.0, 1.0)).all())
    discordant: tuple[int, int] | None = None
    mcnemar_p: float | None = None
    if binary:
        wins = int(np.count_nonzero((cand == 1.0) & (base == 0.0)))
        losses = int(np.count_nonzero((cand == 0.0) & (base == 1.0)))
        discordant = (wins, losses)
        mcnemar_p = mcnemar_exact(wins, losses, alternative="greater")

    return PairedComparison(
        test=test,
        n=ci.n,
        n_units=ci.n_units,
        candidate_mean=float(cand.mean()),
        baseline_mean=float(base.mean()),
        delta=ci.estimate,
        ci_low=ci.low,
        ci_high=ci.high,
        confidence=ci.confidence,
        margin=margin,
        p_value=dist.p_value(threshold),
        mde=mde,
        power=float(power),
        binary=binary,
        discordant=discordant,
        mcnemar_p=mcnemar_p,
        method=ci.method,
        seed=int(seed),
        n_resamples=ci.n_resamples,
    )
