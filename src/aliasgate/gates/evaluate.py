"""Evaluate a gate file against suite results: one outcome per rule and a fail-closed verdict.

Every statistic uses the gate's ``confidence``, ``seed``, ``n_resamples`` and ``power`` and is
computed from the per-case values (``SuiteResult.values``), with ``Case.cluster`` as clusters and
``Case.group`` as groups. Unmeasured values (None, NaN) are left out of every statistic and
counted. Comparison rules pair candidate and baseline by case id over the cases measured in both
and report how many cases could not be paired. The p-values of all *blocking* comparison rules
are Holm-adjusted together; a comparison passes iff its adjusted p is below
``alpha = (1 - confidence) / 2`` (warn comparisons use their raw p, reported as ``p_adjusted``).

Rule status: ``pass``, ``fail``, ``error`` (the suite errored or is missing, the metric has no
measured values, the rule cannot be computed) or ``skipped`` (a comparison rule when there is no
baseline: first promotion, absolute rules only; or when the baseline is the candidate itself:
both suite results name the same registered model and version in ``candidate_info``, e.g.
``@champion`` evaluated under a gate whose baseline is ``@champion`` -- a paired comparison
with oneself is meaningless, so it is skipped, never passed or failed; absolute rules still run).

A rule naming a metric the results lack says so, and when the suite recorded an aggregate
error (``SuiteResult.aggregate_errors``: an aggregate that raised is recorded under its own
name, not under the metric names it declares) the message names that aggregate and its error.

Verdict (fail closed), in this order:

* ``"fail"`` if any blocking rule failed;
* ``"incomplete"`` if any blocking rule errored, any suite errored, or no blocking rule was
  evaluated at all (all skipped); ``complete`` is then False;
* ``"pass"`` otherwise: every blocking rule passed or was skipped. Warn rules never change it.

JSON document (``GateVerdict.to_dict()``, schema ``aliasgate.verdict/1``); non-finite numbers
are written as ``null`` so that ``json.dumps(..., allow_nan=False)`` works:

* ``schema``: ``"aliasgate.verdict/1"``.
* ``verdict``: ``"pass"``, ``"fail"`` or ``"incomplete"``.
* ``promote``: true iff ``verdict == "pass"`` (the only value that may move the alias).
* ``complete``: false when a blocking rule errored, a suite errored or nothing was evaluated.
* ``summary``: one line, e.g. ``"6/7 blocking rules passed, 1 failed, 1 warning"``.
* ``gate``: ``name``, ``path``, ``digest`` (``sha256:`` of the file bytes), ``version``,
  ``confidence``, ``alpha`` (one-sided level), ``seed``, ``n_resamples``, ``power``,
  ``min_pairs``, ``min_clusters``, ``allow_models``.
* ``baseline``: ``alias`` (default alias, without ``@``), ``label`` (free text given by the
  caller, e.g. the model version, or null), ``present`` (false on a first promotion).
* ``candidate``: candidate label(s) taken from the suite results (string, or null if none).
* ``suite_errors``: suite name -> error message, for suites that failed to run.
* ``counts``: ``rules``, ``blocking``, ``passed``, ``failed``, ``errored``, ``skipped`` (these
  four count blocking rules) and ``warnings`` (warn rules that failed or errored).
* ``rules``: one object per rule in file order: ``id``, ``type``, ``metric``, ``severity``
  (``block``/``warn``), ``status`` (``pass``/``fail``/``error``/``skipped``), ``message`` (one
  sentence with the numbers), ``numbers`` (the short form shown in tables), ``description`` and
  ``stats``. ``stats`` holds everything the decision used; its keys depend on the type:

  - common: ``suite``, ``metric`` (metric name or null), ``n`` (measured values used),
    ``n_cases``, ``unmeasured``, ``confidence``, ``seed``, ``n_resamples``, ``method``;
  - ``floor``/``ceiling``: ``value``, ``ci_low``, ``ci_high``, ``n_units``, ``bound``,
    ``bound_value``, ``threshold``; on a suite-level aggregate metric (no per-case values, e.g.
    ``bias_bbq.bias_score_ambig``) also ``source: "aggregate"`` and ``gate_confidence``: the
    value and CI are the suite run's ``MetricSummary`` (``confidence``/``seed``/``n_resamples``
    null: not recomputed by the gate); every other rule type errors on aggregate metrics;
  - ``rate``: ``successes``, ``rate``, ``ci_low``, ``ci_high`` (Wilson; widened by the cluster
    bootstrap when cases are clustered), ``n_units``, ``min``, ``max``; with repeats also
    ``samples`` and ``repeats`` (``successes`` then counts successful samples; the rate is the
    mean per-case share, the interval the wider of Wilson over cases and the bootstrap of the
    shares: :class:`~aliasgate.gates.schema.RateRule`);
  - ``group_gap``: ``gap``, ``ci_low``, ``ci_high``, ``groups`` (label -> ``mean``, ``n``,
    ``ci_low``, ``ci_high``), ``worst`` ([highest, lowest]), ``max_gap``, ``min_group_n``,
    ``excluded_groups`` (label -> n, groups too small), ``ungrouped``;
  - ``max_unmeasured``: ``unmeasured``, ``n_cases``, ``rate``, ``max_rate``;
  - ``min_n``: ``n``, ``n_cases``, ``unmeasured``, ``min``;
  - ``non_inferiority``/``superiority``: ``test``, ``vs``, ``baseline_label``, ``n`` (pairs),
    ``n_units``, ``n_unpaired``, ``only_candidate``, ``only_baseline``,
    ``unmeasured_candidate``, ``unmeasured_baseline`` (cases lost to pairing, by reason),
    ``same_dataset`` (dataset digests equal), ``candidate_mean``, ``baseline_mean``, ``delta``,
    ``ci_low``, ``ci_high``, ``margin``, ``threshold``, ``p_value`` (raw, one-sided),
    ``p_adjusted``, ``holm_family`` (number of p-values adjusted together; 0 for warn rules),
    ``alpha``, ``mde``, ``power``, ``binary``, ``discordant`` ([b, c]: only-candidate-right,
    only-baseline-right) and ``mcnemar_p`` (binary metrics), ``method``;
  - ``gap_not_worse``: ``test`` (``non_inferiority``), ``statistic`` (``group_gap_difference``),
    ``per_case_metric``, ``group_by``, ``strata``, ``vs``, ``baseline_label``, ``n`` (pairs), ``n_units``, the
    pairing counts as above, ``candidate_gap``, ``baseline_gap``, ``candidate_worst``,
    ``baseline_worst``, ``groups`` (label -> ``n``, ``candidate_mean``, ``baseline_mean``),
    ``min_group_n``, ``excluded_groups``, ``ungrouped``, ``delta`` (gap growth), ``ci_low``,
    ``ci_high``, ``margin``, ``threshold``, ``p_value``, ``p_adjusted``, ``holm_family``,
    ``alpha``, ``method`` (``paired_cluster_bootstrap``/``degenerate``/``undefined``),
    ``n_dropped`` (resamples in which a stratum lost a group);
  - ``skipped`` status: ``suite``, ``metric``, ``vs``; when the baseline is the candidate
    itself also ``baseline_label`` and ``same_model`` (``NAME vVERSION``);
  - ``error`` status: ``error`` (the reason), plus whatever was known.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from aliasgate.gates.schema import ComparisonRule, GateFile, RuleBase, RuleError, fmt_ci, fmt_num

if TYPE_CHECKING:
    from aliasgate.datasets.base import Case
    from aliasgate.run.results import MetricSummary, SuiteResult
    from aliasgate.stats.compare import PairedComparison

__all__ = [
    "VERDICT_SCHEMA",
    "Comparison",
    "GateVerdict",
    "Measured",
    "Pairs",
    "RuleContext",
    "RuleOutcome",
    "evaluate_gate",
]

VERDICT_SCHEMA = "aliasgate.verdict/1"

Status = Literal["pass", "fail", "error", "skipped"]
Verdict = Literal["pass", "fail", "incomplete"]

_ICONS = {"pass": "✅", "fail": "❌", "error": "⛔", "skipped": "⏭️"}


@dataclass(frozen=True)
class RuleOutcome:
    """What one rule decided.

    Attributes:
        id: The rule's id.
        type: The rule type.
        metric: ``<suite>.<metric>`` or ``<suite>``.
        severity: ``block`` or ``warn``.
        status: ``pass``, ``fail``, ``error`` or ``skipped``.
        message: One sentence with the numbers.
        stats: Everything the decision used (see the module docstring).
        numbers: Short form of the key numbers, for tables.
        description: The rule's description from the gate file.
    """

    id: str
    type: str
    metric: str
    severity: str
    status: Status
    message: str
    stats: dict[str, Any] = field(default_factory=dict)
    numbers: str = ""
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "type": self.type, "metric": self.metric, "severity": self.severity,
            "status": self.status, "message": self.message, "numbers": self.numbers,
            "description": self.description, "stats": _json_safe(self.stats),
        }


@dataclass(frozen=True)
class Measured:
    """The measured values of one metric in one suite, in case order.

    Attributes:
        suite: The suite's results.
        metric: The metric name.
        ids: Case ids of the measured values.
        values: The measured values.
        clusters: Cluster per value (None entries: a cluster of their own), or None when no case
            has a cluster.
        groups: Group per value (None when the case has none).
        n_cases: Cases in the suite.
        unmeasured: Cases whose value is missing (None or NaN).
    """

    suite: SuiteResult
    metric: str
    ids: list[str]
    values: list[float]
    clusters: list[str | None] | None
    groups: list[str | None]
    n_cases: int
    unmeasured: int

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def n_units(self) -> int:
        """Independent units: distinct clusters plus unclustered cases."""
        if self.clusters is None:
            return self.n
        named = {c for c in self.clusters if c is not None}
        return len(named) + sum(1 for c in self.clusters if c is None)

    def counts(self) -> dict[str, Any]:
        """``suite``, ``metric``, ``n``, ``n_cases``, ``unmeasured`` for a rule's stats."""
        return {"suite": self.suite.suite, "metric": self.metric, "n": self.n,
                "n_cases": self.n_cases, "unmeasured": self.unmeasured}


