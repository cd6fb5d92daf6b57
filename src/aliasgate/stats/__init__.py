"""Statistics: bootstrap confidence intervals (paired tests, Wilson, McNemar, MDE, Holm to come)."""

from aliasgate.stats.bootstrap import (
    BootstrapCI,
    bootstrap_mean,
    mean_ci,
    paired_bootstrap,
    paired_bootstrap_diff,
)

__all__ = ["BootstrapCI", "bootstrap_mean", "mean_ci", "paired_bootstrap", "paired_bootstrap_diff"]
