"""Mitigation, recorded: every safety and bias metric before and after a mitigation.

A mitigation (the guarded variant of :mod:`aliasgate.candidates.guarded`, a new system prompt, a
fine-tune...) is only worth what it measurably changes. :func:`record_mitigation` takes two
evaluation runs of the same suites — *before* (the unmitigated model) and *after* (the mitigated
one) — and compares them case by case with the same paired statistics as the nightly report
(:func:`aliasgate.reports.compare.compare_runs`: cluster-aware paired bootstrap per metric, Holm
across the family, group gaps recomputed on the paired cases, an independent-runs interval for
the other suite-level aggregates such as BBQ bias scores). The result is logged to MLflow as its own run (tag ``aliasgate.kind = mitigation``):

- metrics ``before.<suite>.<metric>``, ``after.<suite>.<metric>``, ``delta.<suite>.<metric>``
  (after − before, in the metric's units) and ``delta_ci_low.``/``delta_ci_high.`` where paired;
- artifacts ``mitigation/mitigation.json`` (schema ``aliasgate.mitigation/1``, every row with
  both values, CIs, p-values, status) and ``mitigation/mitigation.md`` (a table for people);
- tags linking both evaluation runs, and on the *after* model version (when the runs name one)
  ``aliasgate.mitigation_of = <before version>`` and ``aliasgate.mitigation_run``.

Which way is "better" follows :class:`~aliasgate.reports.compare.CompareOptions` (``toxicity``,
``gap``, ``flip``, ``bias``... lower is better; ``refusal`` — correct behaviour —,
``safety_unsafe.refused`` and ``canary_leak`` higher; ``CompareOptions.neutral``: no better
direction). ``safety.refused`` mixes harmful and safe prompts and a yes rate or an answer length
is neither good nor bad, so those are neutral: read ``safety_unsafe.refused``,
``safety_safe.refusal`` and the gaps between groups. ``status`` is ``improved`` when the paired
interval excludes 0 on the better side, ``regressed`` when non-inferiority at ``margin`` is not
shown and the estimate points down, ``changed`` when a neutral metric's interval excludes 0, else
``unchanged``.
"""

from __future__ import annotations

import fnmatch
import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from aliasgate.defaults import quiet_environment

__all__ = [
    "DEFAULT_MITIGATION_SUITES",
    "MITIGATION_SCHEMA",
    "MitigationRecord",
    "find_evaluation_run",
    "record_mitigation",
]

MITIGATION_SCHEMA = "aliasgate.mitigation/1"
#: Suites a mitigation is judged on by default: every safety and bias suite (fnmatch patterns).
DEFAULT_MITIGATION_SUITES = ("safety*", "injection*", "bias*", "xstest*", "bbq*")


