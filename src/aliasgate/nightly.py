"""Nightly regression reports: evaluate ``@champion`` (and ``@challenger``) on every suite,
compare with the previous nights, write one page people would rather look at than read, and
alert when the champion got worse.

``run_nightly`` drives the same path as ``pytest evals/``: one ``pytest evals/ --nightly``
subprocess per role (a clean interpreter each, tagged ``aliasgate.kind=nightly``,
``aliasgate.role``, ``aliasgate.night``; with ``--gate``/``--verdict-json`` when a gate file is
used), then reads the history back from MLflow (:mod:`aliasgate.reports.history`), compares
(:mod:`aliasgate.reports.compare`) and renders (:mod:`aliasgate.reports.html`). Each night uses
a fresh response cache (the champion's answers are computed tonight, never served from an
earlier night; the challenger's gate reuses tonight's champion answers for free).

Outputs in ``<out>/<night>/``: ``index.html`` (self-contained), ``summary.md`` and
``verdict.json`` (schema ``aliasgate.nightly/1``, see :meth:`NightReport.as_dict`), also logged
under ``nightly/`` on tonight's champion parent run, which is tagged ``aliasgate.nightly_status``.

Under a gate, the champion's own evaluation has the gate's baseline (``@champion``) resolve to
the very version being evaluated: its comparison rules are ``skipped`` ("the candidate itself",
:func:`aliasgate.gates.evaluate.evaluate_gate`), so they can neither pass nor fail the champion's
night, while its absolute rules (floors, ceilings, rates...) still decide its gate. Night-to-night
changes of the champion are what :mod:`aliasgate.reports.compare` tests instead.

Alerts, on a blocking regression of an alerting role (default: the champion):

* ``log``: an ERROR record on the ``aliasgate.nightly`` logger, one line per reason;
* ``webhook``: a JSON POST (schema ``aliasgate.alert/1``, :func:`alert_payload`) to
  ``--alert-webhook URL`` or ``$ALIASGATE_ALERT_WEBHOOK``, with a timeout and one retry
  (not on a 4xx answer other than 408/429); it carries a ``text`` field, so Slack, Teams and
  Mattermost incoming webhooks show it as is;
* ``mlflow``: the tag ``aliasgate.alert`` (the headline) on the champion's run and on the run of
  each role that regressed.

A failed delivery is recorded in ``verdict.json`` and on the page; it never hides the exit code.

Exit codes: 0 no blocking regression (the page may still be amber), 1 blocking regression (or the
champion failed its gate), 2 usage (no ``@champion``, bad gate file), 3 incomplete (an
alerting role's evaluation failed or its gate is incomplete).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aliasgate import __version__
from aliasgate.defaults import (
    DEFAULT_EXPERIMENT,
    DEFAULT_MODEL_NAME,
    ensure_store,
    quiet_environment,
)
from aliasgate.defaults import tracking_uri as default_tracking_uri
from aliasgate.reports.compare import CompareOptions, NightReport, RoleReport

__all__ = [
    "ALERT_SCHEMA",
    "EXIT_INCOMPLETE",
    "EXIT_OK",
    "EXIT_REGRESSION",
    "EXIT_USAGE",
    "NightlyError",
    "NightlyOptions",
    "NightlyResult",
    "alert_payload",
    "post_webhook",
    "render_run_report",
    "run_nightly",
]

ALERT_SCHEMA = "aliasgate.alert/1"
WEBHOOK_ENV = "ALIASGATE_ALERT_WEBHOOK"
EXIT_OK, EXIT_REGRESSION, EXIT_USAGE, EXIT_INCOMPLETE = 0, 1, 2, 3

log = logging.getLogger("aliasgate.nightly")


class NightlyError(RuntimeError):
    """The nightly cannot run as configured (no ``@champion``, unknown model...)."""


@dataclass
class NightlyOptions:
    """What ``aliasgate nightly`` does.

    Args:
        model: Registered model whose ``@champion`` (and ``@challenger``) are evaluated.
        evals: The suites (``pytest`` path), relative to ``root``.
        gate: Gate file passed to each evaluation (None: no gate).
        experiment: MLflow experiment.
        tracking_uri: Tracking URI (default: ``MLFLOW_TRACKING_URI`` or the local sqlite store).
        nights: Nights shown in the trends (tonight included).
        compare: How nights are compared (margin, confidence, rolling window...).
        out: Reports go to ``<out>/<night>/``.
        date: The night's label (default: today, UTC).
        roles: Aliases evaluated; the first one is the champion (required), the others run only
            when set and pointing at another version.
        alert_roles: Roles whose blocking regressions raise alerts and a non-zero exit code.
        alert_webhook: Webhook URL (default: ``$ALIASGATE_ALERT_WEBHOOK``).
        webhook_timeout: Seconds per webhook attempt.
        pytest_args: More arguments for each ``pytest`` run (``--limit 50``...).
        cache_dir: Response cache to use (None: a fresh one for the night, removed afterwards).
        root: Project root (where ``evals/`` and the datasets are).
    """

    model: str = DEFAULT_MODEL_NAME
    evals: str = "evals/"
    gate: Path | None = None
    experiment: str = DEFAULT_EXPERIMENT
    tracking_uri: str | None = None
    nights: int = 14
    compare: CompareOptions = field(default_factory=CompareOptions)
    out: Path = Path("reports/nightly")
    date: str | None = None
    roles: tuple[str, ...] = ("champion", "challenger")
    alert_roles: tuple[str, ...] = ("champion",)
    alert_webhook: str | None = None
    webhook_timeout: float = 10.0
    pytest_args: list[str] = field(default_factory=list)
    cache_dir: Path | None = None
    root: Path = field(default_factory=Path.cwd)


@dataclass
class NightlyResult:
    """What a night produced.

    Attributes:
        report: The night's report.
        out_dir: Where ``index.html``, ``summary.md`` and ``verdict.json`` were written.
        exit_code: 0, 1, 2 or 3 (see the module docstring).
        alerts: Delivery result per sink.
    """

    report: NightReport
    out_dir: Path
    exit_code: int
    alerts: list[dict[str, Any]]

    @property
    def page(self) -> Path:
        return self.out_dir / "index.html"


def run_nightly(options: NightlyOptions) -> NightlyResult:
    """Evaluate the roles, compare with the history, write and log the report, alert.

    Args:
        options: See :class:`NightlyOptions`.

    Raises:
        NightlyError: the model or its ``@champion`` alias does not exist.
    """
    quiet_environment()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow import MlflowClient

    from aliasgate.registry.promotion import ModelNotFound, read_alias

    uri = options.tracking_uri or default_tracking_uri()
    client = MlflowClient(tracking_uri=ensure_store(uri))
    roles = list(options.roles)
    if not roles:
        raise NightlyError("no role to evaluate")
    try:
        champion = read_alias(options.model, roles[0], client=client)
    except ModelNotFound as exc:
        raise NightlyError(str(exc)) from None
    if champion is None:
        raise NightlyError(f"@{roles[0]} is not set on {options.model!r} in {_redact(uri)}: nothing "
                           "to watch yet (promote a version first: aliasgate promote)")
    versions = {roles[0]: champion}
    for role in roles[1:]:
        v = read_alias(options.model, role, client=client)
        if v is None:
            log.info("@%s is not set on %s: not evaluated", role, options.model)
        elif v == champion:
            log.info("@%s is @%s (v%s): evaluated once", role, roles[0], v)
        else:
            versions[role] = v
    night = options.date or dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    root = options.root.resolve()
    out_dir = options.out if options.out.is_absolute() else root / options.out
    out_dir = out_dir / night
    out_dir.mkdir(parents=True, exist_ok=True)
    cache = options.cache_dir or Path(tempfile.mkdtemp(prefix="aliasgate-nightly-cache-"))
    reports: list[RoleReport] = []
    try:
        for role in versions:
            reports.append(_evaluate_role(role, night, out_dir, cache, uri, client, options))
    finally:
        if options.cache_dir is None:
            shutil.rmtree(cache, ignore_errors=True)
    gate_path = str(options.gate) if options.gate else None
    report = NightReport(night=night, model=options.model, experiment=options.experiment,
                         tracking_uri=_redact(uri), options=options.compare, roles=reports,
                         nights=options.nights, gate_path=gate_path)
    page = out_dir / "index.html"
    report.report_path = str(page)
    if report.blocking:
        report.alerts = send_alerts(report, webhook=options.alert_webhook or
                                    os.environ.get(WEBHOOK_ENV) or None,
                                    timeout=options.webhook_timeout, client=client, page=str(page))
    write_report(report, out_dir, markdown="summary.md", document="verdict.json")
    _log_to_mlflow(report, out_dir, client)
    return NightlyResult(report=report, out_dir=out_dir, exit_code=_exit_code(report),
                         alerts=report.alerts)


def _evaluate_role(
    role: str, night: str, out_dir: Path, cache: Path, uri: str, client: Any,
    options: NightlyOptions,
) -> RoleReport:
    """One ``pytest evals/ --nightly`` subprocess for ``@role``, then its comparison."""
    reports_dir = out_dir / "runs" / role
    reports_dir.mkdir(parents=True, exist_ok=True)
    verdict_path = reports_dir / "verdict.json"
    verdict_path.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "pytest", options.evals, "-q", "-p", "no:cacheprovider",
            "--candidate", f"models:/{options.model}@{role}", "--tracking-uri", uri,
            "--experiment", options.experiment, "--nightly", "--nightly-role", role,
            "--nightly-date", night, "--no-nightly-page", "--reports-dir", str(reports_dir),
            "--cache-dir", str(cache), "--no-progress"]
    if options.gate is not None:
        argv += ["--gate", str(options.gate), "--verdict-json", str(verdict_path)]
    argv += list(options.pytest_args)
    started = time.time()
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    log.info("evaluating @%s: %s", role, " ".join(argv[3:]))
    code = subprocess.call(argv, cwd=options.root, env=env)
    alerting = role in options.alert_roles
    results = _newest_results(reports_dir, started)
    run_id = (results or {}).get("parent_run_id")
    if not run_id:
        why = {2: "interrupted", 3: "internal error", 4: "usage error", 5: "no suite collected"}
        return RoleReport(role=role, run=None, comparison=None, exit_code=code, alerting=alerting,
                          error=f"pytest exited {code} ({why.get(code, 'failed')}) without "
                                "logging a run; see its output")
    report = _role_report(run_id, role, uri, client, options.nights, options.compare, alerting)
    report.exit_code = code
    if verdict_path.exists():
        report.gate = json.loads(verdict_path.read_text(encoding="utf-8"))
    errors = (results or {}).get("errors") or {}
    if errors:
        report.error = "; ".join(f"suite {k}: {v}" for k, v in errors.items())
    elif code in (2, 3, 4):
        report.error = f"pytest exited {code}"
    report.assess()
    return report


def _newest_results(reports_dir: Path, since: float) -> dict[str, Any] | None:
    found = [p for p in reports_dir.glob("*/results.json") if p.stat().st_mtime >= since - 1]
    if not found:
        return None
    newest = max(found, key=lambda p: p.stat().st_mtime)
    return json.loads(newest.read_text(encoding="utf-8"))


def _role_report(
    run_id: str, role: str | None, uri: str | None, client: Any, nights: int,
    compare: CompareOptions, alerting: bool = True,
) -> RoleReport:
    from aliasgate.reports.compare import compare_runs
    from aliasgate.reports.history import load_run, previous_runs

    run = load_run(run_id, tracking_uri=uri, cases=True, client=client)
    history = previous_runs(run, nights=max(1, nights - 1), cases_for=1, client=client)
    comparison = compare_runs(run, history, compare)
    return RoleReport(role=role or run.role or "candidate", run=run, comparison=comparison,
                      gate=run.verdict, alerting=alerting).assess()


def render_run_report(
    run_id: str,
    *,
    out: str | Path,
    tracking_uri: str | None = None,
    nights: int = 14,
    compare: CompareOptions | None = None,
) -> Path:
    """Render the nightly page for ANY past evaluation run, from its MLflow artifacts: the run
    against the comparable runs before it (same role and model for nightly runs, same candidate
    otherwise). Writes ``index.html``, ``report.md`` and ``report.json`` to ``out``.

    Args:
        run_id: The evaluation's parent run id.
        out: Output directory (created).
        tracking_uri: Tracking URI.
        nights: Nights in the trends.
        compare: Comparison settings.

    Returns:
        The path of ``index.html``.

    Raises:
        LookupError: no such run (or it is a suite's child run).
    """
    quiet_environment()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    from mlflow import MlflowClient

    uri = tracking_uri or default_tracking_uri()
    client = MlflowClient(tracking_uri=ensure_store(uri))
    opts = compare or CompareOptions()
    role = _role_report(run_id, None, uri, client, nights, opts)
    run = role.run
    assert run is not None
    experiment = client.get_experiment(run.experiment_id).name
    nightly = run.kind == "nightly"
    report = NightReport(
        night=run.night, model=run.model_name or run.candidate, experiment=experiment,
        tracking_uri=_redact(uri), options=opts, roles=[role], nights=nights,
        gate_path=((run.verdict or {}).get("gate") or {}).get("path"),
        title="aliasgate nightly" if nightly else "aliasgate evaluation report",
    )
    out_dir = Path(out)
    report.report_path = str(out_dir / "index.html")
    write_report(report, out_dir, markdown="report.md", document="report.json")
    return out_dir / "index.html"


def write_report(report: NightReport, out_dir: Path, *, markdown: str, document: str) -> None:
    """Write ``index.html``, the Markdown summary and the JSON document into ``out_dir``.

    Args:
        report: The night's report.
        out_dir: Output directory (created).
        markdown: File name of the Markdown summary.
        document: File name of the JSON document (``aliasgate.nightly/1``).
    """
    from aliasgate.reports.html import render_html
    from aliasgate.reports.nightly_markdown import render_nightly_markdown

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "index.html").write_text(render_html(report), encoding="utf-8")
    (out_dir / markdown).write_text(
        render_nightly_markdown(report, page=str(out_dir / "index.html")), encoding="utf-8")
    (out_dir / document).write_text(
        json.dumps(report.as_dict(), indent=2, allow_nan=False, default=str), encoding="utf-8")


def _log_to_mlflow(report: NightReport, out_dir: Path, client: Any) -> None:
    """Log the night's files under ``nightly/`` on the champion's run and tag it."""
    first = report.roles[0] if report.roles else None
    if first is None or first.run is None:
        return
    run_id = first.run.run_id
    for name in ("index.html", "summary.md", "verdict.json"):
        client.log_artifact(run_id, str(out_dir / name), "nightly")
    client.set_tag(run_id, "aliasgate.nightly_status", report.status)


def _exit_code(report: NightReport) -> int:
    alerting = [r for r in report.roles if r.alerting]
    if any(r.exit_code == 4 for r in report.roles):
        return EXIT_USAGE
    if report.regressed:
        return EXIT_REGRESSION
    if any(r.error or (r.gate or {}).get("verdict") == "incomplete" for r in alerting):
        return EXIT_INCOMPLETE
    return EXIT_OK


# -- alerts --------------------------------------------------------------------------------------


def alert_payload(report: NightReport, *, page: str | None = None, max_cases: int = 20) -> dict[str, Any]:
    """The JSON body POSTed to the webhook (schema ``aliasgate.alert/1``).

    Fields: ``schema``; ``text`` (one line for chat webhooks); ``status`` (``red``/``amber``/
    ``green``); ``night``; ``model``; ``experiment``; ``tracking_uri`` (credentials removed);
    ``headline``; ``blocking`` (the reasons, one sentence each); ``regressions`` (per regressed
    suite metric of an alerting role: ``role``, ``version``, ``run_id``, ``previous_run_id``,
    ``suite``, ``metric``, ``previous``, ``tonight``, ``delta``, ``ci_low``, ``ci_high``,
    ``p_worse_adjusted``, ``margin``, ``significant``); ``slices`` (``role``, ``suite``,
    ``metric``, ``group``, ``previous``, ``tonight``, ``delta``, ``ci_low``, ``ci_high``, ``n``,
    ``significant``); ``cases`` (first ``max_cases`` regressed cases: ``role``, ``suite``, ``id``,
    ``group``, ``metrics`` {name: [previous, tonight]}); ``cases_total``; ``gate`` (role ->
    ``verdict``, ``failed`` rule ids); ``run_ids`` (role -> MLflow run id); ``report`` (page path).

    Args:
        report: The night's report.
        page: Where the HTML page is.
        max_cases: Regressed cases listed.
    """
    regressions, slices, cases, gate, run_ids = [], [], [], {}, {}
    total = 0
    for r in report.roles:
        if r.run is not None:
            run_ids[r.role] = r.run.run_id
        if r.gate:
            gate[r.role] = {"verdict": r.gate.get("verdict"),
                            "failed": [x["id"] for x in r.gate.get("rules", [])
                                       if x.get("status") in ("fail", "error")]}
        comp = r.comparison
        if comp is None or not r.alerting:
            continue
        for c in comp.regressions:
            regressions.append({
                "role": r.role, "version": r.run.model_version if r.run else None,
                "run_id": comp.tonight.run_id,
                "previous_run_id": comp.previous.run_id if comp.previous else None,
                "suite": c.suite, "metric": c.metric,
                "previous": c.previous.value if c.previous else None,
                "tonight": c.tonight.value if c.tonight else None, "delta": c.delta,
                "ci_low": c.ci_low, "ci_high": c.ci_high, "p_worse_adjusted": c.p_worse_adjusted,
                "margin": c.margin, "significant": c.significant,
            })
        for s in comp.slice_regressions:
            slices.append({"role": r.role, "suite": s.suite, "metric": s.metric, "group": s.group,
                           "previous": s.previous_mean, "tonight": s.tonight_mean,
                           "delta": s.delta, "ci_low": s.ci_low, "ci_high": s.ci_high,
                           "n": s.n_pairs, "significant": s.significant})
        total += len(comp.regressed_cases)
        for c in comp.regressed_cases[: max(0, max_cases - len(cases))]:
            cases.append({"role": r.role, "suite": c.suite, "id": c.id, "group": c.group,
                          "metrics": c.metrics})
    icon = {"red": "🔴", "amber": "🟠", "green": "🟢"}[report.status]
    text = f"{icon} aliasgate nightly {report.night} ({report.model}): {report.headline}"
    if page:
        text += f" — report: {page}"
    from aliasgate.reports.compare import _json_safe

    return _json_safe({
        "schema": ALERT_SCHEMA, "text": text, "status": report.status, "night": report.night,
        "model": report.model, "experiment": report.experiment,
        "tracking_uri": report.tracking_uri, "headline": report.headline,
        "blocking": report.blocking, "regressions": regressions, "slices": slices,
        "cases": cases, "cases_total": total, "gate": gate, "run_ids": run_ids, "report": page,
    })


def send_alerts(
    report: NightReport, *, webhook: str | None, timeout: float = 10.0, client: Any = None,
    page: str | None = None,
) -> list[dict[str, Any]]:
    """Send the night's alert to every configured sink; returns one result per sink.

    Args:
        report: The night's report (with blocking reasons).
        webhook: Webhook URL, or None.
        timeout: Seconds per webhook attempt.
        client: An ``MlflowClient`` for the ``aliasgate.alert`` tag (None: no tag).
        page: Where the HTML page is.
    """
    results: list[dict[str, Any]] = []
    payload = alert_payload(report, page=page)
    log.error("%s", payload["text"])
    for reason in report.blocking:
        log.error("  %s", reason)
    results.append({"sink": "log", "target": log.name, "ok": True, "attempts": 1})
    if webhook:
        results.append(post_webhook(webhook, payload, timeout=timeout))
    if client is not None:
        runs = []
        if report.roles and report.roles[0].run is not None:
            runs.append(report.roles[0].run.run_id)
        runs += [r.run.run_id for r in report.roles if r.blocking and r.run is not None]
        for run_id in dict.fromkeys(runs):
            try:
                client.set_tag(run_id, "aliasgate.alert", payload["text"][:5000])
                results.append({"sink": "mlflow", "target": run_id, "ok": True, "attempts": 1})
            except Exception as exc:  # noqa: BLE001 - recorded
                results.append({"sink": "mlflow", "target": run_id, "ok": False, "attempts": 1,
                                "error": f"{type(exc).__name__}: {exc}"})
    return results


def post_webhook(
    url: str, payload: dict[str, Any], *, timeout: float = 10.0, retries: int = 1,
    backoff_s: float = 1.0,
) -> dict[str, Any]:
    """POST ``payload`` as JSON; retry once on a network error, a timeout, a 5xx, 408 or 429.

    Args:
        url: The webhook URL (http or https).
        payload: The JSON body.
        timeout: Seconds per attempt.
        retries: Further attempts after the first.
        backoff_s: Pause between attempts.

    Returns:
        ``sink``, ``target`` (the URL without its path: webhook paths often hold secrets),
        ``ok``, ``status`` (HTTP status), ``attempts`` and ``error``.
    """
    if urlsplit(url).scheme not in ("http", "https"):
        return {"sink": "webhook", "target": _redact(url), "ok": False, "attempts": 0,
                "error": "webhook URL must be http(s)"}
    body = json.dumps(payload, allow_nan=False, default=str).encode("utf-8")
    error: str | None = None
    status: int | None = None
    attempts = 0
    for attempt in range(retries + 1):
        attempts += 1
        req = urllib.request.Request(url, data=body, method="POST", headers={
            "Content-Type": "application/json", "User-Agent": f"aliasgate/{__version__}"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - http(s) only
                return {"sink": "webhook", "target": _redact(url, path=False), "ok": True,
                        "status": resp.status, "attempts": attempts, "error": None}
        except urllib.error.HTTPError as exc:
            status, error = exc.code, f"HTTP {exc.code} {exc.reason}"
            if 400 <= exc.code < 500 and exc.code not in (408, 429):
                break
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            error = f"{type(reason).__name__}: {reason}"
        if attempt < retries:
            time.sleep(backoff_s)
    log.error("webhook alert not delivered to %s after %d attempt(s): %s",
              _redact(url, path=False), attempts, error)
    return {"sink": "webhook", "target": _redact(url, path=False), "ok": False, "status": status,
            "attempts": attempts, "error": error}


def _redact(uri: str, *, path: bool = True) -> str:
    """A URI without credentials or query (and without its path when ``path`` is False)."""
    from aliasgate.redact import redact_uri

    return redact_uri(uri, query=False, path=path)
