"""Gate files: the YAML format, its validation with ``file:line`` errors, and every rule type.

A gate file says, with statistics, when a candidate may replace the current champion::

    version: 1
    name: promotion
    confidence: 0.95        # every interval; one-sided tests run at alpha = (1 - confidence) / 2
    seed: 0                 # bootstrap RNG seed, so a verdict is reproducible
    n_resamples: 5000       # bootstrap resamples
    power: 0.8              # for the minimum detectable effect (MDE) reported on failures
    baseline: champion      # registry alias that comparison rules compare against
    rules:
      - id: golden_floor
        type: floor
        metric: golden.exact_match     # "<suite>.<metric>"
        threshold: 0.3                 # passes when the CI lower bound is >= 0.3
      - id: golden_not_worse
        type: non_inferiority
        metric: golden.token_f1
        margin: 0.02                   # passes when Δ > -0.02 is shown (Holm-adjusted p < alpha)
      - id: golden_unmeasured
        type: max_unmeasured
        metric: golden                 # "<suite>": suite-level rule
        max_rate: 0.02
        severity: warn                 # reported, never changes the verdict

Rule types (``type:``), besides the common ``id``, ``metric``, ``severity`` (``block``, the
default, or ``warn``) and ``description``:

* ``floor``: ``threshold``, ``bound`` (``ci_low`` default, ``value`` or ``ci_high``) of the
  bootstrap interval of the mean; passes when ``bound >= threshold``. On a suite-level aggregate
  metric (``Suite.aggregates``: bias scores, gaps...) the interval is the one the suite run
  computed (stats ``source: aggregate``); other rule types cannot use aggregate metrics.
* ``ceiling``: the same with ``bound`` defaulting to ``ci_high``; passes when ``bound <= threshold``.
* ``non_inferiority``: ``margin`` (>= 0, required), ``vs`` (alias, default the file's
  ``baseline``); paired by case id; passes when H0 ``Δ <= -margin`` is rejected.
* ``superiority``: ``margin`` (>= 0, default 0), ``vs``; passes when H0 ``Δ <= margin`` is rejected.
* ``rate``: binary (0/1) metric; ``min`` and/or ``max`` in [0, 1]; passes when the Wilson lower
  bound is >= ``min`` and/or the upper bound <= ``max``. With ``--repeats K`` (per-case values
  are shares of K 0/1 repeats) the rate is the mean share over cases and each case is one unit
  (see :class:`RateRule`).
* ``group_gap``: ``max_gap`` (>= 0), ``min_group_n`` (default 10); groups are ``Case.group``;
  passes when the upper CI bound of the gap between the best and the worst group is <= ``max_gap``.
* ``gap_not_worse``: ``margin`` (>= 0, required); ``metric`` a gap metric of the suite's
  aggregates (``demographic_parity_difference_gender``...) or a per-case metric with
  ``group_by`` (``Case.meta`` key, default ``Case.group``) and ``strata``; ``min_group_n``
  (default 10), ``vs``; paired by case id, clusters
  resampled for both sides at once; passes when H0 "the gap between the best and the worst group
  grew by ``margin`` or more" is rejected (Holm-adjusted with the other blocking comparisons;
  :mod:`aliasgate.gates.gap_rule`).
* ``max_unmeasured``: ``max_rate`` in [0, 1]; the share of the suite's cases that are unmeasured
  (``metric: <suite>``) or of one metric's values (``metric: <suite>.<metric>``).
* ``min_n``: ``min``; passes when the measured n (of the metric, or scored cases of the suite) >= min.

Loading: :func:`load_gate` reads with ``yaml.SafeLoader`` (tags such as ``!!python/object`` are
rejected, never constructed), validates with pydantic (unknown fields are errors) and raises one
:class:`GateFileError` listing every problem as ``path:LINE: rules[2].margin: <message>``; the
line is found by walking the composed YAML node tree along pydantic's error location.

Adding a rule type: one class (here or in a new file) subclassing :class:`RuleBase` (absolute
rules: implement ``evaluate(ctx)``) or :class:`ComparisonRule` (set ``test``), with
``type: Literal["<name>"]`` and its fields; plus one registration line in ``RULES``
(``aliasgate/gates/__init__.py``), or ``RULES.register(...)``, or the ``aliasgate.gates`` entry
point group. ``ctx`` is an :class:`aliasgate.gates.evaluate.RuleContext`: it fetches per-case
values (failing closed with :class:`RuleError`), holds the gate's statistics settings and builds
the :class:`~aliasgate.gates.evaluate.RuleOutcome`.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Union

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializeAsAny,
    StringConstraints,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from aliasgate.text import clip

if TYPE_CHECKING:
    from aliasgate.gates.evaluate import Comparison, RuleContext, RuleOutcome

__all__ = [
    "CeilingRule",
    "ComparisonRule",
    "FloorRule",
    "GateFile",
    "GateFileError",
    "GroupGapRule",
    "MaxUnmeasuredRule",
    "MinNRule",
    "NonInferiorityRule",
    "RateRule",
    "RuleBase",
    "RuleError",
    "SuperiorityRule",
    "fmt_ci",
    "fmt_num",
    "fmt_p",
    "fmt_vs",
    "load_gate",
    "parse_gate",
]

#: A gate file larger than this is refused unread (bytes).
MAX_GATE_BYTES = 1 << 20

MAX_REPORTED_ERRORS = 30
"""At most this many error lines are listed; the rest are summarised as ``... and N more``."""


class GateFileError(ValueError):
    """A gate file is invalid. Each line of the message reads ``path:LINE: location: message``.

    Attributes:
        errors: The individual error lines.
    """

    def __init__(self, errors: Sequence[str]):
        self.errors = list(errors)
        shown = self.errors[:MAX_REPORTED_ERRORS]
        if len(self.errors) > MAX_REPORTED_ERRORS:
            shown.append(f"... and {len(self.errors) - MAX_REPORTED_ERRORS} more")
        super().__init__("\n".join(shown))


class RuleError(Exception):
    """A rule cannot be evaluated (suite errored or missing, no measured values...): status ``error``."""


# -- number formatting shared by rule messages ---------------------------------------------------

_MINUS = "\u2212"


def fmt_num(x: float | None, *, signed: bool = False, digits: int = 3) -> str:
    """``0.712``, ``−0.031`` (a real minus sign), ``+0.012`` when ``signed``; ``n/a`` for None/NaN."""
    if x is None or not math.isfinite(x):
        return "n/a"
    text = f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"
    if text.lstrip("+-").strip("0.") == "":  # -0.000 reads as 0
        text = f"{0.0:+.{digits}f}" if signed else f"{0.0:.{digits}f}"
    return text.replace("-", _MINUS)


def fmt_vs(x: float, limit: float) -> tuple[str, str]:
    """``x`` and ``limit`` with enough digits to tell them apart (``0.4997`` vs ``0.5000``)."""
    for digits in range(3, 8):
        a, b = fmt_num(x, digits=digits), fmt_num(limit, digits=digits)
        if a != b or x == limit or not (math.isfinite(x) and math.isfinite(limit)):
            return a, b
    return a, b


def fmt_ci(low: float | None, high: float | None, *, signed: bool = False) -> str:
    """``[0.660, 0.760]``; ``[undefined]`` when a bound is missing (one independent unit)."""
    if low is None or high is None or not (math.isfinite(low) and math.isfinite(high)):
        return "[CI undefined]"
    return f"[{fmt_num(low, signed=signed)}, {fmt_num(high, signed=signed)}]"


def fmt_p(p: float | None, name: str = "p") -> str:
    """``p = 0.41``, ``p = 0.0031``, ``p < 0.0001`` (two significant digits).

    Args:
        p: The p-value.
        name: What to call it (``p_adj``...).
    """
    if p is None or not math.isfinite(p):
        return f"{name} = n/a"
    if p < 1e-4:
        return f"{name} < 0.0001"
    return f"{name} = {p:.2g}"


# -- common field types --------------------------------------------------------------------------

RuleId = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$")
]
"""Letters, digits, ``_``, ``.``, ``-``."""

MetricRef = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_\-]+(\.\S+)?$")
]
"""``<suite>.<metric>`` or ``<suite>`` (suite names: letters, digits, ``_``, ``-``)."""

Alias = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^@?[A-Za-z0-9_\-]+$")
]
"""A registry alias, with or without the leading ``@`` (stored without it)."""

Probability = Annotated[float, Field(ge=0.0, le=1.0)]

_STRICT = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


# -- rules ---------------------------------------------------------------------------------------


class RuleBase(BaseModel):
    """Fields every rule has; subclasses add theirs and say how they are evaluated.

    Attributes:
        id: Unique within the file; names the rule in verdicts.
        type: The rule type (the discriminator, a ``Literal`` in each subclass).
        metric: ``<suite>.<metric>``, or ``<suite>`` for suite-level rules.
        severity: ``block`` (decides the verdict) or ``warn`` (reported only).
        description: Free text shown in reports.
    """

    model_config = _STRICT

    id: RuleId
    type: str
    metric: MetricRef
    severity: Literal["block", "warn"] = "block"
    description: str = ""

    comparison: ClassVar[bool] = False
    """True for rules that compare the candidate with a baseline (Holm-adjusted together)."""
    metric_required: ClassVar[bool] = True
    """False when ``metric`` may name just a suite."""

    @model_validator(mode="after")
    def _finite(self) -> RuleBase:
        for name, value in self:
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value}")
        return self

    @field_validator("metric")
    @classmethod
    def _metric_shape(cls, v: str) -> str:
        if cls.metric_required and "." not in v:
            raise ValueError(f"this rule type needs '<suite>.<metric>', got {v!r}")
        return v

    def vacuous(self, low: float, high: float) -> str | None:
        """Why this rule would pass whatever the metric's values in ``[low, high]`` (None: it
        can fail). A rule that cannot fail is not a rule: the gate refuses it."""
        return None

    @property
    def suite(self) -> str:
        """The suite part of ``metric``."""
        return self.metric.split(".", 1)[0]

    @property
    def metric_name(self) -> str | None:
        """The metric part of ``metric`` (None for a suite-level rule)."""
        parts = self.metric.split(".", 1)
        return parts[1] if len(parts) == 2 else None

    @property
    def blocking(self) -> bool:
        return self.severity == "block"

    def evaluate(self, ctx: RuleContext) -> RuleOutcome:
        """Evaluate an absolute rule against ``ctx``; raise :class:`RuleError` when it cannot be.

        Args:
            ctx: Results and settings of the gate evaluation.
        """
        raise NotImplementedError(f"{type(self).__name__} must define evaluate(ctx)")


class _BoundRule(RuleBase):
    threshold: float
    bound: Literal["ci_low", "value", "ci_high"]

    def _measure(self, ctx: RuleContext) -> tuple[dict[str, Any], float, str]:
        from aliasgate.stats.bootstrap import bootstrap_mean

        aggregate = ctx.aggregate_bound(self, self.bound, self.threshold)
        if aggregate is not None:  # a suite-level aggregate metric: its CI from the suite run
            return aggregate
        m = ctx.measured(self)
        ci = bootstrap_mean(
            m.values, clusters=m.clusters, confidence=ctx.confidence,
            n_resamples=ctx.n_resamples, seed=ctx.seed,
        )
        picked = {"ci_low": ci.low, "value": ci.estimate, "ci_high": ci.high}[self.bound]
        stats = {
            **m.counts(), "value": ci.estimate, "ci_low": ci.low, "ci_high": ci.high,
            "n_units": ci.n_units, "bound": self.bound, "bound_value": picked,
            "threshold": self.threshold, **ctx.settings(), "n_resamples": ci.n_resamples,
            "method": f"bootstrap_{ci.method}",
        }
        head = f"{self.metric} = {fmt_num(ci.estimate)} {fmt_ci(ci.low, ci.high)} (n = {m.n})"
        return stats, picked, head


class FloorRule(_BoundRule):
    """The metric's mean must not be below ``threshold`` (by default: even at the CI lower bound).

    Attributes:
        threshold: Smallest acceptable value of ``bound``.
        bound: ``ci_low`` (default), ``value`` (point estimate) or ``ci_high``.
    """

    type: Literal["floor"]
    bound: Literal["ci_low", "value", "ci_high"] = "ci_low"

    def vacuous(self, low: float, high: float) -> str | None:
        if self.threshold <= low:
            return f"threshold {fmt_num(self.threshold)} is at or below {fmt_num(low)}, the lowest value"
        return None

    def evaluate(self, ctx: RuleContext) -> RuleOutcome:
        stats, picked, head = self._measure(ctx)
        ok = picked >= self.threshold  # NaN (undefined CI) compares False: fails closed
        a, b = fmt_vs(picked, self.threshold)
        verdict = "at or above" if ok else "below"
        msg = f"{head}: {self.bound} {a} {verdict} floor {b}"
        return ctx.outcome(self, "pass" if ok else "fail", msg, stats,
                           f"{self.bound} {a} {'≥' if ok else '<'} {b}")


class CeilingRule(_BoundRule):
    """The metric's mean must not exceed ``threshold`` (by default: even at the CI upper bound).

    Attributes:
        threshold: Largest acceptable value of ``bound``.
        bound: ``ci_high`` (default), ``value`` or ``ci_low``.
    """

    type: Literal["ceiling"]
    bound: Literal["ci_low", "value", "ci_high"] = "ci_high"

    def vacuous(self, low: float, high: float) -> str | None:
        if self.threshold >= high:
            return f"threshold {fmt_num(self.threshold)} is at or above {fmt_num(high)}, the highest value"
        return None

    def evaluate(self, ctx: RuleContext) -> RuleOutcome:
        stats, picked, head = self._measure(ctx)
        ok = picked <= self.threshold
        a, b = fmt_vs(picked, self.threshold)
        verdict = "at or below" if ok else "above"
        msg = f"{head}: {self.bound} {a} {verdict} ceiling {b}"
        return ctx.outcome(self, "pass" if ok else "fail", msg, stats,
                           f"{self.bound} {a} {'≤' if ok else '>'} {b}")


class RateRule(RuleBase):
    """A binary metric's rate must be shown above ``min`` and/or below ``max`` (Wilson interval).

    With clusters (cases sharing ``Case.cluster``), the Wilson bounds assume independence and
    would be too narrow, so the wider of the Wilson and the cluster-bootstrap bounds is used.

    With repeats (``--repeats K``: each case asked K times), a case's value is the mean of its K
    repeat values, e.g. 2/3 -- still a rate, if every repeat value is 0/1 (checked on the
    ``repeat_values`` the runner keeps, else on ``value * K`` being whole; anything else is an
    error: "needs a binary metric"). The rule then keeps the case as the unit:

    * the rate is the mean over the measured cases of each case's success share -- the suite
      metric's value, and ``successes / samples`` when every case has K repeats;
    * the interval is the wider of (a) the Wilson interval for that rate with ``n`` = the number
      of cases (not of samples: a case's repeats share its prompt and are correlated, so counting
      them as independent trials would make the interval too narrow by up to ``sqrt(K)``; a share
      varies less than a single 0/1 draw, so this is conservative) and (b) the bootstrap (by
      cluster when there are clusters) of the per-case shares, which accounts for the repeats'
      correlation and for clusters. ``stats["method"]`` says so: ``wilson_cases+bootstrap_...``.

    A majority vote per case (success if most repeats succeeded) is deliberately not used: it
    rounds a case right 2 times in 3 up to a certain success and would overstate a rate gated
    with ``min`` (or understate one gated with ``max``).

    Attributes:
        min: Smallest acceptable rate: passes when the lower bound >= ``min``.
        max: Largest acceptable rate: passes when the upper bound <= ``max``.
    """

    type: Literal["rate"]
    min: Probability | None = None
    max: Probability | None = None

    @model_validator(mode="after")
    def _limits(self) -> RateRule:
        if self.min is None and self.max is None:
            raise ValueError("a rate rule needs min and/or max")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) is above max ({self.max})")
        if (self.min is None or self.min <= 0) and (self.max is None or self.max >= 1):
            raise ValueError("vacuous: a rate is always >= 0 and <= 1, so this rule passes on "
                             "any result (give a min above 0 or a max below 1)")
        return self

    def evaluate(self, ctx: RuleContext) -> RuleOutcome:
        from aliasgate.stats.binary import wilson_interval

        m = ctx.measured(self)
        repeats = _repeats_of(m)
        if any(k > 1 for k in repeats):
            return self._evaluate_repeated(ctx, m, repeats)
        bad = sorted({v for v in m.values if v not in (0.0, 1.0)})
        if bad:
            raise RuleError(
                f"a rate rule needs a binary (0/1) metric; {self.metric} has values such as "
                + ", ".join(fmt_num(v) for v in bad[:3])
            )
        successes = int(sum(m.values))
        low, high = wilson_interval(successes, m.n, confidence=ctx.confidence)
        method = "wilson"
        if m.n_units < m.n:  # clustered: take the wider of Wilson and the cluster bootstrap
            from aliasgate.stats.bootstrap import bootstrap_mean

            ci = bootstrap_mean(m.values, clusters=m.clusters, confidence=ctx.confidence,
                                n_resamples=ctx.n_resamples, seed=ctx.seed)
            low = min(low, ci.low) if math.isfinite(ci.low) else math.nan
            high = max(high, ci.high) if math.isfinite(ci.high) else math.nan
            method = f"wilson+cluster_bootstrap_{ci.method}"
        ok, checks = self._checks(low, high)
        rate = successes / m.n
        stats = {
            **m.counts(), "successes": successes, "rate": rate, "ci_low": low, "ci_high": high,
            "n_units": m.n_units, "min": self.min, "max": self.max, **ctx.settings(),
            "method": method,
        }
        msg = (f"{self.metric}: rate {fmt_num(rate)} ({successes}/{m.n}) {fmt_ci(low, high)}: "
               + ", ".join(checks))
        return ctx.outcome(self, "pass" if ok else "fail", msg, stats, "; ".join(checks))

    def _checks(self, low: float, high: float) -> tuple[bool, list[str]]:
        checks, ok = [], True
        if self.min is not None:
            good = low >= self.min
            ok &= good
            a, b = fmt_vs(low, self.min)
            checks.append(f"lower bound {a} {'≥' if good else '<'} min {b}")
        if self.max is not None:
            good = high <= self.max
            ok &= good
            a, b = fmt_vs(high, self.max)
            checks.append(f"upper bound {a} {'≤' if good else '>'} max {b}")
        return ok, checks

    def _evaluate_repeated(self, ctx: RuleContext, m: Any, repeats: list[int]) -> RuleOutcome:
        """The rate over cases asked K > 1 times (see the class docstring)."""
        from aliasgate.stats.bootstrap import bootstrap_mean

        by_id = {c.case.id: c for c in m.suite.cases}
        wins: list[int] = []
        bad: list[float] = []
        for cid, value, k in zip(m.ids, m.values, repeats, strict=True):
            won = _repeat_successes(by_id[cid].scores.get(str(self.metric_name)), value, k)
            if won is None:
                bad.append(value)
            else:
                wins.append(won)
        if bad:
            raise RuleError(
                f"a rate rule needs a binary (0/1) metric; with repeats, every repeat's value must "
                f"be 0/1, but {self.metric} has case values such as "
                + ", ".join(fmt_num(v) for v in sorted(set(bad))[:3])
                + f" over {max(repeats)} repeats"
            )
        rate = sum(m.values) / m.n
        successes, samples = sum(wins), sum(repeats)
        low, high = _wilson_share(rate, m.n, ctx.confidence)
        ci = bootstrap_mean(m.values, clusters=m.clusters, confidence=ctx.confidence,
                            n_resamples=ctx.n_resamples, seed=ctx.seed)
        low = min(low, ci.low) if math.isfinite(ci.low) else math.nan
        high = max(high, ci.high) if math.isfinite(ci.high) else math.nan
        ok, checks = self._checks(low, high)
        k_text = str(repeats[0]) if len(set(repeats)) == 1 else f"{min(repeats)}-{max(repeats)}"
        stats = {
            **m.counts(), "successes": successes, "samples": samples, "repeats": max(repeats),
            "rate": rate, "ci_low": low, "ci_high": high, "n_units": m.n_units,
            "min": self.min, "max": self.max, **ctx.settings(),
            "method": f"wilson_cases+bootstrap_{ci.method}_case_means",
        }
        msg = (f"{self.metric}: rate {fmt_num(rate)} (mean over {m.n} cases of the share of their "
               f"{k_text} repeats that succeeded; {successes}/{samples} samples, each case one "
               f"unit) {fmt_ci(low, high)}: " + ", ".join(checks))
        return ctx.outcome(self, "pass" if ok else "fail", msg, stats, "; ".join(checks))


def _repeats_of(m: Any) -> list[int]:
    """How many times each measured case of ``m`` (a :class:`Measured`) was asked."""
    by_id = {c.case.id: c for c in m.suite.cases}
    run_k = max(int(getattr(m.suite, "repeats", 1) or 1), 1)
    out = []
    for cid in m.ids:
        k = int(getattr(by_id[cid], "repeats", 1) or 1)
        out.append(k if k > 1 else run_k)
    return out


def _repeat_successes(score: Any, value: float, k: int) -> int | None:
    """Successful repeats of a case whose value is the mean of ``k`` repeats; None unless every
    repeat value is 0/1 (read from the score's ``repeat_values``, else from ``value * k``)."""
    detail = getattr(score, "detail", None)
    values = detail.get("repeat_values") if isinstance(detail, Mapping) else None
    if isinstance(values, Sequence) and not isinstance(values, str) and len(values) == k:
        if all(v in (0, 1) and not isinstance(v, str) for v in values):
            return int(sum(values))
        return None
    wins = value * k
    if 0.0 <= value <= 1.0 and abs(wins - round(wins)) < 1e-9:
        return int(round(wins))
    return None


def _wilson_share(rate: float, n: int, confidence: float) -> tuple[float, float]:
    """The Wilson interval for a share ``rate`` observed over ``n`` units (``rate * n`` need not
    be whole); equals :func:`aliasgate.stats.binary.wilson_interval` when it is."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf((1.0 + confidence) / 2.0)
    z2 = z * z
    centre = (rate + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(max(rate * (1 - rate), 0.0) / n + z2 / (4 * n * n))
    low = 0.0 if rate <= 0.0 else max(0.0, centre - half)
    high = 1.0 if rate >= 1.0 else min(1.0, centre + half)
    return low, high


class GroupGapRule(RuleBase):
    """The gap between the best and the worst group (``Case.group``) must be shown small.

    Groups with fewer than ``min_group_n`` measured cases are left out (and reported); fewer than
    two groups left is an error (nothing to compare, so the gate cannot pass).

    Attributes:
        max_gap: Largest acceptable gap: passes when the gap's CI upper bound is <= ``max_gap``.
        min_group_n: Smallest group (measured cases) taken into account.
    """

    type: Literal["group_gap"]
    max_gap: float = Field(ge=0.0)

    def vacuous(self, low: float, high: float) -> str | None:
        if self.max_gap >= high - low:
            return (f"max_gap {fmt_num(self.max_gap)} is at least the whole range "
                    f"{fmt_num(high - low)} of the metric")
        return None
    min_group_n: int = Field(10, ge=1)

    def evaluate(self, ctx: RuleContext) -> RuleOutcome:
        from aliasgate.stats.groups import group_gap

        m = ctx.measured(self)
        sizes: dict[str, int] = {}
        for g in m.groups:
            if g is not None:
                sizes[g] = sizes.get(g, 0) + 1
        kept = {g for g, k in sizes.items() if k >= self.min_group_n}
        small = {g: k for g, k in sorted(sizes.items()) if g not in kept}
        ungrouped = sum(1 for g in m.groups if g is None)
        if len(kept) < 2:
            found = ", ".join(f"{g} n={k}" for g, k in sorted(sizes.items())) or "none"
            raise RuleError(
                f"{self.metric}: fewer than 2 groups with >= {self.min_group_n} measured cases "
                f"(groups: {found}; {ungrouped} cases without a group)"
            )
        idx = [i for i, g in enumerate(m.groups) if g in kept]
        res = group_gap(
            [m.values[i] for i in idx], [m.groups[i] for i in idx],
            clusters=None if m.clusters is None else [m.clusters[i] for i in idx],
            confidence=ctx.confidence, n_resamples=ctx.n_resamples, seed=ctx.seed,
        )
        ok = res.ci_high <= self.max_gap
        hi, lo = res.worst
        stats = {
            **m.counts(), **res.as_dict(), "max_gap": self.max_gap,
            "min_group_n": self.min_group_n, "excluded_groups": small, "ungrouped": ungrouped,
            **ctx.settings(), "n_resamples": res.n_resamples, "method": res.method,
        }
        a, b = fmt_vs(res.ci_high, self.max_gap)
        relation = f"{'≤' if ok else '>'} max {b}"
        msg = (
            f"{self.metric}: gap {fmt_num(res.gap)} {fmt_ci(res.ci_low, res.ci_high)} between "
            f"{hi} ({fmt_num(res.groups[hi].mean)}, n = {res.groups[hi].n}) and {lo} "
            f"({fmt_num(res.groups[lo].mean)}, n = {res.groups[lo].n}) over {len(kept)} groups: "
            f"upper bound {a} {relation}"
        )
        if small:
            msg += " (left out, n < {}: {})".format(
                self.min_group_n, ", ".join(f"{g} n={k}" for g, k in small.items()))
        return ctx.outcome(self, "pass" if ok else "fail", msg, stats,
                           f"gap {fmt_num(res.gap)} {fmt_ci(res.ci_low, res.ci_high)} {relation}")


class MaxUnmeasuredRule(RuleBase):
    """At most ``max_rate`` of the cases may be unmeasured (failed calls, or unscored metric values).

    Attributes:
        max_rate: Largest acceptable unmeasured share, in [0, 1].
    """

    type: Literal["max_unmeasured"]
    max_rate: Probability
    metric_required: ClassVar[bool] = False

    def evaluate(self, ctx: RuleContext) -> RuleOutcome:
        sr = ctx.candidate_suite(self)
        if self.metric_name is None:
            unmeasured, total, what = sr.unmeasured, sr.n, "cases"
        else:
            ctx.known_metric(self, sr)
            values = sr.values(self.metric_name).values()
            unmeasured = sum(1 for v in values if v is None or not math.isfinite(v))
            total, what = len(values), "values"
        if total == 0:
            raise RuleError(f"suite '{self.suite}' has no cases")
        rate = unmeasured / total
        ok = rate <= self.max_rate
        a, b = fmt_vs(rate, self.max_rate)
        relation = f"{'≤' if ok else '>'} max {b}"
        msg = f"{self.metric}: {unmeasured}/{total} {what} unmeasured (rate {a}) {relation}"
        stats = {"suite": self.suite, "metric": self.metric_name, "unmeasured": unmeasured,
                 "n_cases": total, "rate": rate, "max_rate": self.max_rate}
        return ctx.outcome(self, "pass" if ok else "fail", msg, stats,
                           f"{unmeasured}/{total} = {a} {relation}")


class MinNRule(RuleBase):
    """At least ``min`` measured values (or scored cases, for ``metric: <suite>``).

    Attributes:
        min: Smallest acceptable measured n.
    """

    type: Literal["min_n"]
    min: int = Field(ge=1)
    metric_required: ClassVar[bool] = False

    def evaluate(self, ctx: RuleContext) -> RuleOutcome:
        sr = ctx.candidate_suite(self)
        if self.metric_name is None:
            n, total = sr.n - sr.unmeasured, sr.n
        else:
            ctx.known_metric(self, sr)
            values = sr.values(self.metric_name).values()
            n = sum(1 for v in values if v is not None and math.isfinite(v))
            total = len(values)
        ok = n >= self.min
        relation = f"{'≥' if ok else '<'} min {self.min}"
        msg = f"{self.metric}: measured n = {n} (of {total} cases) {relation}"
        stats = {"suite": self.suite, "metric": self.metric_name, "n": n, "n_cases": total,
                 "unmeasured": total - n, "min": self.min}
        return ctx.outcome(self, "pass" if ok else "fail", msg, stats, f"n {n} {relation}")


class ComparisonRule(RuleBase):
    """A paired comparison of the candidate with a baseline alias, over cases measured in both.

    Evaluation runs in two steps so that the p-values of all blocking comparison rules can be
    Holm-adjusted together: :meth:`compare` computes, :meth:`judge` decides once
    ``comparison.p_adjusted`` is set.

    Attributes:
        vs: Alias compared against (default: the gate file's ``baseline``).
        margin: Non-negative margin of the test.
    """

    comparison: ClassVar[bool] = True
    test: ClassVar[Literal["non_inferiority", "superiority"]]

    vs: Alias | None = None
    margin: float = Field(ge=0.0)

    @field_validator("vs")
    @classmethod
    def _no_at(cls, v: str | None) -> str | None:
        return None if v is None else v.lstrip("@")

    def compare(self, ctx: RuleContext) -> Comparison:
        """Pair the values and run the test (raw p-value).

        Args:
            ctx: Results and settings of the gate evaluation.
        """
        return ctx.compare(self, test=self.test, margin=self.margin)

    def judge(self, cmp: Comparison, ctx: RuleContext) -> RuleOutcome:
        """Decide from the adjusted p-value: pass iff ``p_adjusted < alpha``.

        Args:
            cmp: The comparison, with ``p_adjusted`` set.
            ctx: Results and settings of the gate evaluation.
        """
        r = cmp.result
        ok = cmp.p_adjusted < ctx.alpha  # NaN fails closed
        p_text = fmt_p(cmp.p_adjusted, "p_adj")
        head = (
            f"{self.metric}: Δ = {fmt_num(r.delta, signed=True)} "
            f"{fmt_ci(r.ci_low, r.ci_high, signed=True)} vs {ctx.baseline_text(self)}, "
            f"margin {self.margin:g}"
        )
        detail = f"{p_text}, n = {r.n}"
        if cmp.n_unpaired:
            detail += f", {cmp.n_unpaired} unpaired"
        if ok:
            word = "non-inferior" if self.test == "non_inferiority" else "superior"
            msg = f"{head}: {word} ({detail})"
        else:
            msg = f"{head}: {self._not_shown(r, detail)}"
        numbers = f"Δ {fmt_num(r.delta, signed=True)} {fmt_ci(r.ci_low, r.ci_high, signed=True)}, {p_text}"
        return ctx.outcome(self, "pass" if ok else "fail", msg, cmp.stats(), numbers)

    def _not_shown(self, r: Any, detail: str) -> str:
        mde = f"MDE = {fmt_num(r.mde)}"
        if self.test == "non_inferiority":
            if math.isfinite(r.ci_high) and r.ci_high < -self.margin:
                return f"non-inferiority NOT shown: worse by more than the margin ({detail}, {mde})"
            return f"non-inferiority NOT shown ({detail}, {mde})"
        if math.isfinite(r.ci_high) and r.ci_high < self.margin:
            return f"not shown better: the CI lies below the margin ({detail}, {mde})"
        return (f"not shown better, the difference is within noise ({detail}, {mde}: "
                "smaller true gains are not reliably detectable at this n)")


class NonInferiorityRule(ComparisonRule):
    """The candidate must be shown not worse than the baseline by more than ``margin``.

    Attributes:
        margin: Largest acceptable loss (required, >= 0); H0 is ``Δ <= -margin``.
    """

    type: Literal["non_inferiority"]
    test: ClassVar[Literal["non_inferiority"]] = "non_inferiority"
    margin: float = Field(ge=0.0)

    def vacuous(self, low: float, high: float) -> str | None:
        if self.margin >= high - low:
            return (f"margin {fmt_num(self.margin)} is at least the whole range "
                    f"{fmt_num(high - low)} of the metric")
        return None


class SuperiorityRule(ComparisonRule):
    """The candidate must be shown better than the baseline by more than ``margin``.

    Attributes:
        margin: Required gain (>= 0, default 0); H0 is ``Δ <= margin``.
    """

    type: Literal["superiority"]
    test: ClassVar[Literal["superiority"]] = "superiority"
    margin: float = Field(0.0, ge=0.0)


# -- the gate file -------------------------------------------------------------------------------


class GateFile(BaseModel):
    """A validated gate file. Build it with :func:`load_gate` or :func:`parse_gate`.

    Attributes:
        version: Format version (1).
        name: Gate name, shown in verdicts.
        description: Free text.
        confidence: Confidence of every interval; one-sided tests use ``(1 - confidence) / 2``.
        seed: Bootstrap RNG seed.
        n_resamples: Bootstrap resamples (at least 1000).
        power: Power used for the minimum detectable effects reported.
        baseline: Default alias compared against (``champion``; stored without ``@``).
        min_pairs: Fewest cases measured by both sides for a comparison to decide at all;
            fewer makes the rule an error (the verdict incomplete), never a pass.
        min_clusters: Fewest distinct clusters among those pairs, when the cases are clustered
            (a cluster bootstrap of two clusters knows nothing).
        allow_models: Registered-model names (``fnmatch`` patterns) that a gated run may load
            from the registry at all. Loading a registered pyfunc runs its code, so registry
            write access is code execution on the gate machine; with a list, any other
            ``models:/`` name (and every ``runs:/`` URI) is refused before it is loaded.
        rules: The rules, in file order (at least one, at least one blocking, unique ids).
    """

    model_config = _STRICT

    version: Literal[1]
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
    description: str = ""
    confidence: float = Field(0.95, ge=0.5, lt=1.0)
    seed: int = Field(0, ge=0)
    n_resamples: int = Field(5000, ge=1000, le=1_000_000)
    power: float = Field(0.8, gt=0.0, lt=1.0)
    baseline: Alias = "champion"
    min_pairs: int = Field(20, ge=2)
    min_clusters: int = Field(5, ge=2)
    allow_models: list[Annotated[str, StringConstraints(min_length=1)]] = Field(default_factory=list)

    def allows(self, uri: str) -> bool:
        """Whether a gated run may load ``uri`` (always, without ``allow_models``)."""
        if not self.allow_models or not uri.startswith(("models:/", "runs:/")):
            return True
        if uri.startswith("runs:/"):
            return False
        import fnmatch

        name = re.split(r"[/@]", uri.removeprefix("models:/"), maxsplit=1)[0]
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in self.allow_models)
    rules: list[SerializeAsAny[RuleBase]] = Field(min_length=1)

    _path: str = PrivateAttr("<gate>")
    _digest: str = PrivateAttr("")
    _root: Any = PrivateAttr(None)

    @field_validator("baseline")
    @classmethod
    def _no_at(cls, v: str) -> str:
        return v.lstrip("@")

    @classmethod
    def model_validate(cls, obj: Any, **kwargs: Any) -> GateFile:
        """Validate a mapping; on ``GateFile`` itself, rules validate as the registered types.

        Prefer :func:`parse_gate`/:func:`load_gate`: their errors name YAML lines.
        """
        if cls is GateFile:
            from aliasgate.gates import RULES

            return _gate_model(tuple(RULES.names())).model_validate(obj, **kwargs)
        return super().model_validate(obj, **kwargs)

    @property
    def path(self) -> str:
        """Where the file was read from (``<gate>`` when parsed from a string without a name)."""
        return self._path

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of the file's bytes."""
        return self._digest

    @property
    def alpha(self) -> float:
        """One-sided significance level of the comparison tests, ``(1 - confidence) / 2``."""
        return round((1.0 - self.confidence) / 2.0, 12)

    def suites(self) -> list[str]:
        """Suites the rules use, in first-use order."""
        return list(dict.fromkeys(r.suite for r in self.rules))

    def baselines(self) -> list[str]:
        """Aliases the comparison rules compare against, in first-use order."""
        return list(dict.fromkeys(self.vs_of(r) for r in self.rules if r.comparison))

    def vs_of(self, rule: RuleBase) -> str:
        """The alias ``rule`` compares against (its ``vs``, else the file's ``baseline``)."""
        return getattr(rule, "vs", None) or self.baseline

    def line_of(self, *loc: str | int) -> int:
        """The YAML line of a location such as ``("rules", 2, "metric")`` (nearest existing)."""
        return _line_of(self._root, loc) if self._root is not None else 1

    def check_metrics(
        self, available: Mapping[str, Iterable[str]], *, raise_errors: bool = True
    ) -> list[str]:
        """Check that every rule names a suite and metric that exist.

        Args:
            available: Suite name -> its metric names (``exact_match`` or ``golden.exact_match``).
            raise_errors: Raise :class:`GateFileError` when a name is unknown (else return them).

        Returns:
            The error lines (``path:LINE: rules[1].metric: unknown metric 'golden.f1' (known:
            golden.exact_match, ...)``), empty when every name is known.
        """
        known = {
            suite: sorted({m.split(".", 1)[1] if m.startswith(f"{suite}.") else m for m in names})
            for suite, names in available.items()
        }
        errors = []
        for i, rule in enumerate(self.rules):
            where = f"{self.path}:{self.line_of('rules', i, 'metric')}: rules[{i}].metric"
            if rule.suite not in known:
                suites = ", ".join(sorted(known)) or "none"
                errors.append(f"{where}: unknown suite '{rule.suite}' (known: {suites})")
            elif rule.metric_name is not None and rule.metric_name not in known[rule.suite]:
                names = ", ".join(f"{rule.suite}.{m}" for m in known[rule.suite]) or "none"
                errors.append(f"{where}: unknown metric '{rule.metric}' (known: {names})")
        if errors and raise_errors:
            raise GateFileError(errors)
        return errors


def load_gate(path: str | Path) -> GateFile:
    """Read and validate a gate file.

    Args:
        path: The YAML file.

    Raises:
        GateFileError: unreadable file, invalid YAML, a YAML tag, or any schema violation; every
            problem is one ``path:LINE: location: message`` line.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:  # bounded: /dev/zero or a huge file is refused, not read whole
            data = fh.read(MAX_GATE_BYTES + 1)
    except OSError as exc:
        raise GateFileError([f"{p}:1: cannot read gate file: {exc.strerror or exc}"]) from None
    if len(data) > MAX_GATE_BYTES:
        raise GateFileError([f"{p}:1: not a gate file: larger than {MAX_GATE_BYTES // 1024} KiB"])
    return parse_gate(data, path=str(p))


def parse_gate(text: str | bytes, *, path: str = "<gate>") -> GateFile:
    """Validate gate-file content (see :func:`load_gate`).

    Args:
        text: The YAML content; its digest is the sha256 of its (UTF-8) bytes.
        path: Name used in error messages and verdicts.

    Raises:
        GateFileError: as :func:`load_gate`.
    """
    raw = text.encode("utf-8") if isinstance(text, str) else text
    digest = "sha256:" + hashlib.sha256(raw).hexdigest()
    try:
        content = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise GateFileError([f"{path}:1: not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    try:
        root, data = _read_yaml(content, path)
        located = [(line, loc, msg) for loc, line, msg in _duplicate_keys(root)]
        gate = None
        if not isinstance(data, dict):
            got = "an empty file" if data is None else type(data).__name__
            located.append((_line_of(root, ()), (), f"expected a mapping, got {got}"))
        else:
            gate, problems = _validate(data)
            located += [(_line_of(root, loc), loc, msg) for loc, msg in problems]
    except RecursionError:
        raise GateFileError([f"{path}:1: not a gate file: nested too deeply"]) from None
    located.sort(key=lambda item: item[0])  # stable: same-line problems keep their order
    errors = [f"{path}:{line}: {_loc_text(loc)}: {clip(msg)}" for line, loc, msg in located]
    if errors or gate is None:
        raise GateFileError(errors)
    gate._path, gate._digest, gate._root = path, digest, root
    return gate


# -- YAML ----------------------------------------------------------------------------------------


def _read_yaml(content: str, path: str) -> tuple[yaml.Node | None, Any]:
    """Compose and construct with the safe loader; errors name their line."""
    try:
        loader = yaml.SafeLoader(content)  # control characters are refused here already
    except yaml.YAMLError as exc:
        raise GateFileError([f"{path}:{_mark_line(exc, content)}: invalid YAML: "
                             f"{clip(str(exc))}"]) from None
    try:
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 1
        tag = isinstance(exc, yaml.constructor.ConstructorError)
        what = "YAML tag not allowed (only plain YAML is read)" if tag else "invalid YAML"
        problem = exc.problem or exc.context or "unreadable"
        if exc.context and exc.problem and not tag:
            start = f" at line {exc.context_mark.line + 1}" if exc.context_mark is not None else ""
            problem += f" ({exc.context}{start})"
        raise GateFileError([f"{path}:{line}: {what}: {problem}"]) from None
    except yaml.YAMLError as exc:
        raise GateFileError([f"{path}:{_mark_line(exc, content)}: invalid YAML: "
                             f"{clip(str(exc))}"]) from None
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        raise GateFileError([f"{path}:1: invalid YAML value: {clip(str(exc))}"]) from None
    finally:
        loader.dispose()
    return root, data


def _mark_line(exc: BaseException, content: str = "") -> int:
    """The 1-based line a YAML error points at (a reader error: from its character position)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if mark is not None:
        return int(mark.line) + 1
    position = getattr(exc, "position", None)
    return content.count("\n", 0, position) + 1 if isinstance(position, int) else 1


def _line_of(root: yaml.Node | None, loc: Sequence[str | int]) -> int:
    """Line of the deepest node reached along ``loc`` (a key's own line for mapping entries)."""
    if root is None:
        return 1
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    node, line = value, key.start_mark.line + 1
                    break
            else:
                break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _duplicate_keys(root: yaml.Node | None) -> list[tuple[tuple[str | int, ...], int, str]]:
    """Keys repeated in one mapping (PyYAML silently keeps the last one): ``(loc, line, message)``."""
    found: list[tuple[tuple[str | int, ...], int, str]] = []

    def walk(node: yaml.Node, loc: tuple[str | int, ...], seen_nodes: set[int]) -> None:
        if id(node) in seen_nodes:  # anchors/aliases may share nodes
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                name = key.value if isinstance(key, yaml.ScalarNode) else None
                if name is not None and name in first:
                    found.append((loc + (name,), key.start_mark.line + 1,
                                  f"duplicate key '{name}' (first at line {first[name]})"))
                elif name is not None:
                    first[name] = key.start_mark.line + 1
                walk(value, loc + (name,) if name is not None else loc, seen_nodes)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, loc + (i,), seen_nodes)

    if root is not None:
        walk(root, (), set())
    return found


def _loc_text(loc: Sequence[str | int]) -> str:
    """``("rules", 2, "margin")`` -> ``rules[2].margin``; ``()`` -> ``gate file``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "gate file"


# -- validation ----------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _gate_model(names: tuple[str, ...]) -> type[GateFile]:
    """``GateFile`` whose ``rules`` is the union of the registered rule classes, on ``type``."""
    from aliasgate.gates import RULES

    classes = tuple(RULES.get(n) for n in names)
    union = Annotated[Union[classes], Field(discriminator="type")]  # noqa: UP007 - dynamic tuple
    return create_model(
        "GateFile", __base__=GateFile,
        rules=(Annotated[list[SerializeAsAny[union]], Field(min_length=1)], ...),
    )


def _validate(data: dict[str, Any]) -> tuple[GateFile | None, list[tuple[tuple[str | int, ...], str]]]:
    from aliasgate.gates import RULES

    names = tuple(RULES.names())
    problems: list[tuple[tuple[str | int, ...], str]] = []
    rules = data.get("rules")
    first: dict[str, int] = {}
    for i, item in enumerate(rules if isinstance(rules, list) else []):
        rule_id = item.get("id") if isinstance(item, dict) else None
        if isinstance(rule_id, str) and rule_id.strip() in first:
            problems.append((("rules", i, "id"),
                             f"duplicate rule id '{rule_id.strip()}' (also rules[{first[rule_id.strip()]}])"))
        elif isinstance(rule_id, str):
            first[rule_id.strip()] = i
    try:
        gate = _gate_model(names).model_validate(data)
    except ValidationError as exc:
        return None, problems + [_problem(err, data, names) for err in exc.errors()]
    if not any(r.blocking for r in gate.rules):
        problems.append((("rules",), "at least one rule must have severity: block "
                                     "(a gate of warnings only would always pass)"))
    return (None if problems else gate), problems


def _problem(err: Any, data: dict[str, Any], names: tuple[str, ...]) -> tuple[tuple[str | int, ...], str]:
    """A pydantic error as ``(loc, readable message)``, the union tag removed from ``loc``."""
    loc = tuple(err["loc"])
    kind = err["type"]
    rules = data.get("rules")
    item = rules[loc[1]] if (
        len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int)
        and isinstance(rules, list) and loc[1] < len(rules)
    ) else None
    if isinstance(item, dict) and len(loc) >= 3 and loc[2] == item.get("type"):
        loc = loc[:2] + loc[3:]
    known = ", ".join(names)
    if kind == "union_tag_invalid":
        return loc + ("type",), f"unknown rule type {err['ctx']['tag']!r} (known: {known})"
    if kind == "union_tag_not_found":
        return loc + ("type",), f"missing field 'type' (known rule types: {known})"
    if kind == "missing":
        return loc, f"missing required field '{loc[-1]}'" if loc else "missing required field"
    if kind == "extra_forbidden":
        allowed = _allowed_fields(loc[:-1], item)
        return loc, f"unknown field '{loc[-1]}'" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    msg = str(err["msg"]).removeprefix("Value error, ")
    value = err.get("input")
    if kind.endswith("_type") or kind.endswith("_parsing") or kind == "literal_error":
        if isinstance(value, (str, int, float, bool)) or value is None:
            msg += f" (got {value!r})"
    return loc, msg


def _allowed_fields(parent: tuple[str | int, ...], item: Any) -> list[str]:
    if parent == ():
        return [f for f in GateFile.model_fields]
    if len(parent) == 2 and parent[0] == "rules" and isinstance(item, dict):
        from aliasgate.gates import RULES

        rule_type = item.get("type")
        if isinstance(rule_type, str) and rule_type in RULES:
            return list(RULES.get(rule_type).model_fields)
    return []
