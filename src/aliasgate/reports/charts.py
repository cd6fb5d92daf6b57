"""Charts of the nightly report: matplotlib figures returned as PNG ``data:`` URIs (no files, no
JavaScript, no network), drawn with the Okabe–Ito colour-blind-safe palette. Regressions are
marked by shape and label as well as colour.

matplotlib is imported inside each function (the Agg canvas of ``matplotlib.figure.Figure``; no
pyplot state), so importing this module is cheap.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aliasgate.reports.compare import GroupRow, MetricChange, SliceChange
    from aliasgate.reports.history import MetricValue, RunSnapshot

__all__ = ["PALETTE", "group_chart", "ops_chart", "slice_chart", "trend_chart"]

#: Okabe & Ito (2008), "Color Universal Design".
PALETTE = {
    "black": "#000000", "orange": "#E69F00", "sky": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
    "grey": "#8A8A8A", "ink": "#1F2933", "muted": "#616E7C", "grid": "#E4E7EB",
}
STATUS_COLOURS = {"regressed": PALETTE["vermillion"], "improved": PALETTE["blue"],
                  "changed": PALETTE["purple"],
                  "unchanged": PALETTE["grey"], "new": PALETTE["purple"],
                  "missing": PALETTE["orange"], "unmeasured": PALETTE["orange"]}
_SERIES = [PALETTE[k] for k in ("blue", "orange", "green", "purple", "sky", "vermillion", "black")]


def _figure(width: float, height: float) -> Any:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    fig.patch.set_facecolor("white")
    return fig


def _style(ax: Any) -> None:
    ax.grid(True, color=PALETTE["grid"], linewidth=0.8)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        ax.spines[side].set_color("#9AA5B1")
    ax.tick_params(colors=PALETTE["muted"], labelsize=8)
    ax.title.set_color(PALETTE["ink"])


def _data_uri(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", facecolor="white")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _grid(n: int, ncols: int = 3) -> tuple[int, int]:
    cols = max(1, min(ncols, n))
    return math.ceil(n / cols), cols


def _short(label: str) -> str:
    """``2026-11-27`` -> ``11-27`` for crowded axes."""
    return label[5:] if len(label) == 10 and label[4] == "-" else label


def trend_chart(
    suite: str,
    series: Mapping[str, Sequence[tuple[str, MetricValue | None]]],
    changes: Mapping[str, MetricChange],
) -> str:
    """Small multiples, one per metric: the value each night with its CI band, oldest first;
    tonight's point is drawn large and, when the metric regressed, as a vermillion triangle.

    Args:
        suite: Suite name (the figure's title).
        series: Metric -> ``(night label, value)`` oldest first (tonight last).
        changes: Metric -> tonight's :class:`~aliasgate.reports.compare.MetricChange`.
    """
    names = list(series)
    rows, cols = _grid(len(names))
    fig = _figure(3.5 * cols, 2.35 * rows + 0.35)
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(names):
            ax.set_visible(False)
            continue
        metric = names[k]
        points = series[metric]
        x = list(range(len(points)))
        y = [_v(p.value) if p else math.nan for _, p in points]
        lo = [_v(p.ci_low) if p and p.ci_low is not None else _v(p.value) if p else math.nan
              for _, p in points]
        hi = [_v(p.ci_high) if p and p.ci_high is not None else _v(p.value) if p else math.nan
              for _, p in points]
        change = changes.get(metric)
        colour = STATUS_COLOURS.get(change.status if change else "unchanged", PALETTE["blue"])
        _style(ax)
        ax.fill_between(x, lo, hi, color=PALETTE["sky"], alpha=0.35, linewidth=0,
                        label="95% CI")
        ax.plot(x, y, color=PALETTE["blue"], linewidth=1.8, marker="o", markersize=3.5,
                label="mean")
        if change is not None and change.rolling_mean is not None:
            ax.axhline(change.rolling_mean, color=PALETTE["muted"], linewidth=1, linestyle="--",
                       label="rolling mean")
        if x and not math.isnan(y[-1]):
            marker = "v" if change and change.status == "regressed" else \
                "^" if change and change.status == "improved" else "o"
            ax.plot([x[-1]], [y[-1]], marker=marker, markersize=9, color=colour,
                    markeredgecolor="white", zorder=5)
        ax.set_xticks(x)
        labels = [_short(lbl) for lbl, _ in points]
        ax.set_xticklabels(labels, rotation=45 if len(x) > 6 else 0, ha="right" if len(x) > 6
                           else "center")
        moved = change is not None and change.status in ("regressed", "improved")
        mark = {"regressed": " ▼", "improved": " ▲", "changed": " ◆"}.get(change.status if change else "", "")
        ax.set_title(f"{metric}{mark}", fontsize=9.5, loc="left",
                     color=colour if moved else PALETTE["ink"],
                     fontweight="bold" if change and change.status == "regressed" else "normal")
        if change is not None and change.direction in ("lower", "zero", "either"):
            ax.set_title({"lower": "lower is better", "zero": "closer to 0 is better",
                          "either": "no better direction"}[change.direction], fontsize=7.5,
                         loc="right", color=PALETTE["muted"])
        finite = [v for v in [*lo, *hi, *y] if not math.isnan(v)]
        if finite and 0.0 <= min(finite) and max(finite) <= 1.0:
            pad = max(0.02, (max(finite) - min(finite)) * 0.25)
            ax.set_ylim(max(0.0, min(finite) - pad), min(1.0, max(finite) + pad))
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    fig.suptitle(f"{suite}: last {max(len(p) for p in series.values()) if series else 0} nights",
                 fontsize=11, x=0.01, ha="left", color=PALETTE["ink"], fontweight="bold")
    return _data_uri(fig)


def slice_chart(suite: str, slices: Sequence[SliceChange], margin: float) -> str:
    """Forest plots, one per metric: each slice's paired change tonight − last night with its
    CI; a vermillion filled marker is a significant regression, a hollow one a regression
    within noise, blue an improvement. The dashed line is the tolerated margin.

    Args:
        suite: Suite name.
        slices: The suite's slice comparisons.
        margin: The non-inferiority margin (drawn on the worse side).
    """
    metrics = list(dict.fromkeys(s.metric for s in slices))
    groups = sorted({s.group for s in slices})
    rows, cols = _grid(len(metrics), 2)
    fig = _figure(4.6 * cols, (0.32 * len(groups) + 1.2) * rows + 0.3)
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(metrics):
            ax.set_visible(False)
            continue
        metric = metrics[k]
        items = {s.group: s for s in slices if s.metric == metric}
        _style(ax)
        ax.axvline(0, color=PALETTE["ink"], linewidth=1)
        # "zero": Δ is the change in mean |x| (reports/compare.py), so lower is better too
        lower = any(s.direction in ("lower", "zero") for s in items.values())
        ax.axvline(margin if lower else -margin, color=PALETTE["muted"], linewidth=1,
                   linestyle="--")
        for y, g in enumerate(groups):
            s = items.get(g)
            if s is None:
                continue
            colour = STATUS_COLOURS.get(s.status, PALETTE["grey"])
            lo = s.ci_low if s.ci_low is not None else s.delta
            hi = s.ci_high if s.ci_high is not None else s.delta
            ax.errorbar([s.delta], [y], xerr=[[s.delta - lo], [hi - s.delta]], fmt="none",
                        ecolor=colour, elinewidth=2, capsize=3)
            filled = s.status != "regressed" or s.significant
            ax.plot([s.delta], [y], marker="D" if s.status == "regressed" else "o",
                    markersize=7, color=colour, markerfacecolor=colour if filled else "white",
                    markeredgewidth=1.6)
        from matplotlib.ticker import MaxNLocator

        reach = max([margin * 2, *(abs(v) for s in items.values()
                                   for v in (s.delta, s.ci_low, s.ci_high) if v is not None)])
        ax.set_xlim(-reach * 1.1, reach * 1.1)
        ax.xaxis.set_major_locator(MaxNLocator(7, symmetric=True))
        ax.set_yticks(range(len(groups)))
        ax.set_yticklabels(groups, fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{metric}: Δ tonight − last night" + (" (lower is better)" if lower else ""),
                     fontsize=9.5, loc="left")
    fig.suptitle(f"{suite}: change by slice (95% CI)", fontsize=11, x=0.01, ha="left",
                 fontweight="bold", color=PALETTE["ink"])
    return _data_uri(fig)


def group_chart(suite: str, table: str, rows: Sequence[GroupRow]) -> str:
    """Dot-and-whisker per group of an aggregate table: tonight's value with its CI (filled)
    and last night's (hollow), one panel per series (metric, stratum...).

    Args:
        suite: Suite name.
        table: Table name (``per_group``...).
        rows: The table's rows for tonight (with last night's values).
    """
    series = list(dict.fromkeys(r.series for r in rows))
    panels, cols = _grid(len(series), 2)
    max_groups = max(sum(1 for r in rows if r.series == s) for s in series)
    fig = _figure(4.6 * cols, (0.34 * max_groups + 1.2) * panels + 0.3)
    axes = fig.subplots(panels, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= len(series):
            ax.set_visible(False)
            continue
        items = [r for r in rows if r.series == series[k]]
        _style(ax)
        for y, r in enumerate(items):
            if r.previous is not None:
                if r.previous_ci_low is not None and r.previous_ci_high is not None:
                    ax.plot([r.previous_ci_low, r.previous_ci_high], [y + 0.22, y + 0.22],
                            color=PALETTE["grey"], linewidth=1.5)
                ax.plot([r.previous], [y + 0.22], marker="o", markersize=6, color=PALETTE["grey"],
                        markerfacecolor="white", markeredgewidth=1.4, label="last night")
            if r.value is None:
                continue
            if r.ci_low is not None and r.ci_high is not None:
                ax.plot([r.ci_low, r.ci_high], [y, y], color=PALETTE["blue"], linewidth=2.2)
            ax.plot([r.value], [y], marker="o", markersize=7, color=PALETTE["blue"],
                    label="tonight (95% CI)")
        ax.set_yticks(range(len(items)))
        ax.set_yticklabels([f"{r.group} (n={r.n})" if r.n is not None else r.group
                            for r in items], fontsize=8)
        ax.invert_yaxis()
        column = items[0].column if items else "value"
        ax.set_title(f"{series[k] or column}" + (f" · {column}" if series[k] else ""),
                     fontsize=9.5, loc="left")
    labelled = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            labelled.setdefault(label, handle)
    if labelled:
        fig.legend(list(labelled.values()), list(labelled), loc="outside lower center", ncols=2,
                   fontsize=8, frameon=False)
    fig.suptitle(f"{suite}: {table} by group", fontsize=11, x=0.01, ha="left", fontweight="bold",
                 color=PALETTE["ink"])
    return _data_uri(fig)


def ops_chart(runs: Sequence[RunSnapshot], keys: Sequence[str] = ("latency_p50_s", "unmeasured")) -> str:
    """Trends of operations figures per suite (latency p50, unmeasured cases...), oldest first.

    Args:
        runs: The runs, oldest first (tonight last).
        keys: Per-suite stats to draw, one panel each.
    """
    suites = sorted({s for r in runs for s in r.suites})
    fig = _figure(3.6 * len(keys), 2.5)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    x = list(range(len(runs)))
    for ax, key in zip(axes, keys, strict=True):
        _style(ax)
        for i, suite in enumerate(suites):
            y = [_v(r.suites[suite].stats.get(key)) if suite in r.suites else math.nan for r in runs]
            ax.plot(x, y, marker="o", markersize=3.5, linewidth=1.6, color=_SERIES[i % len(_SERIES)],
                    label=suite)
        ax.set_xticks(x)
        ax.set_xticklabels([_short(r.night) for r in runs], rotation=45 if len(x) > 6 else 0,
                           ha="right" if len(x) > 6 else "center")
        ax.set_title(key, fontsize=9.5, loc="left")
    if suites:
        axes[0].legend(fontsize=7.5, frameon=False)
    return _data_uri(fig)


def _v(x: float | None) -> float:
    return math.nan if x is None else float(x)
