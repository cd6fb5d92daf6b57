"""Has a group gap grown? The candidate's and the baseline's gap compared on the same cases.

A bias slice gated only by an absolute ceiling lets a new model double its demographic gap as
long as it stays under the ceiling. :func:`compare_gaps_paired` compares the gap between the
best and the worst group (largest max-minus-min of group means, within a stratum) of the
candidate with the baseline's, on the cases both measured. Both systems answered the same
cases, so the comparison is paired: each resample draws whole clusters (templates, scenarios)
with replacement *once* and recomputes both gaps on that same draw, so the two gaps move
together and the difference is far tighter than two independent intervals would give.

The test is one-sided non-inferiority on ``delta = gap_candidate - gap_baseline`` (positive:
the gap grew): H0 ``delta >= margin`` against ``delta < margin``.

Why not a plain bootstrap of ``delta``: a max-minus-min is biased upwards by noise, most when the
true group means are tied. When the baseline is fair, its estimated gap is inflated, the
candidate's (a real gap) much less, so the estimated ``delta`` is biased *down* — towards
passing. Simulated on this project's design (16 scenarios x 12 personas, 3 groups, a fair
baseline, a candidate whose gap grew by exactly the margin), percentile and basic bootstrap
tests passed such candidates 8-13% of the time at a nominal 2.5%. So the bound is built from two
inequalities that hold whatever the groups' true means:

* **range of the paired differences**: with ``d_g`` = candidate mean - baseline mean of group
  ``g`` (a paired, unbiased estimate), ``delta <= max_g d_g - min_g d_g`` (within a stratum).
  Tight when the baseline is fair or the candidate keeps the baseline's pattern.
* **separate gaps**: ``delta <= (gap_candidate + c_c) - (gap_baseline - c_b)`` with ``c`` the
  simultaneous deviations of :func:`aliasgate.stats.groups.max_gap_interval`. Tight when the
  candidate removes a gap the baseline had.

Both are made simultaneous over groups the same way (the ``confidence``-quantile over
resamples of the largest spread of the groups' deviations, the resamples drawing clusters once
for both systems), each at half the error (Bonferroni), and the upper bound is the smaller of
the two: ``p = min(1, 2 * min(p_range, p_separate))``, and ``p < alpha`` iff the reported
upper bound (at ``1 - alpha``) is below the margin. In the same simulation the test passed
0.3-1% of such candidates (valid, conservative); the price is power: with 16 scenarios an
unchanged gap is shown not to have grown by 0.25 only about half of the time.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from aliasgate.stats._checks import (
    as_values,
    check_margin,
    check_open_unit,
    check_resampling,
    json_safe,
    unit_codes,
)
from aliasgate.stats.groups import strata_gap

__all__ = ["GroupSelection", "PairedGapComparison", "compare_gaps_paired", "select_groups"]

_NO_STRATUM = ""


@dataclass(frozen=True)
class GroupSelection:
    """Which paired cases a gap comparison keeps (:func:`select_groups`).

    Attributes:
        index: Positions of the kept cases.
        sizes: ``group`` (``stratum/group`` with strata) -> cases, for every group.
        small: ``group`` (``stratum/group`` with strata) -> cases, for groups left out.
        ungrouped: Cases without a group or stratum label.
        comparable: Whether some stratum keeps two groups (else nothing can be compared).
    """

    index: list[int]
    sizes: dict[str, int]
    small: dict[str, int]
    ungrouped: int
    comparable: bool


def select_groups(
    groups: Sequence[str | None], strata: Sequence[str | None] | None, min_group_n: int
) -> GroupSelection:
    """Keep the cases of groups with at least ``min_group_n`` cases (per stratum).

    Args:
        groups: Group label per case (None: ungrouped).
        strata: Stratum label per case (None entries: ungrouped), or None for one stratum.
        min_group_n: Smallest group kept.
    """
    layers = [_NO_STRATUM] * len(groups) if strata is None else list(strata)
    sizes: dict[tuple[str, str], int] = {}
    for g, s in zip(groups, layers, strict=True):
        if g is not None and s is not None:
            sizes[(s, g)] = sizes.get((s, g), 0) + 1
    kept = {cell for cell, k in sizes.items() if k >= min_group_n}
    per_stratum: dict[str, int] = {}
    for s, _ in kept:
        per_stratum[s] = per_stratum.get(s, 0) + 1
    def name(s: str, g: str) -> str:
        return f"{s}/{g}" if strata is not None else g

    return GroupSelection(
        index=[i for i, cell in enumerate(zip(layers, groups, strict=True)) if cell in kept],
        sizes={name(s, g): k for (s, g), k in sorted(sizes.items())},
        small={name(s, g): k for (s, g), k in sorted(sizes.items()) if (s, g) not in kept},
        ungrouped=sum(1 for g, s in zip(groups, layers, strict=True) if g is None or s is None),
        comparable=any(k >= 2 for k in per_stratum.values()),
    )


@dataclass(frozen=True)
class PairedGapComparison:
    """Result of :func:`compare_gaps_paired`.

    Attributes:
        n: Paired cases used.
        n_units: Independent units resampled (clusters, or ``n``).
        candidate_gap: The candidate's largest within-stratum gap between group means.
        baseline_gap: The baseline's, on the same cases.
        delta: ``candidate_gap - baseline_gap`` (positive: the gap grew).
        ci_low: Lower bound of the two-sided interval of ``delta`` (NaN when undefined).
        ci_high: Upper bound (the non-inferiority test compares it with ``margin``).
        confidence: Two-sided confidence level.
        margin: Largest acceptable growth of the gap (``>= 0``).
        p_value: One-sided p-value of H0 ``delta >= margin``.
        candidate_worst: ``(highest group, lowest group)`` of the candidate (``stratum/group``
            labels when there are strata).
        baseline_worst: The same for the baseline.
        groups: Per group (``stratum/group`` with strata): ``n``, ``candidate_mean``,
            ``baseline_mean``.
        method: ``paired_simultaneous`` (see the module docstring), ``degenerate`` (no resample
            moves any group: p is 0 or 1) or ``undefined`` (a compared group spans fewer than
            two clusters, or most resamples lose a group: NaN bounds, p = 1).
        seed: RNG seed.
        n_resamples: Resamples drawn (0 when none were needed).
        n_dropped: Resamples left out because they lost a compared group (or a whole stratum).
    """

    n: int
    n_units: int
    candidate_gap: float
    baseline_gap: float
    delta: float
    ci_low: float
    ci_high: float
    confidence: float
    margin: float
    p_value: float
    candidate_worst: tuple[str, str]
    baseline_worst: tuple[str, str]
    groups: dict[str, dict[str, float | int]]
    method: str
    seed: int
    n_resamples: int
    n_dropped: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe dict (non-finite floats become ``None``, tuples lists)."""
        return json_safe(dataclasses.asdict(self))


