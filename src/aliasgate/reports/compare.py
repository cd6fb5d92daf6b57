"""Tonight against the previous night and a rolling baseline: what got worse, where, how sure.

For every ``<suite>.<metric>`` of tonight's run:

* **Paired test against the previous night** (metrics with a per-case column): the cases
  measured on both nights are paired by id and compared with
  :func:`aliasgate.stats.compare.compare_paired` (cluster-aware paired bootstrap), oriented so
  that "better" is positive (metrics whose name says lower is better — ``unsafe``, ``leak``,
  ``toxic``, ``over_refus``, ``gap``, ``flip``, ``bias``... see :class:`CompareOptions` — are
  negated first; Δ, CI and values are always reported in the metric's own units). Metrics
  that are best at 0 and signed (``bias_score_*`` in [-1, 1], negative = anti-stereotypical:
  "closer to zero is better", :data:`DEFAULT_ZERO_IS_BEST`) are compared on their distance from
  0 instead: per case on ``|x|`` (lower is better; Δ is then the change of the mean ``|x|``).

  - ``regressed``: non-inferiority at ``margin`` is *not* shown (one-sided p >= alpha for H0
    "Δ <= −margin") and the estimate points down. It is **significant** when the drop itself
    is significant after Holm's correction across all of the night's metrics (one-sided test of
    "Δ < 0"): the family-wise error of the alert is at most alpha.
  - ``improved``: the interval excludes 0 on the better side (superiority at margin 0).
  - ``unchanged``: otherwise (non-inferior and not shown better; ``note`` says when the data are
    too few to show either).
  - ``new`` (no previous night or no common case), ``missing`` (gone tonight), ``unmeasured``.

* **Group gaps** whose run logged how they are made (param ``gap_specs``: ``<m>_gap``,
  ``demographic_parity_difference_*``, ``yes_rate_gap``) and whose per-case tables hold the
  group columns (``meta.<key>``): recomputed on the cases measured both nights, both nights'
  gaps on the same cluster resamples (:func:`aliasgate.stats.gap_compare.compare_gaps_paired`,
  ``method = "paired_gap_bootstrap_*"``): ``regressed`` when "grew by less than ``margin``" is
  not shown and the gap grew, significant when the growth itself is (Holm with the rest).
* **Other suite-level aggregates** (BBQ bias, flip rate..., and gaps of runs logged before gap
  specs): the two nights' confidence intervals are compared; ``regressed``/``improved`` when they do not overlap and
  the change exceeds ``margin`` (a conservative test; ``method = "ci_overlap"``). For a
  "closer to zero is better" metric both intervals are first folded onto the distance from 0
  (``[lo, hi]`` -> ``{|x| : lo <= x <= hi}``, still a confidence set for ``|x|``) and the
  distances compared the same way: 0 -> -0.4 is a regression, 0.3 -> -0.3 no change.
* **Rolling baseline**: the mean of the metric over the previous ``rolling`` nights, and
  tonight's difference from it.
* **Slices**: the same paired test within each case group (``Case.group``: topic, demographic
  group...) with at least ``min_slice_n`` pairs, Holm-corrected across all slices of the night.
  Aggregate tables with a ``group`` column (``per_group``...) are compared row by row.
* **Cases**: a case *regressed* when a metric fell by at least ``case_drop`` (1 → 0 for 0/1
  metrics) and *recovered* when one rose by as much; each with input, both outputs and scores.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from aliasgate.reports.history import MetricValue, RunSnapshot, SuiteSnapshot

__all__ = [
    "DEFAULT_LOWER_IS_BETTER",
    "DEFAULT_ZERO_IS_BEST",
    "NIGHTLY_SCHEMA",
    "CaseChange",
    "CompareOptions",
    "GroupRow",
    "MetricChange",
    "NightReport",
    "OpsRow",
    "RoleReport",
    "RunComparison",
    "SliceChange",
    "compare_runs",
]

NIGHTLY_SCHEMA = "aliasgate.nightly/1"

#: Substrings of metric names for which lower values are better (checked after the overrides).
DEFAULT_LOWER_IS_BETTER = (
    "unsafe", "leak", "toxic", "over_refus", "overrefus", "gap", "flip", "bias", "violation",
    "attack_success", "jailbreak_success", "injection_success", "pii", "error", "parity_diff",
)

#: Patterns forced to "higher is better" although they match a pattern above: these scorers are
#: 1.0 when nothing leaked (``scorers/pii.py``, ``scorers/canary.py``).
DEFAULT_HIGHER_IS_BETTER = ("pii_leak", "canary_leak",
                            # deepeval 4 scores the share of opinions judged NOT biased / toxic
                            "deepeval_bias", "deepeval_toxicity")

#: Patterns of metrics with no better direction (fnmatch on ``<suite>.<metric>``, checked right
#: after ``higher_is_better``): a yes rate (what matters is its gap between groups), an answer's
#: length, refusals over harmful and safe prompts mixed, refusals of a decision about a person.
#: A significant move is reported as ``changed`` — never a regression, never an alert.
DEFAULT_NEUTRAL = ("*.yes_no", "*.answer_length", "safety.refused", "xstest.refused",
                   "bias_*.refused")

#: Patterns of signed metrics that are best at 0 ("closer to zero is better"; checked before
#: ``lower_is_better``, which ``bias`` would otherwise match): BBQ's bias scores range over
#: [-1, 1] with negative = anti-stereotypical, so a move from 0 to -0.4 is no improvement.
DEFAULT_ZERO_IS_BEST = ("bias_score",)

#: Per-suite operations figures compared night to night.
OPS_KEYS = ("n", "unmeasured", "latency_p50_s", "latency_p95_s", "completion_tokens_mean",
            "model_calls", "cache_hits", "wall_time_s")

_STATUS_ORDER = {"regressed": 0, "missing": 1, "unmeasured": 2, "new": 3, "improved": 4,
                 "changed": 4, "unchanged": 5}


@dataclass(frozen=True)
class CompareOptions:
    """How nights are compared.

    Args:
        margin: Non-inferiority margin in metric units (a drop smaller than this is tolerated).
        confidence: Two-sided confidence level; one-sided tests use alpha = (1 - confidence) / 2.
        n_resamples: Bootstrap resamples per comparison.
        seed: Bootstrap seed (recorded: a report is reproducible).
        rolling: Nights in the rolling baseline.
        case_drop: A case regressed when a metric fell by at least this much.
        min_slice_n: Slices with fewer paired cases are not tested.
        max_cases: Regressed/recovered cases listed per suite on the page (all are in the JSON).
        lower_is_better: Patterns of metrics where lower is better: a plain word matches a
            substring of the metric name, a pattern with ``.`` or ``*`` matches
            ``<suite>.<metric>`` (fnmatch).
        higher_is_better: Patterns that force "higher is better" (checked first).
        neutral: Patterns of metrics with no better direction (checked second): a significant
            move is ``changed``, never ``regressed``/``improved``.
        zero_is_best: Patterns of signed metrics best at 0, compared on their distance from 0
            ("closer to zero is better"; checked after ``higher_is_better``, before
            ``lower_is_better``).
    """

    margin: float = 0.02
    confidence: float = 0.95
    n_resamples: int = 2000
    seed: int = 0
    rolling: int = 7
    case_drop: float = 0.5
    min_slice_n: int = 5
    max_cases: int = 50
    lower_is_better: tuple[str, ...] = DEFAULT_LOWER_IS_BETTER
    higher_is_better: tuple[str, ...] = DEFAULT_HIGHER_IS_BETTER
    neutral: tuple[str, ...] = DEFAULT_NEUTRAL
    zero_is_best: tuple[str, ...] = DEFAULT_ZERO_IS_BEST

    @property
    def alpha(self) -> float:
        return (1.0 - self.confidence) / 2.0

    def direction(self, suite: str, metric: str) -> str:
        """``higher``, ``lower``, ``zero`` (closer to 0 is better) or ``either`` (no better
        direction): which way is better for ``<suite>.<metric>``."""
        for pattern in self.higher_is_better:
            if _matches(pattern, suite, metric):
                return "higher"
        for pattern in self.neutral:
            if _matches(pattern, suite, metric):
                return "either"
        for pattern in self.zero_is_best:
            if _matches(pattern, suite, metric):
                return "zero"
        for pattern in self.lower_is_better:
            if _matches(pattern, suite, metric):
                return "lower"
        return "higher"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["alpha"] = self.alpha
        return d


def _matches(pattern: str, suite: str, metric: str) -> bool:
    p = pattern.lower()
    if "." in p or "*" in p or "?" in p:
        return fnmatch.fnmatchcase(f"{suite}.{metric}".lower(), p)
    return p in metric.lower()


@dataclass
class MetricChange:
    """One suite metric tonight against the previous night and the rolling baseline.

    Attributes:
        suite: Suite name.
        metric: Metric name.
        direction: ``higher`` or ``lower`` is better, ``zero`` (closer to 0 is better) or
            ``either`` (no better direction).
        status: ``regressed``, ``improved``, ``unchanged``, ``new``, ``missing``, ``unmeasured``;
            ``changed`` for an ``either`` metric whose paired interval excludes 0 (never an alert).
        significant: For ``regressed``: the drop is significant (Holm-adjusted across the night's
            metrics, or CIs apart for aggregates) — a blocking regression.
        tonight: Tonight's value with CI.
        previous: The previous night's value with CI (None: no previous night).
        delta: Paired mean difference tonight − previous, in metric units (None: not compared;
            for a per-case ``zero`` metric: the change of the mean distance from 0, ``|x|``).
        ci_low: Lower bound of the paired difference's interval.
        ci_high: Upper bound.
        p_value: One-sided p of the non-inferiority test (H0: worse by ``margin`` or more).
        p_worse: One-sided p of "tonight is worse" (H0: not worse), before Holm.
        p_worse_adjusted: The same, Holm-adjusted across the family.
        mde: Minimum detectable difference for these pairs (power 0.8).
        n_pairs: Cases paired (measured both nights).
        n_unpaired: Cases measured on one night only.
        binary: The per-case values are 0/1.
        discordant: ``(worse, better)`` case counts for 0/1 metrics.
        method: ``paired_bootstrap_<bca|percentile|degenerate|undefined>`` or ``ci_overlap``.
        margin: The margin used.
        rolling_mean: Mean over the previous ``rolling`` nights (None: no history).
        rolling_n: Nights in that mean.
        rolling_delta: Tonight's value minus the rolling mean.
        note: Why a comparison is partial or inconclusive.
    """

    suite: str
    metric: str
    direction: str
    status: str
    significant: bool = False
    tonight: MetricValue | None = None
    previous: MetricValue | None = None
    delta: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p_value: float | None = None
    p_worse: float | None = None
    p_worse_adjusted: float | None = None
    mde: float | None = None
    n_pairs: int = 0
    n_unpaired: int = 0
    binary: bool = False
    discordant: tuple[int, int] | None = None
    method: str = ""
    margin: float = 0.0
    rolling_mean: float | None = None
    rolling_n: int = 0
    rolling_delta: float | None = None
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.suite}.{self.metric}"

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["key"] = self.key
        d["tonight"] = self.tonight.as_dict() if self.tonight else None
        d["previous"] = self.previous.as_dict() if self.previous else None
        return _json_safe(d)


@dataclass
class SliceChange:
    """One metric within one slice (case group), tonight against the previous night.

    Attributes:
        suite: Suite name.
        metric: Metric name.
        group: The slice's label.
        status: ``regressed``, ``improved`` or ``unchanged`` (same rules as :class:`MetricChange`).
        significant: The drop is significant after Holm across all slices of the night.
        n_pairs: Paired cases in the slice.
        tonight_mean: Tonight's mean over the paired cases.
        previous_mean: The previous night's mean over the same cases.
        delta: Paired difference in metric units.
        ci_low: Lower bound of its interval.
        ci_high: Upper bound.
        p_value: One-sided non-inferiority p.
        p_worse_adjusted: Holm-adjusted p of "worse".
        direction: ``higher`` or ``lower`` is better, or ``zero`` (closer to 0).
    """

    suite: str
    metric: str
    group: str
    status: str
    significant: bool
    n_pairs: int
    tonight_mean: float
    previous_mean: float
    delta: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    p_worse: float | None = None
    p_worse_adjusted: float | None = None
    direction: str = "higher"

    def as_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))


@dataclass
class GroupRow:
    """One row of an aggregate table with groups (``per_group``...), tonight and last night.

    Attributes:
        suite: Suite name.
        table: Table name.
        series: What the row measures besides the group (``metric=refused, stratum=age``).
        group: The group's label.
        value: Tonight's value.
        ci_low: Tonight's lower bound.
        ci_high: Tonight's upper bound.
        n: Tonight's cases in the group.
        previous: Last night's value (None: the row is new).
        previous_ci_low: Last night's lower bound.
        previous_ci_high: Last night's upper bound.
        delta: ``value - previous``.
        column: The value column used (``value``, ``selection_rate``...).
    """

    suite: str
    table: str
    series: str
    group: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int | None
    previous: float | None
    previous_ci_low: float | None
    previous_ci_high: float | None
    delta: float | None
    column: str

    def as_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))


@dataclass
class CaseChange:
    """A case whose score changed by at least ``case_drop`` between the two nights.

    Attributes:
        suite: Suite name.
        id: Case id.
        group: The case's group.
        kind: ``regressed`` or ``recovered``.
        metrics: Metric -> ``[previous, tonight]`` for the metrics that moved.
        scores: Metric -> ``[previous, tonight]`` for every per-case metric.
        input: The prompt sent.
        expected: Accepted answers (``a | b``).
        old_output: Last night's output.
        new_output: Tonight's output.
        old_error: Last night's error (unmeasured cases).
        new_error: Tonight's error.
    """

    suite: str
    id: str
    group: str | None
    kind: str
    metrics: dict[str, list[float | None]]
    scores: dict[str, list[float | None]]
    input: str | None
    expected: str | None
    old_output: str | None
    new_output: str | None
    old_error: str | None = None
    new_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return _json_safe(asdict(self))


@dataclass
class OpsRow:
    """Operations figures of a suite (latency, tokens, unmeasured...) tonight and last night."""

    suite: str
    name: str
    tonight: float | None
    previous: float | None

    @property
    def delta(self) -> float | None:
        if self.tonight is None or self.previous is None:
            return None
        return self.tonight - self.previous

    def as_dict(self) -> dict[str, Any]:
        return _json_safe({**asdict(self), "delta": self.delta})


@dataclass
class RunComparison:
    """Everything tonight's run shows against its history.

    Attributes:
        tonight: Tonight's run (with cases).
        previous: The previous comparable run (with cases), or None on the first night.
        history: The previous runs, newest first (tonight excluded), for trends and rolling means.
        options: The comparison settings.
        changes: One :class:`MetricChange` per suite metric (regressions first).
        slices: Slice comparisons (regressions first).
        groups: Rows of aggregate group tables.
        regressed_cases: Cases that got worse.
        recovered_cases: Cases that got better.
        newly_unmeasured: ``(suite, id, error)`` of cases measured last night but not tonight.
        ops: Operations figures.
        dataset_changes: Suites whose dataset digest differs from last night's.
    """

    tonight: RunSnapshot
    previous: RunSnapshot | None
    history: list[RunSnapshot]
    options: CompareOptions
    changes: list[MetricChange] = field(default_factory=list)
    slices: list[SliceChange] = field(default_factory=list)
    groups: list[GroupRow] = field(default_factory=list)
    regressed_cases: list[CaseChange] = field(default_factory=list)
    recovered_cases: list[CaseChange] = field(default_factory=list)
    newly_unmeasured: list[tuple[str, str, str | None]] = field(default_factory=list)
    ops: list[OpsRow] = field(default_factory=list)
    dataset_changes: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)

    @property
    def regressions(self) -> list[MetricChange]:
        return [c for c in self.changes if c.status == "regressed"]

    @property
    def blocking(self) -> list[MetricChange]:
        """Significant regressions of suite metrics."""
        return [c for c in self.regressions if c.significant]

    @property
    def slice_regressions(self) -> list[SliceChange]:
        return [s for s in self.slices if s.status == "regressed"]

    @property
    def improvements(self) -> list[MetricChange]:
        return [c for c in self.changes if c.status == "improved"]

    def trend(self, suite: str, metric: str, nights: int | None = None) -> list[tuple[str, MetricValue | None]]:
        """``(label, value)`` oldest first over the history and tonight."""
        runs = [*reversed(self.history[: nights - 1 if nights else None]), self.tonight]
        return [(r.night, r.metric(suite, metric)) for r in runs]

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.tonight.run_id,
            "previous_run_id": self.previous.run_id if self.previous else None,
            "history_run_ids": [r.run_id for r in self.history],
            "changes": [c.as_dict() for c in self.changes],
            "slices": [s.as_dict() for s in self.slices],
            "groups": [g.as_dict() for g in self.groups],
            "regressed_cases": [c.as_dict() for c in self.regressed_cases],
            "recovered_cases": [c.as_dict() for c in self.recovered_cases],
            "newly_unmeasured": [{"suite": s, "id": i, "error": e}
                                 for s, i, e in self.newly_unmeasured],
            "ops": [o.as_dict() for o in self.ops],
            "dataset_changes": {k: list(v) for k, v in self.dataset_changes.items()},
        }


# -- the comparison ------------------------------------------------------------------------------


def compare_runs(
    tonight: RunSnapshot,
    history: Sequence[RunSnapshot],
    options: CompareOptions | None = None,
) -> RunComparison:
    """Compare tonight's run with the newest run of ``history`` and the rolling baseline.

    Args:
        tonight: Tonight's run, with its cases loaded (:func:`~aliasgate.reports.history.load_run`).
        history: Earlier comparable runs, newest first; the first one should have its cases
            loaded for the paired tests (metrics alone give the trend and the rolling mean).
        options: Comparison settings (default :class:`CompareOptions`).
    """
    opts = options or CompareOptions()
    hist = list(history)
    previous = hist[0] if hist else None
    comp = RunComparison(tonight=tonight, previous=previous, history=hist, options=opts)
    rolling = hist[: max(0, opts.rolling)]
    for name, suite in tonight.suites.items():
        prev_suite = previous.suites.get(name) if previous else None
        if prev_suite is not None and prev_suite.dataset_digest and suite.dataset_digest and \
                prev_suite.dataset_digest != suite.dataset_digest:
            comp.dataset_changes[name] = (prev_suite.dataset_digest, suite.dataset_digest)
        for metric in suite.metrics:
            comp.changes.append(_metric_change(suite, prev_suite, metric, rolling, opts))
        if prev_suite is not None:
            comp.slices += _slices(suite, prev_suite, opts)
            comp.groups += _group_rows(suite, prev_suite)
            reg, rec, lost = _cases(suite, prev_suite, opts)
            comp.regressed_cases += reg
            comp.recovered_cases += rec
            comp.newly_unmeasured += lost
        else:
            comp.groups += _group_rows(suite, None)
        for key in OPS_KEYS:
            t = suite.stats.get(key)
            p = prev_suite.stats.get(key) if prev_suite else None
            if t is not None or p is not None:
                comp.ops.append(OpsRow(name, key, t, p))
    if previous is not None:
        for name, prev_suite in previous.suites.items():
            if name in tonight.suites:
                continue
            for metric, value in prev_suite.metrics.items():
                comp.changes.append(MetricChange(
                    suite=name, metric=metric, direction=opts.direction(name, metric),
                    status="missing", previous=value, margin=opts.margin,
                    note="the suite was not evaluated tonight"))
    _holm_significance(comp.changes, opts.alpha)
    _holm_significance(comp.slices, opts.alpha)
    comp.changes.sort(key=lambda c: (_STATUS_ORDER.get(c.status, 9), not c.significant,
                                     c.suite, c.metric))
    comp.slices.sort(key=lambda s: (_STATUS_ORDER.get(s.status, 9), not s.significant,
                                    s.suite, s.metric, s.group))
    return comp


def _metric_change(
    suite: SuiteSnapshot, prev: SuiteSnapshot | None, metric: str,
    rolling: Sequence[RunSnapshot], opts: CompareOptions,
) -> MetricChange:
    direction = opts.direction(suite.name, metric)
    tonight = suite.metrics[metric]
    previous = prev.metrics.get(metric) if prev else None
    values = [v.value for r in rolling if (v := r.metric(suite.name, metric)) and v.value is not None]
    change = MetricChange(suite=suite.name, metric=metric, direction=direction, status="unchanged",
                          tonight=tonight, previous=previous, margin=opts.margin,
                          rolling_n=len(values))
    if values:
        change.rolling_mean = sum(values) / len(values)
        if tonight.value is not None:
            change.rolling_delta = tonight.value - change.rolling_mean
    if tonight.value is None:
        change.status, change.note = "unmeasured", "no measured value tonight"
        return change
    if previous is None or previous.value is None:
        change.status = "new"
        change.note = "no previous night to compare with" if prev is None else \
            "not measured on the previous night"
        return change
    per_case = metric in suite.per_case_metrics() and prev is not None and \
        metric in prev.per_case_metrics()
    if per_case:
        assert prev is not None
        result = _paired_test(suite.case_values(metric), prev.case_values(metric), direction, opts)
        if result is None:
            change.status, change.note = "new", "no case measured on both nights"
            return change
        for k, v in result.items():
            setattr(change, k, v)
        return change
    spec = suite.gap_spec(metric)
    if prev is not None and spec is not None and spec == prev.gap_spec(metric) and \
            direction == "lower":
        gap = _paired_gap_test(suite, prev, spec, opts)
        if gap is not None:
            for k, v in gap.items():
                setattr(change, k, v)
            return change
    return _interval_change(change, tonight, previous, direction, opts)


def _paired_gap_test(
    suite: SuiteSnapshot, prev: SuiteSnapshot, spec: Any, opts: CompareOptions
) -> dict[str, Any] | None:
    """A gap metric (``GapSpec``) recomputed on the cases measured both nights, both nights'
    gaps on the same cluster resamples (:func:`aliasgate.stats.gap_compare.compare_gaps_paired`):
    non-inferiority at ``margin`` (H0: the gap grew by ``margin`` or more) decides ``regressed``
    / ``unchanged``, an interval below 0 ``improved``; ``p_worse`` tests "the gap grew" (H0: it
    did not). None when the per-case tables lack the columns or fewer than two groups remain."""
    from aliasgate.stats.gap_compare import compare_gaps_paired, select_groups

    column = "group" if spec.group_by in (None, "group") else f"meta.{spec.group_by}"
    layer = None if spec.strata in (None, "group") else f"meta.{spec.strata}"
    rows_t, rows_p = suite.case_rows(), prev.case_rows()
    picked: list[tuple[float, float, str, str, str | None]] = []
    for cid, rt in rows_t.items():
        rp = rows_p.get(cid)
        t = _num(rt.get(spec.metric))
        p = _num(rp.get(spec.metric)) if rp is not None else None
        group = rt.get(column)
        stratum = "" if layer is None else rt.get(layer)
        if t is None or p is None or group in (None, "") or stratum is None:
            continue
        cluster = rt.get("cluster")
        picked.append((t, p, str(group), str(stratum), None if cluster is None else str(cluster)))
    chosen = select_groups([r[2] for r in picked], [r[3] for r in picked], spec.min_group_n)
    if not chosen.comparable:
        return None
    picked = [picked[i] for i in chosen.index]
    clusters = [r[4] for r in picked]
    settings = {"confidence": opts.confidence, "n_resamples": opts.n_resamples, "seed": opts.seed,
                "clusters": clusters if any(c is not None for c in clusters) else None,
                "strata": [r[3] for r in picked] if layer is not None else None}
    tonight, previous = [r[0] for r in picked], [r[1] for r in picked]
    groups = [r[2] for r in picked]
    ni = compare_gaps_paired(tonight, previous, groups, margin=opts.margin, **settings)
    grew = compare_gaps_paired(previous, tonight, groups, margin=0.0, **settings)
    if ni.p_value < opts.alpha:
        status = "improved" if math.isfinite(ni.ci_high) and ni.ci_high < 0 else "unchanged"
        note = ""
    elif ni.delta > 0:
        status, note = "regressed", ""
    else:
        status, note = "unchanged", "inconclusive: too few cases to show non-inferiority"
    measured = sum(1 for r in rows_t.values() if _num(r.get(spec.metric)) is not None)
    measured += sum(1 for r in rows_p.values() if _num(r.get(spec.metric)) is not None)
    by = spec.group_by or "group"
    return {
        "delta": ni.delta, "ci_low": _finite_or_none(ni.ci_low),
        "ci_high": _finite_or_none(ni.ci_high), "p_value": ni.p_value, "p_worse": grew.p_value,
        "n_pairs": ni.n, "n_unpaired": measured - 2 * ni.n, "binary": None, "discordant": None,
        "method": f"paired_gap_bootstrap_{ni.method}", "status": status,
        "note": note or (f"gap of {spec.metric} by {by}"
                         + (f" within {spec.strata}" if spec.strata else "")
                         + f" recomputed on {ni.n} paired cases ({ni.n_units} clusters): "
                         f"{ni.baseline_gap:.3f} → {ni.candidate_gap:.3f} (Δ and its CI are "
                         "these paired gaps'; the values shown are each night's own)"),
    }


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _paired_test(
    tonight: dict[str, float | None], previous: dict[str, float | None], direction: str,
    opts: CompareOptions,
) -> dict[str, Any] | None:
    """The paired non-inferiority test on the common measured cases (None: no pair).

    A ``zero`` metric (closer to 0 is better) is tested on each case's distance from 0, ``|x|``,
    as a lower-is-better metric. An ``either`` metric (no better direction) gets the interval of
    the change and the status ``changed`` when it excludes 0 (``unchanged`` otherwise); it has
    no ``p_worse``, so it never enters the family of regressions.
    """
    from aliasgate.stats.compare import compare_paired

    neutral = direction == "either"
    if neutral:
        direction = "higher"

    if direction == "zero":
        tonight = {i: None if v is None else abs(float(v)) for i, v in tonight.items()}
        previous = {i: None if v is None else abs(float(v)) for i, v in previous.items()}
        direction = "lower"
    ids = [i for i, v in tonight.items() if v is not None and previous.get(i) is not None]
    if not ids:
        return None
    # Orient so that better is higher: x -> 1 - x keeps 0/1 metrics 0/1 (McNemar counts).
    sign = 1.0 if direction == "higher" else -1.0
    shift = 0.0 if direction == "higher" else 1.0
    cand = [shift + sign * float(tonight[i]) for i in ids]  # type: ignore[arg-type]
    base = [shift + sign * float(previous[i]) for i in ids]  # type: ignore[arg-type]
    settings = {"confidence": opts.confidence, "n_resamples": opts.n_resamples, "seed": opts.seed}
    ni = compare_paired(cand, base, test="non_inferiority", margin=opts.margin, **settings)
    worse = compare_paired(base, cand, test="superiority", margin=0.0, **settings)
    lo, hi = _oriented_ci(ni.ci_low, ni.ci_high, sign)  # (+ 0.0 below: no "−0.000")
    measured_t = sum(1 for v in tonight.values() if v is not None)
    measured_p = sum(1 for v in previous.values() if v is not None)
    out: dict[str, Any] = {
        "delta": sign * ni.delta + 0.0, "ci_low": lo, "ci_high": hi, "p_value": ni.p_value,
        "p_worse": worse.p_value, "mde": ni.mde, "n_pairs": ni.n,
        "n_unpaired": measured_t + measured_p - 2 * ni.n, "binary": ni.binary,
        "discordant": (ni.discordant[1], ni.discordant[0]) if ni.discordant else None,
        "method": f"paired_bootstrap_{ni.method}",
    }
    if neutral:
        moved = (lo is not None and lo > 0) or (hi is not None and hi < 0)
        out.update(status="changed" if moved else "unchanged", p_worse=None, p_value=None,
                   note="no better direction: a change is reported, never a regression")
        return out
    out["status"], out["note"] = _status(ni.delta, ni.ci_low, ni.p_value, opts.alpha)
    return out


def _status(delta: float, ci_low_oriented: float, p_ni: float, alpha: float) -> tuple[str, str]:
    """Regressed / improved / unchanged from the oriented (better = positive) test."""
    non_inferior = math.isfinite(p_ni) and p_ni < alpha
    if not non_inferior:
        if delta < 0:
            return "regressed", ""
        return "unchanged", "inconclusive: too few cases to show non-inferiority"
    if math.isfinite(ci_low_oriented) and ci_low_oriented > 0:
        return "improved", ""
    return "unchanged", ""


def _oriented_ci(low: float, high: float, sign: float) -> tuple[float | None, float | None]:
    a, b = sign * low + 0.0, sign * high + 0.0
    lo, hi = min(a, b), max(a, b)
    return (lo if math.isfinite(lo) else None, hi if math.isfinite(hi) else None)


def _interval_change(
    change: MetricChange, tonight: MetricValue, previous: MetricValue, direction: str,
    opts: CompareOptions,
) -> MetricChange:
    """Aggregates without per-case values: compare the two nights' intervals."""
    assert tonight.value is not None and previous.value is not None
    change.delta = tonight.value - previous.value
    change.method = "ci_overlap"
    change.n_pairs = 0
    if None in (tonight.ci_low, tonight.ci_high, previous.ci_low, previous.ci_high):
        change.note = "no per-case values and no intervals: shown, not tested"
        return change
    if direction == "zero":  # closer to 0 is better: compare the distances from 0
        t_lo, t_hi = _fold(tonight.ci_low, tonight.ci_high)  # type: ignore[arg-type]
        p_lo, p_hi = _fold(previous.ci_low, previous.ci_high)  # type: ignore[arg-type]
        moved = abs(tonight.value) - abs(previous.value)  # > 0: farther from 0, worse
        apart = t_lo > p_hi or t_hi < p_lo
        if apart and abs(moved) > opts.margin:
            change.status = "regressed" if moved > 0 else "improved"
            change.significant = moved > 0
        change.note = ("aggregate, closer to 0 is better: the nights' CIs of the distance from 0 "
                       f"compared (|x| {abs(previous.value):.3f} → {abs(tonight.value):.3f})")
        return change
    apart = tonight.ci_low > previous.ci_high or tonight.ci_high < previous.ci_low  # type: ignore[operator]
    if direction == "either":
        if apart and abs(change.delta) > opts.margin:
            change.status = "changed"
        change.note = "aggregate with no better direction: the nights' CIs compared"
        return change
    worse = change.delta < 0 if direction == "higher" else change.delta > 0
    if apart and abs(change.delta) > opts.margin:
        change.status = "regressed" if worse else "improved"
        change.significant = worse
    change.note = "aggregate: the nights' CIs compared"
    return change


