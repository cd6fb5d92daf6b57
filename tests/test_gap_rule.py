"""``gap_not_worse``: the paired comparison of a group gap with the champion's (stats and rule)."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from aliasgate.datasets.base import Case
from aliasgate.gates import GateFileError, evaluate_gate, parse_gate
from aliasgate.run.results import CaseResult, SuiteResult
from aliasgate.scorers.base import Score
from aliasgate.stats.gap_compare import compare_gaps_paired

GENDERS = ("woman", "man", "non-binary")
AGES = ("25", "45", "70")


def decisions(p_yes, *, scenarios: int = 24, personas: int = 12, seed: int = 0):
    """A DiscrimEval-like design: every scenario asked for every persona; 0/1 answers drawn with
    ``p_yes(scenario_base_rate, gender, age)``. Returns cases and values (same cases each call)."""
    rng = np.random.default_rng(seed)
    base_rate = np.random.default_rng(99).uniform(0.2, 0.8, scenarios)
    cases, values = [], []
    for s in range(scenarios):
        for p in range(personas):
            gender, age = GENDERS[p % 3], AGES[(p + s) % 3]
            cases.append(Case(id=f"dec-{s:02d}:{p}", input="?", group=f"{gender}-{age}",
                              cluster=f"dec-{s:02d}", meta={"gender": gender, "age": age}))
            values.append(float(rng.random() < p_yes(base_rate[s], gender, age)))
    return cases, values


def fair(rate, gender, age):
    return rate


def against_women(shift):
    return lambda rate, gender, age: max(0.0, rate - shift) if gender == "woman" else rate


def suite(cases, values, candidate="cand", unmeasured=()):
    results = []
    for case, v in zip(cases, values, strict=True):
        if case.id in unmeasured:
            results.append(CaseResult(case, "?", None, "unmeasured", error="TimeoutError"))
        else:
            results.append(CaseResult(case, "?", "yes" if v else "no", "scored",
                                      scores={"yes_no": Score(v)}))
    return SuiteResult(suite="bias_decisions", candidate=candidate, dataset_digest="sha256:d",
                       dataset_path="bias_decisions.jsonl", params={}, cases=results,
                       metrics={})


def gate(rules: str):
    return parse_gate("version: 1\nname: t\nn_resamples: 2000\nrules:\n" + rules)


GENDER_RULE = ("  - {id: parity, type: gap_not_worse, metric: bias_decisions.yes_no, "
               "group_by: gender, margin: 0.10}\n")


# -- statistics ----------------------------------------------------------------------------------


def test_gaps_and_group_means_equal_a_direct_pandas_computation():
    cases, base = decisions(fair, seed=1)
    _, cand = decisions(against_women(0.3), seed=2)
    groups = [c.meta["gender"] for c in cases]
    r = compare_gaps_paired(cand, base, groups, clusters=[c.cluster for c in cases],
                            margin=0.1, n_resamples=500)
    df = pd.DataFrame({"g": groups, "c": cand, "b": base})
    means = df.groupby("g")[["c", "b"]].mean()
    assert r.candidate_gap == pytest.approx(means.c.max() - means.c.min())
    assert r.baseline_gap == pytest.approx(means.b.max() - means.b.min())
    assert r.delta == pytest.approx(r.candidate_gap - r.baseline_gap)
    for g, row in means.iterrows():
        assert r.groups[g]["candidate_mean"] == pytest.approx(row.c)
        assert r.groups[g]["baseline_mean"] == pytest.approx(row.b)
        assert r.groups[g]["n"] == int((df.g == g).sum())
    assert r.candidate_worst == (means.c.idxmax(), means.c.idxmin())
    assert r.n == len(cases) and r.n_units == 24
    json.dumps(r.as_dict(), allow_nan=False)


def test_identical_answers_pass_any_positive_margin():
    """The same answers twice: every group's paired difference is 0 in every resample, so the
    range bound is exact (the gap cannot have grown) and p is 0."""
    cases, values = decisions(fair)
    groups = [c.meta["gender"] for c in cases]
    clusters = [c.cluster for c in cases]
    r = compare_gaps_paired(values, values, groups, clusters=clusters, margin=0.01)
    assert r.delta == 0.0 and r.p_value == 0.0
    assert (r.ci_low, r.ci_high) == (0.0, 0.0)
    constant = [1.0] * len(values)  # nothing moves at all: degenerate
    assert compare_gaps_paired(constant, constant, groups, clusters=clusters,
                               margin=0.01).method == "degenerate"
    # margin 0: H0 "the gap grew by 0 or more" holds at delta = 0 exactly
    assert compare_gaps_paired(values, values, groups, clusters=clusters).p_value == 1.0


def test_a_grown_gap_is_caught_and_an_unchanged_one_is_not():
    cases, base = decisions(fair, seed=1)
    groups = [c.meta["gender"] for c in cases]
    clusters = [c.cluster for c in cases]
    _, worse = decisions(against_women(0.4), seed=1)  # same draws, women's yes-rate cut
    grown = compare_gaps_paired(worse, base, groups, clusters=clusters, margin=0.1)
    assert grown.delta > 0.2 and grown.ci_low > 0 and grown.p_value > 0.5
    # the same model answering again: a gap that did not grow is shown within a loose margin
    _, again = decisions(fair, seed=1)
    same = compare_gaps_paired(again, base, groups, clusters=clusters, margin=0.1)
    assert same.p_value < 0.025 and same.ci_high < 0.1


@pytest.mark.parametrize("seed", range(6))
def test_p_value_and_interval_tell_the_same_story(seed):
    """p < alpha iff the upper bound is below the margin (both take the conservative side)."""
    cases, base = decisions(fair, seed=seed)
    _, cand = decisions(against_women(0.1 * (seed % 3)), seed=seed + 10)
    groups = [c.meta["gender"] for c in cases]
    for margin in (0.05, 0.1, 0.2, 0.3):
        r = compare_gaps_paired(cand, base, groups, clusters=[c.cluster for c in cases],
                                margin=margin, n_resamples=4000, seed=seed)
        assert r.ci_low <= r.delta <= r.ci_high
        if abs(r.ci_high - margin) > 0.01:  # away from quantile interpolation ties
            assert (r.p_value < 0.025) == (r.ci_high < margin), (margin, r)


def test_pairing_resamples_whole_clusters_for_both_sides():
    """A scenario effect shared by both models cancels in the paired difference: the interval of
    Δ is much narrower than when the clusters are ignored (each case its own unit, which here
    also pairs) — and with one cluster only, nothing can be said: undefined, p = 1."""
    cases, base = decisions(fair, seed=3)
    _, cand = decisions(against_women(0.2), seed=3)
    groups = [c.meta["gender"] for c in cases]
    one_cluster = compare_gaps_paired(cand, base, groups, clusters=["all"] * len(cases),
                                      margin=0.5)
    assert one_cluster.method == "undefined" and one_cluster.p_value == 1.0
    assert math.isnan(one_cluster.ci_low) and math.isnan(one_cluster.ci_high)
    # clusters nested in groups, one per group: a group's mean never moves in a resample, so
    # nothing can be said about it (never p = 0 from resamples that carry no information)
    nested = compare_gaps_paired(cand, base, groups, clusters=groups, margin=0.5)
    assert nested.method == "undefined" and nested.p_value == 1.0


def test_strata_take_gaps_within_a_stratum_only():
    # two strata whose levels differ by 0.8 but whose groups are equal within each stratum
    groups = ["a", "b"] * 20 + ["c", "d"] * 20
    strata = ["x"] * 40 + ["y"] * 40
    base = [1.0] * 40 + [0.0, 0.0] * 20
    cand = [1.0, 0.0] * 20 + [0.0, 0.0] * 20  # stratum x: a says yes, b no
    r = compare_gaps_paired(cand, base, groups, strata=strata, margin=0.1, n_resamples=500)
    assert r.baseline_gap == 0.0 and r.candidate_gap == 1.0
    assert r.candidate_worst == ("x/a", "x/b") and "y/c" in r.groups
    flat = compare_gaps_paired(cand, base, groups, margin=0.1, n_resamples=500)
    assert flat.baseline_gap == 1.0  # without strata the level difference counts as a gap


@pytest.mark.parametrize("kwargs, message", [
    ({"margin": -0.1}, "margin"),
    ({"confidence": 1.0}, "confidence"),
    ({"seed": 1.5}, "seed"),
    ({"n_resamples": 0}, "n_resamples"),
])
def test_bad_options_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        compare_gaps_paired([0.0, 1.0], [1.0, 0.0], ["a", "b"], **kwargs)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        compare_gaps_paired([0.0, 1.0], [1.0], ["a", "b"])
    with pytest.raises(ValueError, match="two groups"):
        compare_gaps_paired([0.0, 1.0], [1.0, 0.0], ["a", "a"])
    with pytest.raises(ValueError, match="string label"):
        compare_gaps_paired([0.0, 1.0], [1.0, 0.0], ["a", None])  # type: ignore[list-item]


# -- the gate rule -------------------------------------------------------------------------------


def test_the_rule_fails_a_candidate_whose_gender_gap_grew_and_passes_one_that_kept_it():
    cases, base = decisions(fair, seed=1)
    _, worse = decisions(against_women(0.4), seed=1)
    v = evaluate_gate(gate(GENDER_RULE), {"bias_decisions": suite(cases, worse)},
                      {"bias_decisions": suite(cases, base, "champ")}, baseline_label="v2")
    (r,) = v.rules
    assert r.status == "fail" and v.verdict == "fail" and not v.promote
    assert "the gap grew (the interval excludes 0)" in r.message and "@champion v2" in r.message
    assert r.message.startswith("bias_decisions.yes_no by gender: gap ")
    s = r.stats
    assert s["group_by"] == "gender" and set(s["groups"]) == set(GENDERS)
    assert s["candidate_worst"][1] == "woman" and s["delta"] > 0.2
    assert s["holm_family"] == 1 and s["p_adjusted"] == s["p_value"]
    json.dumps(v.to_dict(), allow_nan=False)

    # far beyond a small margin: "grew by more than the margin"
    _, much = decisions(against_women(0.7), seed=1)
    tight = GENDER_RULE.replace("margin: 0.10", "margin: 0.02")
    v = evaluate_gate(gate(tight), {"bias_decisions": suite(cases, much)},
                      {"bias_decisions": suite(cases, base, "champ")})
    assert v.rules[0].stats["ci_low"] > 0.02
    assert "the gap GREW by more than the margin" in v.rules[0].message

    _, again = decisions(fair, seed=1)
    ok = evaluate_gate(gate(GENDER_RULE), {"bias_decisions": suite(cases, again)},
                       {"bias_decisions": suite(cases, base, "champ")})
    assert ok.rules[0].status == "pass" and ok.verdict == "pass"
    assert "non-inferior" in ok.rules[0].message


def test_the_rule_joins_the_holm_family_of_blocking_comparisons():
    cases, base = decisions(fair, seed=1)
    _, again = decisions(fair, seed=1)
    rules = GENDER_RULE + ("  - {id: yes-rate-same, type: non_inferiority, "
                           "metric: bias_decisions.yes_no, margin: 0.05}\n")
    v = evaluate_gate(gate(rules), {"bias_decisions": suite(cases, again)},
                      {"bias_decisions": suite(cases, base)})
    assert [r.stats["holm_family"] for r in v.rules] == [2, 2]


def test_groups_come_from_the_case_or_a_meta_key_and_small_groups_are_left_out():
    cases, base = decisions(fair, seed=1)
    _, cand = decisions(fair, seed=4)
    # Case.group: 9 gender-age cells of 32 cases each; min_group_n 40 leaves none -> error
    rule = ("  - {id: cells, type: gap_not_worse, metric: bias_decisions.yes_no, margin: 0.3, "
            "min_group_n: 40}\n")
    v = evaluate_gate(gate(rule), {"bias_decisions": suite(cases, cand)},
                      {"bias_decisions": suite(cases, base)})
    assert v.rules[0].status == "error" and v.verdict == "incomplete" and not v.promote
    assert "two groups (by Case.group) with >= 40 cases" in v.rules[0].message
    # by age with gender strata: 3 x 3 cells of 32; min_group_n 20 keeps all
    rule = ("  - {id: age, type: gap_not_worse, metric: bias_decisions.yes_no, margin: 0.3, "
            "group_by: age, strata: gender, min_group_n: 20}\n")
    v = evaluate_gate(gate(rule), {"bias_decisions": suite(cases, cand)},
                      {"bias_decisions": suite(cases, base)})
    assert v.rules[0].status in ("pass", "fail")
    assert set(v.rules[0].stats["groups"]) == {f"{g}/{a}" for g in GENDERS for a in AGES}
    # a missing meta key: every case ungrouped -> error, never a pass
    rule = ("  - {id: nokey, type: gap_not_worse, metric: bias_decisions.yes_no, margin: 0.3, "
            "group_by: religion}\n")
    v = evaluate_gate(gate(rule), {"bias_decisions": suite(cases, cand)},
                      {"bias_decisions": suite(cases, base)})
    assert v.rules[0].status == "error" and f"{len(cases)} cases without a group" in \
        v.rules[0].message


def test_unmeasured_cases_are_unpaired_and_counted():
    cases, base = decisions(fair, seed=1)
    _, again = decisions(fair, seed=1)
    lost = {cases[0].id, cases[5].id}
    v = evaluate_gate(gate(GENDER_RULE), {"bias_decisions": suite(cases, again, unmeasured=lost)},
                      {"bias_decisions": suite(cases, base, unmeasured={cases[7].id})})
    s = v.rules[0].stats
    assert s["n"] == len(cases) - 3 and s["n_unpaired"] == 3
    assert s["unmeasured_candidate"] == 2 and s["unmeasured_baseline"] == 1


def test_no_baseline_skips_it_and_an_aggregate_metric_is_refused():
    cases, values = decisions(fair)
    v = evaluate_gate(gate(GENDER_RULE), {"bias_decisions": suite(cases, values)}, None)
    assert v.rules[0].status == "skipped"
    sr = suite(cases, values)
    from aliasgate.run.results import MetricSummary

    sr.metrics["demographic_parity_difference_gender"] = MetricSummary(
        name="demographic_parity_difference_gender", value=0.1, ci_low=0.0, ci_high=0.2, n=10,
        unmeasured=0)
    rule = ("  - {id: agg, type: gap_not_worse, margin: 0.1, "
            "metric: bias_decisions.demographic_parity_difference_gender}\n")
    v = evaluate_gate(gate(rule), {"bias_decisions": sr}, {"bias_decisions": suite(cases, values)})
    assert v.rules[0].status == "error" and "aggregate" in v.rules[0].message


def test_a_gap_metric_of_the_aggregates_is_compared_on_its_own_per_case_metric_and_groups():
    """``metric: bias_decisions.demographic_parity_difference_gender`` reads how the aggregate
    makes it (``SuiteResult.gap_specs``: yes_no by gender) and decides exactly as the per-case
    form ``metric: bias_decisions.yes_no, group_by: gender``."""
    from aliasgate.run.results import MetricSummary
    from aliasgate.stats.aggregate import GapSpec

    cases, base = decisions(fair, seed=1)
    _, worse = decisions(against_women(0.4), seed=1)
    name = "demographic_parity_difference_gender"
    sides = []
    for values in (worse, base):
        sr = suite(cases, values)
        sr.metrics[name] = MetricSummary(name=name, value=0.3, ci_low=0.1, ci_high=0.5, n=288,
                                         unmeasured=0)
        sr.gap_specs = {name: GapSpec("yes_no", "gender")}
        sides.append({"bias_decisions": sr})
    rule = f"  - {{id: p, type: gap_not_worse, metric: bias_decisions.{name}, margin: 0.10}}\n"
    by_name = evaluate_gate(gate(rule), *sides)
    by_case = evaluate_gate(gate(GENDER_RULE), *sides)
    a, b = by_name.rules[0], by_case.rules[0]
    assert a.status == b.status == "fail"
    assert a.stats["per_case_metric"] == "yes_no" and a.stats["group_by"] == "gender"
    for key in ("delta", "ci_low", "ci_high", "p_value", "candidate_gap", "baseline_gap"):
        assert a.stats[key] == b.stats[key], key
    assert a.message.startswith(f"bias_decisions.{name} by gender: gap ")


def test_the_rule_needs_a_margin_and_names_the_line():
    with pytest.raises(GateFileError, match=r"<gate>:4: rules\[0\]\.margin"):
        parse_gate("version: 1\nname: t\nrules:\n  - id: parity\n    type: gap_not_worse\n"
                   "    metric: bias_decisions.yes_no\n")


def test_the_shipped_gate_names_only_metrics_the_shipped_suites_have():
    """gates/promotion.yaml (with its gap_not_worse rules) against evals/: every suite and metric
    exists, as `pytest evals/ --gate gates/promotion.yaml` checks before any model call."""
    import importlib.util
    from pathlib import Path

    from aliasgate import Suite
    from aliasgate.gates import load_gate
    from aliasgate.stats.aggregate import declared_metrics

    root = Path(__file__).resolve().parent.parent
    available: dict[str, list[str]] = {}
    for path in sorted((root / "evals").glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"_shipped_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        for suite in vars(module).values():
            if isinstance(suite, Suite):
                available[suite.name] = [*suite.scorers, *declared_metrics(suite.aggregates)]
    gate = load_gate(root / "gates" / "promotion.yaml")
    assert gate.check_metrics(available, raise_errors=False) == []
    gap_rules = [r for r in gate.rules if r.type == "gap_not_worse"]
    assert {r.metric_name for r in gap_rules} == {
        f"demographic_parity_difference_{k}" for k in ("gender", "race", "age")}
    assert all(r.blocking and r.comparison for r in gap_rules)


# -- nightly reports and mitigation records: gaps compared paired from logged runs ----------------


def test_logged_runs_compare_their_gaps_paired(tmp_path):
    """Two evaluations of the shipped bias_decisions suite, logged to a real sqlite store: the
    per-case tables keep the persona attributes, the runs say how each gap is made, and the
    comparison of the runs recomputes the parity gaps on the same cases — paired — instead of
    comparing two intervals: the gender gap that grew is a significant regression, the race
    gap (every race has one woman per scenario) is unchanged."""
    import runpy
    from pathlib import Path

    from aliasgate.candidates.callable_ import CallableCandidate
    from aliasgate.datasets import load_dataset
    from aliasgate.mitigation import record_mitigation
    from aliasgate.registry.tracking import TrackingSession
    from aliasgate.reports.compare import CompareOptions, compare_runs
    from aliasgate.reports.history import load_run
    from aliasgate.run.runner import run_suite

    root = Path(__file__).resolve().parent.parent
    suite = runpy.run_path(str(root / "evals" / "test_bias.py"))["bias_decisions"]
    ds = load_dataset(root / suite.dataset, kind=suite.kind)
    persona = {suite.render(c.input, dict(c.meta)): c for c in ds.cases}

    def model(women_no: bool):
        def answer(messages, params):
            case = persona[messages[-1]["content"]]
            scenario = int(str(case.cluster).rsplit("-", 1)[1])
            if women_no and case.meta["gender"] == "woman" and scenario % 4:
                return "No."
            return "Yes." if scenario % 3 else "No."
        return answer

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_ids = []
    for name, women_no in (("fair", False), ("unfair", True)):
        result = run_suite(suite, ds, CallableCandidate(model(women_no), name=f"callable:{name}",
                                                        version=name))
        assert result.gap_specs["demographic_parity_difference_gender"].group_by == "gender"
        tracking = TrackingSession(store, "gaps")
        tracking.log_suite(result)
        tracking.finish()
        run_ids.append(tracking.parent_run_id)
    before, after = (load_run(r, tracking_uri=store) for r in run_ids)
    snap = after.suites["bias_decisions"]
    assert {r["meta.gender"] for r in snap.cases} == {"woman", "man", "non-binary"}
    assert snap.gap_spec("demographic_parity_difference_age").group_by == "age"

    comp = compare_runs(after, [before], CompareOptions(margin=0.05))
    by_metric = {c.metric: c for c in comp.changes}
    gender = by_metric["demographic_parity_difference_gender"]
    assert gender.method.startswith("paired_gap_bootstrap")
    # yes rates: men and non-binary 11/16 (scenario % 3), women then 3/16: the gap 0 -> 0.5
    assert gender.n_pairs == len(ds) and gender.delta == pytest.approx(0.5)
    assert gender.ci_low > 0.05  # above the margin: a growth beyond it, shown
    assert (gender.status, gender.significant) == ("regressed", True)
    assert "recomputed on 192 paired cases (16 clusters)" in gender.note
    race = by_metric["demographic_parity_difference_race"]
    assert race.method.startswith("paired_gap_bootstrap") and race.status == "unchanged"
    assert race.delta == 0.0
    assert gender in comp.blocking

    # runs logged before gap specs existed (no param): the two intervals are compared instead
    import dataclasses

    def without_specs(run):
        suites = {n: dataclasses.replace(sn, params={k: v for k, v in sn.params.items()
                                                     if k != "gap_specs"})
                  for n, sn in run.suites.items()}
        return dataclasses.replace(run, suites=suites)

    old = compare_runs(without_specs(after), [without_specs(before)], CompareOptions(margin=0.05))
    legacy = next(c for c in old.changes if c.metric == "demographic_parity_difference_gender")
    assert legacy.method == "ci_overlap" and legacy.n_pairs == 0

    # the mitigation record (here: a harmful "mitigation") reads the same paired interval
    record = record_mitigation(run_ids[0], run_ids[1], tracking_uri=store, log=False)
    row = next(r for r in record.rows() if r["metric"] == "demographic_parity_difference_gender")
    assert row["method"].startswith("paired_gap_bootstrap") and row["status"] == "regressed"
    assert row["delta_ci_low"] == pytest.approx(gender.ci_low)


def test_a_candidate_whose_gap_grew_by_the_margin_is_rarely_passed():
    """Size at the boundary, the case a plain bootstrap gets wrong: a fair champion and a
    candidate whose gap grew by exactly the margin. Simulated on the shipped design (16
    scenarios x 12 personas, 3 groups, answers of the two models correlated): the test may pass
    such a candidate at most alpha = 2.5% of the time (fixed seeds: deterministic)."""
    rng = np.random.default_rng(7)
    scenarios, personas, margin = 16, 12, 0.25
    labels = [GENDERS[p % 3] for _ in range(scenarios) for p in range(personas)]
    clusters = [f"s{s}" for s in range(scenarios) for _ in range(personas)]
    passed = 0
    trials = 120
    for trial in range(trials):
        rate = rng.uniform(0.3, 0.8, scenarios)
        u = rng.random((scenarios, personas))
        same = rng.random((scenarios, personas)) < 0.7
        u_base = np.where(same, u, rng.random((scenarios, personas)))
        shift = np.array([margin if GENDERS[p % 3] == "woman" else 0.0 for p in range(personas)])
        cand = (u < rate[:, None] - shift[None, :]).astype(float).ravel()
        base = (u_base < rate[:, None]).astype(float).ravel()
        r = compare_gaps_paired(cand, base, labels, clusters=clusters, margin=margin,
                                n_resamples=1000, seed=trial)
        passed += r.p_value < 0.025
    assert passed / trials <= 0.025
