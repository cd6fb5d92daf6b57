"""MLflow logging of evaluation runs: one parent run per invocation, one child per (candidate, suite).

Everything is logged in batches from the calling thread (per-case calls overflow the sqlite
connection pool, see PITFALLS): one ``log_batch`` series per run and one ``log_table`` per suite.
"""

from __future__ import annotations

import json
import math
import subprocess
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from aliasgate import __version__
from aliasgate.defaults import DEFAULT_EXPERIMENT, quiet_environment, tracking_uri
from aliasgate.run.results import SuiteResult

_MAX_PARAMS_PER_BATCH = 100
_MAX_METRICS_PER_BATCH = 1000
_MAX_PARAM_LEN = 6000


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
        if m.value is not None:
            out[f"{s}.{name}"] = m.value
        if m.ci_low is not None:
            out[f"{s}.{name}_ci_low"] = m.ci_low
        if m.ci_high is not None:
            out[f"{s}.{name}_ci_high"] = m.ci_high
        out[f"{s}.{name}_n"] = m.n
        out[f"{s}.{name}_unmeasured"] = m.unmeasured
    agreement = getattr(result, "agreement", None)
    if agreement is not None:  # --repeats K > 1: mean share of repeats equal to the modal output
        out[f"{s}.repeats"] = result.repeats
        if agreement.value is not None:
            out[f"{s}.agreement"] = agreement.value
        if agreement.ci_low is not None:
            out[f"{s}.agreement_ci_low"] = agreement.ci_low
        if agreement.ci_high is not None:
            out[f"{s}.agreement_ci_high"] = agreement.ci_high
        out[f"{s}.agreement_n"] = agreement.n
        out[f"{s}.agreement_unmeasured"] = agreement.unmeasured
    latencies = sorted(c.latency_s for c in result.cases if c.latency_s is not None)
    if latencies:
        out[f"{s}.latency_p50_s"] = latencies[len(latencies) // 2]
        out[f"{s}.latency_p95_s"] = latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))]
    tokens = [c.completion_tokens for c in result.cases if c.completion_tokens is not None]
    if tokens:
        out[f"{s}.completion_tokens_mean"] = sum(tokens) / len(tokens)
    return {k: float(v) for k, v in out.items() if v is not None and math.isfinite(float(v))}


def suite_params(result: SuiteResult, extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Params of a suite's child run: candidate, generation params, dataset digest, versions."""
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
        run = self.client.create_run(self._experiment(), run_name=name, tags=tags)
        run_id = run.info.run_id
        metrics = suite_metrics(result)
        self.log(run_id, metrics=metrics, params=suite_params(result, extra_params))
        prefix = "" if role == "candidate" else f"{role}."
        self.log(parent, metrics={prefix + k: v for k, v in metrics.items()})
        self.log_table(run_id, [c.row() for c in result.cases], f"{result.suite}/cases.json")
        for table, rows in result.tables.items():
            if rows:
                self.log_table(run_id, rows, f"{result.suite}/{table}.json")
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
        """Batch-log metrics/params/tags, split into MLflow's per-request limits."""
        from mlflow.entities import Metric, Param, RunTag

        now = int(time.time() * 1000)
        m = [Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()]
        p = [Param(k, str(v)) for k, v in (params or {}).items()]
        t = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        for chunk in _chunks(p, _MAX_PARAMS_PER_BATCH):
            self.client.log_batch(run_id, params=chunk)
        for chunk in _chunks(m, _MAX_METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=chunk)
        if t:
            self.client.log_batch(run_id, tags=t)

    def log_table(self, run_id: str, rows: list[dict[str, Any]], artifact_file: str) -> None:
        import pandas as pd

        self.client.log_table(run_id, data=pd.DataFrame(rows), artifact_file=artifact_file)

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


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