@dataclass(frozen=True)
class Pairs:
    """One metric of candidate and baseline, paired by case id (cases measured by both).

    Attributes:
        vs: Alias compared against.
        cases: The candidate's cases, in pair order.
        candidate: The candidate's values.
        baseline: The baseline's values.
        only_candidate: Cases of the candidate whose id the baseline lacks.
        only_baseline: Cases of the baseline whose id the candidate lacks.
        unmeasured_candidate: Common cases unmeasured by the candidate.
        unmeasured_baseline: Common cases measured by the candidate but not by the baseline.
        same_dataset: Whether both suites ran on the same dataset digest.
    """

    vs: str
    cases: list[Case]
    candidate: list[float]
    baseline: list[float]
    only_candidate: int
    only_baseline: int
    unmeasured_candidate: int
    unmeasured_baseline: int
    same_dataset: bool


@dataclass
class Comparison:
    """A paired comparison before and after the Holm adjustment.

    Attributes:
        rule: The comparison rule.
        vs: Alias compared against.
        baseline_label: Caller's description of the baseline (or None).
        result: The statistics (:class:`aliasgate.stats.compare.PairedComparison`).
        only_candidate: Cases measured by the candidate whose id the baseline lacks.
        only_baseline: Cases of the baseline whose id the candidate lacks.
        unmeasured_candidate: Common cases unmeasured by the candidate.
        unmeasured_baseline: Common cases measured by the candidate but not by the baseline.
        same_dataset: Whether both suites ran on the same dataset digest.
        alpha: One-sided significance level.
        p_adjusted: Holm-adjusted p (raw p for warn rules); set before ``judge``.
        holm_family: How many p-values were adjusted together (0: not adjusted).
    """

    rule: ComparisonRule
    vs: str
    baseline_label: str | None
    result: PairedComparison
    only_candidate: int
    only_baseline: int
    unmeasured_candidate: int
    unmeasured_baseline: int
    same_dataset: bool
    alpha: float
    p_adjusted: float = math.nan
    holm_family: int = 0

    @property
    def n_unpaired(self) -> int:
        return (self.only_candidate + self.only_baseline + self.unmeasured_candidate
                + self.unmeasured_baseline)

    @property
    def p_for_holm(self) -> float:
        """The raw p, with a NaN taken as 1 (fails closed)."""
        p = self.result.p_value
        return p if math.isfinite(p) else 1.0

    def stats(self) -> dict[str, Any]:
        r = self.result
        return {
            "suite": self.rule.suite, "metric": self.rule.metric_name, "test": r.test,
            "vs": self.vs, "baseline_label": self.baseline_label, "n": r.n,
            "n_units": r.n_units, "n_unpaired": self.n_unpaired,
            "only_candidate": self.only_candidate, "only_baseline": self.only_baseline,
            "unmeasured_candidate": self.unmeasured_candidate,
            "unmeasured_baseline": self.unmeasured_baseline, "same_dataset": self.same_dataset,
            "candidate_mean": r.candidate_mean, "baseline_mean": r.baseline_mean,
            "delta": r.delta, "ci_low": r.ci_low, "ci_high": r.ci_high,
            "confidence": r.confidence, "margin": r.margin, "threshold": r.threshold,
            "p_value": r.p_value, "p_adjusted": self.p_adjusted, "holm_family": self.holm_family,
            "alpha": self.alpha, "mde": r.mde, "power": r.power, "binary": r.binary,
            "discordant": list(r.discordant) if r.discordant is not None else None,
            "mcnemar_p": r.mcnemar_p, "method": f"paired_bootstrap_{r.method}",
            "seed": r.seed, "n_resamples": r.n_resamples,
        }


