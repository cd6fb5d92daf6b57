"""Statistics: bootstrap CIs, paired comparisons, Wilson, McNemar, MDE, Holm, group gaps.

Import the submodules directly for the full API; the names below are the common ones.
"""

from aliasgate.stats.binary import mcnemar_exact, wilson_interval
from aliasgate.stats.bootstrap import (
    BootstrapCI,
    bootstrap_mean,
    mean_ci,
    paired_bootstrap,
    paired_bootstrap_diff,
)
from aliasgate.stats.compare import PairedComparison, compare_paired
from aliasgate.stats.groups import GroupGap, group_gap
from aliasgate.stats.multiple import holm
from aliasgate.stats.power import paired_mde, proportion_mde

__all__ = [
    "BootstrapCI",
    "GroupGap",
    "PairedComparison",
    "bootstrap_mean",
    "compare_paired",
    "group_gap",
    "holm",
    "mcnemar_exact",
    "mean_ci",
    "paired_bootstrap",
    "paired_bootstrap_diff",
    "paired_mde",
    "proportion_mde",
    "wilson_interval",
]