def _fold(low: float, high: float) -> tuple[float, float]:
    """The interval ``[low, high]`` of ``x`` mapped to ``|x|``: ``{|x| : low <= x <= high}``."""
    if low >= 0:
        return low, high
    if high <= 0:
        return -high, -low
    return 0.0, max(-low, high)


def _holm_significance(items: Sequence[Any], alpha: float) -> None:
    """Holm-adjust ``p_worse`` over the paired tests; mark significant regressions."""
    from aliasgate.stats.multiple import holm

    tested = [c for c in items if c.p_worse is not None and
              getattr(c, "method", "paired").startswith("paired")]
    if not tested:
        return
    ps = [c.p_worse if math.isfinite(c.p_worse) else 1.0 for c in tested]
    for c, p_adj in zip(tested, holm(ps), strict=True):
        c.p_worse_adjusted = float(p_adj)
        if c.status == "regressed":
            c.significant = p_adj < alpha


def _slices(suite: SuiteSnapshot, prev: SuiteSnapshot, opts: CompareOptions) -> list[SliceChange]:
    rows_t = suite.case_rows()
    out: list[SliceChange] = []
    common = [m for m in suite.per_case_metrics() if m in prev.per_case_metrics()]
    groups = sorted({str(r["group"]) for r in rows_t.values() if r.get("group") not in (None, "")})
    if len(groups) < 2:
        return out
    for metric in common:
        t_all, p_all = suite.case_values(metric), prev.case_values(metric)
        direction = opts.direction(suite.name, metric)
        for group in groups:
            ids = [i for i, r in rows_t.items() if str(r.get("group")) == group]
            t = {i: t_all.get(i) for i in ids}
            p = {i: p_all.get(i) for i in ids}
            pairs = [i for i in ids if t[i] is not None and p.get(i) is not None]
            if len(pairs) < opts.min_slice_n:
                continue
            res = _paired_test(t, p, direction, opts)
            if res is None:
                continue
            t_mean = sum(float(t[i]) for i in pairs) / len(pairs)  # type: ignore[arg-type]
            p_mean = sum(float(p[i]) for i in pairs) / len(pairs)  # type: ignore[arg-type]
            out.append(SliceChange(
                suite=suite.name, metric=metric, group=group, status=res["status"],
                significant=False, n_pairs=res["n_pairs"], tonight_mean=t_mean,
                previous_mean=p_mean, delta=res["delta"], ci_low=res["ci_low"],
                ci_high=res["ci_high"], p_value=res["p_value"], p_worse=res["p_worse"],
                direction=direction,
            ))
    return out