class RuleContext:
    """What a rule sees while it is evaluated: the results, the settings and helpers.

    Args:
        gate: The gate file.
        candidate: Suite name -> the candidate's results.
        baseline: Suite name -> the baseline's results, or None (no baseline).
        baseline_label: Free-text description of the baseline (e.g. ``v1``).
        suite_errors: Suite name -> error message for suites that failed to run.
    """

    def __init__(
        self,
        gate: GateFile,
        candidate: Mapping[str, SuiteResult],
        baseline: Mapping[str, SuiteResult] | None,
        baseline_label: str | None,
        suite_errors: Mapping[str, str],
    ):
        self.gate = gate
        self.candidate = candidate
        self.baseline = baseline
        self.baseline_label = baseline_label
        self.suite_errors = suite_errors

    confidence = property(lambda self: self.gate.confidence)
    seed = property(lambda self: self.gate.seed)
    n_resamples = property(lambda self: self.gate.n_resamples)
    power = property(lambda self: self.gate.power)
    alpha = property(lambda self: self.gate.alpha)

    def settings(self) -> dict[str, Any]:
        """``confidence``, ``seed`` and ``n_resamples`` for a rule's stats."""
        return {"confidence": self.confidence, "seed": self.seed, "n_resamples": self.n_resamples}

    def candidate_suite(self, rule: RuleBase) -> SuiteResult:
        """The candidate's results of the rule's suite.

        Raises:
            RuleError: the suite errored or has no results.
        """
        return self._suite(rule.suite, self.candidate, "candidate")

    def known_metric(self, rule: RuleBase, sr: SuiteResult) -> None:
        """Raise :class:`RuleError` unless the suite's results know the rule's metric."""
        known = _metric_names(sr)
        if rule.metric_name not in known:
            names = ", ".join(f"{sr.suite}.{m}" for m in sorted(known)) or "none"
            raise RuleError(f"metric '{rule.metric}' is not in the results (known: {names})"
                            + _aggregate_hint(sr, str(rule.metric_name)))
        if _aggregate_summary(sr, str(rule.metric_name)) is not None:
            raise RuleError(
                f"'{rule.metric}' is a suite-level aggregate metric (no per-case values): only "
                "floor and ceiling rules can gate it, on the interval computed by the suite run"
            )

    def aggregate_bound(
        self, rule: RuleBase, bound: str, threshold: float
    ) -> tuple[dict[str, Any], float, str] | None:
        """Floor/ceiling numbers for a suite-level aggregate metric; None for per-case metrics.

        An aggregate metric (``group_metrics``, ``bbq_bias``... in ``Suite.aggregates``) is in
        ``SuiteResult.metrics`` but no case has a score of that name, so its interval cannot be
        recomputed here: the ``MetricSummary`` (value, CI) from the suite run is used as is
        (computed at the run's confidence, 95% by default, with the run's seed, not the gate's).
        ``stats["source"]`` is ``"aggregate"``; a missing bound counts as undefined (fails closed).

        Args:
            rule: A floor or ceiling rule.
            bound: ``ci_low``, ``value`` or ``ci_high``.
            threshold: The rule's threshold.

        Returns:
            ``(stats, bound value, message head)``, or None when the metric has per-case values.

        Raises:
            RuleError: the suite errored or is missing, or the aggregate has no value.
        """
        sr = self.candidate_suite(rule)
        summary = _aggregate_summary(sr, str(rule.metric_name))
        if summary is None:
            return None
        if summary.value is None:
            why = sr.aggregate_errors.get(summary.name) or "no value"
            raise RuleError(f"{rule.metric}: suite-level aggregate metric not computed ({why})")
        value = float(summary.value)
        low = math.nan if summary.ci_low is None else float(summary.ci_low)
        high = math.nan if summary.ci_high is None else float(summary.ci_high)
        picked = {"ci_low": low, "value": value, "ci_high": high}[bound]
        stats = {
            "suite": sr.suite, "metric": summary.name, "n": summary.n, "n_cases": len(sr.cases),
            "unmeasured": summary.unmeasured, "value": value, "ci_low": low, "ci_high": high,
            "n_units": None, "bound": bound, "bound_value": picked, "threshold": threshold,
            "source": "aggregate", "confidence": None, "seed": None, "n_resamples": None,
            "gate_confidence": self.confidence, "method": "aggregate_ci_from_suite_run",
        }
        head = (f"{rule.metric} = {fmt_num(value)} {fmt_ci(low, high)} (n = {summary.n}; "
                "suite-level aggregate, CI from the suite run)")
        return stats, picked, head

    def measured(self, rule: RuleBase) -> Measured:
        """The candidate's measured values of the rule's metric.

        Raises:
            RuleError: suite errored/missing, unknown metric, or no measured value.
        """
        sr = self.candidate_suite(rule)
        self.known_metric(rule, sr)
        return _measured(sr, str(rule.metric_name), rule.metric)

    def pairs(self, rule: ComparisonRule, metric: str | None = None) -> Pairs:
        """The rule's metric for candidate and baseline, paired by case id.

        Args:
            rule: The comparison rule.
            metric: Another per-case metric of the rule's suite to pair (default: the rule's).

        Raises:
            RuleError: no baseline results for the suite, another alias than the baseline's,
                unknown metric, or no case measured in both.
        """
        vs = self.gate.vs_of(rule)
        if vs != self.gate.baseline:
            raise RuleError(
                f"compares against @{vs}, but the baseline results given are @{self.gate.baseline}'s"
            )
        cand_sr = self.candidate_suite(rule)
        if metric is None:
            self.known_metric(rule, cand_sr)
            metric = str(rule.metric_name)
        elif metric not in _metric_names(cand_sr) or _aggregate_summary(cand_sr, metric):
            raise RuleError(f"{rule.metric}: its per-case metric '{rule.suite}.{metric}' is not "
                            "in the results")
        assert self.baseline is not None
        base_sr = self._suite(rule.suite, self.baseline, f"@{vs}")
        if metric not in _metric_names(base_sr):
            raise RuleError(f"metric '{rule.suite}.{metric}' is not in the @{vs} results"
                            + _aggregate_hint(base_sr, metric))
        cand, base = cand_sr.values(metric), base_sr.values(metric)
        cases = {c.case.id: c.case for c in cand_sr.cases}
        ids = [i for i in cand if _ok(cand[i]) and i in base and _ok(base[i])]
        if not ids:
            raise RuleError(
                f"no case of '{rule.suite}' is measured by both the candidate and @{vs} "
                f"({len(cand)} candidate cases, {len(base)} baseline cases)"
            )
        if len(ids) < self.gate.min_pairs:
            raise RuleError(
                f"only {len(ids)} cases of '{rule.suite}' are measured by both the candidate "
                f"and @{vs}: too few to compare (the gate's min_pairs is {self.gate.min_pairs})"
            )
        units = {cases[i].cluster for i in ids}
        if None not in units and len(units) < self.gate.min_clusters:
            raise RuleError(
                f"the {len(ids)} paired cases of '{rule.suite}' come from {len(units)} clusters: "
                f"too few to compare (the gate's min_clusters is {self.gate.min_clusters})"
            )
        return Pairs(
            vs=vs, cases=[cases[i] for i in ids],
            candidate=[float(cand[i]) for i in ids],  # type: ignore[arg-type]
            baseline=[float(base[i]) for i in ids],  # type: ignore[arg-type]
            only_candidate=sum(1 for i in cand if i not in base),
            only_baseline=sum(1 for i in base if i not in cand),
            unmeasured_candidate=sum(1 for i in cand if i in base and not _ok(cand[i])),
            unmeasured_baseline=sum(1 for i in cand if i in base and _ok(cand[i])
                                    and not _ok(base[i])),
            same_dataset=cand_sr.dataset_digest == base_sr.dataset_digest,
        )

    def compare(self, rule: ComparisonRule, *, test: str, margin: float) -> Comparison:
        """Pair candidate and baseline values by case id and run :func:`compare_paired`.

        Args:
            rule: The comparison rule.
            test: ``non_inferiority`` or ``superiority``.
            margin: The rule's margin.

        Raises:
            RuleError: as :meth:`pairs`.
        """
        from aliasgate.stats.compare import compare_paired

        p = self.pairs(rule)
        clusters = [c.cluster for c in p.cases]
        result = compare_paired(
            p.candidate, p.baseline, test=test, margin=margin,
            clusters=clusters if any(c is not None for c in clusters) else None,
            confidence=self.confidence, n_resamples=self.n_resamples, seed=self.seed,
            power=self.power,
        )
        if not _ok(result.mde):
            raise RuleError(
                f"{rule.metric}: the comparison's minimum detectable effect is undefined "
                f"({result.mde}; method {result.method}): the evidence cannot decide"
            )
        return Comparison(
            rule=rule, vs=p.vs, baseline_label=self.baseline_label, result=result,
            only_candidate=p.only_candidate, only_baseline=p.only_baseline,
            unmeasured_candidate=p.unmeasured_candidate,
            unmeasured_baseline=p.unmeasured_baseline, same_dataset=p.same_dataset,
            alpha=self.alpha,
        )

    def vacuous(self, rule: RuleBase) -> str | None:
        """Why ``rule`` cannot fail on its metric's declared value range (None: it can, or the
        range is unknown — aggregates, scorers that declare none)."""
        sr = self.candidate.get(rule.suite)
        name = rule.metric_name
        rng = sr.value_ranges.get(name) if sr is not None and name else None
        if rng is None:
            return None
        return rule.vacuous(float(rng[0]), float(rng[1]))

    def same_model(self, rule: RuleBase) -> str | None:
        """``NAME vVERSION`` when the rule's suite was run on the same registered model version
        as candidate and as baseline (a comparison with itself); None otherwise or when unknown.
        """
        if self.baseline is None or self.gate.vs_of(rule) != self.gate.baseline:
            return None
        cand, base = self.candidate.get(rule.suite), self.baseline.get(rule.suite)
        if cand is None or base is None:
            return None
        a, b = _model_version(cand), _model_version(base)
        if a is None or a != b:
            return None
        return f"{a[0]} v{a[1]}"

    def baseline_text(self, rule: RuleBase) -> str:
        """``@champion v1``: the alias compared against and the caller's label."""
        text = f"@{self.gate.vs_of(rule)}"
        return f"{text} {self.baseline_label}" if self.baseline_label else text

    def outcome(
        self, rule: RuleBase, status: Status, message: str, stats: Mapping[str, Any],
        numbers: str = "",
    ) -> RuleOutcome:
        """Build the rule's :class:`RuleOutcome`.

        Args:
            rule: The rule.
            status: ``pass``, ``fail``, ``error`` or ``skipped``.
            message: One sentence with the numbers.
            stats: Everything the decision used.
            numbers: Short form of the key numbers.
        """
        return RuleOutcome(
            id=rule.id, type=rule.type, metric=rule.metric, severity=rule.severity,
            status=status, message=message, stats=dict(stats), numbers=numbers,
            description=rule.description,
        )

    def _suite(self, name: str, results: Mapping[str, SuiteResult], whose: str) -> SuiteResult:
        if name in self.suite_errors:
            raise RuleError(f"suite '{name}' errored: {self.suite_errors[name]}")
        sr = results.get(name)
        if sr is None:
            raise RuleError(f"suite '{name}' has no {whose} results")
        return sr


