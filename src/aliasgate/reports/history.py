"""Evaluation history read back from MLflow: one :class:`RunSnapshot` per evaluation run (night).

A nightly evaluation is an ordinary aliasgate parent run tagged ``aliasgate.kind = nightly``,
``aliasgate.role`` (``champion``/``challenger``) and ``aliasgate.night`` (``YYYY-MM-DD``) — what
``pytest evals/ --nightly`` and ``aliasgate nightly`` log. A snapshot holds what the parent run
carries (every ``<suite>.<metric>`` with ``_ci_low``/``_ci_high``/``_n``/``_unmeasured``, params,
tags, the ``report/results.json`` and ``report/verdict.json`` artifacts) and, when asked, what
its child runs carry (params such as the dataset digest, the per-case table
``<suite>/cases.json`` and aggregate tables ``<suite>/<table>.json`` such as ``per_group``).

Everything is read from a real tracking store through ``MlflowClient``; mlflow is imported on
first use.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aliasgate.defaults import DEFAULT_EXPERIMENT, quiet_environment, tracking_uri

if TYPE_CHECKING:
    from aliasgate.stats.aggregate import GapSpec

__all__ = [
    "KIND_TAG",
    "NIGHT_TAG",
    "ROLE_TAG",
    "MetricValue",
    "RunSnapshot",
    "SuiteSnapshot",
    "load_history",
    "load_run",
    "nightly_role",
    "previous_runs",
    "tracking_client",
]

KIND_TAG = "aliasgate.kind"
ROLE_TAG = "aliasgate.role"
NIGHT_TAG = "aliasgate.night"
NIGHTLY = "nightly"

#: Per-suite numbers that are not metrics (no ``_n`` companion); shown as operations figures.
STAT_KEYS = ("n", "unmeasured", "model_calls", "cache_hits", "wall_time_s", "latency_p50_s",
             "latency_p95_s", "completion_tokens_mean", "repeats")


def nightly_role(candidate: str) -> str:
    """The role a candidate URI plays in the nightly history: its alias, else ``candidate``.

    Args:
        candidate: A candidate URI (``models:/NAME@champion`` gives ``champion``).
    """
    if candidate.startswith("models:/") and "@" in candidate:
        return candidate.rsplit("@", 1)[1] or "candidate"
    return "candidate"


@dataclass(frozen=True)
class MetricValue:
    """One metric of one suite in one run: the mean with its 95% CI.

    Attributes:
        value: The estimate (None when nothing was measured).
        ci_low: Lower confidence bound.
        ci_high: Upper confidence bound.
        n: Measured cases.
        unmeasured: Cases without a value.
    """

    value: float | None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    unmeasured: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high,
                "n": self.n, "unmeasured": self.unmeasured}


@dataclass
class SuiteSnapshot:
    """One suite of one run.

    Attributes:
        name: Suite name (metric prefix).
        metrics: Metric name -> :class:`MetricValue`.
        stats: ``n``, ``unmeasured``, latency, tokens, calls... (whatever the run logged).
        run_id: The child run's id (None when children were not read).
        params: The child run's params (candidate, dataset digest, generation and judge settings).
        cases: Per-case rows (``id``, ``input``, ``output``, ``group``, ``status``, one column
            per metric...), or None when not loaded.
        tables: Aggregate tables by name (``per_group``...), loaded with the cases.
    """

    name: str
    metrics: dict[str, MetricValue] = field(default_factory=dict)
    stats: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    params: dict[str, str] = field(default_factory=dict)
    cases: list[dict[str, Any]] | None = None
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    @property
    def dataset_digest(self) -> str | None:
        return self.params.get("dataset.digest")

    @property
    def dataset_path(self) -> str | None:
        return self.params.get("dataset.path")

    def case_values(self, metric: str) -> dict[str, float | None]:
        """Per-case values of ``metric`` by case id (None where unmeasured); empty without cases."""
        out: dict[str, float | None] = {}
        for row in self.cases or []:
            out[str(row.get("id"))] = _finite(row.get(metric))
        return out

    def gap_spec(self, metric: str) -> GapSpec | None:
        """How the gap metric ``metric`` was made from per-case values (param ``gap_specs``),
        or None (not a gap, or a run logged before gap specs were)."""
        from aliasgate.stats.aggregate import GapSpec

        raw = self.params.get("gap_specs")
        if not raw:
            return None
        try:
            spec = json.loads(raw).get(metric)
            return None if not isinstance(spec, dict) else GapSpec(
                metric=str(spec["metric"]), group_by=spec.get("group_by"),
                strata=spec.get("strata"), min_group_n=int(spec.get("min_group_n", 1)))
        except (ValueError, KeyError, TypeError, AttributeError):  # truncated or foreign param
            return None

    def case_rows(self) -> dict[str, dict[str, Any]]:
        """Per-case rows by case id."""
        return {str(r.get("id")): r for r in self.cases or []}

    def per_case_metrics(self) -> list[str]:
        """Metrics that have a per-case column (the others are suite-level aggregates)."""
        if not self.cases:
            return []
        columns = set().union(*(r.keys() for r in self.cases))
        return [m for m in self.metrics if m in columns]


@dataclass
class RunSnapshot:
    """One evaluation run (one night of one role), newest data first in a history list.

    Attributes:
        run_id: The parent run's id.
        run_name: Its name (``eval-YYYYmmdd-HHMMSS``).
        experiment_id: Its experiment.
        start_time: When it started (UTC).
        status: MLflow run status (``FINISHED``, ``FAILED``...).
        night: The night's label: tag ``aliasgate.night``, else the start date.
        kind: ``nightly`` or ``evaluation``.
        role: ``champion``, ``challenger``... (tag ``aliasgate.role``; None for plain evaluations).
        candidate: The candidate URI as given.
        model_name: Registered model name (tag or child params), or None.
        model_version: The version the alias resolved to, or None.
        git_sha: The project's commit.
        tags: All parent tags.
        params: Parent params.
        metrics: Flat parent metrics (``<suite>.<metric>``...).
        suites: Suite name -> :class:`SuiteSnapshot` (the candidate's, not a gate's baseline).
        results: ``report/results.json`` (or None).
        verdict: ``report/verdict.json`` (or None: no gate).
        tracking_uri: Where it was read from.
    """

    run_id: str
    run_name: str
    experiment_id: str
    start_time: dt.datetime
    status: str
    night: str
    kind: str | None
    role: str | None
    candidate: str | None
    model_name: str | None
    model_version: str | None
    git_sha: str | None
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]
    suites: dict[str, SuiteSnapshot]
    results: dict[str, Any] | None = None
    verdict: dict[str, Any] | None = None
    tracking_uri: str | None = None

    @property
    def label(self) -> str:
        """``2026-11-27 v3``: night and model version, for chart axes and headings."""
        return f"{self.night} v{self.model_version}" if self.model_version else self.night

    @property
    def version_label(self) -> str:
        return f"v{self.model_version}" if self.model_version else (self.candidate or "?")

    @property
    def cases_loaded(self) -> bool:
        return any(s.cases is not None for s in self.suites.values())

    def metric(self, suite: str, name: str) -> MetricValue | None:
        s = self.suites.get(suite)
        return None if s is None else s.metrics.get(name)

    def judge_params(self) -> dict[str, str]:
        """Judge settings of every suite (child params starting with ``judge``), if any."""
        out: dict[str, str] = {}
        for s in self.suites.values():
            for k, v in s.params.items():
                if k.startswith("judge") or ".judge" in k:
                    out[f"{s.name}: {k}"] = v
        return out


# -- reading -------------------------------------------------------------------------------------


def tracking_client(uri: str | None, client: Any = None) -> Any:
    """``client`` if given, else an ``MlflowClient`` for ``uri`` (default: env or local sqlite)."""
    quiet_environment()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # no tqdm per table
    if client is not None:
        return client
    from mlflow import MlflowClient

    from aliasgate.defaults import ensure_store

    return MlflowClient(tracking_uri=ensure_store(uri or tracking_uri()))


def load_run(
    run_id: str, *, tracking_uri: str | None = None, cases: bool = True, client: Any = None
) -> RunSnapshot:
    """Read one evaluation run (a parent run) and, with ``cases``, its children's tables.

    Args:
        run_id: The parent run's id.
        tracking_uri: Tracking URI (default: ``MLFLOW_TRACKING_URI`` or the local sqlite store).
        cases: Also read the child runs: params, per-case tables and aggregate tables.
        client: An ``MlflowClient`` to reuse.

    Raises:
        LookupError: the run does not exist, or it is a suite's child run (names the parent).
    """
    c = tracking_client(tracking_uri, client)
    try:
        run = c.get_run(run_id)
    except Exception as exc:  # noqa: BLE001 - MLflow raises MlflowException for unknown ids
        raise LookupError(f"no MLflow run {run_id!r} in {c.tracking_uri}: {exc}") from exc
    parent = run.data.tags.get("mlflow.parentRunId")
    if parent and run.data.tags.get(KIND_TAG) == "suite":
        raise LookupError(f"run {run_id} is the child run of suite "
                          f"{run.data.tags.get('aliasgate.suite')!r}; its evaluation is {parent}")
    snap = _snapshot(run, c)
    _load_report(snap, c)
    if cases:
        _load_children(snap, c)
    return snap


def load_history(
    *,
    experiment: str = DEFAULT_EXPERIMENT,
    tracking_uri: str | None = None,
    kind: str = NIGHTLY,
    role: str | None = "champion",
    model: str | None = None,
    candidate: str | None = None,
    nights: int = 14,
    before_ms: int | None = None,
    exclude: str | None = None,
    cases_for: int = 0,
    client: Any = None,
) -> list[RunSnapshot]:
    """Parent runs of one kind (and role, model, candidate) in an experiment, newest first.

    Args:
        experiment: Experiment name.
        tracking_uri: Tracking URI.
        kind: Tag ``aliasgate.kind`` (``nightly``, ``evaluation``).
        role: Tag ``aliasgate.role`` (None: any).
        model: Tag ``aliasgate.model_name`` (None: any).
        candidate: Tag ``aliasgate.candidate`` (None: any).
        nights: How many runs at most.
        before_ms: Only runs started before this time (ms since the epoch).
        exclude: A run id to leave out (tonight's own run).
        cases_for: Read the report artifacts and the children (cases, tables, params) of the
            newest ``cases_for`` runs; the others carry their metrics and tags only.
        client: An ``MlflowClient`` to reuse.
    """
    c = tracking_client(tracking_uri, client)
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        return []
    clauses = [f"tags.`{KIND_TAG}` = '{_q(kind)}'"]
    if role:
        clauses.append(f"tags.`{ROLE_TAG}` = '{_q(role)}'")
    if model:
        clauses.append(f"tags.`aliasgate.model_name` = '{_q(model)}'")
    if candidate:
        clauses.append(f"tags.`aliasgate.candidate` = '{_q(candidate)}'")
    if before_ms is not None:
        clauses.append(f"attributes.start_time < {int(before_ms)}")
    runs = c.search_runs(
        [exp.experiment_id], filter_string=" and ".join(clauses),
        order_by=["attributes.start_time DESC"], max_results=max(1, nights) + 1,
    )
    out = [_snapshot(r, c) for r in runs if r.info.run_id != exclude][: max(0, nights)]
    for snap in out[: max(0, cases_for)]:
        _load_report(snap, c)
        _load_children(snap, c)
    return out


def previous_runs(
    run: RunSnapshot, *, nights: int = 14, cases_for: int = 1, client: Any = None,
    experiment: str | None = None,
) -> list[RunSnapshot]:
    """The comparable runs before ``run``, newest first: the same kind, role and model (nightly
    runs) or the same candidate URI (other evaluations), in the same experiment.

    Args:
        run: The run to look back from.
        nights: How many runs at most.
        cases_for: Read children of the newest ``cases_for`` of them.
        client: An ``MlflowClient`` to reuse.
        experiment: Experiment name (default: the run's own experiment).
    """
    c = tracking_client(run.tracking_uri, client)
    name = experiment or c.get_experiment(run.experiment_id).name
    nightly = run.kind == NIGHTLY
    return load_history(
        experiment=name, kind=run.kind or "evaluation",
        role=run.role if nightly else None,
        model=run.model_name if nightly and run.tags.get("aliasgate.model_name") else None,
        candidate=None if nightly and run.role else run.candidate,
        nights=nights, before_ms=int(run.start_time.timestamp() * 1000), exclude=run.run_id,
        cases_for=cases_for, client=c,
    )


def _q(value: str) -> str:
    return str(value).replace("'", "\\'")


def _snapshot(run: Any, c: Any) -> RunSnapshot:
    tags = dict(run.data.tags)
    metrics = {k: float(v) for k, v in run.data.metrics.items()}
    started = dt.datetime.fromtimestamp((run.info.start_time or 0) / 1000, tz=dt.UTC)
    snap = RunSnapshot(
        run_id=run.info.run_id,
        run_name=run.info.run_name or tags.get("mlflow.runName", run.info.run_id),
        experiment_id=run.info.experiment_id,
        start_time=started,
        status=run.info.status,
        night=tags.get(NIGHT_TAG) or started.strftime("%Y-%m-%d"),
        kind=tags.get(KIND_TAG),
        role=tags.get(ROLE_TAG),
        candidate=tags.get("aliasgate.candidate"),
        model_name=tags.get("aliasgate.model_name"),
        model_version=tags.get("aliasgate.model_version"),
        git_sha=tags.get("aliasgate.git_sha"),
        tags=tags,
        params=dict(run.data.params),
        metrics=metrics,
        suites=suites_from_metrics(metrics),
        tracking_uri=str(getattr(c, "tracking_uri", "") or "") or None,
    )
    return snap


def _load_report(snap: RunSnapshot, c: Any) -> None:
    """The ``report/results.json`` and ``report/verdict.json`` artifacts of the parent run."""
    names = {a.path for a in _list(c, snap.run_id, "report")}
    if "report/results.json" in names:
        snap.results = _read_json(c, snap.run_id, "report/results.json")
    if "report/verdict.json" in names:
        snap.verdict = _read_json(c, snap.run_id, "report/verdict.json")


def suites_from_metrics(metrics: Mapping[str, float]) -> dict[str, SuiteSnapshot]:
    """Split a parent run's flat metrics into suites: a metric is a key ``<suite>.<m>`` that has
    a ``<suite>.<m>_n`` companion; ``baseline.``-prefixed keys (a gate's baseline) are left out.

    Args:
        metrics: The parent run's metrics.
    """
    by_suite: dict[str, dict[str, float]] = {}
    for key, value in metrics.items():
        suite, dot, rest = key.partition(".")
        if not dot or (suite == "baseline" and "." in rest):
            continue
        by_suite.setdefault(suite, {})[rest] = value
    out: dict[str, SuiteSnapshot] = {}
    for suite, flat in sorted(by_suite.items()):
        names = sorted(k[:-2] for k in flat if k.endswith("_n") and k[:-2] + "_unmeasured" in flat)
        snap = SuiteSnapshot(name=suite)
        used: set[str] = set()
        for m in names:
            snap.metrics[m] = MetricValue(
                value=_finite(flat.get(m)), ci_low=_finite(flat.get(f"{m}_ci_low")),
                ci_high=_finite(flat.get(f"{m}_ci_high")), n=_int(flat.get(f"{m}_n")),
                unmeasured=_int(flat.get(f"{m}_unmeasured")),
            )
            used.update({m, f"{m}_ci_low", f"{m}_ci_high", f"{m}_n", f"{m}_unmeasured"})
        snap.stats = {k: v for k, v in flat.items() if k not in used}
        out[suite] = snap
    return out


def _load_children(snap: RunSnapshot, c: Any) -> None:
    """Params, per-case table and aggregate tables of the candidate's child runs."""
    children = c.search_runs(
        [snap.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{snap.run_id}'",
        max_results=1000,
    )
    for child in children:
        tags = child.data.tags
        if tags.get("aliasgate.role", "candidate") != "candidate":
            continue
        name = tags.get("aliasgate.suite") or child.data.params.get("suite")
        if not name:
            continue
        suite = snap.suites.setdefault(name, SuiteSnapshot(name=name))
        suite.run_id = child.info.run_id
        suite.params = dict(child.data.params)
        suite.cases = []
        for art in _list(c, child.info.run_id, name):
            if not art.path.endswith(".json"):
                continue
            table = art.path[len(name) + 1 : -len(".json")]
            rows = _read_table(c, child.info.run_id, art.path)
            if table == "cases":
                suite.cases = rows
            else:
                suite.tables[table] = rows
        if snap.model_version is None and suite.params.get("candidate.model_version"):
            snap.model_version = suite.params["candidate.model_version"]
        if snap.model_name is None and suite.params.get("candidate.model_name"):
            snap.model_name = suite.params["candidate.model_name"]


def _list(c: Any, run_id: str, path: str) -> list[Any]:
    try:
        return list(c.list_artifacts(run_id, path))
    except Exception:  # noqa: BLE001 - no such artifact directory
        return []


def _download(c: Any, run_id: str, path: str) -> bytes:
    tmp = tempfile.mkdtemp(prefix="aliasgate-history-")
    try:
        local = c.download_artifacts(run_id, path, tmp)
        with open(local, "rb") as fh:
            return fh.read()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_json(c: Any, run_id: str, path: str) -> dict[str, Any] | None:
    try:
        return json.loads(_download(c, run_id, path))
    except (OSError, ValueError):
        return None


def _read_table(c: Any, run_id: str, path: str) -> list[dict[str, Any]]:
    """An MLflow ``log_table`` artifact (``{"columns": [...], "data": [[...]]}``) as rows."""
    doc = _read_json(c, run_id, path)
    if not doc:
        return []
    if isinstance(doc, list):
        return [dict(r) for r in doc if isinstance(r, Mapping)]
    columns = list(doc.get("columns") or [])
    return [dict(zip(columns, row, strict=False)) for row in doc.get("data") or []]


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None if value is None else float(value)
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _int(value: Any) -> int | None:
    f = _finite(value)
    return None if f is None else int(f)
