"""Gates: gate files of statistical rules, and the fail-closed verdict on a candidate.

Add a rule type: write its class (a :class:`RuleBase` or :class:`ComparisonRule` subclass with
``type: Literal["<name>"]``, see :mod:`aliasgate.gates.schema`) and add one line to ``RULES``.
Third-party packages may register theirs in the ``aliasgate.gates`` entry-point group.
"""

from __future__ import annotations

from aliasgate._registry import Registry

RULES = Registry(
    "rule type",
    {
        "floor": "aliasgate.gates.schema:FloorRule",
        "ceiling": "aliasgate.gates.schema:CeilingRule",
        "non_inferiority": "aliasgate.gates.schema:NonInferiorityRule",
        "superiority": "aliasgate.gates.schema:SuperiorityRule",
        "rate": "aliasgate.gates.schema:RateRule",
        "group_gap": "aliasgate.gates.schema:GroupGapRule",
        "max_unmeasured": "aliasgate.gates.schema:MaxUnmeasuredRule",
        "min_n": "aliasgate.gates.schema:MinNRule",
        "gap_not_worse": "aliasgate.gates.gap_rule:GapNotWorseRule",
    },
    entry_point_group="aliasgate.gates",
)

from aliasgate.gates.evaluate import (  # noqa: E402 - RULES first: schema reads it lazily
    VERDICT_SCHEMA,
    GateVerdict,
    RuleContext,
    RuleOutcome,
    evaluate_gate,
)
from aliasgate.gates.schema import (  # noqa: E402
    ComparisonRule,
    GateFile,
    GateFileError,
    RuleBase,
    RuleError,
    load_gate,
    parse_gate,
)


def available() -> list[str]:
    """Names of the registered rule types."""
    return RULES.names()


__all__ = [
    "RULES",
    "VERDICT_SCHEMA",
    "ComparisonRule",
    "GateFile",
    "GateFileError",
    "GateVerdict",
    "RuleBase",
    "RuleContext",
    "RuleError",
    "RuleOutcome",
    "available",
    "evaluate_gate",
    "load_gate",
    "parse_gate",
]