@dataclass(frozen=True)
class GateVerdict:
    """The decision on a candidate, machine-readable (:meth:`to_dict`) and for reports.

    Attributes:
        verdict: ``pass``, ``fail`` or ``incomplete`` (fail closed: only ``pass`` promotes).
        complete: False when a blocking rule errored, a suite errored or nothing was evaluated.
        rules: One outcome per rule, in file order.
        summary: ``"6/7 blocking rules passed, 1 failed, 1 warning"``.
        gate_name: The gate's name.
        gate_path: Where the gate file was read from.
        gate_digest: ``sha256:`` of the gate file's bytes.
        baseline: Default alias compared against (without ``@``).
        baseline_label: Caller's description of the baseline, or None.
        baseline_present: False on a first promotion (no baseline given).
        candidate: Candidate label(s) from the suite results, or None.
        suite_errors: Suite name -> error message.
        settings: ``confidence``, ``alpha``, ``seed``, ``n_resamples``, ``power``, ``version``,
            ``min_pairs``, ``min_clusters``, ``allow_models``.
    """

    verdict: Verdict
    complete: bool
    rules: list[RuleOutcome]
    summary: str
    gate_name: str
    gate_path: str
    gate_digest: str
    baseline: str
    baseline_label: str | None
    baseline_present: bool
    candidate: str | None
    suite_errors: dict[str, str]
    settings: dict[str, Any]

    @property
    def promote(self) -> bool:
        """True iff the verdict is ``pass``."""
        return self.verdict == "pass"

    def counts(self) -> dict[str, int]:
        blocking = [r for r in self.rules if r.severity == "block"]
        return {
            "rules": len(self.rules),
            "blocking": len(blocking),
            "passed": sum(r.status == "pass" for r in blocking),
            "failed": sum(r.status == "fail" for r in blocking),
            "errored": sum(r.status == "error" for r in blocking),
            "skipped": sum(r.status == "skipped" for r in blocking),
            "warnings": sum(r.severity == "warn" and r.status in ("fail", "error") for r in self.rules),
        }

    def to_dict(self) -> dict[str, Any]:
        """The ``aliasgate.verdict/1`` document (see the module docstring); JSON-safe."""
        return {
            "schema": VERDICT_SCHEMA,
            "verdict": self.verdict,
            "promote": self.promote,
            "complete": self.complete,
            "summary": self.summary,
            "gate": {"name": self.gate_name, "path": self.gate_path, "digest": self.gate_digest,
                     **_json_safe(self.settings)},
            "baseline": {"alias": self.baseline, "label": self.baseline_label,
                         "present": self.baseline_present},
            "candidate": self.candidate,
            "suite_errors": dict(self.suite_errors),
            "counts": self.counts(),
            "rules": [r.to_dict() for r in self.rules],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        """:meth:`to_dict` as JSON (NaN is never written)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False, ensure_ascii=False)

    def to_markdown(self) -> str:
        """A heading with the verdict, the summary, and a table of every rule."""
        icon = {"pass": "✅", "fail": "❌", "incomplete": "⛔"}[self.verdict]
        base = f"@{self.baseline}" + (f" {self.baseline_label}" if self.baseline_label else "")
        if not self.baseline_present:
            base += " (not set: first promotion)"
        s = self.settings
        lines = [
            f"### Gate `{self.gate_name}`: {icon} {self.verdict.upper()}",
            "",
            f"{self.summary}.",
            "",
            f"Candidate {_md(self.candidate or 'n/a')} vs {_md(base)} · gate file `{self.gate_path}` "
            f"({self.gate_digest[:19]}…) · {s['confidence']:.0%} confidence, one-sided alpha "
            f"{s['alpha']:g}, seed {s['seed']}, {s['n_resamples']} resamples, Holm across "
            "blocking comparisons",
            "",
        ]
        if self.suite_errors:
            lines += [f"- ⛔ suite `{k}` errored: {_md(v)}" for k, v in self.suite_errors.items()]
            lines.append("")
        lines += ["| Rule | Type | Metric | Status | Numbers | Message |",
                  "|---|---|---|---|---|---|"]
        for r in self.rules:
            status = f"{_ICONS[r.status]} {r.status}" + (" (warn)" if r.severity == "warn" else "")
            lines.append(
                f"| `{r.id}` | {r.type} | `{r.metric}` | {status} | {_md(r.numbers)} | {_md(r.message)} |"
            )
        return "\n".join(lines) + "\n"


def evaluate_gate(
    gate: GateFile,
    candidate: Mapping[str, SuiteResult],
    baseline: Mapping[str, SuiteResult] | None = None,
    *,
    baseline_label: str | None = None,
    suite_errors: Mapping[str, str] | None = None,
) -> GateVerdict:
    """Evaluate every rule of ``gate`` and decide (fail closed).

    Args:
        gate: A validated gate file (:func:`aliasgate.gates.load_gate`).
        candidate: Suite name -> the candidate's results.
        baseline: Suite name -> the results of the gate's ``baseline`` alias (the champion);
            None when the alias is not set yet (first promotion: comparison rules are skipped).
        baseline_label: Free text naming the baseline after its alias in messages, e.g. ``v1``
            gives ``vs @champion v1``.
        suite_errors: Suite name -> error message, for suites (of either side) that failed to
            run; any entry makes the verdict incomplete (or fail).

    Returns:
        The :class:`GateVerdict`.
    """
    errors = dict(suite_errors or {})
    ctx = RuleContext(gate, candidate, baseline, baseline_label, errors)
    outcomes: list[RuleOutcome | None] = [None] * len(gate.rules)
    pending: list[tuple[int, Comparison]] = []
    for i, rule in enumerate(gate.rules):
        if rule.comparison and baseline is None:
            outcomes[i] = ctx.outcome(
                rule, "skipped",
                f"no baseline: @{gate.vs_of(rule)} is not set — first promotion, absolute rules only",
                {"suite": rule.suite, "metric": rule.metric_name, "vs": gate.vs_of(rule)},
                "no baseline",
            )
            continue
        why = ctx.vacuous(rule)
        if why is not None:
            outcomes[i] = ctx.outcome(
                rule, "error",
                f"vacuous rule: {why} {rule.metric} can take, so it would pass on any result; "
                "bound it to the metric's range",
                {"suite": rule.suite, "metric": rule.metric_name, "vacuous": why}, "vacuous",
            )
            continue
        same = ctx.same_model(rule) if rule.comparison else None
        if same is not None:
            outcomes[i] = ctx.outcome(
                rule, "skipped",
                f"baseline {ctx.baseline_text(rule)} is the candidate itself ({same}): a paired "
                "comparison with itself is meaningless — skipped, absolute rules only",
                {"suite": rule.suite, "metric": rule.metric_name, "vs": gate.vs_of(rule),
                 "baseline_label": baseline_label, "same_model": same},
                "baseline = candidate",
            )
            continue
        try:
            if rule.comparison:
                pending.append((i, rule.compare(ctx)))  # type: ignore[attr-defined]
            else:
                outcomes[i] = rule.evaluate(ctx)
        except Exception as exc:  # noqa: BLE001 - becomes an "error" outcome: fails closed
            outcomes[i] = _error(ctx, rule, exc)

    family = [c for _, c in pending if c.rule.blocking]
    if family:
        from aliasgate.stats.multiple import holm

        for c, p_adj in zip(family, holm([c.p_for_holm for c in family]), strict=True):
            c.p_adjusted, c.holm_family = p_adj, len(family)
    for i, c in pending:
        if not c.rule.blocking:
            c.p_adjusted, c.holm_family = c.p_for_holm, 0
        try:
            outcomes[i] = c.rule.judge(c, ctx)
        except Exception as exc:  # noqa: BLE001
            outcomes[i] = _error(ctx, c.rule, exc)

    rules = [o for o in outcomes if o is not None]
    return _verdict(gate, rules, ctx, errors)


def _error(ctx: RuleContext, rule: RuleBase, exc: Exception) -> RuleOutcome:
    if isinstance(exc, RuleError):
        reason = str(exc)
    else:
        reason = f"could not be evaluated ({type(exc).__name__}: {exc})"
    message = reason if reason.startswith(f"{rule.metric}") else f"{rule.metric}: {reason}"
    return ctx.outcome(rule, "error", message,
                       {"suite": rule.suite, "metric": rule.metric_name, "error": reason}, "error")


def _verdict(
    gate: GateFile, rules: list[RuleOutcome], ctx: RuleContext, errors: dict[str, str]
) -> GateVerdict:
    blocking = [r for r in rules if r.severity == "block"]
    failed = sum(r.status == "fail" for r in blocking)
    errored = sum(r.status == "error" for r in blocking)
    skipped = sum(r.status == "skipped" for r in blocking)
    passed = sum(r.status == "pass" for r in blocking)
    warnings = sum(r.severity == "warn" and r.status in ("fail", "error") for r in rules)
    nothing_evaluated = passed + failed == 0
    complete = not errored and not errors and not nothing_evaluated
    verdict: Verdict = "fail" if failed else ("pass" if complete else "incomplete")

    parts = [f"{passed}/{len(blocking)} blocking rules passed"]
    parts += [f"{k} {word}" for k, word in ((failed, "failed"), (errored, "errored"),
                                           (skipped, "skipped")) if k]
    if warnings:
        parts.append(f"{warnings} warning{'s' if warnings != 1 else ''}")
    if errors:
        parts.append(f"{len(errors)} suite{'s' if len(errors) != 1 else ''} errored "
                     f"({', '.join(sorted(errors))})")
    if nothing_evaluated and not errored:
        parts.append("no blocking rule could be evaluated")

    labels = sorted({sr.candidate for sr in ctx.candidate.values() if sr.candidate})
    return GateVerdict(
        verdict=verdict, complete=complete, rules=rules, summary=", ".join(parts),
        gate_name=gate.name, gate_path=gate.path, gate_digest=gate.digest,
        baseline=gate.baseline, baseline_label=ctx.baseline_label,
        baseline_present=ctx.baseline is not None,
        candidate=", ".join(labels) if labels else None, suite_errors=errors,
        settings={"version": gate.version, "confidence": gate.confidence, "alpha": gate.alpha,
                  "seed": gate.seed, "n_resamples": gate.n_resamples, "power": gate.power,
                  "min_pairs": gate.min_pairs, "min_clusters": gate.min_clusters,
                  "allow_models": list(gate.allow_models)},
    )


# -- helpers -------------------------------------------------------------------------------------


def _ok(value: float | None) -> bool:
    return value is not None and math.isfinite(value)


def _metric_names(sr: SuiteResult) -> set[str]:
    names = set(sr.metrics)
    for c in sr.cases:
        names.update(c.scores)
    return names


def _model_version(sr: SuiteResult) -> tuple[str, str] | None:
    """(registered model name, version) the suite ran on, from ``candidate_info``; None if the
    candidate is not a registered model version. Versions compare as strings (the sqlite store
    returns ints)."""
    info = sr.candidate_info or {}
    name, version = info.get("candidate.model_name"), info.get("candidate.model_version")
    if name in (None, "") or version in (None, ""):
        return None
    return str(name), str(version)


def _aggregate_hint(sr: SuiteResult, metric: str) -> str:
    """``; it is declared by aggregate 'bbq_bias' of suite 'x', which failed: ...`` -- the
    aggregate errors the suite recorded that may explain why ``metric`` is missing ("" if none).

    An aggregate that raises is recorded under its own name, not under the metric names it
    declares; when the registered aggregate says (``metric_names`` with no options) that it
    declares ``metric``, the hint says so, otherwise it lists the failed aggregates as possible
    causes.
    """
    failed = {name: err for name, err in (sr.aggregate_errors or {}).items()
              if name != metric and _no_value(sr, name)}
    if not failed:
        return ""
    declaring = [name for name in failed if metric in _declared_by(name)]
    if declaring:
        name = declaring[0]
        return (f"; it is declared by aggregate '{name}' of suite '{sr.suite}', which failed: "
                f"{failed[name]}")
    listed = "; ".join(f"'{name}': {err}" for name, err in sorted(failed.items()))
    return (f"; suite '{sr.suite}' recorded aggregate error(s) that may be the cause — {listed}")


def _no_value(sr: SuiteResult, name: str) -> bool:
    summary = sr.metrics.get(name)
    return summary is None or summary.value is None


def _declared_by(aggregate: str) -> list[str]:
    """Metric names a registered aggregate declares with default options ([] if unknown)."""
    try:
        from aliasgate.stats.aggregate import AGGREGATES

        if aggregate not in AGGREGATES:
            return []
        declare = getattr(AGGREGATES.get(aggregate), "metric_names", None)
        return list(declare({})) if declare is not None else []
    except Exception:  # noqa: BLE001 - options required, plugin failed to load...: unknown
        return []


def _aggregate_summary(sr: SuiteResult, metric: str) -> MetricSummary | None:
    """The run's summary of ``metric`` if it is a suite-level aggregate (no case has its score)."""
    summary = sr.metrics.get(metric)
    if summary is None or any(metric in c.scores for c in sr.cases):
        return None
    return summary


def _measured(sr: SuiteResult, metric: str, ref: str) -> Measured:
    ids, values, clusters, groups = [], [], [], []
    for c in sr.cases:
        s = c.scores.get(metric)
        if s is None or not _ok(s.value):
            continue
        ids.append(c.case.id)
        values.append(float(s.value))  # type: ignore[arg-type]
        clusters.append(c.case.cluster)
        groups.append(c.case.group)
    unmeasured = len(sr.cases) - len(values)
    if not values:
        raise RuleError(f"{ref}: no measured values ({unmeasured}/{len(sr.cases)} cases unmeasured)")
    return Measured(
        suite=sr, metric=metric, ids=ids, values=values,
        clusters=clusters if any(c is not None for c in clusters) else None,
        groups=groups, n_cases=len(sr.cases), unmeasured=unmeasured,
    )


def _json_safe(value: Any) -> Any:
    """Non-finite floats -> None, tuples/sets -> lists, numpy scalars -> Python, keys -> str."""
    if isinstance(value, Mapping):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = sorted(value, key=str) if isinstance(value, (set, frozenset)) else value
        return [_json_safe(v) for v in items]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _md(text: str) -> str:
    """Escape a table cell: pipes and line breaks."""
    return text.replace("|", "\\|").replace("\r", " ").replace("\n", "<br>")
