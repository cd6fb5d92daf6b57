"""Bootstrap statistics: mean_ci / bootstrap_mean (iid and cluster) and paired differences."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aliasgate.stats import (
    BootstrapCI,
    bootstrap_mean,
    mean_ci,
    paired_bootstrap,
    paired_bootstrap_diff,
)
from aliasgate.stats import bootstrap as bootstrap_module


def width(ci: tuple[float, float, float]) -> float:
    return ci[2] - ci[1]


# -- basic properties ----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(
        st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), min_size=1, max_size=40
    ),
    n_clusters=st.integers(min_value=1, max_value=40),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_interval_contains_the_mean(values, n_clusters, seed):
    clusters = [i % n_clusters for i in range(len(values))]
    result = bootstrap_mean(values, clusters=clusters, n_resamples=300, seed=seed)
    assert result.estimate == pytest.approx(float(np.mean(values)), rel=1e-9, abs=1e-9)
    if result.method == "undefined":  # one cluster, differing values
        assert min(n_clusters, len(values)) == 1 and len(set(values)) > 1
        assert math.isnan(result.low) and math.isnan(result.high)
    else:
        tol = 1e-9 * max(1.0, abs(result.estimate))
        assert result.low - tol <= result.estimate <= result.high + tol


def test_interval_narrows_with_more_data():
    small = mean_ci([0.0, 1.0] * 25)  # n = 50
    large = mean_ci([0.0, 1.0] * 400)  # n = 800: the width should shrink ~ sqrt(16) = 4x
    assert small[0] == large[0] == 0.5
    assert width(large) < width(small) / 3
    assert width(large) > width(small) / 5


def test_interval_matches_the_normal_approximation_for_large_n():
    values = np.random.default_rng(3).normal(10.0, 2.0, size=2000)
    mean, low, high = mean_ci(values)
    half = 1.959964 * values.std(ddof=1) / math.sqrt(values.size)
    assert low == pytest.approx(mean - half, abs=0.1 * half)
    assert high == pytest.approx(mean + half, abs=0.1 * half)


@pytest.mark.parametrize("clusters", [None, ["a", "a", "b", "b", "c"]])
def test_equal_values_collapse_to_the_mean(clusters):
    assert mean_ci([0.7] * 5, clusters=clusters) == (0.7, 0.7, 0.7)
    assert bootstrap_mean([0.7] * 5, clusters=clusters).method == "degenerate"


def test_a_single_value_collapses():
    assert mean_ci([0.25]) == (0.25, 0.25, 0.25)


def test_one_cluster_with_varying_values_has_no_interval():
    result = bootstrap_mean([0.0, 1.0, 1.0], clusters=["t", "t", "t"])
    assert result.method == "undefined"
    assert result.estimate == pytest.approx(2 / 3)
    assert math.isnan(result.low) and math.isnan(result.high)
    assert not result.low > 0.0  # any gate comparison on a NaN bound fails (closed)


@pytest.mark.parametrize("clusters", [None, [i // 3 for i in range(60)]])
def test_same_seed_same_interval_other_seed_other_interval(clusters):
    values = np.random.default_rng(7).random(60)
    first = mean_ci(values, clusters=clusters, seed=11)
    assert mean_ci(values, clusters=clusters, seed=11) == first
    assert mean_ci(values, clusters=clusters, seed=12) != first


def test_higher_confidence_gives_a_wider_interval():
    values = np.random.default_rng(1).random(80)
    assert width(mean_ci(values, confidence=0.99)) > width(mean_ci(values, confidence=0.8))


def test_result_reports_method_and_sizes():
    result = bootstrap_mean([0.0, 1.0, 1.0, 0.0, 1.0], clusters=["a", "a", None, None, "b"])
    assert isinstance(result, BootstrapCI)
    assert (result.n, result.n_units, result.n_resamples) == (5, 4, 2000)
    assert result.method == "bca"
    assert result.confidence == 0.95
    assert result.as_tuple() == mean_ci([0.0, 1.0, 1.0, 0.0, 1.0], clusters=["a", "a", None, None, "b"])


# -- BCa / percentile ----------------------------------------------------------------------------


def test_iid_uses_bca_which_differs_from_percentile_on_skewed_data():
    values = np.random.default_rng(0).exponential(size=40) ** 3  # strongly right-skewed
    bca = bootstrap_mean(values, n_resamples=4000)
    assert bca.method == "bca"
    from scipy import stats

    percentile = stats.bootstrap(
        (values,), np.mean, n_resamples=4000, method="percentile", rng=np.random.default_rng(0)
    ).confidence_interval
    p_low, p_high = percentile.low, percentile.high
    # BCa moves the interval towards the long tail
    assert bca.low > p_low
    assert bca.high > p_high


def test_numpy_bca_path_agrees_with_scipy(monkeypatch):
    values = np.random.default_rng(4).exponential(size=300) ** 2
    numpy_result = bootstrap_mean(values, n_resamples=3000, seed=6)
    other_seed = bootstrap_mean(values, n_resamples=3000, seed=5)
    monkeypatch.setattr(bootstrap_module, "SCIPY_MAX_N", 10**9)  # scipy.stats.bootstrap itself
    scipy_result = bootstrap_mean(values, n_resamples=3000, seed=6)
    assert (scipy_result.method, numpy_result.method) == ("bca", "bca")
    tolerance = 0.05 * width(scipy_result.as_tuple())  # Monte Carlo error of 3000 resamples
    assert other_seed.low == pytest.approx(scipy_result.low, abs=tolerance)
    assert other_seed.high == pytest.approx(scipy_result.high, abs=tolerance)


@pytest.mark.parametrize("n", [2, 7, 300, 1000, 2500])
def test_numpy_bca_is_scipys_bca_on_the_same_resamples(n, monkeypatch):
    """Same generator, same seed: the numpy path draws scipy's resamples (identical replicates)
    and reads the same interval from them, up to floating-point rounding (index draws: the
    counts path for few distinct values is off)."""
    monkeypatch.setattr(bootstrap_module, "FEW_VALUES_MAX", 0)
    rng = np.random.default_rng(n)
    for values in (rng.exponential(size=n) ** 2, (rng.random(n) < 0.3).astype(float)):
        ours = bootstrap_module.bootstrap_mean_distribution(values, seed=11)
        low, high, method, boot = bootstrap_module._scipy_iid(
            values, 0.95, 2000, np.random.default_rng(11))
        assert ours.ci.method == method
        np.testing.assert_array_equal(ours.replicates, boot)
        assert ours.ci.low == pytest.approx(low, rel=1e-12, abs=1e-12)
        assert ours.ci.high == pytest.approx(high, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("clustered", [False, True])
def test_mean_cis_equals_mean_ci_per_column(clustered):
    rng = np.random.default_rng(8)
    n = 400
    columns = [(rng.random(n) < 0.5).astype(float), rng.random(n), np.full(n, 0.25)]
    clusters = [f"c{i // 4}" if i % 5 else None for i in range(n)] if clustered else None
    assert bootstrap_module.mean_cis(columns, clusters=clusters, seed=3) == [
        mean_ci(c, clusters=clusters, seed=3) for c in columns]
    big = [rng.random(5000), rng.random(5000)]  # too large to share one index matrix
    assert bootstrap_module.mean_cis(big, seed=1, n_resamples=600) == [
        mean_ci(c, seed=1, n_resamples=600) for c in big]
    assert bootstrap_module.mean_cis([]) == []
    with pytest.raises(ValueError, match="differ in length"):
        bootstrap_module.mean_cis([[1.0, 2.0], [1.0]])


def test_bca_acceleration_survives_tiny_and_huge_values():
    for values in ([0.0, 7.3e-124], [0.0, 1e-170, 3e-170], [1e300, -1e300, 5e299, 2e299]):
        ci = bootstrap_mean(values)
        assert ci.method in ("bca", "percentile")
        assert ci.low <= ci.estimate <= ci.high


def test_singleton_clusters_are_the_iid_bootstrap():
    values = np.random.default_rng(2).random(30)
    iid = mean_ci(values, seed=3)
    assert mean_ci(values, clusters=list(range(30)), seed=3) == iid
    assert mean_ci(values, clusters=[None] * 30, seed=3) == iid


def test_percentile_fallback_when_bca_is_undefined():
    # both clusters have mean 0.5, so every resample gives 0.5: the jackknife has no spread and
    # BCa's acceleration is 0/0; the percentile interval (here a point) is used
    result = bootstrap_mean([0.0, 1.0, 1.0, 0.0], clusters=["a", "a", "b", "b"])
    assert result.method == "percentile"
    assert result.as_tuple() == (0.5, 0.5, 0.5)


# -- cluster bootstrap ---------------------------------------------------------------------------


def test_cluster_bootstrap_is_wider_when_clusters_are_perfectly_correlated():
    cluster_values = np.random.default_rng(8).integers(0, 2, size=20).astype(float)
    values = np.repeat(cluster_values, 10)  # 20 templates x 10 identical paraphrases
    clusters = np.repeat([f"t{i}" for i in range(20)], 10)
    iid = mean_ci(values)
    clustered = mean_ci(values, clusters=clusters)
    assert clustered[0] == iid[0]
    # 20 independent units instead of 200: about sqrt(10) = 3.2x wider
    assert width(clustered) > 2.5 * width(iid)
    # and as wide as the iid interval of the 20 cluster values themselves
    assert width(clustered) == pytest.approx(width(mean_ci(cluster_values)), rel=0.15)


def test_cluster_estimate_pools_values_of_unequal_clusters():
    values = [1.0, 1.0, 1.0, 1.0, 0.0]
    result = bootstrap_mean(values, clusters=["big"] * 4 + ["small"])
    assert result.estimate == pytest.approx(0.8)  # pooled mean, not the mean of cluster means
    assert result.n_units == 2
    assert 0.0 <= result.low <= 0.8 <= result.high <= 1.0


def test_coverage_of_iid_bca_on_bernoulli_data():
    rng = np.random.default_rng(2024)
    p, n, sims = 0.33, 60, 200  # p off the 1/n lattice, so bounds cannot sit exactly on it
    covered = 0
    for sim in range(sims):
        values = (rng.random(n) < p).astype(float)
        _, low, high = mean_ci(values, n_resamples=1000, seed=sim)
        covered += low <= p <= high
    # nominal 0.95; binomial s.e. of the estimate over 200 simulations is ~0.015
    assert 0.90 <= covered / sims <= 0.99


def test_coverage_with_clusters_needs_the_cluster_bootstrap():
    rng = np.random.default_rng(99)
    p, n_clusters, size, sims = 0.4, 30, 8, 200
    labels = np.repeat(np.arange(n_clusters), size)
    covered_cluster = covered_iid = 0
    for sim in range(sims):
        # each template is answered right or wrong as a whole, with 10 % per-case noise
        template = rng.random(n_clusters) < p
        flip = rng.random(n_clusters * size) < 0.1
        values = (np.repeat(template, size) ^ flip).astype(float)
        truth = p * 0.9 + (1 - p) * 0.1
        _, low, high = mean_ci(values, clusters=labels, n_resamples=1000, seed=sim)
        covered_cluster += low <= truth <= high
        _, low, high = mean_ci(values, n_resamples=200, seed=sim)
        covered_iid += low <= truth <= high
    assert covered_cluster / sims >= 0.88
    assert covered_iid / sims < covered_cluster / sims - 0.2  # ignoring clusters is overconfident


# -- paired differences --------------------------------------------------------------------------


def test_paired_diff_on_a_known_effect():
    rng = np.random.default_rng(5)
    b = (rng.random(300) < 0.5).astype(float)
    # the candidate keeps every success and fixes ~30 % of the champion's failures
    a = np.where((b == 0) & (rng.random(300) < 0.3), 1.0, b)
    delta, low, high = paired_bootstrap_diff(a, b)
    assert delta == pytest.approx(a.mean() - b.mean())
    assert 0.1 < delta < 0.2
    assert 0.0 < low < delta < high
    # pairing removes the shared per-case variance: narrower than two independent intervals
    unpaired = math.hypot(width(mean_ci(a)), width(mean_ci(b)))
    assert high - low < 0.6 * unpaired


def test_paired_diff_of_identical_systems_is_zero():
    values = [0.0, 1.0, 1.0, 0.5]
    assert paired_bootstrap_diff(values, values) == (0.0, 0.0, 0.0)


def test_paired_diff_without_effect_covers_zero():
    rng = np.random.default_rng(6)
    a, b = rng.random(200), rng.random(200)
    delta, low, high = paired_bootstrap_diff(a, b)
    assert low < 0.0 < high
    assert low < delta < high


def test_paired_diff_with_clusters_is_wider():
    rng = np.random.default_rng(10)
    effect = np.repeat(rng.normal(0.05, 0.2, size=15), 10)  # per-template effect
    b = rng.random(150)
    a = b + effect + rng.normal(0, 0.02, size=150)
    clusters = np.repeat(np.arange(15), 10)
    iid = paired_bootstrap(a, b)
    clustered = paired_bootstrap(a, b, clusters=clusters)
    assert clustered.estimate == pytest.approx(iid.estimate)
    assert clustered.n_units == 15
    assert width(clustered.as_tuple()) > 2 * width(iid.as_tuple())


# -- validation ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values",
    [[], [0.5, float("nan")], [1.0, None], [0.0, float("inf")], [[0.0, 1.0], [1.0, 0.0]], ["x"]],
)
def test_invalid_values_raise(values):
    with pytest.raises(ValueError):
        mean_ci(values)


def test_nan_message_tells_what_to_do():
    with pytest.raises(ValueError, match="index 2.*drop unmeasured"):
        mean_ci([0.0, 1.0, float("nan")])


def test_cluster_length_mismatch_raises():
    with pytest.raises(ValueError, match="clusters has 2 labels for 3 values"):
        mean_ci([0.0, 1.0, 1.0], clusters=["a", "b"])


@pytest.mark.parametrize(
    "options", [{"confidence": 0.0}, {"confidence": 1.0}, {"n_resamples": 0}, {"n_resamples": 2.5}]
)
def test_invalid_options_raise(options):
    with pytest.raises(ValueError):
        mean_ci([0.0, 1.0], **options)


def test_paired_validation():
    with pytest.raises(ValueError, match="differ in length"):
        paired_bootstrap_diff([0.0, 1.0], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        paired_bootstrap_diff([0.0, float("nan")], [1.0, 0.0])
    with pytest.raises(ValueError, match="NaN"):
        paired_bootstrap_diff([0.0, 1.0], [None, 0.0])
    with pytest.raises(ValueError, match="clusters"):
        paired_bootstrap_diff([0.0, 1.0], [1.0, 0.0], clusters=["a"])


@pytest.mark.parametrize("values", [
    (np.random.default_rng(3).random(1000) < 0.62).astype(float),            # a 0/1 metric
    np.random.default_rng(4).integers(1, 6, 400).astype(float) / 5,          # Likert-like
    np.random.default_rng(5).integers(-1, 2, 700).astype(float),             # paired 0/1 diffs
])
def test_few_distinct_values_resample_through_counts(values, monkeypatch):
    """Multinomial counts of the distinct values give the index bootstrap's distribution: the
    same interval up to Monte Carlo error, reproducibly, ~10x cheaper."""
    fast = bootstrap_module.bootstrap_mean_distribution(values, seed=2, n_resamples=4000)
    again = bootstrap_module.bootstrap_mean_distribution(values, seed=2, n_resamples=4000)
    np.testing.assert_array_equal(fast.replicates, again.replicates)
    monkeypatch.setattr(bootstrap_module, "FEW_VALUES_MAX", 0)
    slow = bootstrap_module.bootstrap_mean_distribution(values, seed=2, n_resamples=4000)
    assert not np.array_equal(fast.replicates, slow.replicates)  # really another path
    assert fast.ci.method == slow.ci.method == "bca"
    assert fast.replicates.mean() == pytest.approx(slow.replicates.mean(), abs=2e-3)
    assert fast.replicates.std() == pytest.approx(slow.replicates.std(), rel=0.06)
    tolerance = 0.06 * (slow.ci.high - slow.ci.low)
    assert fast.ci.low == pytest.approx(slow.ci.low, abs=tolerance)
    assert fast.ci.high == pytest.approx(slow.ci.high, abs=tolerance)
