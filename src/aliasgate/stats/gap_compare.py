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

Bias of a max-minus-min, handled conservatively: noise alone pushes a resampled gap up, most
when the true group means are close. In the difference this pushes the resampled deltas down
when the baseline's gap is the small one (the percentile interval then favours the candidate)
and up in the opposite case (then the basic interval, ``2·delta - quantiles``, does). The upper
bound is therefore the larger of the percentile and the basic bootstrap upper bounds, the lower
bound the smaller of the two lower bounds, and the p-value the larger of the two one-sided
bootstrap p-values, so ``p < (1 - confidence) / 2`` iff both upper bounds lie below the margin
(up to the resolution of ``B`` resamples).
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

__all__ = ["PairedGapComparison", "compare_gaps_paired"]

_NO_STRATUM = ""


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
        method: ``paired_cluster_bootstrap``, ``degenerate`` (every resample gives the same
            delta: p is 0 or 1) or ``undefined`` (fewer than two units: NaN bounds, p = 1).
        seed: RNG seed.
        n_resamples: Resamples drawn (0 when none were needed).
        n_dropped: Resamples left out because a stratum lost a group on one side.
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
    if k < 2:
        return PairedGapComparison(**common, ci_low=math.nan, ci_high=math.nan, p_value=1.0,
                                   method="undefined", n_resamples=0)

    rng = np.random.default_rng(seed)
    step = max(1, (1 << 20) // k)
    chunks = []
    for start in range(0, resamples, step):
        w = rng.multinomial(k, np.full(k, 1.0 / k), size=min(step, resamples - start)).astype(float)
        wc = w @ counts
        with np.errstate(invalid="ignore", divide="ignore"):
            g_c = strata_gap((w @ sums["candidate"]) / wc, columns)
            g_b = strata_gap((w @ sums["baseline"]) / wc, columns)
        chunks.append(g_c - g_b)
    boot = np.concatenate(chunks)
    kept = boot[np.isfinite(boot)]
    dropped = int(boot.size - kept.size)
    if kept.size == 0:
        return PairedGapComparison(**common, ci_low=math.nan, ci_high=math.nan, p_value=1.0,
                                   method="undefined", n_resamples=resamples, n_dropped=dropped)
    if np.ptp(kept) == 0.0 and kept[0] == delta:
        return PairedGapComparison(**common, ci_low=delta, ci_high=delta,
                                   p_value=0.0 if delta < margin else 1.0, method="degenerate",
                                   n_resamples=resamples, n_dropped=dropped)
    tail = (1.0 - level) / 2.0
    q_low, q_high = np.quantile(kept, [tail, 1.0 - tail])
    low = min(float(q_low), 2.0 * delta - float(q_high))  # percentile / basic lower bounds
    high = max(float(q_high), 2.0 * delta - float(q_low))  # percentile / basic upper bounds
    b = kept.size
    p_percentile = (1 + int(np.count_nonzero(kept >= margin))) / (b + 1)
    p_basic = (1 + int(np.count_nonzero(2.0 * delta - kept >= margin))) / (b + 1)
    return PairedGapComparison(**common, ci_low=low, ci_high=high,
                               p_value=min(1.0, max(p_percentile, p_basic)),
                               method="paired_cluster_bootstrap", n_resamples=resamples,
                               n_dropped=dropped)