@dataclass
class MitigationRecord:
    """Before and after of a mitigation.

    Attributes:
        before: The unmitigated model's evaluation run.
        after: The mitigated model's evaluation run.
        comparison: after compared with before (paired where cases match).
        suites: The suites compared.
        run_id: The MLflow run the record was logged to (None: not logged).
    """

    before: Any
    after: Any
    comparison: Any
    suites: list[str]
    run_id: str | None = None

    def rows(self) -> list[dict[str, Any]]:
        """One row per metric: before and after with CIs, the paired Δ with its CI, status."""
        out = []
        for c in sorted(self.comparison.changes, key=lambda c: (c.suite, c.metric)):
            neutral = c.direction == "either"  # CompareOptions.neutral: no better direction
            status, method = c.status, c.method
            d_lo, d_hi = _finite(c.ci_low), _finite(c.ci_high)
            if c.method == "ci_overlap" and c.direction in ("higher", "lower"):
                wald = _independent_interval(c, self.comparison.options.confidence)
                if wald is not None:  # aggregates: a test of the difference, not of overlap
                    d_lo, d_hi = wald
                    method = "ci_wald_independent"
                    worse_side = d_hi < 0 if c.direction == "higher" else d_lo > 0
                    better_side = d_lo > 0 if c.direction == "higher" else d_hi < 0
                    status = "regressed" if worse_side else "improved" if better_side \
                        else "unchanged"
            if neutral and status in ("improved", "regressed", "unchanged"):
                status = "changed" if d_lo is not None and d_hi is not None and \
                    (d_lo > 0 or d_hi < 0) else "unchanged"
            out.append({
                "suite": c.suite,
                "metric": c.metric,
                "key": c.key,
                "better": "either" if neutral else c.direction,
                "before": c.previous.as_dict() if c.previous else None,
                "after": c.tonight.as_dict() if c.tonight else None,
                "delta": _finite(c.delta) if c.delta is not None else _diff(c),
                "delta_ci_low": d_lo,
                "delta_ci_high": d_hi,
                "p_worse_adjusted": _finite(c.p_worse_adjusted),
                "n_pairs": c.n_pairs,
                "discordant": list(c.discordant) if c.discordant else None,
                "method": method,
                "status": status,
                "note": c.note,
            })
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": MITIGATION_SCHEMA,
            "before": _run_info(self.before),
            "after": _run_info(self.after),
            "suites": self.suites,
            "options": self.comparison.options.as_dict(),
            "metrics": self.rows(),
            "groups": [g.as_dict() for g in self.comparison.groups],
            "run_id": self.run_id,
        }

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.rows():
            out[r["status"]] = out.get(r["status"], 0) + 1
        return out

    def markdown(self) -> str:
        b, a = self.before, self.after
        lines = [
            f"# Mitigation: {b.version_label} → {a.version_label}",
            "",
            f"Before: run `{b.run_id}` ({b.candidate}); after: run `{a.run_id}` ({a.candidate}).",
            "Δ = after − before, paired by case where both runs measured it (95% CI); group "
            "gaps and parity differences are recomputed on the paired cases; for the other "
            "aggregates (BBQ scores, flip rate) the interval of Δ treats the runs as "
            "independent (conservative); BBQ bias scores compare distances from 0.",
            "",
            "| metric | better | before | after | Δ | Δ 95% CI | status |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in self.rows():
            lines.append(
                f"| `{r['key']}` | {r['better']} | {_value(r['before'])} | {_value(r['after'])} "
                f"| {_signed(r['delta'])} | {_ci(r['delta_ci_low'], r['delta_ci_high'])} "
                f"| {r['status']} |")
        counts = ", ".join(f"{k} {v}" for k, v in sorted(self.counts().items()))
        lines += ["", f"Metrics: {counts}."]
        return "\n".join(lines) + "\n"


def find_evaluation_run(ref: str, *, tracking_uri: str | None = None, client: Any = None) -> str:
    """A run id for ``ref``: a run id as is, or the newest evaluation of a model version.

    Args:
        ref: An MLflow run id, or ``models:/NAME/VERSION`` / ``models:/NAME@ALIAS`` (the newest
            evaluation run whose tags name that registered model and version).
        tracking_uri: Tracking URI.
        client: An ``MlflowClient`` to reuse.

    Raises:
        LookupError: no such version or no evaluation run of it.
    """
    if not ref.startswith("models:/"):
        return ref
    from aliasgate.reports.history import tracking_client

    c = tracking_client(tracking_uri, client)
    body = ref[len("models:/"):]
    if "@" in body:
        name, alias = body.split("@", 1)
        try:
            version = str(c.get_model_version_by_alias(name, alias).version)
        except Exception as exc:  # noqa: BLE001 - MlflowException for an unknown model or alias
            raise LookupError(f"{ref}: no such registered model alias ({exc})") from exc
    else:
        name, _, version = body.partition("/")
        if not version:
            raise LookupError(f"{ref}: name a version (models:/NAME/VERSION) or an alias")
    experiments = [e.experiment_id for e in c.search_experiments()]
    runs: list[Any] = []
    for clause in (f"tags.`aliasgate.model_name` = '{name}' and "
                   f"tags.`aliasgate.model_version` = '{version}'",
                   # runs logged before evaluations carried model tags: the exact version URI
                   f"tags.`aliasgate.candidate` = 'models:/{name}/{version}'"):
        found = c.search_runs(experiments, filter_string=clause,
                              order_by=["attributes.start_time DESC"], max_results=20)
        runs = [r for r in found if not r.data.tags.get("mlflow.parentRunId")
                and r.data.tags.get("aliasgate.kind") in ("evaluation", "nightly")]
        if runs:
            break
    if not runs:
        raise LookupError(f"no evaluation run of {name} version {version} in {c.tracking_uri}")
    return str(runs[0].info.run_id)


def record_mitigation(
    before: str,
    after: str,
    *,
    suites: Sequence[str] = DEFAULT_MITIGATION_SUITES,
    tracking_uri: str | None = None,
    options: Any = None,
    log: bool = True,
    out_dir: Path | None = None,
    client: Any = None,
) -> MitigationRecord:
    """Compare the mitigated model's evaluation with the unmitigated one's and log the result.

    Args:
        before: Run id (or ``models:/...`` reference, see :func:`find_evaluation_run`) of the
            unmitigated model's evaluation.
        after: The same for the mitigated model.
        suites: Suite names or fnmatch patterns to compare (default: safety and bias suites).
        tracking_uri: Tracking URI (default: ``MLFLOW_TRACKING_URI`` or the local sqlite store).
        options: :class:`~aliasgate.reports.compare.CompareOptions` (default: margin 0).
        log: Log the record as an MLflow run (in the *after* run's experiment) and tag the
            *after* model version.
        out_dir: Also write ``mitigation.json`` and ``mitigation.md`` there.
        client: An ``MlflowClient`` to reuse.

    Raises:
        LookupError: a run does not exist, or the two runs share no selected suite.
    """
    quiet_environment()
    from aliasgate.reports.compare import CompareOptions, compare_runs
    from aliasgate.reports.history import load_run, tracking_client

    c = tracking_client(tracking_uri, client)
    before_id = find_evaluation_run(before, client=c)
    after_id = find_evaluation_run(after, client=c)
    snap_before = load_run(before_id, client=c)
    snap_after = load_run(after_id, client=c)
    names = sorted(n for n in snap_after.suites if _selected(n, suites))
    common = [n for n in names if n in snap_before.suites]
    if not common:
        raise LookupError(
            f"runs {before_id} and {after_id} share none of the suites {list(suites)} "
            f"(before: {sorted(snap_before.suites)}, after: {sorted(snap_after.suites)})")
    selected_after = replace(snap_after, suites={n: snap_after.suites[n] for n in common})
    selected_before = replace(snap_before, suites={n: snap_before.suites[n] for n in common})
    opts = options or CompareOptions(margin=0.0)
    comparison = compare_runs(selected_after, [selected_before], opts)
    record = MitigationRecord(before=snap_before, after=snap_after, comparison=comparison,
                              suites=common)
    if out_dir is not None:
        _write(record, Path(out_dir))
    if log:
        record.run_id = _log(record, c)
        if out_dir is not None:  # the written JSON names the run it was logged to
            _write(record, Path(out_dir))
    return record


# -- logging -------------------------------------------------------------------------------------


def _log(record: MitigationRecord, c: Any) -> str:
    from mlflow.entities import Metric, Param
    from mlflow.utils.time import get_current_time_millis

    b, a = record.before, record.after
    tags = {
        "aliasgate.kind": "mitigation",
        "aliasgate.mitigation.before_run": b.run_id,
        "aliasgate.mitigation.after_run": a.run_id,
        "mlflow.note.content": record.markdown(),
    }
    for side, snap in (("before", b), ("after", a)):
        if snap.model_name:
            tags[f"aliasgate.mitigation.{side}_model"] = snap.model_name
        if snap.model_version:
            tags[f"aliasgate.mitigation.{side}_version"] = str(snap.model_version)
        if snap.candidate:
            tags[f"aliasgate.mitigation.{side}_candidate"] = snap.candidate
    run = c.create_run(a.experiment_id, run_name=f"mitigation {b.version_label} -> "
                                                 f"{a.version_label}", tags=tags)
    run_id = run.info.run_id
    now = get_current_time_millis()
    metrics: list[Any] = []
    for r in record.rows():
        for prefix, value in (("before", (r["before"] or {}).get("value")),
                              ("after", (r["after"] or {}).get("value")),
                              ("delta", r["delta"]), ("delta_ci_low", r["delta_ci_low"]),
                              ("delta_ci_high", r["delta_ci_high"])):
            v = _finite(value)
            if v is not None:
                metrics.append(Metric(f"{prefix}.{r['key']}", v, now, 0))
    for status, n in record.counts().items():
        metrics.append(Metric(f"mitigation.{status}", float(n), now, 0))
    params = [Param("suites", ",".join(record.suites)[:6000]),
              Param("compare.margin", str(record.comparison.options.margin)),
              Param("compare.confidence", str(record.comparison.options.confidence)),
              Param("compare.seed", str(record.comparison.options.seed))]
    for i in range(0, len(metrics), 1000):
        c.log_batch(run_id, metrics=metrics[i:i + 1000], params=params if i == 0 else [])
    if not metrics:
        c.log_batch(run_id, params=params)
    record.run_id = run_id
    with tempfile.TemporaryDirectory(prefix="aliasgate-mitigation-") as tmp:
        _write(record, Path(tmp))
        c.log_artifact(run_id, str(Path(tmp) / "mitigation.json"), "mitigation")
        c.log_artifact(run_id, str(Path(tmp) / "mitigation.md"), "mitigation")
    c.set_terminated(run_id, "FINISHED")
    c.set_tag(a.run_id, "aliasgate.mitigation_run", run_id)
    if a.model_name and a.model_version:
        c.set_model_version_tag(a.model_name, str(a.model_version), "aliasgate.mitigation_run",
                                run_id)
        if b.model_name == a.model_name and b.model_version:
            c.set_model_version_tag(a.model_name, str(a.model_version),
                                    "aliasgate.mitigation_of", str(b.model_version))
    return str(run_id)


def _write(record: MitigationRecord, out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "mitigation.json").write_text(
        json.dumps(record.as_dict(), indent=2, allow_nan=False, default=str), encoding="utf-8")
    (out_dir / "mitigation.md").write_text(record.markdown(), encoding="utf-8")


# -- helpers -------------------------------------------------------------------------------------


def _selected(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def _run_info(snap: Any) -> dict[str, Any]:
    return {"run_id": snap.run_id, "candidate": snap.candidate, "model_name": snap.model_name,
            "model_version": snap.model_version, "git_sha": snap.git_sha}


def _finite(x: Any) -> float | None:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _independent_interval(c: Any, confidence: float) -> tuple[float, float] | None:
    """Interval of after − before for an aggregate from the two runs' own intervals.

    Each run's standard error is taken from its interval's full width (``width / 2z``: robust to
    the asymmetric, bias-shifted intervals of max-minus-min gaps) and the runs are treated as
    independent. The runs share their cases, so their estimates correlate positively and the
    true interval of the difference is narrower: this one is conservative, but unlike "do the
    two intervals overlap" it is a test of the difference (Schenker & Gentleman, 2001).
    """
    from statistics import NormalDist

    t, p = c.tonight, c.previous
    if t is None or p is None:
        return None
    vals = [_finite(x) for x in (t.value, t.ci_low, t.ci_high, p.value, p.ci_low, p.ci_high)]
    if any(v is None for v in vals):
        return None
    tv, tl, th, pv, pl, ph = vals  # type: ignore[misc]
    z = NormalDist().inv_cdf(1.0 - (1.0 - confidence) / 2.0)
    se = math.hypot((th - tl) / (2 * z), (ph - pl) / (2 * z))
    delta = tv - pv
    return delta - z * se, delta + z * se


def _diff(c: Any) -> float | None:
    """after − before from the two point estimates (aggregates without pairs)."""
    if c.tonight is None or c.previous is None:
        return None
    t, p = _finite(c.tonight.value), _finite(c.previous.value)
    return None if t is None or p is None else t - p


def _value(v: dict[str, Any] | None) -> str:
    if not v or _finite(v.get("value")) is None:
        return "—"
    text = f"{v['value']:.3f}"
    lo, hi = _finite(v.get("ci_low")), _finite(v.get("ci_high"))
    if lo is not None and hi is not None:
        text += f" [{lo:.3f}, {hi:.3f}]"
    return text


def _signed(x: float | None) -> str:
    return "—" if x is None else f"{x:+.3f}"


def _ci(lo: float | None, hi: float | None) -> str:
    return "—" if lo is None or hi is None else f"[{lo:+.3f}, {hi:+.3f}]"
