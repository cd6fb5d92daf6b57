"""The reliability suite's tally: what was tried, how often, and what came of it.

Every probe records ``(what, tried, result)``; the table is printed at the end of the run (it is
the source of ``docs/reliability.md``).
"""

from __future__ import annotations

from collections import defaultdict

import pytest

TALLY: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))


def record(what: str, outcome: str, n: int = 1) -> None:
    """Count ``n`` inputs of probe ``what`` that ended in ``outcome``."""
    TALLY[what][outcome] += n


@pytest.fixture
def tally():
    return record


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    if not TALLY:
        return
    tr = terminalreporter
    tr.section("aliasgate reliability: what was tried")
    tr.write_line("| probe | inputs | outcomes |")
    tr.write_line("|---|---|---|")
    total = 0
    for what in sorted(TALLY):
        outcomes = TALLY[what]
        n = sum(outcomes.values())
        total += n
        text = ", ".join(f"{k} {v}" for k, v in sorted(outcomes.items()))
        tr.write_line(f"| {what} | {n} | {text} |")
    tr.write_line(f"| **total** | {total} | |")
