"""Markdown summary of an evaluation session (the dict written as ``results.json``)."""

from __future__ import annotations

from typing import Any


def fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def fmt_ci(low: float | None, high: float | None, digits: int = 3) -> str:
    if low is None or high is None:
        return "—"
    return f"[{low:.{digits}f}, {high:.{digits}f}]"


def metric_rows(summary: dict[str, Any]) -> list[list[str]]:
    """Rows of (suite, metric, value, 95% CI, n, unmeasured) for every suite and metric."""
    rows = []
    for s in summary["suites"]:
        for name, m in s["metrics"].items():
            rows.append([
                s["suite"], name, fmt(m["value"]), fmt_ci(m["ci_low"], m["ci_high"]),
                str(m["n"]), str(m["unmeasured"]),
            ])
    return rows


def render_summary(summary: dict[str, Any]) -> str:
    """A Markdown page: provenance, the metric table with 95% bootstrap CIs, and errors."""
    lines = [
        f"# aliasgate evaluation `{summary['run_name']}`",
        "",
        f"- candidate: `{summary['candidate']}`",
        f"- tracking: `{summary['tracking_uri']}`"
        + (f", parent run `{summary['parent_run_id']}`" if summary.get("parent_run_id") else ""),
        f"- model calls: {summary['model_calls']}, cache hits: {summary['cache_hits']}",
    ]
    for s in summary["suites"]:
        lines.append(
            f"- suite `{s['suite']}`: {s['n']} cases ({s['unmeasured']} unmeasured), "
            f"dataset `{s['dataset']}` `{s['dataset_digest'][:19]}`"
        )
    lines += ["", "| suite | metric | value | 95% CI | n | unmeasured |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in metric_rows(summary)]
    if summary.get("errors"):
        lines += ["", "## Errors", ""]
        lines += [f"- `{k}`: {v}" for k, v in summary["errors"].items()]
    if summary.get("notes"):
        lines += ["", "## Notes", ""] + [f"- {n}" for n in summary["notes"]]
    return "\n".join(lines) + "\n"
