"""Result types of a suite run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from aliasgate.datasets.base import Case
from aliasgate.scorers.base import Score
from aliasgate.stats.aggregate import GapSpec

Status = Literal["scored", "unmeasured"]


@dataclass
class CaseResult:
    """What happened to one case. ``status`` is ``unmeasured`` when the model call failed."""

    case: Case
    prompt: str
    output: str | None
    status: Status
    error: str | None = None
    scores: dict[str, Score] = field(default_factory=dict)
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached: bool = False
    #: Model calls the runner made for this case in this run: 0 when every repeat came from the
    #: response cache (or the prompt could not be rendered, or no model was run), else one per
    #: repeat it had to ask (a call shared by identical requests counts for each of their
    #: cases). Retries inside a candidate's client (the ``openai`` client's backoff) are not
    #: visible to the runner and not counted.
    attempts: int = 0
    #: How many times the case was asked (``--repeats``); the fields below are set when > 1.
    repeats: int = 1
    #: Share of the repeats whose text equals the modal output (``output`` holds that mode).
    agreement: float | None = None
    #: Every repeat's text, in repeat order.
    outputs: list[str] | None = None

    def row(self) -> dict[str, Any]:
        """A flat row for the per-case table (MLflow ``log_table``, reports)."""
        r: dict[str, Any] = {
            "id": self.case.id,
            "input": self.prompt,
            "output": self.output,
            "expected": " | ".join(self.case.expected),
            "group": self.case.group,
            "cluster": self.case.cluster,
            "status": self.status,
            "error": self.error,
            "latency_s": self.latency_s,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cached": self.cached,
            "attempts": self.attempts,
        }
        if self.repeats > 1:
            r["repeats"] = self.repeats
            r["agreement"] = self.agreement
            r["outputs"] = self.outputs
        for name, s in self.scores.items():
            r[name] = s.value
            if s.label is not None:
                r[f"{name}.label"] = s.label
            if s.error is not None:
                r[f"{name}.error"] = s.error
        return r


@dataclass(frozen=True)
class MetricSummary:
    """Aggregate of one metric over a suite: mean with a 95% bootstrap CI."""

    name: str
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    unmeasured: int


@dataclass
class SuiteResult:
    """Everything a suite run produced for one candidate."""

    suite: str
    candidate: str
    dataset_digest: str
    dataset_path: str
    params: dict[str, Any]
    cases: list[CaseResult]
    metrics: dict[str, MetricSummary]
    model_calls: int = 0
    cache_hits: int = 0
    wall_time_s: float = 0.0
    candidate_info: dict[str, Any] = field(default_factory=dict)
    #: Tables from suite-level aggregates (``per_group``...), logged as ``<suite>/<name>.json``.
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: Errors of suite-level aggregates by metric name (their metric is then unmeasured).
    aggregate_errors: dict[str, str] = field(default_factory=dict)
    #: How many times each case was asked (``--repeats``).
    repeats: int = 1
    #: Mean per-case agreement across repeats with its CI (None when ``repeats`` is 1).
    agreement: MetricSummary | None = None
    #: Settings of scorers that describe themselves (LLM judges: ``judge.*`` — model, endpoint
    #: without credentials, prompt hashes, calibration agreement, trust), logged as params.
    scorer_info: dict[str, Any] = field(default_factory=dict)
    #: Gap metrics of the suite's aggregates and how each is made from per-case values
    #: (:func:`aliasgate.stats.aggregate.gap_specs`): logged, so that comparisons of two runs can
    #: recompute the gaps on paired cases.
    gap_specs: dict[str, GapSpec] = field(default_factory=dict)
    #: The values each per-case metric can take, ``(lowest, highest)``, for the scorers that
    #: declare it (``value_range``): a gate rule that would pass on any value is refused.
    value_ranges: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.cases)

    @property
    def unmeasured(self) -> int:
        return sum(1 for c in self.cases if c.status == "unmeasured")

    def rows(self) -> list[dict[str, Any]]:
        """The per-case table: :meth:`CaseResult.row` plus a ``meta.<key>`` column for every
        ``Case.meta`` key a gap metric groups or stratifies by (``meta.gender``...)."""
        keys = sorted({k for spec in self.gap_specs.values() for k in spec.meta_keys})
        rows = [c.row() for c in self.cases]
        for row, c in zip(rows, self.cases, strict=True):
            for key in keys:
                value = c.case.meta.get(key)
                row[f"meta.{key}"] = None if value is None else str(value)
        return rows

    def values(self, metric: str) -> dict[str, float | None]:
        """Per-case values of ``metric`` keyed by case id (None where unmeasured)."""
        out: dict[str, float | None] = {}
        for c in self.cases:
            s = c.scores.get(metric)
            out[c.case.id] = s.value if s is not None else None
        return out
