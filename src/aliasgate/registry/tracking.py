"""MLflow logging of evaluation runs: one parent run per invocation, one child per (candidate, suite).

Everything is logged in batches from the calling thread (per-case calls overflow the sqlite
connection pool, see PITFALLS). Logging a suite costs four tracking-store requests: create the
child run with its tags; one ``log_batch`` with all its params and metrics; one ``log_batch``
of its metrics on the parent; end the child run — plus one ``log_artifacts`` upload of its
tables (the per-case table and any aggregate tables) in the format of ``MlflowClient.log_table``
(JSON ``{"columns": [...], "data": [[...]]}``, pandas' ``orient="split"``) and registered in
the same ``mlflow.loggedArtifacts`` tag, so the MLflow UI and ``load_table`` see them as
tables. The JSON is written directly rather than through a DataFrame (pandas 3 builds every
row twice over for ``to_json``): same columns and values, floats at full precision.
"""

from __future__ import annotations

import contextlib
import json
import math
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aliasgate import __version__
from aliasgate.defaults import DEFAULT_EXPERIMENT, ensure_store, quiet_environment, tracking_uri
from aliasgate.run.results import SuiteResult

_MAX_PARAMS_PER_BATCH = 100
_MAX_TAGS_PER_BATCH = 100
_MAX_METRICS_PER_BATCH = 1000
_MAX_ENTITIES_PER_BATCH = 1000  # params + metrics + tags in one log_batch request
_MAX_PARAM_LEN = 6000
#: The run tag through which MLflow lists a run's tables (``MlflowClient.log_table`` sets it).
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"


def git_sha(cwd: str | Path | None = None) -> str | None:
    """The checked-out commit, suffixed ``-dirty`` when tracked files changed; None outside git."""
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10
        )
        if sha.returncode != 0:
            return None
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=10,
        )
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return None


def suite_metrics(result: SuiteResult) -> dict[str, float]:
    """The flat metric dict logged for a suite: ``<suite>.<metric>`` with CI bounds, n, unmeasured."""
    s = result.suite
    out: dict[str, float] = {
        f"{s}.n": result.n,
        f"{s}.unmeasured": result.unmeasured,
        f"{s}.model_calls": result.model_calls,
        f"{s}.cache_hits": result.cache_hits,
        f"{s}.wall_time_s": result.wall_time_s,
    }
    for name, m in result.metrics.items():
        _summary(out, f"{s}.{name}", m)
    agreement = getattr(result, "agreement", None)
    if agreement is not None:  # --repeats K > 1: mean share of repeats equal to the modal output
        out[f"{s}.repeats"] = result.repeats
        _summary(out, f"{s}.agreement", agreement)
    latencies = sorted(c.latency_s for c in result.cases if c.latency_s is not None)
    if latencies:
        out[f"{s}.latency_p50_s"] = latencies[len(latencies) // 2]
        out[f"{s}.latency_p95_s"] = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    tokens = [c.completion_tokens for c in result.cases if c.completion_tokens is not None]
    if tokens:
        out[f"{s}.completion_tokens_mean"] = sum(tokens) / len(tokens)
    return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(float(v))}


def _summary(out: dict[str, float], key: str, m: Any) -> None:
    """``key`` (value), ``key_ci_low``, ``key_ci_high`` (when defined), ``key_n``, ``key_unmeasured``."""
    for suffix, value in (("", m.value), ("_ci_low", m.ci_low), ("_ci_high", m.ci_high)):
        if value is not None:
            out[key + suffix] = value
    out[f"{key}_n"] = m.n
    out[f"{key}_unmeasured"] = m.unmeasured


