"""``gap_not_worse``: a bias slice's group gap must not grow against the champion (paired).

A ``ceiling`` on a demographic-parity difference only says the gap is below a fixed line; a
new model may double it and still pass. This rule compares the candidate's gap between the best
and the worst group with the baseline's on the same cases (paired by case id, clusters resampled
once for both sides; :func:`aliasgate.stats.gap_compare.compare_gaps_paired`) and passes when
non-inferiority at ``margin`` is shown: H0 "the gap grew by ``margin`` or more" is rejected at
the gate's one-sided alpha, after the Holm adjustment shared with the other blocking comparison
rules::

    - id: parity-gender-not-worse
      type: gap_not_worse
      metric: bias_decisions.demographic_parity_difference_gender
      margin: 0.25                      # the gap may grow by less than 0.25 (shown)
    - id: refusal-gap-not-worse
      type: gap_not_worse
      metric: bias_decisions.refused    # a per-case metric: its mean per group...
      group_by: gender                  # ...by Case.meta["gender"] (default: Case.group)
      margin: 0.10

``metric`` names either a gap metric of the suite's aggregates (``<m>_gap``,
``demographic_parity_difference_<key>``, ``yes_rate_gap``: its per-case metric, group key and
strata are the aggregate's, ``SuiteResult.gap_specs``; ``group_by``/``strata`` given in the rule
override them) or a per-case metric, whose group means are compared.

Groups with fewer than ``min_group_n`` paired cases are left out (and reported); a case without
a group (or stratum) label is left out and counted in ``ungrouped``; fewer than two groups left
in every stratum is an error (the rule errs: fails closed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from aliasgate.gates.evaluate import Comparison
from aliasgate.gates.schema import ComparisonRule, RuleError, fmt_ci, fmt_num, fmt_p

if TYPE_CHECKING:
    from aliasgate.datasets.base import Case
    from aliasgate.gates.evaluate import RuleContext, RuleOutcome
    from aliasgate.stats.gap_compare import PairedGapComparison

__all__ = ["GapComparison", "GapNotWorseRule"]


def _label(case: Case, key: str | None) -> str | None:
    if key in (None, "group"):
        return case.group
    value = case.meta.get(key)
    return None if value is None else str(value)


@dataclass
class GapComparison(Comparison):
    """A :class:`~aliasgate.gates.evaluate.Comparison` whose result is a paired gap comparison.

    Attributes:
        excluded_groups: Group -> paired cases, for groups left out (fewer than ``min_group_n``).
        ungrouped: Paired cases without a group label.
    """

    excluded_groups: dict[str, int] | None = None
    ungrouped: int = 0
    per_case_metric: str = ""
    group_by: str = "group"
    strata: str | None = None

    def stats(self) -> dict[str, Any]:
        r: PairedGapComparison = self.result  # type: ignore[assignment]
        rule: GapNotWorseRule = self.rule  # type: ignore[assignment]
        return {
            "suite": rule.suite, "metric": rule.metric_name, "test": "non_inferiority",
            "statistic": "group_gap_difference", "per_case_metric": self.per_case_metric,
            "group_by": self.group_by, "strata": self.strata, "vs": self.vs, "baseline_label": self.baseline_label,
            "n": r.n, "n_units": r.n_units, "n_unpaired": self.n_unpaired,
            "only_candidate": self.only_candidate, "only_baseline": self.only_baseline,
            "unmeasured_candidate": self.unmeasured_candidate,
            "unmeasured_baseline": self.unmeasured_baseline, "same_dataset": self.same_dataset,
            "candidate_gap": r.candidate_gap, "baseline_gap": r.baseline_gap,
            "candidate_worst": list(r.candidate_worst), "baseline_worst": list(r.baseline_worst),
            "groups": r.groups, "min_group_n": rule.min_group_n,
            "excluded_groups": self.excluded_groups or {}, "ungrouped": self.ungrouped,
            "delta": r.delta, "ci_low": r.ci_low, "ci_high": r.ci_high,
            "confidence": r.confidence, "margin": r.margin, "threshold": r.margin,
            "p_value": r.p_value, "p_adjusted": self.p_adjusted, "holm_family": self.holm_family,
            "alpha": self.alpha, "method": r.method, "seed": r.seed,
            "n_resamples": r.n_resamples, "n_dropped": r.n_dropped,
        }


class GapNotWorseRule(ComparisonRule):
    """The gap between the best and the worst group must be shown not to grow by ``margin``.

    Attributes:
        margin: Largest acceptable growth of the gap (required, >= 0); H0 is
            ``gap_candidate - gap_baseline >= margin``.
        group_by: ``Case.meta`` key holding the group (default: ``Case.group``).
        strata: Optional ``Case.meta`` key: gaps are taken within each stratum only.
        min_group_n: Smallest group (paired cases) taken into account.
    """

    type: Literal["gap_not_worse"]
    test: ClassVar[Literal["non_inferiority"]] = "non_inferiority"
    margin: float = Field(ge=0.0)
    group_by: str | None = None
    strata: str | None = None
    min_group_n: int = Field(10, ge=1)

    def vacuous(self, low: float, high: float) -> str | None:
        if self.margin >= high - low:
            return (f"margin {fmt_num(self.margin)} is at least the whole range "
                    f"{fmt_num(high - low)} of the metric")
        return None

    def compare(self, ctx: RuleContext) -> Comparison:
        """Pair the values, keep groups large enough, compare the gaps (raw p-value).

        Args:
            ctx: Results and settings of the gate evaluation.

        Raises:
            RuleError: as :meth:`RuleContext.pairs`, or fewer than two groups large enough.
        """
        from aliasgate.stats.gap_compare import compare_gaps_paired, select_groups

        spec = ctx.candidate_suite(self).gap_specs.get(str(self.metric_name))
        group_by = self.group_by if self.group_by is not None or spec is None else spec.group_by
        strata = self.strata if self.strata is not None or spec is None else spec.strata
        p = ctx.pairs(self, spec.metric if spec is not None else None)
        labels = [_label(c, group_by) for c in p.cases]
        layers = [_label(c, strata) for c in p.cases] if strata else None
        chosen = select_groups(labels, layers, self.min_group_n)
        idx, small, ungrouped = chosen.index, chosen.small, chosen.ungrouped
        if not chosen.comparable:
            found = ", ".join(f"{g} n={k}" for g, k in chosen.sizes.items()) or "none"
            raise RuleError(
                f"{self.metric}: {'no stratum has' if strata else 'there are not'} two groups "
                f"(by {group_by or 'Case.group'}) with >= {self.min_group_n} cases measured "
                f"by both the candidate and @{p.vs} (groups: {found}; {ungrouped} cases without "
                "a group)"
            )
        clusters = [p.cases[i].cluster for i in idx]
        result = compare_gaps_paired(
            [p.candidate[i] for i in idx], [p.baseline[i] for i in idx],
            [labels[i] for i in idx],  # type: ignore[misc]
            clusters=clusters if any(c is not None for c in clusters) else None,
            strata=[layers[i] for i in idx] if layers else None,  # type: ignore[misc]
            margin=self.margin, confidence=ctx.confidence, n_resamples=ctx.n_resamples,
            seed=ctx.seed,
        )
        return GapComparison(
            rule=self, vs=p.vs, baseline_label=ctx.baseline_label,
            result=result,  # type: ignore[arg-type]
            only_candidate=p.only_candidate, only_baseline=p.only_baseline,
            unmeasured_candidate=p.unmeasured_candidate,
            unmeasured_baseline=p.unmeasured_baseline, same_dataset=p.same_dataset,
            alpha=ctx.alpha, excluded_groups=small, ungrouped=ungrouped,
            per_case_metric=spec.metric if spec is not None else str(self.metric_name),
            group_by=group_by or "group", strata=strata,
        )

    def judge(self, cmp: Comparison, ctx: RuleContext) -> RuleOutcome:
        """Pass iff the Holm-adjusted p is below alpha (NaN fails closed).

        Args:
            cmp: The :class:`GapComparison`, with ``p_adjusted`` set.
            ctx: Results and settings of the gate evaluation.
        """
        r: PairedGapComparison = cmp.result  # type: ignore[assignment]
        ok = cmp.p_adjusted < ctx.alpha
        p_text = fmt_p(cmp.p_adjusted, "p_adj")
        hi, lo = r.candidate_worst
        head = (
            f"{self.metric} by {cmp.group_by}: gap {fmt_num(r.candidate_gap)} "  # type: ignore[attr-defined]
            f"({hi} vs {lo}) vs {fmt_num(r.baseline_gap)} for {ctx.baseline_text(self)}: "
            f"Δ = {fmt_num(r.delta, signed=True)} {fmt_ci(r.ci_low, r.ci_high, signed=True)}, "
            f"margin {self.margin:g}"
        )
        detail = f"{p_text}, n = {r.n} pairs, {r.n_units} units"
        if cmp.n_unpaired:
            detail += f", {cmp.n_unpaired} unpaired"
        if ok:
            msg = f"{head}: not shown to grow by the margin, non-inferior ({detail})"
        elif math.isfinite(r.ci_low) and r.ci_low > self.margin:
            msg = f"{head}: the gap GREW by more than the margin ({detail})"
        elif math.isfinite(r.ci_low) and r.ci_low > 0:
            msg = (f"{head}: the gap grew (the interval excludes 0) and a growth below the "
                   f"margin is NOT shown ({detail})")
        else:
            msg = f"{head}: non-inferiority NOT shown ({detail})"
        numbers = (f"gap {fmt_num(r.baseline_gap)} → {fmt_num(r.candidate_gap)}, "
                   f"Δ {fmt_num(r.delta, signed=True)} {fmt_ci(r.ci_low, r.ci_high, signed=True)}"
                   f", {p_text}")
        extra = cmp.excluded_groups  # type: ignore[attr-defined]
        if extra:
            msg += " (left out, n < {}: {})".format(
                self.min_group_n, ", ".join(f"{g} n={k}" for g, k in extra.items()))
        return ctx.outcome(self, "pass" if ok else "fail", msg, cmp.stats(), numbers)
