"""Gate statistics: Wilson, exact McNemar, Holm, MDE, paired comparison and group gaps."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

from aliasgate.stats import bootstrap as bootstrap_module
from aliasgate.stats.binary import mcnemar_exact, wilson_interval
from aliasgate.stats.bootstrap import paired_bootstrap, paired_bootstrap_distribution
from aliasgate.stats.compare import PairedComparison, compare_paired
from aliasgate.stats.groups import GroupGap, group_gap
from aliasgate.stats.multiple import holm
from aliasgate.stats.power import paired_mde, proportion_mde


def textbook_wilson(k: int, n: int, confidence: float) -> tuple[float, float]:
    """Wilson (1927) in the textbook form: (p + z²/2n ± z·sqrt(p(1-p)/n + z²/4n²)) / (1 + z²/n)."""
    z = scipy_stats.norm.ppf(1 - (1 - confidence) / 2)
    p = k / n
    denominator = 1 + z**2 / n
    centre = p + z**2 / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))
    return (centre - half) / denominator, (centre + half) / denominator


def correlated_pairs(rng, n, p11, p10, p01):
    """Paired 0/1 outcomes (candidate, baseline) with the given joint cell probabilities."""
    u = rng.random(n)
    candidate = (u < p11 + p10).astype(float)
    baseline = ((u < p11) | ((u >= p11 + p10) & (u < p11 + p10 + p01))).astype(float)
    return candidate, baseline


# -- Wilson ---------------------------------------------------------------------------------------


def test_wilson_hand_computed_values():
    # z = 1.959964; 0/10: upper = z²/(n + z²) = 3.841459/13.841459
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.277533, abs=1e-6))
    assert wilson_interval(10, 10) == (pytest.approx(0.722467, abs=1e-6), 1.0)
    low, high = wilson_interval(3, 10)  # the classic worked example
    assert low == pytest.approx(0.107791, abs=1e-6)
    assert high == pytest.approx(0.603222, abs=1e-6)


@pytest.mark.parametrize(
    ("k", "n"), [(0, 1), (1, 1), (0, 7), (7, 7), (1, 7), (3, 10), (50, 100), (1, 1000), (999, 1000)]
)
@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_wilson_matches_the_textbook_formula(k, n, confidence):
    low, high = wilson_interval(k, n, confidence=confidence)
    ref_low, ref_high = textbook_wilson(k, n, confidence)
    assert low == pytest.approx(max(0.0, ref_low), abs=1e-12)
    assert high == pytest.approx(min(1.0, ref_high), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(data=st.data(), n=st.integers(min_value=1, max_value=5000))
def test_wilson_contains_the_proportion_and_stays_in_unit_interval(data, n):
    k = data.draw(st.integers(min_value=0, max_value=n))
    low, high = wilson_interval(k, n)
    assert 0.0 <= low <= k / n <= high <= 1.0
    assert low < high
    wider = wilson_interval(k, n, confidence=0.99)
    assert wider[0] <= low and wider[1] >= high


def test_wilson_narrows_with_n():
    small, large = wilson_interval(20, 40), wilson_interval(500, 1000)
    assert (large[1] - large[0]) < (small[1] - small[0]) / 4


@pytest.mark.parametrize(
    ("k", "n", "options"),
    [
        (0, 0, {}),
        (5, 4, {}),
        (-1, 4, {}),
        (1.5, 4, {}),
        (1, 4, {"confidence": 1.0}),
        (1, 4, {"confidence": 0}),
    ],
)
def test_wilson_rejects_bad_input(k, n, options):
    with pytest.raises(ValueError):
        wilson_interval(k, n, **options)


# -- McNemar ---------------------------------------------------------------------------------------


def test_mcnemar_hand_computed():
    # two-sided: 2 · P(X <= 2; 11, 0.5) = 2 · (1 + 11 + 55) / 2048 = 0.0654296875
    assert mcnemar_exact(9, 2) == pytest.approx(134 / 2048, rel=1e-12)
    assert mcnemar_exact(9, 2) == pytest.approx(0.06543, abs=5e-6)
    assert mcnemar_exact(9, 2, alternative="greater") == pytest.approx(67 / 2048, rel=1e-12)
    assert mcnemar_exact(9, 2, alternative="less") == pytest.approx(1 - 12 / 2048, rel=1e-12)


@pytest.mark.parametrize("b", [0, 1, 3, 9, 25])
@pytest.mark.parametrize("c", [0, 2, 7, 30])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_mcnemar_is_the_binomial_test_of_discordant_pairs(b, c, alternative):
    p = mcnemar_exact(b, c, alternative=alternative)
    if b + c == 0:
        assert p == 1.0
    else:
        assert p == scipy_stats.binomtest(b, b + c, 0.5, alternative=alternative).pvalue


def test_mcnemar_greater_means_candidate_better():
    assert mcnemar_exact(20, 3, alternative="greater") < 0.01
    assert mcnemar_exact(3, 20, alternative="greater") > 0.99
    assert mcnemar_exact(20, 3, alternative="greater") == mcnemar_exact(3, 20, alternative="less")


@pytest.mark.parametrize(
    ("b", "c", "alternative"), [(-1, 2, "greater"), (1, 2.5, "less"), (1, 2, "bigger")]
)
def test_mcnemar_rejects_bad_input(b, c, alternative):
    with pytest.raises(ValueError):
        mcnemar_exact(b, c, alternative=alternative)


# -- Holm ------------------------------------------------------------------------------------------


def test_holm_hand_worked_example():
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running max
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_at_one_and_keeps_ties_equal():
    assert holm([0.4, 0.4, 0.9]) == pytest.approx([1.0, 1.0, 1.0])
    assert holm([0.02, 0.02, 0.001]) == pytest.approx([0.04, 0.04, 0.003])
    assert holm([0.3]) == [0.3]
    assert holm([]) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0.0, max_value=1.0), min_size=1, max_size=30))
def test_holm_properties(p_values):
    adjusted = holm(p_values)
    m = len(p_values)
    assert len(adjusted) == m
    for raw, adj in zip(p_values, adjusted, strict=True):
        assert raw <= adj <= 1.0
        assert adj <= min(1.0, m * raw) + 1e-12  # never more conservative than Bonferroni
    for i in range(m):
        for j in range(m):
            if p_values[i] <= p_values[j]:
                assert adjusted[i] <= adjusted[j]
    # the smallest p-value gets exactly the Bonferroni adjustment
    smallest = min(range(m), key=p_values.__getitem__)
    assert adjusted[smallest] == pytest.approx(min(1.0, m * p_values[smallest]))


@pytest.mark.parametrize("bad", [[0.1, float("nan")], [-0.1], [1.5], ["x"], [None]])
def test_holm_rejects_invalid_p_values(bad):
    with pytest.raises(ValueError):
        holm(bad)


# -- MDE -------------------------------------------------------------------------------------------


def test_paired_mde_is_the_textbook_formula():
    diffs = np.random.default_rng(0).normal(0.05, 0.3, size=250)
    expected = (
        (scipy_stats.norm.ppf(0.975) + scipy_stats.norm.ppf(0.8))
        * diffs.std(ddof=1)
        / math.sqrt(250)
    )
    assert paired_mde(diffs) == pytest.approx(expected, rel=1e-9)
    stricter = paired_mde(diffs, alpha=0.005, power=0.9)
    assert stricter > paired_mde(diffs)


def test_mde_shrinks_like_one_over_root_n():
    pattern = [1.0, 0.0, 0.0, -1.0, 0.0, 1.0, 0.0, 0.0]
    small = paired_mde(pattern * 25)  # n = 200
    large = paired_mde(pattern * 100)  # n = 800
    assert small / large == pytest.approx(2.0, rel=0.01)
    assert proportion_mde(0.7, 100) / proportion_mde(0.7, 400) == pytest.approx(2.0)


def test_cluster_correlation_inflates_the_mde():
    rng = np.random.default_rng(1)
    clusters = np.repeat(np.arange(30), 10)
    diffs = np.repeat(rng.normal(0.0, 0.3, size=30), 10) + rng.normal(0.0, 0.1, size=300)
    iid, clustered = paired_mde(diffs), paired_mde(diffs, clusters=clusters)
    # ICC ~ 0.9 with clusters of 10: design effect ~ 1 + 9 · 0.9, so ~2.9x the iid MDE
    assert clustered > 2.0 * iid
    # singleton clusters (ids or None) are exactly the iid design
    assert paired_mde(diffs, clusters=list(range(300))) == pytest.approx(iid, rel=1e-12)
    assert paired_mde(diffs, clusters=[None] * 300) == pytest.approx(iid, rel=1e-12)


def test_mde_edge_cases():
    assert paired_mde([0.2, 0.2, 0.2]) == 0.0  # no variability in the sample (documented)
    assert paired_mde([0.5]) == math.inf  # one unit: nothing is estimable
    assert paired_mde([0.0, 1.0, 0.0], clusters=["t", "t", "t"]) == math.inf
    assert proportion_mde(0.0, 50) == 0.0
    z = scipy_stats.norm.ppf(0.975) + scipy_stats.norm.ppf(0.8)
    assert proportion_mde(0.5, 100) == pytest.approx(z * 0.05)


@pytest.mark.parametrize(
    "call",
    [
        lambda: paired_mde([]),
        lambda: paired_mde([0.1, float("nan")]),
        lambda: paired_mde([0.1, 0.2], clusters=["a"]),
        lambda: paired_mde([0.1, 0.2], alpha=0.6),
        lambda: paired_mde([0.1, 0.2], power=1.0),
        lambda: proportion_mde(1.2, 10),
        lambda: proportion_mde(0.5, 0),
        lambda: proportion_mde(float("nan"), 10),
    ],
)
def test_mde_rejects_bad_input(call):
    with pytest.raises(ValueError):
        call()


# -- paired comparison -----------------------------------------------------------------------------


def test_known_effect_is_shown_superior():
    rng = np.random.default_rng(11)
    baseline = (rng.random(300) < 0.5).astype(float)
    # the candidate is truly better by 0.2: it fixes 40 % of the baseline's failures
    candidate = np.where((baseline == 0) & (rng.random(300) < 0.4), 1.0, baseline)
    result = compare_paired(candidate, baseline, test="superiority", seed=3)
    assert isinstance(result, PairedComparison)
    assert result.delta == pytest.approx(candidate.mean() - baseline.mean())
    assert 0.12 < result.delta < 0.28
    assert result.p_value < 0.025
    assert 0.0 < result.ci_low < result.delta < result.ci_high
    assert result.binary and result.method == "bca"
    b, c = result.discordant
    assert (b, c) == (int(((candidate == 1) & (baseline == 0)).sum()), 0)
    assert result.mcnemar_p == mcnemar_exact(b, c, alternative="greater") < 1e-6
    assert (result.n, result.n_units, result.seed, result.n_resamples) == (300, 300, 3, 5000)
    # the interval is exactly the paired bootstrap's interval of the same resamples
    same = paired_bootstrap(candidate, baseline, n_resamples=5000, seed=3)
    assert (result.ci_low, result.ci_high) == (same.low, same.high)


def test_identical_series():
    values = [1.0, 0.0, 1.0, 1.0, 0.0] * 20
    superiority = compare_paired(values, values, test="superiority")
    assert superiority.delta == 0.0
    assert superiority.method == "degenerate"
    assert superiority.p_value == 1.0  # delta 0 does not clear +0
    assert superiority.discordant == (0, 0) and superiority.mcnemar_p == 1.0
    non_inferiority = compare_paired(values, values, test="non_inferiority", margin=0.05)
    assert non_inferiority.p_value == 0.0  # delta 0 clears -0.05
    assert non_inferiority.ci_low > -0.05


def test_worse_candidate_is_not_non_inferior():
    rng = np.random.default_rng(12)
    baseline = (rng.random(300) < 0.7).astype(float)
    candidate = np.where((baseline == 1) & (rng.random(300) < 0.29), 0.0, baseline)  # ~ -0.2
    result = compare_paired(candidate, baseline, margin=0.05)
    assert result.delta < -0.1
    assert result.p_value > 0.5
    assert result.ci_high < -0.05
    assert result.mcnemar_p > 0.99


def test_non_inferiority_is_easier_than_superiority():
    rng = np.random.default_rng(13)
    candidate, baseline = correlated_pairs(rng, 400, 0.55, 0.08, 0.07)  # delta ~ +0.01
    ni = compare_paired(candidate, baseline, margin=0.1, seed=1)
    sup = compare_paired(candidate, baseline, test="superiority", seed=1)
    assert (ni.ci_low, ni.ci_high) == (sup.ci_low, sup.ci_high)  # same resamples
    assert ni.p_value < 0.025 < sup.p_value


def test_p_value_agrees_with_the_interval_on_many_seeds():
    disagreements = checked = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        n = int(rng.integers(20, 150))
        candidate, baseline = correlated_pairs(rng, n, 0.5, 0.15, 0.1)
        clusters = rng.integers(0, n // 4, size=n) if seed % 2 else None
        for test in ("non_inferiority", "superiority"):
            margin = float(rng.uniform(0.0, 0.2))
            result = compare_paired(
                candidate,
                baseline,
                test=test,
                margin=margin,
                clusters=clusters,
                confidence=0.9,
                n_resamples=499,
                seed=seed,
            )
            threshold = -margin if test == "non_inferiority" else margin
            assert result.threshold == threshold
            checked += 1
            disagreements += (result.p_value < 0.05) != (result.ci_low > threshold)
    assert checked == 120
    assert disagreements == 0


def test_p_value_is_the_share_of_resamples_below_the_threshold_for_percentile(monkeypatch):
    monkeypatch.setattr(bootstrap_module, "SCIPY_MAX_N", 0)  # numpy path ...
    monkeypatch.setattr(bootstrap_module, "_bca_levels", lambda *args: None)  # ... percentile
    rng = np.random.default_rng(5)
    candidate, baseline = correlated_pairs(rng, 120, 0.5, 0.15, 0.1)
    dist = paired_bootstrap_distribution(candidate, baseline, n_resamples=999, seed=2)
    assert dist.ci.method == "percentile"
    assert dist.replicates.shape == (999,)
    assert (dist.ci.low, dist.ci.high) == tuple(np.percentile(dist.replicates, [2.5, 97.5]))
    for threshold in (-0.05, 0.0, 0.02, 0.05, 0.1):
        count = int((dist.replicates <= threshold).sum())
        # interpolated share vs the counting formula: they differ by at most two resamples
        assert dist.p_value(threshold) == pytest.approx((1 + count) / 1000, abs=2 / 998 + 1e-12)


def test_bca_p_value_differs_from_the_raw_share_on_skewed_data():
    rng = np.random.default_rng(8)
    baseline = rng.random(60)
    candidate = baseline + rng.exponential(0.1, size=60) ** 2 - 0.01
    dist = paired_bootstrap_distribution(candidate, baseline, n_resamples=4000, seed=1)
    assert dist.ci.method == "bca"
    threshold = dist.ci.low  # at the BCa bound, the p-value is the nominal tail level
    assert dist.p_value(threshold) == pytest.approx(0.025, abs=1e-6)
    raw_share = float((dist.replicates <= threshold).mean())
    assert abs(raw_share - 0.025) > 0.002  # BCa moved the bound, and the p-value with it


def test_mcnemar_and_bootstrap_agree_on_a_clear_binary_effect():
    rng = np.random.default_rng(21)
    candidate, baseline = correlated_pairs(rng, 300, 0.45, 0.25, 0.05)  # delta = +0.2
    result = compare_paired(candidate, baseline, test="superiority", n_resamples=2000)
    assert result.p_value < 0.025 and result.mcnemar_p < 0.025
    assert result.ci_low > 0.0


def test_mde_shrinks_with_n_in_the_comparison():
    rng = np.random.default_rng(4)
    candidate, baseline = correlated_pairs(rng, 1600, 0.5, 0.15, 0.1)
    small = compare_paired(candidate[:400], baseline[:400], n_resamples=500)
    large = compare_paired(candidate, baseline, n_resamples=500)
    assert small.mde / large.mde == pytest.approx(2.0, rel=0.15)
    assert small.mde == pytest.approx(
        paired_mde(candidate[:400] - baseline[:400], alpha=0.025, power=0.8)
    )
    assert (large.ci_high - large.ci_low) < (small.ci_high - small.ci_low)


def test_clustered_data_give_a_larger_mde_and_wider_interval():
    rng = np.random.default_rng(9)
    n_templates, size = 25, 8
    clusters = np.repeat([f"t{i}" for i in range(n_templates)], size)
    baseline = np.repeat(rng.random(n_templates) < 0.6, size).astype(float)
    helped = np.repeat(rng.random(n_templates) < 0.35, size)  # the effect is per template
    candidate = np.where(helped, 1.0, baseline)
    iid = compare_paired(candidate, baseline, n_resamples=2000)
    clustered = compare_paired(candidate, baseline, clusters=clusters, n_resamples=2000)
    assert clustered.delta == pytest.approx(iid.delta)
    assert clustered.n_units == n_templates and iid.n_units == n_templates * size
    assert clustered.mde > 2.0 * iid.mde
    assert (clustered.ci_high - clustered.ci_low) > 2.0 * (iid.ci_high - iid.ci_low)


def test_coverage_on_simulated_paired_bernoulli_data():
    rng = np.random.default_rng(2026)
    p11, p10, p01 = 0.45, 0.2, 0.1
    truth = p10 - p01  # 0.1
    sims, covered = 200, 0
    for sim in range(sims):
        candidate, baseline = correlated_pairs(rng, 100, p11, p10, p01)
        result = compare_paired(candidate, baseline, n_resamples=1000, seed=sim)
        covered += result.ci_low <= truth <= result.ci_high
    # nominal 0.95; the binomial s.e. over 200 simulations is ~0.015
    assert 0.90 <= covered / sims <= 0.99


def test_same_seed_same_result():
    rng = np.random.default_rng(30)
    candidate, baseline = rng.random(80), rng.random(80)
    first = compare_paired(candidate, baseline, seed=7, n_resamples=500)
    assert compare_paired(candidate, baseline, seed=7, n_resamples=500) == first
    assert compare_paired(candidate, baseline, seed=8, n_resamples=500).ci_low != first.ci_low
    assert not first.binary and first.discordant is None and first.mcnemar_p is None


def test_undefined_interval_fails_closed():
    result = compare_paired(
        [1.0, 1.0, 0.0], [0.0, 0.0, 0.0], clusters=["t"] * 3, test="superiority"
    )
    assert result.method == "undefined"
    assert math.isnan(result.ci_low) and math.isnan(result.ci_high)
    assert result.p_value == 1.0
    assert result.mde == math.inf
    record = result.as_dict()
    assert record["ci_low"] is None and record["ci_high"] is None and record["mde"] is None
    json.dumps(record, allow_nan=False)


def test_as_dict_is_json_safe_and_complete():
    rng = np.random.default_rng(31)
    candidate, baseline = correlated_pairs(rng, 50, 0.5, 0.2, 0.1)
    result = compare_paired(candidate, baseline, margin=0.05, n_resamples=300)
    record = json.loads(json.dumps(result.as_dict(), allow_nan=False))
    assert record["discordant"] == list(result.discordant)
    assert record["p_value"] == result.p_value
    assert set(record) >= {
        "n",
        "discordant",
        "delta",
        "ci_low",
        "ci_high",
        "p_value",
        "mde",
        "margin",
        "seed",
    }


@pytest.mark.parametrize(
    ("args", "options"),
    [
        (([1.0, 0.0], [1.0]), {}),
        (([1.0, float("nan")], [1.0, 0.0]), {}),
        (([1.0, 0.0], [None, 0.0]), {}),
        (([1.0, 0.0], [1.0, 0.0]), {"margin": -0.01}),
        (([1.0, 0.0], [1.0, 0.0]), {"margin": float("nan")}),
        (([1.0, 0.0], [1.0, 0.0]), {"test": "equivalence"}),
        (([1.0, 0.0], [1.0, 0.0]), {"clusters": ["a"]}),
        (([1.0, 0.0], [1.0, 0.0]), {"confidence": 1.0}),
        (([1.0, 0.0], [1.0, 0.0]), {"seed": None}),
    ],
)
def test_compare_rejects_bad_input(args, options):
    with pytest.raises(ValueError):
        compare_paired(*args, **options)


# -- group gap -------------------------------------------------------------------------------------


def test_group_gap_on_hand_made_groups():
    values = [1.0] * 45 + [0.0] * 5 + [1.0] * 35 + [0.0] * 15 + [1.0] * 40 + [0.0] * 10
    groups = ["a"] * 50 + ["b"] * 50 + ["c"] * 50  # means 0.9, 0.7, 0.8
    result = group_gap(values, groups, seed=1)
    assert isinstance(result, GroupGap)
    assert result.gap == pytest.approx(0.2)
    assert result.worst == ("a", "b")
    assert result.ci_low <= result.gap <= result.ci_high
    assert result.ci_low > 0.0
    assert {name: (stat.mean, stat.n) for name, stat in result.groups.items()} == {
        "a": (pytest.approx(0.9), 50),
        "b": (pytest.approx(0.7), 50),
        "c": (pytest.approx(0.8), 50),
    }
    for stat in result.groups.values():
        assert stat.ci_low < stat.mean < stat.ci_high
    assert (result.method, result.n_resamples, result.seed) == ("simultaneous", 2000, 1)
    assert result.ci_low <= result.gap <= result.ci_high


def test_group_gap_interval_covers_the_true_gap():
    rng = np.random.default_rng(40)
    truth = {"x": 0.8, "y": 0.6, "z": 0.75}  # true gap 0.2
    sims, covered = 100, 0
    for sim in range(sims):
        values, groups = [], []
        for name, p in truth.items():
            values += list((rng.random(120) < p).astype(float))
            groups += [name] * 120
        result = group_gap(values, groups, n_resamples=1000, seed=sim)
        covered += result.ci_low <= 0.2 <= result.ci_high
    assert covered / sims >= 0.88


def test_group_gap_resamples_within_groups_and_clusters():
    rng = np.random.default_rng(41)
    values, groups, clusters = [], [], []
    for name, shift in (("g1", 0.0), ("g2", 0.15)):
        template_effect = np.repeat(rng.normal(0.5 + shift, 0.2, size=12), 10)
        values += list(template_effect + rng.normal(0, 0.02, size=120))
        groups += [name] * 120
        clusters += [f"{name}-t{i // 10}" for i in range(120)]
    iid = group_gap(values, groups, seed=2)
    clustered = group_gap(values, groups, clusters=clusters, seed=2)
    assert clustered.gap == pytest.approx(iid.gap)
    assert (clustered.ci_high - clustered.ci_low) > 2.0 * (iid.ci_high - iid.ci_low)


def test_group_gap_single_value_group_is_degenerate():
    result = group_gap([1.0, 0.0, 1.0, 1.0, 0.0], ["solo", "many", "many", "many", "many"])
    solo = result.groups["solo"]
    assert (solo.mean, solo.n, solo.ci_low, solo.ci_high) == (1.0, 1, 1.0, 1.0)
    assert result.gap == pytest.approx(0.5)
    assert result.worst == ("solo", "many")
    all_single = group_gap([0.3, 0.9], ["p", "q"])
    assert all_single.method == "degenerate"
    assert (all_single.ci_low, all_single.ci_high) == pytest.approx((0.6, 0.6))


def test_group_gap_is_reproducible_and_json_safe():
    rng = np.random.default_rng(42)
    values = rng.random(90)
    groups = [("a", "b", "c")[i % 3] for i in range(90)]
    first = group_gap(values, groups, seed=5, n_resamples=500)
    assert group_gap(values, groups, seed=5, n_resamples=500) == first
    record = json.loads(json.dumps(first.as_dict(), allow_nan=False))
    assert record["worst"] == list(first.worst)
    assert record["groups"]["a"]["n"] == 30


@pytest.mark.parametrize(
    ("values", "groups", "options"),
    [
        ([0.1, 0.2], ["a", "a"], {}),
        ([0.1, 0.2], ["a"], {}),
        ([0.1, float("nan")], ["a", "b"], {}),
        ([0.1, 0.2], ["a", None], {}),
        ([0.1, 0.2], ["a", "b"], {"clusters": [1]}),
        ([0.1, 0.2], ["a", "b"], {"n_resamples": 0}),
        ([0.1, 0.2], ["a", "b"], {"confidence": 0.0}),
    ],
)
def test_group_gap_rejects_bad_input(values, groups, options):
    with pytest.raises(ValueError):
        group_gap(values, groups, **options)


def test_power_option_is_validated_before_resampling():
    with pytest.raises(ValueError, match="power"):
        compare_paired([1.0, 0.0, 1.0], [0.0, 0.0, 1.0], power=0.3)