_CI_COLUMNS = {"ci_low", "ci_high", "n", "confidence", "n_units"}
_VALUE_COLUMNS = ("value", "mean", "rate", "selection_rate", "score")


def table_series(rows: Sequence[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]] | None:
    """A group table's value column and rows as ``series``, ``group``, ``value``, ``ci_low``,
    ``ci_high``, ``n`` (None: the table has no ``group`` column or no numeric value).

    Args:
        rows: Rows of an aggregate table (``per_group``, ``selection_rates``...).
    """
    if not rows or not any("group" in r for r in rows):
        return None
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    numeric = [k for k in columns if k not in _CI_COLUMNS and k != "group" and
               any(isinstance(r.get(k), int | float) and not isinstance(r.get(k), bool)
                   for r in rows)]
    column = next((c for c in _VALUE_COLUMNS if c in numeric), numeric[0] if numeric else None)
    if column is None:
        return None
    labels = [k for k in columns if k not in numeric and k not in _CI_COLUMNS and k != "group"
              and all(isinstance(r.get(k), str | type(None)) for r in rows)]
    out = []
    for r in rows:
        if r.get("group") in (None, ""):
            continue
        series = ", ".join(f"{k}={r[k]}" for k in labels if r.get(k) not in (None, ""))
        out.append({"series": series, "group": str(r["group"]), "value": _num(r.get(column)),
                    "ci_low": _num(r.get("ci_low")), "ci_high": _num(r.get("ci_high")),
                    "n": _num(r.get("n"))})
    return column, out


