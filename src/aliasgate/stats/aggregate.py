"""Suite-level aggregates: metrics that are not a mean of per-case scores.

Bias and fairness metrics (per-group rates and their gaps, BBQ bias scores, counterfactual flip
rates, demographic parity) are computed from all of a suite's scored cases at once. A suite names
them in ``Suite(aggregates={"name": {options}})``; the runner calls each after per-case scoring
and adds the returned metrics (with confidence intervals) to the suite's metrics, and the
returned tables (e.g. one row per group) to the suite's tables, which are logged to MLflow.

Adding one: a function with the :data:`Aggregate` signature in a new file, plus one line in
``AGGREGATES``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aliasgate._registry import Registry
from aliasgate.datasets.base import Case
from aliasgate.scorers.base import Score


@dataclass(frozen=True)
class AggregateMetric:
    """One suite-level metric with its confidence interval.

    Attributes:
        value: The estimate (None when it cannot be computed: then ``error`` says why).
        ci_low: Lower confidence bound.
        ci_high: Upper confidence bound.
        n: Cases it was computed from.
        unmeasured: Cases that could not be used (failed calls, unmappable answers...).
        error: Why ``value`` is missing.
    """

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int = 0
    unmeasured: int = 0
    error: str | None = None


@dataclass
class AggregateResult:
    """What an aggregate returns: metrics (named without the suite prefix) and tables."""

    metrics: dict[str, AggregateMetric] = field(default_factory=dict)
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


Aggregate = Callable[..., AggregateResult]
"""``fn(cases, scores, *, seed, confidence, **options) -> AggregateResult``.

``cases[i]`` and ``scores[i]`` (scorer name → :class:`Score`) describe the same case; only cases
whose model call succeeded are passed (the count of the others is added to ``unmeasured`` by
the runner)."""

AGGREGATES = Registry(
    "aggregate",
    {},
    entry_point_group="aliasgate.aggregates",
)
AGGREGATES.register("group_metrics", "aliasgate.stats.fairness:group_metrics")
AGGREGATES.register("bbq_bias", "aliasgate.stats.fairness:bbq_bias")
AGGREGATES.register("counterfactual_flip", "aliasgate.stats.fairness:counterfactual_flip")
AGGREGATES.register("demographic_parity", "aliasgate.stats.fairness:demographic_parity")


def declared_metrics(suite_aggregates: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Metric names the suite's aggregates will return, known before anything runs.

    Each aggregate function may carry ``metric_names(options) -> list[str]``; the pytest plugin
    adds these names to a suite's scorers when it checks a gate file's metric references.
    An aggregate without ``metric_names`` declares nothing (rules naming its metrics are then
    reported as unknown).

    Args:
        suite_aggregates: ``Suite.aggregates``: aggregate name -> its options.

    Raises:
        KeyError: an aggregate name is not registered.
        ValueError: an aggregate rejects its options (unknown option, missing ``metrics``...).
    """
    names: list[str] = []
    for name, options in suite_aggregates.items():
        fn = AGGREGATES.get(name)
        declare = getattr(fn, "metric_names", None)
        if declare is not None:
            names.extend(m for m in declare(dict(options or {})) if m not in names)
    return names


@dataclass(frozen=True)
class GapSpec:
    """How a suite-level gap metric is made from per-case values, so it can be recomputed on
    paired cases (candidate vs champion, tonight vs last night) by
    :func:`aliasgate.stats.gap_compare.compare_gaps_paired`.

    Attributes:
        metric: The per-case scorer whose group means are compared (``yes_no``).
        group_by: ``None`` for ``Case.group``, else the ``Case.meta`` key of the group.
        strata: ``Case.meta`` key of the strata (gaps within each), or None.
        min_group_n: Groups with fewer measured cases are left out.
    """

    metric: str
    group_by: str | None = None
    strata: str | None = None
    min_group_n: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "group_by": self.group_by, "strata": self.strata,
                "min_group_n": self.min_group_n}

    @property
    def meta_keys(self) -> list[str]:
        """The ``Case.meta`` keys it reads (to be kept in per-case tables)."""
        return [k for k in (self.group_by, self.strata) if k not in (None, "group")]


def gap_specs(suite_aggregates: Mapping[str, Mapping[str, Any]]) -> dict[str, GapSpec]:
    """Gap metrics of a suite's aggregates -> how each is computed from per-case values.

    An aggregate function may carry ``gap_specs(options) -> {metric: GapSpec}`` (as it carries
    ``metric_names``); aggregates without it, or whose options are invalid, contribute nothing.

    Args:
        suite_aggregates: ``Suite.aggregates``: aggregate name -> its options.
    """
    out: dict[str, GapSpec] = {}
    for name, options in suite_aggregates.items():
        try:
            describe = getattr(AGGREGATES.get(name), "gap_specs", None)
            if describe is not None:
                out.update(describe(dict(options or {})))
        except Exception:  # noqa: BLE001 - an unknown aggregate or bad options errors elsewhere
            continue
    return out


def run_aggregate(
    name: str,
    cases: Sequence[Case],
    scores: Sequence[Mapping[str, Score]],
    options: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    confidence: float = 0.95,
) -> AggregateResult:
    """Run the aggregate registered as ``name``; an exception becomes unmeasured metrics.

    The error is recorded under every metric the aggregate declares (``metric_names``), so a
    gate rule on one of them reports the cause; under ``name`` when it declares none.
    """
    fn = AGGREGATES.get(name)
    try:
        return fn(cases, scores, seed=seed, confidence=confidence, **dict(options or {}))
    except Exception as exc:  # noqa: BLE001 - recorded, never silently dropped
        error = f"{type(exc).__name__}: {exc}"
        try:
            declare = getattr(fn, "metric_names", None)
            names = list(declare(dict(options or {}))) if declare is not None else []
        except Exception:  # noqa: BLE001 - bad options: the error above says why
            names = []
        return AggregateResult(metrics={
            metric: AggregateMetric(value=None, n=len(cases), unmeasured=len(cases), error=error)
            for metric in (names or [name])
        })
