"""The nightly report as ONE self-contained HTML page (inline CSS, charts as PNG data URIs, no
JavaScript, no network) rendered from :class:`~aliasgate.reports.compare.NightReport` with the
jinja2 template ``templates/report.html.j2``.

:func:`page_context` turns the report into plain dicts and strings (numbers already formatted,
charts already drawn), so the template only lays them out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from aliasgate.reports.compare import (
    CaseChange,
    MetricChange,
    NightReport,
    RoleReport,
    RunComparison,
)

__all__ = ["SAFETY_WORDS", "BIAS_WORDS", "page_context", "render_html", "suite_section"]

#: Suites whose name or metrics contain one of these are shown as safety rates.
SAFETY_WORDS = ("safety", "safe", "refus", "harm", "toxic", "leak", "inject", "jailbreak", "pii",
                "xstest", "privacy", "secret", "attack")
#: ... and these as bias/fairness.
BIAS_WORDS = ("bias", "bbq", "fair", "counterfactual", "parity", "gap", "flip", "discrim",
              "decision", "demographic")

STATUS_ICON = {"regressed": "▼", "improved": "▲", "changed": "◆", "unchanged": "●", "new": "✚",
               "missing": "⚠", "unmeasured": "⚠", "pass": "✔", "fail": "✖", "error": "⛔", "skipped": "⏭",
               "red": "✖", "amber": "⚠", "green": "✔"}
STATUS_WORD = {"REGRESSION": "Regression", "FAILED": "Evaluation failed", "CHECK": "Check",
               "OK": "All clear"}


def fmt(x: float | None, digits: int = 3) -> str:
    """``0.612`` (``—`` for missing or non-finite)."""
    if x is None or not isinstance(x, int | float) or not math.isfinite(x):
        return "—"
    return f"{x:.{digits}f}"


def signed(x: float | None, digits: int = 3) -> str:
    """``+0.012`` / ``−0.125`` with a true minus sign."""
    if x is None or not math.isfinite(x):
        return "—"
    return f"{x:+.{digits}f}".replace("-", "−")


def ci(low: float | None, high: float | None, digits: int = 3, sign: bool = False) -> str:
    """``[0.512, 0.634]``."""
    if low is None or high is None:
        return ""
    f = signed if sign else fmt
    return f"[{f(low, digits)}, {f(high, digits)}]"


def pval(p: float | None) -> str:
    if p is None or not math.isfinite(p):
        return "—"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def suite_section(name: str, metrics: Sequence[str], has_groups: bool) -> str:
    """``safety``, ``bias`` or ``quality``: where a suite is shown on the page.

    Args:
        name: Suite name.
        metrics: Its metric names.
        has_groups: Whether it logged a group table (``per_group``...); reserved, the
            section follows the names.
    """
    words = [name.lower(), *(m.lower() for m in metrics)]
    if any(w in text for w in SAFETY_WORDS for text in words):
        return "safety"
    if any(w in text for w in BIAS_WORDS for text in words):
        return "bias"
    return "quality"


def render_html(report: NightReport, *, charts: bool = True) -> str:
    """The page as a string.

    Args:
        report: The night's report.
        charts: Draw the matplotlib charts (False: tables only, faster).
    """
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("aliasgate.reports", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(fmt=fmt, signed=signed, pval=pval)
    env.globals.update(ci=ci, icon=STATUS_ICON)
    return env.get_template("report.html.j2").render(**page_context(report, charts=charts))


def page_context(report: NightReport, *, charts: bool = True) -> dict[str, Any]:
    """Everything the template needs, as plain values.

    Args:
        report: The night's report.
        charts: Draw the charts.
    """
    roles = [_role(r, report, charts) for r in report.roles]
    return {
        "title": report.title,
        "night": report.night,
        "model": report.model,
        "experiment": report.experiment,
        "tracking_uri": report.tracking_uri,
        "generated_at": report.generated_at,
        "status": report.status,
        "status_word": STATUS_WORD[report.status_word],
        "headline": report.headline,
        "blocking": report.blocking,
        "reasons": report.reasons,
        "options": report.options,
        "alerts": report.alerts,
        "gate_path": report.gate_path,
        "nights": report.nights,
        "roles": roles,
    }


def _role(r: RoleReport, report: NightReport, charts: bool) -> dict[str, Any]:
    run, comp = r.run, r.comparison
    out: dict[str, Any] = {
        "role": r.role, "status": r.status, "reasons": r.reasons, "blocking": r.blocking,
        "alerting": r.alerting, "error": r.error, "exit_code": r.exit_code,
        "version": run.version_label if run else "—",
        "run": run, "previous": comp.previous if comp else None,
        "gate": _gate(r.gate), "provenance": _provenance(r), "changes": [], "counts": {},
        "trends": [], "slices": [], "slice_regressions": [], "groups": [], "sections": {},
        "cases": {"regressed": [], "recovered": [], "more_regressed": 0, "more_recovered": 0},
        "unmeasured": [], "ops": [], "ops_chart": None, "history_n": 0,
    }
    if run is None or comp is None:
        return out
    out["history_n"] = len(comp.history) + 1
    out["changes"] = [_change(c) for c in comp.changes]
    out["counts"] = {
        "regressed": len(comp.regressions), "blocking": len(comp.blocking),
        "improved": len(comp.improvements),
        "slices_regressed": len(comp.slice_regressions),
        "cases_regressed": len(comp.regressed_cases),
        "cases_recovered": len(comp.recovered_cases),
        "n": int(sum(s.stats.get("n", 0) for s in run.suites.values())),
        "unmeasured": int(sum(s.stats.get("unmeasured", 0) for s in run.suites.values())),
    }
    by_key = {c.key: c for c in comp.changes}
    nights = report.nights
    worst = {c.suite: (c.status != "regressed", not c.significant) for c in reversed(comp.changes)}
    for name, suite in sorted(run.suites.items(), key=lambda kv: (worst.get(kv[0], (True, True)),
                                                                  kv[0])):
        metrics = list(suite.metrics)
        has_groups = any(g.suite == name for g in comp.groups)
        section = suite_section(name, metrics, has_groups)
        out["sections"].setdefault(section, []).append({
            "suite": name, "cards": [_card(by_key[f"{name}.{m}"]) for m in metrics
                                     if f"{name}.{m}" in by_key],
        })
        if charts and metrics:
            from aliasgate.reports.charts import trend_chart

            series = {m: comp.trend(name, m, nights) for m in metrics}
            out["trends"].append({
                "suite": name, "nights": len(next(iter(series.values()))),
                "png": trend_chart(name, series, {m: by_key[f"{name}.{m}"] for m in metrics
                                                  if f"{name}.{m}" in by_key}),
            })
        slices = [s for s in comp.slices if s.suite == name]
        if slices:
            png = None
            if charts:
                from aliasgate.reports.charts import slice_chart

                png = slice_chart(name, slices, comp.options.margin)
            out["slices"].append({"suite": name, "png": png,
                                  "groups": sorted({s.group for s in slices})})
        for table in dict.fromkeys(g.table for g in comp.groups if g.suite == name):
            rows = [g for g in comp.groups if g.suite == name and g.table == table]
            png = None
            if charts:
                from aliasgate.reports.charts import group_chart

                png = group_chart(name, table, rows)
            out["groups"].append({"suite": name, "table": table, "png": png, "rows": [
                {"series": g.series, "group": g.group, "value": fmt(g.value),
                 "ci": ci(g.ci_low, g.ci_high), "n": "" if g.n is None else g.n,
                 "previous": fmt(g.previous), "delta": signed(g.delta), "column": g.column}
                for g in rows]})
    out["slice_regressions"] = [
        {"suite": s.suite, "metric": s.metric, "group": s.group, "n": s.n_pairs,
         "before": fmt(s.previous_mean), "after": fmt(s.tonight_mean), "delta": signed(s.delta),
         "ci": ci(s.ci_low, s.ci_high, sign=True), "p": pval(s.p_worse_adjusted),
         "significant": s.significant}
        for s in comp.slice_regressions]
    limit = comp.options.max_cases
    out["cases"] = {
        "regressed": [_case(c) for c in comp.regressed_cases[:limit]],
        "recovered": [_case(c) for c in comp.recovered_cases[:limit]],
        "more_regressed": max(0, len(comp.regressed_cases) - limit),
        "more_recovered": max(0, len(comp.recovered_cases) - limit),
    }
    out["unmeasured"] = [{"suite": s, "id": i, "error": e or ""} for s, i, e in comp.newly_unmeasured]
    out["ops"] = _ops(comp)
    if charts and comp.history:
        from aliasgate.reports.charts import ops_chart

        runs = [*reversed(comp.history[: nights - 1]), run]
        out["ops_chart"] = ops_chart(runs)
    return out


def _change(c: MetricChange) -> dict[str, Any]:
    t, p = c.tonight, c.previous
    return {
        "key": c.key, "suite": c.suite, "metric": c.metric, "status": c.status,
        "significant": c.significant, "direction": c.direction,
        "tonight": fmt(t.value if t else None), "tonight_ci": ci(t.ci_low, t.ci_high) if t else "",
        "n": t.n if t and t.n is not None else "",
        "previous": fmt(p.value if p else None),
        "previous_ci": ci(p.ci_low, p.ci_high) if p else "",
        "delta": signed(c.delta), "delta_ci": ci(c.ci_low, c.ci_high, sign=True),
        "p": pval(c.p_value), "p_worse": pval(c.p_worse_adjusted), "mde": fmt(c.mde),
        "pairs": c.n_pairs, "rolling": fmt(c.rolling_mean), "rolling_n": c.rolling_n,
        "rolling_delta": signed(c.rolling_delta),
        "discordant": f"{c.discordant[0]} worse / {c.discordant[1]} better" if c.discordant else "",
        "method": c.method, "note": c.note,
    }


def _card(c: MetricChange) -> dict[str, Any]:
    t = c.tonight
    return {"metric": c.metric, "status": c.status, "significant": c.significant,
            "value": fmt(t.value if t else None), "ci": ci(t.ci_low, t.ci_high) if t else "",
            "n": t.n if t and t.n is not None else "", "delta": signed(c.delta),
            "direction": c.direction}


def _case(c: CaseChange) -> dict[str, Any]:
    return {
        "suite": c.suite, "id": c.id, "group": c.group or "", "kind": c.kind,
        "moved": ", ".join(f"{m} {fmt(a, 2)} → {fmt(b, 2)}" for m, (a, b) in c.metrics.items()),
        "scores": [{"metric": m, "old": fmt(a, 2), "new": fmt(b, 2)} for m, (a, b) in c.scores.items()],
        "input": c.input or "", "expected": c.expected or "",
        "old": c.old_output if c.old_output is not None else f"(unmeasured: {c.old_error})",
        "new": c.new_output if c.new_output is not None else f"(unmeasured: {c.new_error})",
    }


def _ops(comp: RunComparison) -> list[dict[str, Any]]:
    suites: dict[str, dict[str, Any]] = {}
    for o in comp.ops:
        row = suites.setdefault(o.suite, {"suite": o.suite})
        latency = o.name.startswith("latency")
        digits = 0 if o.name in ("n", "unmeasured", "model_calls", "cache_hits") else 1
        show = _sig if latency else (lambda x, d=digits: fmt(x, d))
        worse = bool(o.delta and o.delta > 0) if o.name == "unmeasured" else bool(
            latency and o.delta and o.previous and o.delta > 0.2 * o.previous)  # +20 %
        row[o.name] = {"now": show(o.tonight), "before": show(o.previous),
                       "delta": ((_sig(o.delta, signed_=True) if latency else signed(o.delta, digits))
                                 if o.delta else ""),
                       "worse": worse}
    return list(suites.values())


def _sig(x: float | None, signed_: bool = False) -> str:
    """Three significant digits (latencies span microseconds to minutes)."""
    if x is None or not math.isfinite(x):
        return "—"
    text = f"{x:+.3g}" if signed_ else f"{x:.3g}"
    return text.replace("-", "−")


def _gate(verdict: dict[str, Any] | None) -> dict[str, Any] | None:
    if not verdict:
        return None
    rows = []
    for r in verdict.get("rules", []):
        s = r.get("stats") or {}
        delta = s.get("delta", s.get("gap"))
        rows.append({
            "id": r.get("id"), "type": r.get("type"), "metric": r.get("metric"),
            "severity": r.get("severity"), "status": r.get("status"),
            "value": fmt(s.get("value", s.get("rate", s.get("candidate_mean")))),
            "delta": signed(delta) if r.get("type") in ("non_inferiority", "superiority")
            else fmt(delta),
            "ci": ci(s.get("ci_low"), s.get("ci_high"),
                     sign=r.get("type") in ("non_inferiority", "superiority")),
            "p": pval(s.get("p_adjusted", s.get("p_value"))), "mde": fmt(s.get("mde")),
            "message": r.get("message", ""),
        })
    gate = verdict.get("gate") or {}
    return {"verdict": verdict.get("verdict"), "summary": verdict.get("summary", ""),
            "name": gate.get("name"), "path": gate.get("path"), "digest": gate.get("digest"),
            "confidence": gate.get("confidence"), "rules": rows,
            "baseline": (verdict.get("baseline") or {}).get("label")}


def _provenance(r: RoleReport) -> dict[str, Any]:
    run = r.run
    if run is None:
        return {}
    suites = []
    for name, s in run.suites.items():
        suites.append({"suite": name, "dataset": s.dataset_path or "",
                       "digest": s.dataset_digest or "", "run_id": s.run_id or "",
                       "fingerprint": s.params.get("candidate.fingerprint", "")})
    gate = r.gate or {}
    comp = r.comparison
    return {
        "candidate": run.candidate, "model": run.model_name, "version": run.model_version,
        "run_id": run.run_id, "run_name": run.run_name, "night": run.night,
        "started": run.start_time.isoformat(timespec="seconds"), "status": run.status,
        "git_sha": run.git_sha or "", "tracking_uri": run.tracking_uri or "",
        "previous_run_id": comp.previous.run_id if comp and comp.previous else "",
        "previous_version": comp.previous.version_label if comp and comp.previous else "",
        "suites": suites, "judge": run.judge_params(),
        "gate_name": (gate.get("gate") or {}).get("name"),
        "gate_path": (gate.get("gate") or {}).get("path"),
        "gate_digest": (gate.get("gate") or {}).get("digest"),
    }