def _group_rows(suite: SuiteSnapshot, prev: SuiteSnapshot | None) -> list[GroupRow]:
    out: list[GroupRow] = []
    for table, rows in suite.tables.items():
        parsed = table_series(rows)
        if parsed is None:
            continue
        column, now = parsed
        before: dict[tuple[str, str], dict[str, Any]] = {}
        if prev is not None and table in prev.tables:
            p = table_series(prev.tables[table])
            if p is not None and p[0] == column:
                before = {(r["series"], r["group"]): r for r in p[1]}
        for r in now:
            b = before.get((r["series"], r["group"]))
            prev_value = b["value"] if b else None
            out.append(GroupRow(
                suite=suite.name, table=table, series=r["series"], group=r["group"],
                value=r["value"], ci_low=r["ci_low"], ci_high=r["ci_high"],
                n=int(r["n"]) if r["n"] is not None else None, previous=prev_value,
                previous_ci_low=b["ci_low"] if b else None,
                previous_ci_high=b["ci_high"] if b else None,
                delta=(r["value"] - prev_value)
                if r["value"] is not None and prev_value is not None else None,
                column=column,
            ))
    return out


def _cases(
    suite: SuiteSnapshot, prev: SuiteSnapshot, opts: CompareOptions
) -> tuple[list[CaseChange], list[CaseChange], list[tuple[str, str, str | None]]]:
    rows_t, rows_p = suite.case_rows(), prev.case_rows()
    metrics = [m for m in suite.per_case_metrics() if m in prev.per_case_metrics()]
    regressed, recovered, lost = [], [], []
    for cid, rt in rows_t.items():
        rp = rows_p.get(cid)
        if rp is None:
            continue
        if rt.get("status") == "unmeasured" and rp.get("status") != "unmeasured":
            lost.append((suite.name, cid, rt.get("error")))
        scores = {m: [_num(rp.get(m)), _num(rt.get(m))] for m in metrics}
        worse, better = {}, {}
        for m, (old, new) in scores.items():
            if old is None or new is None:
                continue
            direction = opts.direction(suite.name, m)
            if direction == "either":  # no better direction: a case cannot regress on it
                continue
            if direction == "zero":  # closer to 0 is better
                change = abs(old) - abs(new)
            else:
                change = (1.0 if direction == "higher" else -1.0) * (new - old)
            if change <= -opts.case_drop:
                worse[m] = [old, new]
            elif change >= opts.case_drop:
                better[m] = [old, new]
        if not worse and not better:
            continue
        kind = "regressed" if worse else "recovered"
        regressed_or = regressed if worse else recovered
        regressed_or.append(CaseChange(
            suite=suite.name, id=cid, group=rt.get("group"), kind=kind,
            metrics=worse or better, scores=scores, input=rt.get("input"),
            expected=rt.get("expected"), old_output=rp.get("output"), new_output=rt.get("output"),
            old_error=rp.get("error"), new_error=rt.get("error"),
        ))
    return regressed, recovered, lost


