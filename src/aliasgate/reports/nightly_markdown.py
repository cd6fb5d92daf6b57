"""The nightly report as Markdown (``summary.md``): short enough for a PR comment or a Slack post,
with the same facts as the HTML page — status, what regressed, where, how sure, which cases."""

from __future__ import annotations

from aliasgate.reports.compare import NightReport, RoleReport
from aliasgate.reports.html import ci, fmt, pval, signed

__all__ = ["render_nightly_markdown"]

_ICON = {"red": "🔴", "amber": "🟠", "green": "🟢"}


def render_nightly_markdown(report: NightReport, *, max_cases: int = 10, page: str | None = None) -> str:
    """``summary.md`` for the night.

    Args:
        report: The night's report.
        max_cases: Regressed/recovered cases listed per role.
        page: Link or path of the HTML page, mentioned at the end.
    """
    lines = [
        f"## {_ICON[report.status]} aliasgate nightly {report.night}: {report.status_word}"
        + (f" — `{report.model}`" if report.model else ""),
        "",
        report.headline,
        "",
    ]
    for r in report.roles:
        lines += _role(r, max_cases)
    o = report.options
    lines += [
        f"<sub>Paired bootstrap on cases measured both nights, {o.confidence:.0%} CIs, "
        f"non-inferiority margin {o.margin:g}; blocking = the drop is significant after Holm "
        f"across the night's metrics. Rolling baseline: previous {o.rolling} nights.</sub>",
    ]
    if page:
        lines += ["", f"Full report: {page}"]
    return "\n".join(lines) + "\n"


def _role(r: RoleReport, max_cases: int) -> list[str]:
    run, comp = r.run, r.comparison
    version = run.version_label if run else "—"
    head = f"### {_ICON[r.status]} @{r.role} {version}"
    if comp is not None and comp.previous is not None:
        head += f" vs {comp.previous.night} ({comp.previous.version_label})"
    lines = [head, ""]
    if r.error:
        lines += [f"**Evaluation failed:** {r.error}", ""]
    if r.gate:
        failed = [x["id"] for x in r.gate.get("rules", []) if x.get("status") in ("fail", "error")]
        lines.append(f"- gate `{(r.gate.get('gate') or {}).get('name')}`: "
                     f"**{r.gate.get('verdict')}** — {r.gate.get('summary')}"
                     + (f" (failed: {', '.join(f'`{f}`' for f in failed)})" if failed else ""))
    if r.run is not None and r.run.run_id:
        lines.append(f"- MLflow run `{r.run.run_id}`")
    if comp is None:
        return [*lines, ""]
    if comp.previous is None:
        lines += ["- first night: nothing to compare with yet", ""]
    moved = [c for c in comp.changes if c.status in ("regressed", "improved", "changed", "missing",
                                                   "unmeasured")]
    if moved:
        lines += ["", "| metric | status | last night | tonight | Δ (95% CI) | p worse (Holm) |",
                  "|---|---|---|---|---|---|"]
        for c in moved:
            status = c.status + (" **blocking**" if c.significant else "")
            lines.append(
                f"| `{c.key}` | {status} | {fmt(c.previous.value if c.previous else None)} | "
                f"{fmt(c.tonight.value if c.tonight else None)} | {signed(c.delta)} "
                f"{ci(c.ci_low, c.ci_high, sign=True)} | {pval(c.p_worse_adjusted)} |")
    elif comp.previous is not None:
        lines.append("- no suite metric moved beyond noise")
    if comp.slice_regressions:
        lines += ["", "**Slices that regressed:**", ""]
        for s in comp.slice_regressions:
            lines.append(f"- `{s.suite}.{s.metric}` in slice **{s.group}**: {fmt(s.previous_mean)} → "
                         f"{fmt(s.tonight_mean)} (Δ {signed(s.delta)} {ci(s.ci_low, s.ci_high, sign=True)}, "
                         f"n={s.n_pairs}{', significant' if s.significant else ', within noise'})")
    if comp.regressed_cases:
        shown = comp.regressed_cases[:max_cases]
        lines += ["", f"**Regressed cases ({len(comp.regressed_cases)}):** "
                  + ", ".join(f"`{c.suite}/{c.id}`" for c in shown)
                  + (f" … and {len(comp.regressed_cases) - len(shown)} more"
                     if len(comp.regressed_cases) > len(shown) else "")]
        for c in shown[:3]:
            lines.append(f"- `{c.id}`: {_quote(c.old_output)} → {_quote(c.new_output)}")
    if comp.recovered_cases:
        shown = comp.recovered_cases[:max_cases]
        lines += ["", f"**Recovered cases ({len(comp.recovered_cases)}):** "
                  + ", ".join(f"`{c.suite}/{c.id}`" for c in shown)]
    others = [x for x in r.reasons if not any(k in x for k in ("fell", "rose", "slice"))]
    if others:
        lines += ["", *[f"- {x}" for x in others]]
    return [*lines, ""]


def _quote(text: str | None, limit: int = 80) -> str:
    if text is None:
        return "_(unmeasured)_"
    one = " ".join(text.split())
    one = one if len(one) <= limit else one[: limit - 1] + "…"
    return "`" + one.replace("`", "'") + "`"