def compare_gaps_paired(
    candidate: Sequence[float],
    baseline: Sequence[float],
    groups: Sequence[str],
    *,
    clusters: Sequence[Hashable | None] | None = None,
    strata: Sequence[str] | None = None,
    margin: float = 0.0,
    confidence: float = 0.95,
    n_resamples: int = 5000,
    seed: int = 0,
) -> PairedGapComparison:
    """Non-inferiority of the candidate's group gap against the baseline's, paired by case.

    Args:
        candidate: Per-case values of the candidate (no NaN/inf: drop cases unmeasured by either
            side from both series first).
        baseline: Per-case values of the baseline, aligned with ``candidate``.
        groups: Group label per case (the same case is in the same group for both).
        clusters: Optional cluster id per case; whole clusters are resampled, with all their
            groups, for both sides at once.
        strata: Optional stratum per case: gaps are only taken between groups of one stratum
            and the statistic is the largest of them (e.g. gender, race... in one dataset).
        margin: Largest acceptable growth of the gap, in the values' units (``>= 0``).
        confidence: Two-sided confidence level; the test's level is ``(1 - confidence) / 2``.
        n_resamples: Bootstrap resamples.
        seed: RNG seed, recorded so the decision is reproducible.

    Raises:
        ValueError: lengths differ, NaN/inf values, a label is not a string, no stratum with two
            groups, or an option out of range.
    """
    cand, base = as_values(candidate, "candidate"), as_values(baseline, "baseline")
    n = cand.size
    if base.size != n:
        raise ValueError(f"paired values differ in length: {n} vs {base.size}")
    labels = list(groups)
    if len(labels) != n:
        raise ValueError(f"groups has {len(labels)} labels for {n} values")
    layers = [_NO_STRATUM] * n if strata is None else list(strata)
    if len(layers) != n:
        raise ValueError(f"strata has {len(layers)} labels for {n} values")
    for what, seq in (("groups", labels), ("strata", layers)):
        for i, label in enumerate(seq):
            if not isinstance(label, str):
                raise ValueError(f"{what}[{i}] must be a string label, got {label!r}")
    margin = check_margin(margin)
    level = check_open_unit(confidence, "confidence")
    resamples, seed = check_resampling(n_resamples, seed)

    cells = sorted(set(zip(layers, labels, strict=True)))
    index = {cell: j for j, cell in enumerate(cells)}
    by_stratum: dict[str, list[int]] = {}
    for j, (s, _) in enumerate(cells):
        by_stratum.setdefault(s, []).append(j)
    columns = list(by_stratum.values())
    if not any(len(cols) >= 2 for cols in columns):
        raise ValueError(f"no stratum has two groups (cells: {cells})")
    col = np.array([index[cell] for cell in zip(layers, labels, strict=True)], dtype=np.intp)
    codes, k = unit_codes(clusters, n)
    counts = np.zeros((k, len(cells)))
    np.add.at(counts, (codes, col), 1.0)
    sums = {}
    for side, x in (("candidate", cand), ("baseline", base)):
        s = np.zeros((k, len(cells)))
        np.add.at(s, (codes, col), x)
        sums[side] = s

    total_c = counts.sum(axis=0)
    point = {side: s.sum(axis=0) / total_c for side, s in sums.items()}
    gaps = {side: float(strata_gap(m[None, :], columns)[0]) for side, m in point.items()}
    delta = gaps["candidate"] - gaps["baseline"]
    diff = point["candidate"] - point["baseline"]
    spread = float(strata_gap(diff[None, :], columns)[0])  # delta <= spread, always

    def name(j: int) -> str:
        s, g = cells[j]
        return g if strata is None else f"{s}/{g}"

    def worst(means: np.ndarray) -> tuple[str, str]:
        best: tuple[float, str, str] | None = None
        for cols in columns:
            if len(cols) < 2:
                continue
            ordered = sorted(cols, key=lambda j: (-means[j], name(j)))
            gap = float(means[ordered[0]] - means[ordered[-1]])
            if best is None or gap > best[0]:
                best = (gap, name(ordered[0]), name(ordered[-1]))
        assert best is not None
        return best[1], best[2]

    table = {name(j): {"n": int(total_c[j]), "candidate_mean": float(point["candidate"][j]),
                       "baseline_mean": float(point["baseline"][j])} for j in range(len(cells))}
    common = {
        "n": n, "n_units": k, "candidate_gap": gaps["candidate"], "baseline_gap": gaps["baseline"],
        "delta": delta, "confidence": level, "margin": margin,
        "candidate_worst": worst(point["candidate"]), "baseline_worst": worst(point["baseline"]),
        "groups": table, "seed": int(seed),
    }
    compared = [cols for cols in columns if len(cols) >= 2]
    units = (counts > 0).sum(axis=0)  # clusters per (stratum, group) cell
    if k < 2 or any(units[j] < 2 for cols in compared for j in cols):
        # a group within a single cluster never moves in a resample: its mean would count as
        # known exactly, and the bound would be too tight. Nothing can be said: fail closed.
        return PairedGapComparison(**common, ci_low=math.nan, ci_high=math.nan, p_value=1.0,
                                   method="undefined", n_resamples=0)

    # Resamples draw clusters once for both systems. One that loses a group (or a whole
    # stratum) compares fewer groups than the estimate: left out (counted).
    rng = np.random.default_rng(seed)
    step = max(1, (1 << 20) // k)
    range_dev, separate_dev = [], []
    dropped = 0
    for start in range(0, resamples, step):
        w = rng.multinomial(k, np.full(k, 1.0 / k), size=min(step, resamples - start)).astype(float)
        wc = w @ counts
        partial = np.zeros(w.shape[0], dtype=bool)
        for cols in compared:
            partial |= ~(wc[:, cols] > 0).all(axis=1)
        dropped += int(partial.sum())
        wc = wc[~partial]
        w = w[~partial]
        with np.errstate(invalid="ignore", divide="ignore"):
            m_c = (w @ sums["candidate"]) / wc - point["candidate"][None, :]
            m_b = (w @ sums["baseline"]) / wc - point["baseline"][None, :]
        range_dev.append(strata_gap(m_c - m_b, columns))
        separate_dev.append(strata_gap(m_c, columns) + strata_gap(m_b, columns))
    dev_range = np.concatenate(range_dev)
    dev_separate = np.concatenate(separate_dev)
    ok = np.isfinite(dev_range) & np.isfinite(dev_separate)
    dev_range, dev_separate = dev_range[ok], dev_separate[ok]
    dropped += int((~ok).sum())
    b = dev_range.size
    if b < resamples / 2:  # most resamples lost a group: the clusters are too few per group
        return PairedGapComparison(**common, ci_low=math.nan, ci_high=math.nan, p_value=1.0,
                                   method="undefined", n_resamples=resamples, n_dropped=dropped)
    if not dev_range.any() and not dev_separate.any():
        return PairedGapComparison(**common, ci_low=delta, ci_high=delta,
                                   p_value=0.0 if delta < margin else 1.0, method="degenerate",
                                   n_resamples=resamples, n_dropped=dropped)
    # each bound at half the one-sided error; the tighter one is reported
    tail = (1.0 - level) / 2.0
    q_range, q_separate = (float(np.quantile(d, 1.0 - tail / 2.0))
                           for d in (dev_range, dev_separate))
    high = min(spread + q_range, delta + q_separate) + 0.0  # + 0.0: no "-0.000" in reports
    low = max(-(spread + q_range), delta - q_separate) + 0.0

    def p_below(estimate: float, dev: np.ndarray) -> float:
        """One-sided p of H0 "true >= margin" for the bound ``estimate + quantile(dev)``."""
        room = margin - estimate
        if room <= 0.0:
            return 1.0
        if not dev.any():  # this bound does not move in any resample: it is exact
            return 0.0
        return (1 + int(np.count_nonzero(dev >= room))) / (b + 1)

    p_value = min(1.0, 2.0 * min(p_below(spread, dev_range), p_below(delta, dev_separate)))
    return PairedGapComparison(**common, ci_low=low, ci_high=high, p_value=p_value,
                               method="paired_simultaneous", n_resamples=resamples,
                               n_dropped=dropped)