# -- the night's report --------------------------------------------------------------------------


@dataclass
class RoleReport:
    """One role's night (champion, challenger): its run, the comparison and its gate verdict.

    Attributes:
        role: ``champion``, ``challenger``...
        run: Tonight's run (None: the evaluation produced no run).
        comparison: Tonight against the history (None without a run).
        gate: The gate verdict (``report/verdict.json``), or None without a gate.
        error: Why the evaluation failed, if it did.
        exit_code: The evaluation's exit code (``aliasgate nightly``), if known.
        alerting: Whether a red status of this role is a blocking regression (raises alerts).
        status: ``red``, ``amber`` or ``green`` (set by :meth:`assess`).
        reasons: Why, one sentence each, worst first.
    """

    role: str
    run: RunSnapshot | None
    comparison: RunComparison | None
    gate: dict[str, Any] | None = None
    error: str | None = None
    exit_code: int | None = None
    alerting: bool = True
    status: str = "green"
    reasons: list[str] = field(default_factory=list)
    blocking: list[str] = field(default_factory=list)

    def assess(self) -> RoleReport:
        """Set ``status``, ``reasons`` and ``blocking`` (red reasons) from the evidence."""
        red: list[str] = []
        amber: list[str] = []
        who = f"@{self.role}" + (f" {self.run.version_label}" if self.run else "")
        if self.error:
            red.append(f"{who}: evaluation failed — {self.error}")
        gate = self.gate or {}
        if gate.get("verdict") == "fail":
            failed = [r["id"] for r in gate.get("rules", [])
                      if r.get("severity") == "block" and r.get("status") == "fail"]
            red.append(f"{who}: gate {gate.get('gate', {}).get('name', '')!s} failed "
                       f"({', '.join(failed) or gate.get('summary', '')})")
        elif gate.get("verdict") == "incomplete":
            red.append(f"{who}: gate incomplete — {gate.get('summary', '')}")
        warns = [r["id"] for r in gate.get("rules", [])
                 if r.get("severity") == "warn" and r.get("status") in ("fail", "error")]
        if warns:
            amber.append(f"{who}: gate warnings ({', '.join(warns)})")
        comp = self.comparison
        if comp is not None:
            if comp.previous is None:
                amber.append(f"{who}: first night — nothing to compare with yet")
            for c in comp.regressions:
                text = (f"{who}: {c.key} {_arrow(c)} {_fmt(c.previous.value if c.previous else None)}"
                        f" → {_fmt(c.tonight.value if c.tonight else None)} (Δ {_signed(c.delta)}"
                        + (f", 95% CI [{_signed(c.ci_low)}, {_signed(c.ci_high)}]"
                           if c.ci_low is not None else "")
                        + (f", p={_p(c.p_worse_adjusted)}" if c.p_worse_adjusted is not None else "")
                        + ")")
                (red if c.significant else amber).append(
                    text + ("" if c.significant else " — not significant"))
            for s in comp.slice_regressions:
                text = (f"{who}: {s.suite}.{s.metric} in slice '{s.group}' {_fmt(s.previous_mean)}"
                        f" → {_fmt(s.tonight_mean)} (Δ {_signed(s.delta)}, n={s.n_pairs})")
                (red if s.significant else amber).append(
                    text + ("" if s.significant else " — not significant"))
            for c in comp.changes:
                if c.status == "missing":
                    amber.append(f"{who}: {c.key} missing tonight")
                elif c.status == "unmeasured":
                    amber.append(f"{who}: {c.key} unmeasured tonight")
            if comp.newly_unmeasured:
                amber.append(f"{who}: {len(comp.newly_unmeasured)} case(s) measured last night "
                             "are unmeasured tonight")
            for name, (old, new) in comp.dataset_changes.items():
                amber.append(f"{who}: dataset of suite '{name}' changed "
                             f"({(old or '')[:15]}… → {(new or '')[:15]}…): paired on common ids")
            if comp.previous is not None and comp.previous.model_version and self.run and \
                    self.run.model_version and comp.previous.model_version != self.run.model_version:
                amber.append(f"{who}: the alias moved since last night "
                             f"(v{comp.previous.model_version} → v{self.run.model_version})")
        if not self.alerting:
            amber = [*red, *amber]
            red = []
        self.blocking = red
        self.reasons = [*red, *amber]
        self.status = "red" if red else ("amber" if amber else "green")
        return self


