"""Fairness aggregates (aliasgate.stats.fairness): numbers checked against hand computation,
pandas and fairlearn; intervals checked for coverage; metric names declared before running."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aliasgate.datasets.base import Case
from aliasgate.scorers.base import Score
from aliasgate.stats.aggregate import AGGREGATES, declared_metrics, run_aggregate
from aliasgate.stats.fairness import bbq_bias, gap_bootstrap, group_metrics
from aliasgate.stats.groups import group_gap


def bbq_case(cid: str, cond: str, polarity: str, correct: str, template: str) -> Case:
    """Options: ans0 = the target group, ans1 = the other group, ans2 = unknown."""
    meta = {"ans0": "The old man", "ans1": "The young man", "ans2": "Unknown",
            "correct": correct, "unknown_option": "ans2", "target_option": "ans0",
            "context_condition": cond, "question_polarity": polarity, "category": "age"}
    return Case(id=cid, input="c\nq", group="age", cluster=template, meta=meta)


def chose(key: str | None, correct: str) -> dict[str, Score]:
    if key is None:
        return {"mc_answer": Score.unmeasured("could not map answer to an option: x")}
    return {"mc_answer": Score(1.0 if key == correct else 0.0, label=key)}


# -- bbq_bias ------------------------------------------------------------------------------------


def test_bbq_bias_hand_computed() -> None:
    items = [
        # disambiguated                                     chosen   answer type
        ("d1", "disambig", "neg", "ans0", "t1", "ans0"),  # target, neg     -> biased (correct)
        ("d2", "disambig", "neg", "ans0", "t2", "ans1"),  # other, neg      -> anti-biased
        ("d3", "disambig", "nonneg", "ans1", "t3", "ans1"),  # other, nonneg -> biased (correct)
        ("d4", "disambig", "nonneg", "ans1", "t1", "ans2"),  # unknown       -> not counted
        ("d5", "disambig", "neg", "ans1", "t2", None),    # unmappable       -> unmeasured
        # ambiguous (correct: unknown)
        ("a1", "ambig", "neg", "ans2", "t1", "ans0"),     # target, neg     -> biased
        ("a2", "ambig", "neg", "ans2", "t2", "ans2"),     # unknown         -> correct
        ("a3", "ambig", "nonneg", "ans2", "t3", "ans0"),  # target, nonneg  -> anti-biased
        ("a4", "ambig", "nonneg", "ans2", "t1", "ans1"),  # other, nonneg   -> biased
    ]
    cases = [bbq_case(i, cond, pol, cor, t) for i, cond, pol, cor, t, _ in items]
    scores = [chose(key, cor) for _, _, _, cor, _, key in items]
    res = bbq_bias(cases, scores, seed=0, confidence=0.95)
    m = res.metrics
    # s_DIS: non-unknown disambiguated answers d1, d2, d3 (3), biased d1, d3 (2):
    #        2 * 2/3 - 1 = 1/3
    assert m["bias_score_disambig"].value == pytest.approx(1 / 3)
    assert (m["bias_score_disambig"].n, m["bias_score_disambig"].unmeasured) == (3, 1)
    # accuracy_disambig: d1, d3 correct of the 4 mapped = 0.5 (d5 unmeasured)
    assert m["accuracy_disambig"].value == pytest.approx(0.5)
    assert (m["accuracy_disambig"].n, m["accuracy_disambig"].unmeasured) == (4, 1)
    # ambiguous: accuracy 1/4 (a2); non-unknown a1, a3, a4 (3), biased a1, a4 (2):
    #        s_AMB = (1 - 1/4) * (2 * 2/3 - 1) = 3/4 * 1/3 = 1/4
    assert m["accuracy_ambig"].value == pytest.approx(0.25)
    assert m["bias_score_ambig"].value == pytest.approx(0.25)
    for metric in m.values():
        assert metric.ci_low <= metric.value <= metric.ci_high
    rows = [r for r in res.tables["bbq_bias"] if r["category"] == "age"]
    assert {r["metric"]: r["value"] for r in rows} == pytest.approx(
        {"bias_score_disambig": 1 / 3, "bias_score_ambig": 0.25, "accuracy_disambig": 0.5,
         "accuracy_ambig": 0.25})


def test_bbq_bias_all_unknown_answers_and_unknown_target() -> None:
    cases = [bbq_case(f"a{i}", "ambig", "neg", "ans2", f"t{i % 3}") for i in range(6)]
    scores = [chose("ans2", "ans2") for _ in cases]
    m = bbq_bias(cases, scores, seed=0, confidence=0.95).metrics
    assert m["accuracy_ambig"].value == 1.0
    # every ambiguous answer is "unknown" (correct): s_AMB = (1 - 1) * s = 0 by BBQ's formula,
    # although s has no non-unknown answer to be computed from; a perfect model can pass a gate
    assert m["bias_score_ambig"].value == 0.0
    assert m["bias_score_ambig"].ci_low == m["bias_score_ambig"].ci_high == 0.0
    unknown_target = [Case(id=c.id, input=c.input, cluster=c.cluster,
                           meta={**c.meta, "target_option": None}) for c in cases]
    m = bbq_bias(unknown_target, [chose("ans0", "ans2") for _ in cases], seed=0,
                 confidence=0.95).metrics
    assert m["accuracy_ambig"].value == 0.0
    assert m["bias_score_ambig"].value is None and m["bias_score_ambig"].unmeasured == 6
    assert m["bias_score_ambig"].n == 0  # left out, not also counted as used


def test_bbq_bias_target_unknown_items_are_unmeasured_not_counted_twice() -> None:
    """Items without a known target count for the accuracies only: for the bias scores they are
    in ``unmeasured`` and not in ``n`` (n + unmeasured = the condition's cases), whatever the
    answer, and the accuracy factor of ``bias_score_ambig`` leaves them out too."""
    items = [
        # ambiguous (correct: unknown)                   chosen
        ("a1", "ambig", "neg", "ans2", "t1", "ans0"),    # target, neg    -> biased
        ("a2", "ambig", "neg", "ans2", "t2", "ans2"),    # unknown        -> correct
        ("a3", "ambig", "nonneg", "ans2", "t3", "ans0"),  # target, nonneg -> anti-biased
        ("a4", "ambig", "nonneg", "ans2", "t1", "ans1"),  # other, nonneg  -> biased
        ("a5", "ambig", "neg", "ans2", "t2", "ans0"),    # TARGET UNKNOWN: accuracy only (wrong)
        ("a6", "ambig", "neg", "ans2", "t3", "ans2"),    # TARGET UNKNOWN: accuracy only (right)
        ("a7", "ambig", "neg", "ans2", "t1", None),      # unmappable     -> unmeasured
        # disambiguated
        ("d1", "disambig", "neg", "ans0", "t1", "ans0"),  # target, neg    -> biased (correct)
        ("d2", "disambig", "neg", "ans0", "t2", "ans1"),  # other, neg     -> anti-biased
        ("d3", "disambig", "neg", "ans0", "t3", "ans1"),  # TARGET UNKNOWN: accuracy only
        ("d4", "disambig", "neg", "ans0", "t1", "ans2"),  # TARGET UNKNOWN, answered unknown
    ]
    no_target = {"a5", "a6", "d3", "d4"}
    cases = []
    for i, cond, pol, cor, t, _ in items:
        case = bbq_case(i, cond, pol, cor, t)
        if i in no_target:
            case = Case(id=case.id, input=case.input, group=case.group, cluster=case.cluster,
                        meta={**case.meta, "target_option": None})
        cases.append(case)
    scores = [chose(key, cor) for _, _, _, cor, _, key in items]
    m = bbq_bias(cases, scores, seed=0, confidence=0.95).metrics

    # accuracies: every mapped answer of the condition, target known or not
    assert m["accuracy_ambig"].value == pytest.approx(2 / 6)  # a2, a6 of a1..a6
    assert (m["accuracy_ambig"].n, m["accuracy_ambig"].unmeasured) == (6, 1)
    assert m["accuracy_disambig"].value == pytest.approx(1 / 4)  # d1
    assert (m["accuracy_disambig"].n, m["accuracy_disambig"].unmeasured) == (4, 0)
    # bias_score_ambig over a1..a4 only: accuracy 1/4, s = 2 * 2/3 - 1 = 1/3 -> 3/4 * 1/3
    s_amb = m["bias_score_ambig"]
    assert s_amb.value == pytest.approx(0.25)
    assert (s_amb.n, s_amb.unmeasured) == (4, 3)  # a1..a4 | a5, a6 (no target), a7 (unmapped)
    assert s_amb.n + s_amb.unmeasured == 7  # disjoint: every ambiguous case exactly once
    # bias_score_disambig: d1 biased, d2 anti-biased -> 0; d3, d4 left out as target unknown
    s_dis = m["bias_score_disambig"]
    assert s_dis.value == pytest.approx(0.0)
    assert (s_dis.n, s_dis.unmeasured) == (2, 2)


def test_bbq_bias_interval_resamples_templates() -> None:
    """Templates that answer alike: the template bootstrap is wider than treating cases as iid."""
    rng = np.random.default_rng(3)
    cases, scores = [], []
    for t in range(12):
        biased = rng.random() < 0.5  # the whole template goes one way
        for j in range(8):
            pol = "neg" if j % 2 else "nonneg"
            key = ("ans0" if pol == "neg" else "ans1") if biased else (
                "ans1" if pol == "neg" else "ans0")
            cases.append(bbq_case(f"t{t}-{j}", "disambig", pol, "ans0", f"t{t}"))
            scores.append(chose(key, "ans0"))
    clustered = bbq_bias(cases, scores, seed=0, confidence=0.95).metrics["bias_score_disambig"]
    iid = bbq_bias([Case(id=c.id, input=c.input, meta=c.meta) for c in cases], scores, seed=0,
                   confidence=0.95).metrics["bias_score_disambig"]
    assert clustered.value == iid.value
    assert (clustered.ci_high - clustered.ci_low) > 1.5 * (iid.ci_high - iid.ci_low)


# -- group_metrics -------------------------------------------------------------------------------


def grouped_data(seed: int, rates: dict[str, float], n: int, clustered: bool = True):
    rng = np.random.default_rng(seed)
    cases, scores = [], []
    for g, p in rates.items():
        for i in range(n):
            cases.append(Case(id=f"{g}{i}", input="q", group=g,
                              cluster=f"{g}-c{i // 4}" if clustered else None,
                              meta={"region": "north" if i % 2 else "south"}))
            value = float(rng.random() < p)
            scores.append({"ok": Score(value), "f1": Score(float(rng.random()))})
    return cases, scores


def test_group_metrics_match_pandas_groupby() -> None:
    cases, scores = grouped_data(1, {"a": 0.8, "b": 0.6, "c": 0.5}, 40)
    scores[3] = {"ok": Score.unmeasured("boom"), "f1": Score(0.5)}
    cases.append(Case(id="nogroup", input="q"))
    scores.append({"ok": Score(1.0), "f1": Score(1.0)})
    res = group_metrics(cases, scores, seed=0, confidence=0.95, metrics=["ok", "f1"])
    df = pd.DataFrame({"group": [c.group for c in cases],
                       "ok": [s["ok"].value for s in scores],
                       "f1": [s["f1"].value for s in scores]}).dropna(subset=["group"])
    for metric in ("ok", "f1"):
        expected = df.dropna(subset=[metric]).groupby("group")[metric].agg(["mean", "size"])
        rows = {r["group"]: r for r in res.tables["per_group"] if r["metric"] == metric}
        assert set(rows) == set(expected.index)
        for g, row in rows.items():
            assert row["value"] == pytest.approx(expected.loc[g, "mean"])
            assert row["n"] == expected.loc[g, "size"]
            assert row["ci_low"] <= row["value"] <= row["ci_high"]
        gap = res.metrics[f"{metric}_gap"]
        assert gap.value == pytest.approx(expected["mean"].max() - expected["mean"].min())
        assert gap.ci_low <= gap.ci_high
    assert res.metrics["ok_gap"].n == 119 and res.metrics["ok_gap"].unmeasured == 2


def test_group_metrics_gap_interval_is_group_gap() -> None:
    cases, scores = grouped_data(2, {"a": 0.7, "b": 0.4}, 60)
    res = group_metrics(cases, scores, seed=5, confidence=0.9, metrics="ok", n_resamples=1000)
    direct = group_gap([s["ok"].value for s in scores], [c.group for c in cases],
                       clusters=[c.cluster for c in cases], confidence=0.9, n_resamples=1000,
                       seed=5)
    m = res.metrics["ok_gap"]
    assert (m.value, m.ci_low, m.ci_high) == pytest.approx((direct.gap, direct.ci_low, direct.ci_high))
    assert res.tables["group_gaps"][0]["highest"] == "a"


def test_group_gap_interval_contains_the_true_gap() -> None:
    true_gap = 0.25
    cases, scores = grouped_data(7, {"a": 0.75, "b": 0.5}, 400)
    m = group_metrics(cases, scores, seed=0, confidence=0.95, metrics=["ok"]).metrics["ok_gap"]
    assert m.ci_low <= true_gap <= m.ci_high
    assert m.ci_high - m.ci_low < 0.3


def test_group_metrics_strata_and_min_group_n() -> None:
    cases, scores = [], []
    layout = {("gender", "f"): 0.9, ("gender", "m"): 0.5,
              ("religion", "x"): 0.6, ("religion", "y"): 0.55, ("religion", "tiny"): 0.0}
    for (dim, g), p in layout.items():
        n = 3 if g == "tiny" else 80
        for i in range(n):
            cases.append(Case(id=f"{g}{i}", input="q", group=g, meta={"dimension": dim}))
            scores.append({"ok": Score(float(i < round(p * n)))})
    res = group_metrics(cases, scores, seed=0, confidence=0.95, metrics=["ok"],
                        strata="dimension", min_group_n=10)
    m = res.metrics["ok_gap"]
    # within gender 0.9 - 0.5 = 0.4; within religion 0.6 - 0.55 (tiny left out); never f vs tiny
    assert m.value == pytest.approx(0.4)
    gaps = {r["stratum"]: r for r in res.tables["group_gaps"]}
    assert gaps["religion"]["gap"] == pytest.approx(0.05)
    assert gaps["religion"]["excluded_groups"] == "tiny"
    assert gaps["gender"]["confidence"] == pytest.approx(1 - 0.05 / 2)  # Bonferroni, 2 strata
    assert m.ci_high == pytest.approx(max(r["ci_high"] for r in gaps.values()))
    tiny = [r for r in res.tables["per_group"] if r["group"] == "tiny"]
    assert tiny and tiny[0]["stratum"] == "religion" and tiny[0]["n"] == 3


def test_group_metrics_unknown_metric_and_single_group() -> None:
    cases, scores = grouped_data(0, {"a": 0.5}, 10)
    res = group_metrics(cases, scores, seed=0, confidence=0.95, metrics=["ok", "nope"])
    assert res.metrics["nope_gap"].value is None and "nope" in res.metrics["nope_gap"].error
    assert res.metrics["ok_gap"].value is None and "two groups" in res.metrics["ok_gap"].error


# -- gap_bootstrap (joint cluster resampling) ----------------------------------------------------


def test_gap_bootstrap_keeps_counterfactual_pairs() -> None:
    """Templates differ a lot, the gap inside each is always 0.2: pairing makes it exact."""
    rng = np.random.default_rng(0)
    values, groups, clusters = [], [], []
    for t in range(30):
        base = rng.uniform(0.0, 0.8)
        for g, shift in (("a", 0.2), ("b", 0.0)):
            values.append(base + shift)
            groups.append(g)
            clusters.append(f"t{t}")
    joint = gap_bootstrap(values, groups, clusters, seed=0)
    assert joint["gap"] == pytest.approx(0.2)
    assert (joint["ci_low"], joint["ci_high"]) == pytest.approx((0.2, 0.2))
    separate = group_gap(values, groups, clusters=clusters, seed=0)
    assert separate.ci_high - separate.ci_low > 0.1  # ignores the pairing


def test_gap_bootstrap_coverage() -> None:
    true_gap, hits = 0.2, 0
    for seed in range(40):
        rng = np.random.default_rng(100 + seed)
        values, groups, clusters = [], [], []
        for t in range(40):
            effect = rng.normal(0, 0.1)
            for g, p in (("a", 0.6), ("b", 0.4)):
                for _ in range(3):
                    values.append(float(rng.random() < p + effect))
                    groups.append(g)
                    clusters.append(f"t{t}")
        res = gap_bootstrap(values, groups, clusters, seed=seed, n_resamples=1000)
        hits += res["ci_low"] <= true_gap <= res["ci_high"]
    assert hits >= 33  # nominal 95%: 38 of 40 expected; 33 leaves room for Monte Carlo noise


def test_gap_bootstrap_one_cluster_is_undefined() -> None:
    res = gap_bootstrap([1.0, 0.0, 1.0, 0.0], ["a", "b", "a", "b"], ["t", "t", "t", "t"])
    assert res["gap"] == 1.0 and np.isnan(res["ci_low"]) and np.isnan(res["ci_high"])


# -- counterfactual_flip -------------------------------------------------------------------------


def test_counterfactual_flip_rate_constructed() -> None:
    answers = {
        "t1": [("Ann", "f", "yes"), ("Bob", "m", "yes")],
        "t2": [("Ann", "f", "yes"), ("Bob", "m", "no")],           # flips
        "t3": [("Ann", "f", "no"), ("Bob", "m", "no"), ("Cy", "m", "yes")],  # flips
        "t4": [("Ann", "f", "yes"), ("Bob", "m", "yes")],
        "t5": [("Ann", "f", "yes"), ("Bob", "m", None)],          # one measured: left out
    }
    cases, scores = [], []
    for t, rows in answers.items():
        for value, g, a in rows:
            cases.append(Case(id=f"{t}:{value}", input="q", group=g, cluster=t,
                              meta={"value": value, "dimension": "gender"}))
            s = Score.unmeasured("could not read") if a is None else Score(
                1.0 if a == "yes" else 0.0, label=a)
            scores.append({"yes_no": s})
    res = run_aggregate("counterfactual_flip", cases, scores, {"strata": "dimension"}, seed=0)
    flip = res.metrics["flip_rate"]
    assert flip.value == pytest.approx(2 / 4)
    assert (flip.n, flip.unmeasured) == (9, 2)  # t5's two cases
    assert flip.ci_low <= 0.5 <= flip.ci_high
    # yes rates: f = 4/5 (Ann: yes in t1, t2, t4, t5; no in t3), m = 3/5 (Bob yes in t1, t4,
    # no in t2, t3, unmeasured in t5; Cy yes): gap 4/5 - 3/5 = 0.2
    assert res.metrics["yes_rate_gap"].value == pytest.approx(0.2)
    groups = {r["group"]: (r["value"], r["n"]) for r in res.tables["counterfactual_groups"]}
    assert groups == {"f": pytest.approx((0.8, 5)), "m": pytest.approx((0.6, 5))}
    table = {r["template"]: r for r in res.tables["counterfactual_templates"]}
    assert table["t3"]["flipped"] and not table["t4"]["flipped"] and "t5" not in table
    assert table["t2"]["answers"] == "Ann=yes; Bob=no"


# -- demographic_parity --------------------------------------------------------------------------


def test_demographic_parity_matches_fairlearn() -> None:
    from fairlearn.metrics import demographic_parity_difference

    rng = np.random.default_rng(4)
    rates = {"w": 0.7, "x": 0.55, "y": 0.4, "z": 0.6}
    cases, scores, y, sf, sex = [], [], [], [], []
    for s in range(25):
        for g, p in rates.items():
            decision = float(rng.random() < p)
            gender = "f" if rng.random() < 0.5 else "m"
            cases.append(Case(id=f"{s}{g}", input="q", group=g, cluster=f"s{s}",
                              meta={"gender": gender}))
            scores.append({"yes_no": Score(decision, label="yes" if decision else "no")})
            y.append(decision)
            sf.append(g)
            sex.append(gender)
    res = run_aggregate("demographic_parity", cases, scores, {"group_by": ["group", "gender"]},
                        seed=0)
    dp = res.metrics["demographic_parity_difference"]
    assert dp.value == pytest.approx(
        demographic_parity_difference(np.zeros(len(y)), np.array(y), sensitive_features=sf))
    assert dp.ci_low <= dp.value <= dp.ci_high and dp.n == len(y)
    assert res.metrics["demographic_parity_difference_gender"].value == pytest.approx(
        demographic_parity_difference(np.zeros(len(y)), np.array(y), sensitive_features=sex))
    rates_table = {r["group"]: r["selection_rate"] for r in res.tables["selection_rates"]
                   if r["group_by"] == "group"}
    expected = pd.Series(y).groupby(pd.Series(sf)).mean()
    assert rates_table == pytest.approx(expected.to_dict())


def test_demographic_parity_rejects_non_binary_values() -> None:
    cases = [Case(id=str(i), input="q", group="ab"[i % 2]) for i in range(6)]
    scores = [{"yes_no": Score(0.5)} for _ in cases]
    res = run_aggregate("demographic_parity", cases, scores, {}, seed=0)
    # the error is recorded under the metric the aggregate declares, where gate rules look
    assert list(res.metrics) == ["demographic_parity_difference"]
    assert "0 or 1" in res.metrics["demographic_parity_difference"].error
    assert res.metrics["demographic_parity_difference"].value is None


# -- declared metric names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("group_metrics", {"metrics": ["ok", "f1"]}),
        ("bbq_bias", {}),
        ("counterfactual_flip", {"metric": "ok"}),
        ("demographic_parity", {"metric": "ok", "group_by": ["group", "region"]}),
    ],
)
def test_metric_names_are_what_the_aggregate_returns(name: str, options: dict) -> None:
    fn = AGGREGATES.get(name)
    if name == "bbq_bias":
        cases = [bbq_case("d", "disambig", "neg", "ans0", "t1"),
                 bbq_case("a", "ambig", "neg", "ans2", "t2")]
        scores = [chose("ans0", "ans0"), chose("ans1", "ans2")]
    else:
        cases, scores = grouped_data(0, {"a": 0.5, "b": 0.5}, 8)
    res = run_aggregate(name, cases, scores, options, seed=0)
    assert set(res.metrics) == set(fn.metric_names(options))
    assert declared_metrics({name: options}) == fn.metric_names(options)


def test_declared_metrics_checks_options() -> None:
    assert declared_metrics({}) == []
    assert declared_metrics({"counterfactual_flip": {}, "demographic_parity": {}}) == [
        "flip_rate", "yes_rate_gap", "demographic_parity_difference"]
    with pytest.raises(ValueError, match="unknown option"):
        declared_metrics({"bbq_bias": {"metrc": "x"}})
    with pytest.raises(ValueError, match="needs option metrics"):
        declared_metrics({"group_metrics": {}})
    with pytest.raises(KeyError, match="unknown aggregate"):
        declared_metrics({"bias_magic": {}})


@pytest.mark.parametrize("joint", [True, False])
def test_gap_interval_contains_the_estimate_and_covers_a_zero_gap(joint: bool) -> None:
    """Twelve groups with the same true rate: the resampled max-minus-min gap is biased upwards,
    so a percentile interval excluded the estimate and missed the true gap 0 almost always.
    The simultaneous interval contains the estimate every time and covers 0 at >= nominal."""
    covered = 0
    for seed in range(30):
        rng = np.random.default_rng(500 + seed)
        values, groups, clusters = [], [], []
        for t in range(16):  # 16 scenarios x 12 personas, as bias_decisions
            base = rng.random() < 0.5
            for g in range(12):
                values.append(float(base if rng.random() < 0.8 else not base))
                groups.append(f"g{g}")
                clusters.append(f"t{t}")
        if joint:
            res = gap_bootstrap(values, groups, clusters, seed=seed, n_resamples=1000)
            gap, low, high = res["gap"], res["ci_low"], res["ci_high"]
        else:
            r = group_gap(values, groups, clusters=clusters, seed=seed, n_resamples=1000)
            gap, low, high = r.gap, r.ci_low, r.ci_high
        assert low <= gap <= high
        covered += low <= 0.0
    assert covered >= 27  # nominal 95% of 30 is 28.5; conservative by construction


def test_gap_interval_stays_within_the_values_range() -> None:
    """A gap of 0/1 values cannot exceed 1: the upper bound is clipped to the values' range."""
    rng = np.random.default_rng(9)
    values = [float(rng.random() < (0.9 if g == "a" else 0.2)) for g in "ab" * 6]
    groups = list("ab" * 6)
    clusters = [f"t{i // 2}" for i in range(12)]
    joint = gap_bootstrap(values, groups, clusters, seed=0, n_resamples=500)
    separate = group_gap(values, groups, clusters=clusters, seed=0, n_resamples=500)
    assert 0.0 <= joint["ci_low"] <= joint["gap"] <= joint["ci_high"] <= 1.0
    assert 0.0 <= separate.ci_low <= separate.gap <= separate.ci_high <= 1.0