def suite_params(result: SuiteResult, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Params of a suite's child run: candidate, generation params, dataset digest, versions,
    and the settings of scorers that describe themselves (``SuiteResult.scorer_info``: the LLM
    judges' ``judge.*`` — model, endpoint without credentials, prompt hashes, calibration
    agreement and trust), so that a run can be replayed."""
    params: dict[str, Any] = {
        "suite": result.suite,
        "candidate": result.candidate,
        "dataset.path": result.dataset_path,
        "dataset.digest": result.dataset_digest,
        "aliasgate.version": __version__,
        "repeats": getattr(result, "repeats", 1),
    }
    params.update({f"gen.{k}": v for k, v in result.params.items()})
    params.update(result.candidate_info)
    params.update(getattr(result, "scorer_info", None) or {})
    specs = getattr(result, "gap_specs", None)
    if specs:  # how each gap metric is made from per-case values (paired comparisons of runs)
        params["gap_specs"] = {name: spec.as_dict() for name, spec in sorted(specs.items())}
    params.update(extra or {})
    return {k: _param_value(v) for k, v in params.items() if v is not None}


def _param_value(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return s[:_MAX_PARAM_LEN]


class TrackingSession:
    """A parent run and its child runs, created lazily on first use.

    Args:
        uri: Tracking URI (default: ``MLFLOW_TRACKING_URI`` or local sqlite).
        experiment: Experiment name (created if missing).
        run_name: Name of the parent run.
        tags: Tags of the parent run.
    """

    def __init__(
        self,
        uri: str | None = None,
        experiment: str = DEFAULT_EXPERIMENT,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self.uri = uri or tracking_uri()
        self.experiment = experiment
        self.run_name = run_name or time.strftime("eval-%Y%m%d-%H%M%S")
        self.tags = dict(tags or {})
        self._client: Any = None
        self.experiment_id: str | None = None
        self.parent_run_id: str | None = None
        self.child_runs: dict[str, str] = {}

    @property
    def client(self) -> Any:
        if self._client is None:
            quiet_environment()
            import mlflow
            from mlflow import MlflowClient

            ensure_store(self.uri)
            mlflow.set_tracking_uri(self.uri)
            self._client = MlflowClient(tracking_uri=self.uri)
        return self._client

    def _experiment(self) -> str:
        if self.experiment_id is None:
            exp = self.client.get_experiment_by_name(self.experiment)
            self.experiment_id = (
                exp.experiment_id if exp is not None else self.client.create_experiment(self.experiment)
            )
        return self.experiment_id

    def parent(self) -> str:
        """The parent run id (created on first call)."""
        if self.parent_run_id is None:
            run = self.client.create_run(self._experiment(), run_name=self.run_name, tags=self.tags)
            self.parent_run_id = run.info.run_id
        return self.parent_run_id

    def log_suite(
        self,
        result: SuiteResult,
        extra_params: Mapping[str, Any] | None = None,
        role: str = "candidate",
    ) -> str:
        """Log one suite result as a child run (params, metrics, per-case table); returns its id.

        Args:
            result: The suite result.
            extra_params: More params for the child run (git sha, limit...).
            role: ``candidate`` or ``baseline``; the parent run gets the candidate's metrics as
                ``<suite>.<metric>`` and the baseline's as ``baseline.<suite>.<metric>``.
        """
        parent = self.parent()
        key = f"{role}::{result.candidate}::{result.suite}"
        tags = {
            "mlflow.parentRunId": parent,
            "aliasgate.suite": result.suite,
            "aliasgate.candidate": result.candidate,
            "aliasgate.role": role,
            "aliasgate.kind": "suite",
        }
        name = result.suite if role == "candidate" else f"{result.suite} ({role})"
        tables = {f"{result.suite}/cases.json": result.rows()}
        for table, rows in result.tables.items():
            if rows:
                tables[f"{result.suite}/{table}.json"] = rows
        # The tables are listed at creation (one store write less); a run whose tables could
        # not be uploaded ends FAILED.
        tags[LOGGED_ARTIFACTS_TAG] = _logged_tables_tag(tables)
        run = self.client.create_run(self._experiment(), run_name=name, tags=tags)
        run_id = run.info.run_id
        try:
            self.log_tables(run_id, tables)
            metrics = suite_metrics(result)
            self.log(run_id, metrics=metrics, params=suite_params(result, extra_params))
            prefix = "" if role == "candidate" else f"{role}."
            self.log(parent, metrics={prefix + k: v for k, v in metrics.items()})
        except BaseException:
            with contextlib.suppress(Exception):  # the original error is the one to report
                self.client.set_terminated(run_id, "FAILED")
            raise
        self.client.set_terminated(run_id, "FINISHED")
        self.child_runs[key] = run_id
        return run_id

    def log(
        self,
        run_id: str,
        *,
        metrics: Mapping[str, float] | None = None,
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Batch-log metrics/params/tags: as few ``log_batch`` requests as MLflow's per-request
        limits allow (one, up to 100 params, 100 tags and 1,000 entries in all)."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        m = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()]
        p = [Param(k, str(v)) for k, v in (params or {}).items()]
        t = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        for batch in _batches(m, p, t):
            self.client.log_batch(run_id, **batch)

    def log_table(self, run_id: str, rows: list[dict[str, Any]], artifact_file: str) -> None:
        """One table through ``MlflowClient.log_table`` (appends to an existing table)."""
        import pandas as pd

        self.client.log_table(run_id, data=pd.DataFrame(rows), artifact_file=artifact_file)

    def log_tables(self, run_id: str, tables: Mapping[str, list[dict[str, Any]]]) -> None:
        """Upload new tables (``artifact_file`` -> rows) of a run in one ``log_artifacts`` call.

        Each file has ``MlflowClient.log_table``'s format (:func:`table_json`); MLflow lists
        them as tables once the run has the :data:`LOGGED_ARTIFACTS_TAG` tag
        (:func:`_logged_tables_tag`), which :meth:`log_suite` sets when it creates the run. Unlike ``log_table`` this neither appends to an existing file of
        the same name nor stores image columns: it is for a fresh run's plain tables.
        """
        import tempfile

        with tempfile.TemporaryDirectory(prefix="aliasgate-tables-") as tmp:
            for artifact_file, rows in tables.items():
                path = Path(tmp, *artifact_file.split("/"))
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(table_json(rows), encoding="utf-8")
            self.client.log_artifacts(run_id, tmp)

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def finish(self, status: str = "FINISHED") -> None:
        """Close the parent run (no-op if none was created)."""
        if self.parent_run_id is not None:
            self.client.set_terminated(self.parent_run_id, status)

    def ui_hint(self) -> str:
        if self.uri.startswith(("sqlite:", "file:")) or "://" not in self.uri:
            return f"mlflow ui --backend-store-uri {self.uri}"
        return self.uri


def table_json(rows: list[Mapping[str, Any]]) -> str:
    """Rows as an MLflow table file: ``{"columns": [...], "data": [[...], ...]}``.

    What ``pandas.DataFrame(rows).to_json(orient="split", index=False)`` (``log_table``) gives:
    the columns are the keys in first-seen order, a key missing from a row is null, NaN and
    infinities are null; numpy scalars and arrays become numbers and lists, other objects
    their ``str``. Floats keep their full precision (pandas rounds to 10 digits).
    """
    columns: dict[str, None] = {}
    first = tuple(rows[0]) if rows else ()
    uniform = True
    for r in rows:
        if tuple(r) != first:
            uniform = False
            for k in r:
                columns.setdefault(k)
    if uniform:
        names = list(first)
        data = [list(r.values()) for r in rows]
    else:
        names = [*first, *(k for k in columns if k not in first)]
        data = [[r.get(c) for c in names] for r in rows]
    doc = {"columns": names, "data": data}
    try:
        return json.dumps(doc, ensure_ascii=False, allow_nan=False, default=_json_value)
    except ValueError:  # NaN or infinity somewhere: null, as pandas writes them
        doc["data"] = [[_finite_or_none(v) for v in row] for row in data]
        return json.dumps(doc, ensure_ascii=False, allow_nan=False, default=_json_value)


def _finite_or_none(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, list | tuple):
        return [_finite_or_none(x) for x in v]
    if isinstance(v, dict):
        return {k: _finite_or_none(x) for k, x in v.items()}
    if hasattr(v, "tolist") and hasattr(v, "dtype"):  # numpy scalar or array
        return _finite_or_none(v.tolist())
    return v


def _json_value(o: Any) -> Any:
    """``json.dumps`` default for table cells: numpy values as Python ones, else ``str``."""
    if hasattr(o, "tolist") and hasattr(o, "dtype"):
        return o.tolist()
    if isinstance(o, set | frozenset):
        return sorted(o, key=str)
    return str(o)


def _logged_tables_tag(tables: Mapping[str, Any]) -> str:
    """The ``mlflow.loggedArtifacts`` value listing ``tables`` (as ``log_table`` writes it)."""
    return json.dumps([{"path": name, "type": "table"} for name in tables])


def _batches(metrics: list[Any], params: list[Any], tags: list[Any]) -> Iterable[dict[str, list[Any]]]:
    """Split entities into ``log_batch`` keyword sets within MLflow's per-request limits."""
    m, p, t = list(metrics), list(params), list(tags)
    while m or p or t:
        batch: dict[str, list[Any]] = {}
        room = _MAX_ENTITIES_PER_BATCH
        for name, items, limit in (("params", p, _MAX_PARAMS_PER_BATCH),
                                   ("tags", t, _MAX_TAGS_PER_BATCH),
                                   ("metrics", m, _MAX_METRICS_PER_BATCH)):
            take = min(len(items), limit, room)
            if take:
                batch[name] = items[:take]
                del items[:take]
                room -= take
        yield batch
