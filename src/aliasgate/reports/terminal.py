"""The summary table printed at the end of ``pytest evals/`` (rich, rendered to plain lines)."""

from __future__ import annotations

import io
from typing import Any

from aliasgate.reports.markdown import metric_rows


def summary_lines(summary: dict[str, Any], *, width: int = 100, markup: bool = False) -> list[str]:
    """Lines of the metric table (suite, metric, value, 95% CI, n, unmeasured) plus call counts."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"candidate {summary['candidate']}", title_justify="left")
    for col, justify in (("suite", "left"), ("metric", "left"), ("value", "right"),
                         ("95% CI", "right"), ("n", "right"), ("unmeasured", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for row in metric_rows(summary):
        style = "yellow" if row[-1] != "0" else None
        table.add_row(*row, style=style)
    buf = io.StringIO()
    console = Console(file=buf, width=max(width, 60), force_terminal=markup, color_system="standard"
                      if markup else None, highlight=False)
    console.print(table)
    lines = buf.getvalue().rstrip("\n").splitlines()
    lines.append(
        f"model calls: {summary['model_calls']}, served from cache: {summary['cache_hits']}"
    )
    for name, err in summary.get("errors", {}).items():
        lines.append(f"suite {name} not evaluated: {err}")
    return lines