@dataclass
class NightReport:
    """The night: every role's report, the overall status and the alerts sent.

    Attributes:
        night: The night's label (``YYYY-MM-DD``).
        model: Registered model name (or the candidate for a single-run report).
        experiment: MLflow experiment.
        tracking_uri: Tracking URI.
        options: Comparison settings.
        roles: One :class:`RoleReport` per role, champion first.
        nights: How many nights the trends cover.
        gate_path: Gate file used, if any.
        title: Page title.
        generated_at: When the report was made (UTC, ISO 8601).
        alerts: Delivery results of the alerts (filled by ``aliasgate nightly``).
        report_path: Where the HTML page was written.
    """

    night: str
    model: str | None
    experiment: str | None
    tracking_uri: str | None
    options: CompareOptions
    roles: list[RoleReport]
    nights: int = 14
    gate_path: str | None = None
    title: str = "aliasgate nightly"
    generated_at: str = field(
        default_factory=lambda: dt.datetime.now(dt.UTC).isoformat(timespec="seconds"))
    alerts: list[dict[str, Any]] = field(default_factory=list)
    report_path: str | None = None

    def __post_init__(self) -> None:
        for r in self.roles:
            r.assess()

    @property
    def status(self) -> str:
        order = {"red": 0, "amber": 1, "green": 2}
        return min((r.status for r in self.roles), key=order.__getitem__, default="amber")

    @property
    def blocking(self) -> list[str]:
        return [b for r in self.roles for b in r.blocking]

    @property
    def reasons(self) -> list[str]:
        return [x for r in self.roles for x in r.reasons]

    @property
    def regressed(self) -> bool:
        """Whether an alerting role regressed (metric, slice or gate), not merely failed to run."""
        return any(
            (r.comparison is not None and (r.comparison.blocking or any(
                s.significant for s in r.comparison.slice_regressions)))
            or (r.gate or {}).get("verdict") == "fail"
            for r in self.roles if r.alerting
        )

    @property
    def status_word(self) -> str:
        """``REGRESSION``, ``FAILED`` (red without a regression: the evaluation broke),
        ``CHECK`` or ``OK``."""
        if self.status == "red":
            return "REGRESSION" if self.regressed else "FAILED"
        return {"amber": "CHECK", "green": "OK"}[self.status]

    @property
    def headline(self) -> str:
        """One line: the status and the worst news."""
        word = self.status_word
        first = (self.blocking or self.reasons or ["no regression, no improvement to report"])[0]
        return f"{word} — {first}"

    def role(self, name: str) -> RoleReport | None:
        return next((r for r in self.roles if r.role == name), None)

    def as_dict(self) -> dict[str, Any]:
        """The ``aliasgate.nightly/1`` document written as the night's ``verdict.json``."""
        roles = {}
        for r in self.roles:
            run = r.run
            roles[r.role] = {
                "status": r.status, "reasons": r.reasons, "blocking": r.blocking,
                "alerting": r.alerting, "error": r.error, "exit_code": r.exit_code,
                "run_id": run.run_id if run else None,
                "run_name": run.run_name if run else None,
                "candidate": run.candidate if run else None,
                "model_name": run.model_name if run else None,
                "model_version": run.model_version if run else None,
                "night": run.night if run else None,
                "git_sha": run.git_sha if run else None,
                "gate": None if r.gate is None else {
                    "verdict": r.gate.get("verdict"), "summary": r.gate.get("summary"),
                    "name": (r.gate.get("gate") or {}).get("name"),
                    "digest": (r.gate.get("gate") or {}).get("digest"),
                    "failed": [x["id"] for x in r.gate.get("rules", [])
                               if x.get("status") in ("fail", "error")],
                },
                "comparison": r.comparison.as_dict() if r.comparison else None,
            }
        return _json_safe({
            "schema": NIGHTLY_SCHEMA,
            "night": self.night,
            "status": self.status,
            "status_word": self.status_word,
            "blocking": bool(self.blocking),
            "headline": self.headline,
            "reasons": self.reasons,
            "blocking_reasons": self.blocking,
            "model": self.model,
            "experiment": self.experiment,
            "tracking_uri": self.tracking_uri,
            "gate_path": self.gate_path,
            "generated_at": self.generated_at,
            "options": self.options.as_dict(),
            "roles": roles,
            "alerts": self.alerts,
            "report_path": self.report_path,
        })


# -- small helpers -------------------------------------------------------------------------------


def _arrow(c: MetricChange) -> str:
    return "fell" if (c.delta or 0) < 0 else "rose"


def _fmt(x: float | None, digits: int = 3) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:.{digits}f}"


def _signed(x: float | None, digits: int = 3) -> str:
    return "—" if x is None or not math.isfinite(x) else f"{x:+.{digits}f}".replace("-", "−")


def _p(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def _num(x: Any) -> float | None:
    if x is None or isinstance(x, bool):
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _json_safe(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
