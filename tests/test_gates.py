"""Gate files (schema, file:line errors) and gate evaluation (statistics, Holm, fail-closed verdict)."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from aliasgate.datasets.base import Case
from aliasgate.gates import (
    RULES,
    VERDICT_SCHEMA,
    GateFile,
    GateFileError,
    RuleBase,
    evaluate_gate,
    load_gate,
    parse_gate,
)
from aliasgate.gates.schema import fmt_num
from aliasgate.run.results import CaseResult, SuiteResult
from aliasgate.scorers.base import Score

DATA = Path(__file__).parent / "data" / "gates"


# -- helpers -------------------------------------------------------------------------------------


def make_suite(
    name: str,
    metrics: dict[str, Sequence[float | None]],
    *,
    ids: Sequence[str] | None = None,
    groups: Sequence[str | None] | None = None,
    clusters: Sequence[str | None] | None = None,
    candidate: str = "cand",
) -> SuiteResult:
    """A SuiteResult from per-case values; a case whose values are all None is an unmeasured call."""
    n = len(next(iter(metrics.values())))
    ids = list(ids) if ids is not None else [f"c{i:04d}" for i in range(n)]
    cases = []
    for i in range(n):
        case = Case(
            id=ids[i], input=f"q{i}", expected=("a",),
            group=groups[i] if groups is not None else None,
            cluster=clusters[i] if clusters is not None else None,
        )
        values = {m: v[i] for m, v in metrics.items()}
        if all(v is None for v in values.values()):
            cases.append(CaseResult(case, f"q{i}", None, "unmeasured", error="TimeoutError"))
            continue
        scores = {m: Score(v) if v is not None else Score.unmeasured("scorer failed")
                  for m, v in values.items()}
        cases.append(CaseResult(case, f"q{i}", "a", "scored", scores=scores))
    return SuiteResult(
        suite=name, candidate=candidate, dataset_digest="sha256:data", dataset_path="golden.jsonl",
        params={}, cases=cases, metrics={},
    )


def paired_binary(wins: int, losses: int, both: int, neither: int, seed: int = 0):
    """Candidate/baseline 0/1 scores with known discordant counts, in shuffled case order."""
    cand = [1.0] * wins + [0.0] * losses + [1.0] * both + [0.0] * neither
    base = [0.0] * wins + [1.0] * losses + [1.0] * both + [0.0] * neither
    order = np.random.default_rng(seed).permutation(len(cand))
    return [cand[i] for i in order], [base[i] for i in order]


def gate_of(rules: str, **header: object):
    """A gate from a YAML ``rules:`` block (indented by 2) with test-friendly header defaults."""
    head = {"version": 1, "name": "test", "n_resamples": 2000, **header}
    text = "".join(f"{k}: {v}\n" for k, v in head.items()) + "rules:\n" + rules
    return parse_gate(text, path="inline.yaml")


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    """1-based line of the ``occurrence``-th line of ``path`` containing ``needle``."""
    hits = [i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line]
    return hits[occurrence - 1]


def one(verdict, rule_id: str):
    return next(r for r in verdict.rules if r.id == rule_id)


def binary(k: int, n: int) -> list[float]:
    return [1.0] * k + [0.0] * (n - k)


COMPARISONS = """\
  - {id: better, type: superiority, metric: golden.em}
  - {id: not_worse, type: non_inferiority, metric: golden.em, margin: 0.02}
"""


# -- comparisons ---------------------------------------------------------------------------------


def test_truly_better_candidate_passes_superiority_and_non_inferiority():
    cand, base = paired_binary(wins=70, losses=10, both=140, neither=80)  # +0.20 on n = 300
    gate = gate_of(COMPARISONS + "  - {id: floor, type: floor, metric: golden.em, threshold: 0.5}\n")
    v = evaluate_gate(gate, {"golden": make_suite("golden", {"em": cand})},
                      {"golden": make_suite("golden", {"em": base})}, baseline_label="v1")
    assert v.verdict == "pass" and v.complete and v.promote
    better = one(v, "better")
    assert better.status == "pass"
    assert better.stats["delta"] == pytest.approx(0.2)
    assert better.stats["discordant"] == [70, 10]
    assert better.stats["n"] == 300 and better.stats["n_unpaired"] == 0
    assert better.stats["ci_low"] > 0.1 and better.stats["p_adjusted"] < v.settings["alpha"]
    assert better.stats["holm_family"] == 2
    assert "vs @champion v1" in better.message and "superior" in better.message
    assert one(v, "not_worse").status == "pass"
    assert v.summary == "3/3 blocking rules passed"


def test_candidate_within_noise_is_not_shown_better_with_the_mde():
    cand, base = paired_binary(wins=12, losses=10, both=140, neither=138)  # +0.007: noise
    gate = gate_of(COMPARISONS)
    v = evaluate_gate(gate, {"golden": make_suite("golden", {"em": cand})},
                      {"golden": make_suite("golden", {"em": base})})
    better = one(v, "better")
    assert better.status == "fail" and v.verdict == "fail" and not v.promote
    mde = better.stats["mde"]
    assert math.isfinite(mde) and mde > abs(better.stats["delta"])
    assert "not shown better" in better.message
    assert f"MDE = {fmt_num(mde)}" in better.message
    assert better.stats["ci_low"] < 0 < better.stats["ci_high"]


def test_worse_candidate_fails_non_inferiority():
    cand, base = paired_binary(wins=10, losses=40, both=140, neither=110)  # -0.10
    gate = gate_of("  - {id: not_worse, type: non_inferiority, metric: golden.em, margin: 0.02}\n"
                   "  - {id: n, type: min_n, metric: golden.em, min: 100}\n")
    v = evaluate_gate(gate, {"golden": make_suite("golden", {"em": cand})},
                      {"golden": make_suite("golden", {"em": base})}, baseline_label="v3")
    ni = one(v, "not_worse")
    assert ni.status == "fail" and v.verdict == "fail" and not v.promote
    assert ni.stats["delta"] == pytest.approx(-0.1) and ni.stats["ci_high"] < -0.02
    assert "non-inferiority NOT shown" in ni.message and "MDE" in ni.message
    assert ni.message.startswith("golden.em: Δ = \u22120.100")
    assert v.summary == "1/2 blocking rules passed, 1 failed"


def test_holm_adjustment_changes_a_decision():
    em_c, em_b = paired_binary(wins=27, losses=14, both=140, neither=119, seed=1)
    f1_c, f1_b = paired_binary(wins=28, losses=14, both=140, neither=118, seed=2)
    cand = {"golden": make_suite("golden", {"em": em_c, "f1": f1_c})}
    base = {"golden": make_suite("golden", {"em": em_b, "f1": f1_b})}
    both = gate_of("  - {id: em_better, type: superiority, metric: golden.em}\n"
                   "  - {id: f1_better, type: superiority, metric: golden.f1}\n")
    v = evaluate_gate(both, cand, base)
    alpha = v.settings["alpha"]
    for rid in ("em_better", "f1_better"):
        s = one(v, rid).stats
        assert alpha / 2 < s["p_value"] < alpha  # each one would pass on its own...
        assert s["p_adjusted"] >= alpha  # ...but not after Holm
        assert s["holm_family"] == 2 and one(v, rid).status == "fail"
    assert v.verdict == "fail"

    alone = gate_of("  - {id: em_better, type: superiority, metric: golden.em}\n")
    solo = one(evaluate_gate(alone, cand, base), "em_better")
    assert solo.status == "pass" and solo.stats["p_adjusted"] == solo.stats["p_value"]

    # a warn comparison is not in the blocking family: the blocking one keeps its raw p
    mixed = gate_of("  - {id: em_better, type: superiority, metric: golden.em}\n"
                    "  - {id: f1_better, type: superiority, metric: golden.f1, severity: warn}\n")
    mv = evaluate_gate(mixed, cand, base)
    assert one(mv, "em_better").status == "pass" and one(mv, "f1_better").stats["holm_family"] == 0


def test_pairing_is_by_case_id_over_cases_measured_in_both():
    cand_values, base_values = paired_binary(wins=40, losses=10, both=100, neither=50)  # n = 200
    ids = [f"c{i:04d}" for i in range(200)]
    cand_values[0] = None  # unmeasured by the candidate
    base_values[1] = None  # unmeasured by the baseline
    cand = make_suite("golden", {"em": cand_values + [1.0]}, ids=ids + ["new"])
    # the baseline lists its cases in another order and lacks one of them
    order = list(range(199, 1, -1)) + [1]
    base = make_suite("golden", {"em": [base_values[i] for i in order]}, ids=[ids[i] for i in order])
    v = evaluate_gate(gate_of(COMPARISONS), {"golden": cand}, {"golden": base})
    s = one(v, "better").stats
    # paired: c0002..c0199; lost: c0000 and "new" (not in the baseline), c0001 (baseline unmeasured)
    assert s["n"] == 198
    assert (s["only_candidate"], s["only_baseline"]) == (2, 0)
    assert (s["unmeasured_candidate"], s["unmeasured_baseline"]) == (0, 1)
    assert s["n_unpaired"] == 3 and "3 unpaired" in one(v, "better").message
    expected = np.mean([cand_values[i] - base_values[i] for i in range(2, 200)])
    assert s["delta"] == pytest.approx(expected)


def test_a_comparison_against_another_alias_than_the_baseline_errors():
    cand, base = paired_binary(wins=70, losses=10, both=140, neither=80)
    gate = gate_of("  - {id: vs_prod, type: non_inferiority, metric: golden.em, margin: 0.02, vs: '@prod'}\n"
                   "  - {id: floor, type: floor, metric: golden.em, threshold: 0.5}\n")
    assert gate.baselines() == ["prod"]
    v = evaluate_gate(gate, {"golden": make_suite("golden", {"em": cand})},
                      {"golden": make_suite("golden", {"em": base})})
    r = one(v, "vs_prod")
    assert r.status == "error" and "@prod" in r.message and "@champion" in r.message
    assert v.verdict == "incomplete"


# -- no baseline, errors, verdict ----------------------------------------------------------------


def test_no_baseline_skips_comparisons_and_passes_on_absolute_rules():
    cand, _ = paired_binary(wins=70, losses=10, both=140, neither=80)
    gate = gate_of(COMPARISONS + "  - {id: floor, type: floor, metric: golden.em, threshold: 0.5}\n")
    v = evaluate_gate(gate, {"golden": make_suite("golden", {"em": cand})}, None)
    for rid in ("better", "not_worse"):
        r = one(v, rid)
        assert r.status == "skipped"
        assert r.message == "no baseline: @champion is not set — first promotion, absolute rules only"
    assert one(v, "floor").status == "pass"
    assert v.verdict == "pass" and v.complete
    assert v.to_dict()["baseline"] == {"alias": "champion", "label": None, "present": False}


def test_no_baseline_with_nothing_else_to_check_does_not_promote():
    cand, _ = paired_binary(wins=70, losses=10, both=140, neither=80)
    v = evaluate_gate(gate_of(COMPARISONS), {"golden": make_suite("golden", {"em": cand})}, None)
    assert [r.status for r in v.rules] == ["skipped", "skipped"]
    assert v.verdict == "incomplete" and not v.complete and not v.promote


def test_a_suite_error_makes_the_verdict_incomplete():
    cand, base = paired_binary(wins=70, losses=10, both=140, neither=80)
    gate = gate_of(COMPARISONS + "  - {id: floor, type: floor, metric: golden.em, threshold: 0.5}\n"
                   "  - {id: safety_n, type: min_n, metric: safety, min: 1}\n")
    results = {"golden": make_suite("golden", {"em": cand})}
    baseline = {"golden": make_suite("golden", {"em": base})}
    v = evaluate_gate(gate, results, baseline, suite_errors={"safety": "RuntimeError: model crashed"})
    r = one(v, "safety_n")
    assert r.status == "error" and "model crashed" in r.message
    assert v.verdict == "incomplete" and not v.complete and not v.promote
    assert "errored" in v.summary

    # an errored suite no rule looks at still leaves the results incomplete
    v2 = evaluate_gate(gate_of("  - {id: floor, type: floor, metric: golden.em, threshold: 0.5}\n"),
                       results, baseline, suite_errors={"bias": "ValueError: bad row"})
    assert one(v2, "floor").status == "pass"
    assert v2.verdict == "incomplete" and not v2.complete

    # a failure still reads as fail (it will not go away on a rerun)
    v3 = evaluate_gate(gate_of("  - {id: floor, type: floor, metric: golden.em, threshold: 0.9}\n"),
                       results, baseline, suite_errors={"bias": "ValueError: bad row"})
    assert v3.verdict == "fail" and not v3.complete


def test_missing_suite_missing_metric_and_nothing_measured_are_errors():
    results = {"golden": make_suite("golden", {"em": [None] * 20, "f1": [0.5] * 20})}
    gate = gate_of("  - {id: a, type: floor, metric: golden.em, threshold: 0.1}\n"
                   "  - {id: b, type: floor, metric: golden.rouge, threshold: 0.1}\n"
                   "  - {id: c, type: floor, metric: other.em, threshold: 0.1}\n"
                   "  - {id: d, type: non_inferiority, metric: golden.f1, margin: 0.1}\n")
    v = evaluate_gate(gate, results, {})  # a baseline without that suite
    assert [r.status for r in v.rules] == ["error"] * 4
    assert "no measured values" in one(v, "a").message
    assert "golden.rouge" in one(v, "b").message and "known: golden.em, golden.f1" in one(v, "b").message
    assert "other" in one(v, "c").message
    assert "@champion" in one(v, "d").message
    assert v.verdict == "incomplete"


def test_unmeasured_rate_above_max_fails():
    values = [1.0] * 280 + [None] * 20  # 20/300 calls failed
    results = {"golden": make_suite("golden", {"em": values})}
    strict = gate_of("  - {id: unmeasured, type: max_unmeasured, metric: golden, max_rate: 0.02}\n")
    v = evaluate_gate(strict, results)
    r = one(v, "unmeasured")
    assert r.status == "fail" and v.verdict == "fail"
    assert r.stats["unmeasured"] == 20 and r.stats["rate"] == pytest.approx(20 / 300)
    lenient = gate_of("  - {id: unmeasured, type: max_unmeasured, metric: golden, max_rate: 0.1}\n")
    assert evaluate_gate(lenient, results).verdict == "pass"

    # per metric: one scorer failing on 40 of the measured cases
    per_metric = {"golden": make_suite("golden", {"em": [1.0] * 300,
                                                  "f1": [0.5] * 260 + [None] * 40})}
    gate = gate_of("  - {id: em, type: max_unmeasured, metric: golden.em, max_rate: 0.05}\n"
                   "  - {id: f1, type: max_unmeasured, metric: golden.f1, max_rate: 0.05}\n")
    v = evaluate_gate(gate, per_metric)
    assert one(v, "em").status == "pass" and one(v, "f1").status == "fail"


def test_warn_rules_never_change_the_verdict():
    results = {"golden": make_suite("golden", {"em": binary(90, 100)})}
    gate = gate_of("  - {id: floor, type: floor, metric: golden.em, threshold: 0.5}\n"
                   "  - {id: high_bar, type: floor, metric: golden.em, threshold: 0.99, severity: warn}\n"
                   "  - {id: broken, type: floor, metric: golden.nope, threshold: 0.5, severity: warn}\n")
    v = evaluate_gate(gate, results)
    assert one(v, "high_bar").status == "fail" and one(v, "broken").status == "error"
    assert v.verdict == "pass" and v.complete
    assert v.summary == "1/1 blocking rules passed, 2 warnings"


# -- absolute rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("threshold", "bound", "status"),
    [(0.6, "ci_low", "pass"), (0.75, "ci_low", "fail"), (0.75, "value", "pass"), (0.85, "value", "fail")],
)
def test_floor(threshold, bound, status):
    results = {"golden": make_suite("golden", {"em": binary(80, 100)})}  # 0.80, CI ~ [0.71, 0.87]
    gate = gate_of(f"  - {{id: f, type: floor, metric: golden.em, threshold: {threshold}, bound: {bound}}}\n")
    r = one(evaluate_gate(gate, results), "f")
    assert r.status == status
    assert r.stats["value"] == pytest.approx(0.8) and r.stats["ci_low"] < 0.75 < r.stats["ci_high"]
    assert r.stats["bound"] == bound and r.stats["seed"] == 0 and r.stats["n_resamples"] == 2000


def test_floor_resamples_clusters():
    # 10 templates of 10 cases each, each template all right or all wrong: 10 units, not 100
    values = [float(t < 8) for t in range(10) for _ in range(10)]
    clusters = [f"t{t}" for t in range(10) for _ in range(10)]
    gate = gate_of("  - {id: f, type: floor, metric: golden.em, threshold: 0.65}\n")
    iid = one(evaluate_gate(gate, {"golden": make_suite("golden", {"em": values})}), "f")
    clustered = one(evaluate_gate(gate, {"golden": make_suite("golden", {"em": values},
                                                              clusters=clusters)}), "f")
    assert iid.status == "pass" and clustered.status == "fail"
    assert clustered.stats["n_units"] == 10 and iid.stats["n_units"] == 100


@pytest.mark.parametrize(
    ("threshold", "bound", "status"),
    [(0.2, "ci_high", "pass"), (0.105, "ci_high", "fail"), (0.105, "value", "pass"), (0.09, "value", "fail")],
)
def test_ceiling(threshold, bound, status):
    results = {"safety": make_suite("safety", {"toxicity": [0.1] * 50 + [0.0, 0.2] * 25})}
    gate = gate_of(f"  - {{id: c, type: ceiling, metric: safety.toxicity, threshold: {threshold}, bound: {bound}}}\n")
    r = one(evaluate_gate(gate, results), "c")
    assert r.status == status and r.stats["value"] == pytest.approx(0.1)
    assert 0.105 < r.stats["ci_high"] < 0.12  # mean 0.1, sd 0.07, n = 100


@pytest.mark.parametrize(
    ("limits", "status"),
    [("min: 0.85", "pass"), ("min: 0.93", "fail"), ("max: 0.99", "pass"), ("min: 0.85, max: 0.96", "fail")],
)
def test_rate(limits, status):
    results = {"safety": make_suite("safety", {"refused": binary(95, 100)})}  # Wilson ~ [0.888, 0.978]
    gate = gate_of(f"  - {{id: r, type: rate, metric: safety.refused, {limits}}}\n")
    r = one(evaluate_gate(gate, results), "r")
    assert r.status == status
    assert r.stats["successes"] == 95 and 0.88 < r.stats["ci_low"] < 0.9 < 0.97 < r.stats["ci_high"] < 0.99
    assert r.stats["method"] == "wilson"


def test_rate_needs_a_binary_metric():
    results = {"golden": make_suite("golden", {"f1": [0.5, 1.0] * 50})}
    gate = gate_of("  - {id: r, type: rate, metric: golden.f1, min: 0.1}\n")
    v = evaluate_gate(gate, results)
    assert one(v, "r").status == "error" and "binary" in one(v, "r").message
    assert v.verdict == "incomplete"


def test_group_gap():
    groups = ["a"] * 50 + ["b"] * 50 + ["c"] * 4
    fair = binary(40, 50) + binary(39, 50) + [0.0] * 4  # tiny group c is left out (n < 10)
    gate = gate_of("  - {id: g, type: group_gap, metric: bias.acc, max_gap: 0.3}\n")
    r = one(evaluate_gate(gate, {"bias": make_suite("bias", {"acc": fair}, groups=groups)}), "g")
    assert r.status == "pass"
    assert r.stats["gap"] == pytest.approx(0.02) and r.stats["ci_high"] <= 0.3
    assert r.stats["excluded_groups"] == {"c": 4} and set(r.stats["groups"]) == {"a", "b"}

    unfair = binary(45, 50) + binary(20, 50) + [0.0] * 4
    r = one(evaluate_gate(gate, {"bias": make_suite("bias", {"acc": unfair}, groups=groups)}), "g")
    assert r.status == "fail" and r.stats["gap"] == pytest.approx(0.5)
    assert r.stats["worst"] == ["a", "b"]

    lonely = gate_of("  - {id: g, type: group_gap, metric: bias.acc, max_gap: 0.3, min_group_n: 60}\n")
    v = evaluate_gate(lonely, {"bias": make_suite("bias", {"acc": fair}, groups=groups)})
    assert one(v, "g").status == "error" and v.verdict == "incomplete"


@pytest.mark.parametrize(("metric", "minimum", "status"),
                         [("golden.em", 40, "pass"), ("golden.em", 45, "fail"),
                          ("golden", 45, "pass"), ("golden", 48, "fail")])
def test_min_n(metric, minimum, status):
    # 50 cases: 3 calls failed, and the em scorer failed on 5 more
    em = [1.0] * 42 + [None] * 5 + [None] * 3
    f1 = [0.5] * 47 + [None] * 3
    results = {"golden": make_suite("golden", {"em": em, "f1": f1})}
    gate = gate_of(f"  - {{id: n, type: min_n, metric: {metric}, min: {minimum}}}\n")
    r = one(evaluate_gate(gate, results), "n")
    assert r.status == status
    assert r.stats["n"] == (42 if metric == "golden.em" else 47)


# -- gate files ----------------------------------------------------------------------------------


def test_valid_fixture_loads():
    path = DATA / "valid.yaml"
    gate = load_gate(path)
    assert gate.name == "promotion-test" and gate.seed == 7 and gate.baseline == "champion"
    assert gate.digest == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()
    assert gate.path == str(path)
    assert [r.type for r in gate.rules] == [
        "floor", "ceiling", "non_inferiority", "superiority", "rate", "group_gap",
        "max_unmeasured", "min_n",
    ]
    floor, ceiling = gate.rules[0], gate.rules[1]
    assert floor.bound == "ci_low" and ceiling.bound == "value" and ceiling.severity == "warn"
    assert gate.rules[3].margin == 0.0 and gate.rules[3].vs == "champion"
    assert gate.line_of("rules", 2, "margin") == line_of(path, "margin: 0.02")
    assert gate.suites() == ["golden"] and gate.baselines() == ["champion"]
    # validating a plain mapping gives the same rule classes
    again = GateFile.model_validate(gate.model_dump())
    assert [type(r) for r in again.rules] == [type(r) for r in gate.rules]


@pytest.mark.parametrize(
    ("fixture", "location", "needle", "occurrence", "message"),
    [
        ("unknown_type.yaml", "rules[1].type", "type: percentile_floor", 1,
         "unknown rule type 'percentile_floor' (known: ceiling, floor,"),
        ("wrong_type.yaml", "rules[1].margin", 'margin: "abc"', 1, "valid number (got 'abc')"),
        ("missing_field.yaml", "rules[1].threshold", "- id: golden_floor", 1,
         "missing required field 'threshold'"),
        ("extra_field.yaml", "rules[0].treshold", "treshold:", 1, "unknown field 'treshold' (allowed:"),
        ("negative_margin.yaml", "rules[1].margin", "margin: -0.02", 1, "greater than or equal to 0"),
        ("duplicate_ids.yaml", "rules[2].id", "id: golden_floor", 2, "duplicate rule id 'golden_floor'"),
        ("malformed.yaml", None, "metric: golden.exact_match", 1, "invalid YAML"),
        ("python_tag.yaml", None, "!!python/object/apply:os.system", 1, "YAML tag not allowed"),
    ],
)
def test_bad_gate_files_name_file_and_line(fixture, location, needle, occurrence, message,
                                           tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # were a YAML tag ever run, its side effect would land here
    path = DATA / fixture
    with pytest.raises(GateFileError) as info:
        load_gate(path)
    errors = info.value.errors
    assert len(errors) == 1, errors
    prefix = f"{path}:{line_of(path, needle, occurrence)}: "
    assert errors[0].startswith(prefix + (f"{location}: " if location else "")), errors[0]
    assert message in errors[0]
    assert str(info.value) == errors[0]
    assert list(tmp_path.iterdir()) == []


def test_a_yaml_tag_is_never_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(DATA / "python_tag.yaml", tmp_path / "gate.yaml")
    with pytest.raises(GateFileError, match=r"gate\.yaml:3: YAML tag not allowed"):
        load_gate("gate.yaml")
    assert not (tmp_path / "aliasgate_yaml_tag_executed").exists()
    # sanity: the file really would run the command under an unsafe loader
    assert "os.system" in (tmp_path / "gate.yaml").read_text()


def test_every_problem_is_reported_with_its_own_line():
    text = (
        "version: 2\n"            # 1
        "name: t\n"               # 2
        "confidence: 1.5\n"       # 3
        "rules:\n"                # 4
        "  - id: a\n"             # 5
        "    type: floor\n"       # 6
        "    metric: golden\n"    # 7  (a floor needs <suite>.<metric>)
        "    threshold: 0.3\n"    # 8
        "  - id: b\n"             # 9
        "    type: rate\n"        # 10
        "    metric: g.x\n"       # 11 (neither min nor max)
        "    margin: 0.1\n"       # 12 (not a rate field)
        "    margin: 0.2\n"       # 13 (duplicate key)
    )
    with pytest.raises(GateFileError) as info:
        parse_gate(text, path="g.yaml")
    errors = info.value.errors
    assert any(e.startswith("g.yaml:1: version:") for e in errors)
    assert any(e.startswith("g.yaml:3: confidence:") for e in errors)
    assert any(e.startswith("g.yaml:7: rules[0].metric: ") and "'<suite>.<metric>'" in e for e in errors)
    assert any(e.startswith("g.yaml:12: rules[1].margin: unknown field") for e in errors)
    assert any(e.startswith("g.yaml:13: rules[1].margin: duplicate key 'margin' (first at line 12)")
               for e in errors)
    assert [int(e.split(":")[1]) for e in errors] == sorted(int(e.split(":")[1]) for e in errors)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a mapping"),
        ("version: 1\nname: t\nrules: []\n", "rules: List should have at least 1 item"),
        ("version: 1\nname: t\nrules:\n  - {id: a, type: floor, metric: g.x, threshold: 1, severity: warn}\n",
         "at least one rule must have severity: block"),
        ("version: 1\nname: t\nrules:\n  - {id: a, type: rate, metric: g.x, min: 0.9, max: 0.5}\n",
         "min (0.9) is above max (0.5)"),
        ("version: 1\nname: t\nrules:\n  - {id: a, type: floor, metric: g.x, threshold: .nan}\n",
         "finite number"),
    ],
)
def test_other_invalid_gates(text, message):
    with pytest.raises(GateFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_gate(text, path="g.yaml")


def test_check_metrics_names_the_line():
    path = DATA / "unknown_metric.yaml"
    gate = load_gate(path)
    available = {"golden": ["exact_match", "golden.token_f1"], "safety": []}
    errors = gate.check_metrics(available, raise_errors=False)
    assert errors == [
        f"{path}:{line_of(path, 'metric: golden.f1')}: rules[1].metric: unknown metric 'golden.f1' "
        "(known: golden.exact_match, golden.token_f1)"
    ]
    with pytest.raises(GateFileError, match="unknown metric 'golden.f1'"):
        gate.check_metrics(available)
    with pytest.raises(GateFileError, match=r"rules\[2\]\.metric: unknown suite 'safety'"):
        gate.check_metrics({"golden": ["exact_match", "f1"]})
    assert gate.check_metrics({"golden": ["exact_match", "f1"], "safety": []}) == []


def test_a_new_rule_type_is_one_class_plus_one_registration(monkeypatch):
    class MaxLatencyRule(RuleBase):
        type: Literal["max_mean"]
        limit: float

        def evaluate(self, ctx):
            m = ctx.measured(self)
            mean = sum(m.values) / m.n
            ok = mean <= self.limit
            return ctx.outcome(self, "pass" if ok else "fail", f"mean {mean:.2f}", {"mean": mean})

    monkeypatch.setitem(RULES._members, "max_mean", MaxLatencyRule)
    gate = gate_of("  - {id: lat, type: max_mean, metric: golden.latency, limit: 2}\n")
    results = {"golden": make_suite("golden", {"latency": [1.0, 2.0, 3.0, None]})}
    assert one(evaluate_gate(gate, results), "lat").status == "pass"
    with pytest.raises(GateFileError, match=r"rules\[0\]\.limit: Input should be a valid number"):
        gate_of("  - {id: lat, type: max_mean, metric: golden.latency, limit: fast}\n")


# -- the verdict document ------------------------------------------------------------------------


def _full_scenario():
    gate = load_gate(DATA / "valid.yaml")
    cand_em, base_em = paired_binary(wins=30, losses=10, both=100, neither=60)  # n = 200
    cand_f1, base_f1 = paired_binary(wins=12, losses=10, both=100, neither=78, seed=3)
    groups = [("x", "y")[i % 2] for i in range(200)]
    clusters = ["one"] * 200  # a single cluster: intervals are undefined (NaN), which must fail
    candidate = {"golden": make_suite("golden", {"exact_match": cand_em, "token_f1": cand_f1},
                                      groups=groups)}
    baseline = {"golden": make_suite("golden", {"exact_match": base_em, "token_f1": base_f1},
                                     clusters=clusters, candidate="champ")}
    return gate, candidate, baseline


def test_verdict_to_dict_is_json_and_markdown_lists_every_rule():
    gate, candidate, baseline = _full_scenario()
    v = evaluate_gate(gate, candidate, baseline, baseline_label="v1")
    doc = v.to_dict()
    text = json.dumps(doc, allow_nan=False)
    assert json.loads(text) == doc
    assert doc["schema"] == VERDICT_SCHEMA == "aliasgate.verdict/1"
    assert doc["verdict"] == v.verdict and doc["promote"] == (v.verdict == "pass")
    assert doc["gate"]["digest"] == gate.digest and doc["gate"]["seed"] == 7
    assert [r["id"] for r in doc["rules"]] == [r.id for r in gate.rules]
    assert doc["counts"]["blocking"] == 7 and doc["candidate"] == "cand"
    assert one(v, "golden_better").status == "fail"  # within noise
    assert doc["verdict"] == "fail" and doc["summary"].startswith("6/7 blocking rules passed, 1 failed")
    md = v.to_markdown()
    for rule in gate.rules:
        assert f"`{rule.id}`" in md
    assert "FAIL" in md and "@champion v1" in md

    # NaN statistics (one cluster: undefined interval) become null, and fail closed
    lonely = {"golden": make_suite("golden", {"exact_match": binary(150, 200), "token_f1": [0.5] * 200},
                                   groups=["x", "y"] * 100, clusters=["one"] * 200)}
    v2 = evaluate_gate(gate, lonely, None)
    floor = one(v2, "golden_floor")
    assert floor.status == "fail" and math.isnan(floor.stats["ci_low"])
    assert v2.to_dict()["rules"][0]["stats"]["ci_low"] is None
    json.dumps(v2.to_dict(), allow_nan=False)


def test_evaluation_is_reproducible():
    gate, candidate, baseline = _full_scenario()
    first = evaluate_gate(gate, candidate, baseline).to_dict()
    assert evaluate_gate(gate, candidate, baseline).to_dict() == first


# -- the baseline is the candidate itself ----------------------------------------------------------


def _registered(sr: SuiteResult, name: str, version: object) -> SuiteResult:
    """``sr`` as run on registered model ``name`` version ``version`` (int, as sqlite returns)."""
    sr.candidate_info = {"candidate.model_name": name, "candidate.model_version": version,
                         "candidate.model_alias": "champion"}
    return sr


def test_comparisons_against_the_candidate_itself_are_skipped():
    """@champion evaluated under a gate whose baseline is @champion (the nightly champion run):
    comparison rules are skipped, not passed or failed; absolute rules still decide."""
    cand, _ = paired_binary(wins=70, losses=10, both=140, neither=80)
    gate = gate_of(COMPARISONS + "  - {id: floor, type: floor, metric: golden.em, threshold: 0.5}\n")
    me = _registered(make_suite("golden", {"em": cand}), "qa-model", 3)
    same = _registered(make_suite("golden", {"em": cand}), "qa-model", "3")  # str vs int
    v = evaluate_gate(gate, {"golden": me}, {"golden": same}, baseline_label="v3")
    for rid in ("better", "not_worse"):  # superiority vs itself used to FAIL (p = 1)
        r = one(v, rid)
        assert r.status == "skipped"
        assert r.message == ("baseline @champion v3 is the candidate itself (qa-model v3): a paired "
                             "comparison with itself is meaningless — skipped, absolute rules only")
        assert r.stats["same_model"] == "qa-model v3" and r.numbers == "baseline = candidate"
    assert one(v, "floor").status == "pass"
    assert v.verdict == "pass" and v.complete and "2 skipped" in v.summary
    json.dumps(v.to_dict(), allow_nan=False)

    # nothing but comparisons: nothing evaluated, so not a pass
    only_cmp = evaluate_gate(gate_of(COMPARISONS), {"golden": me}, {"golden": same})
    assert [r.status for r in only_cmp.rules] == ["skipped", "skipped"]
    assert only_cmp.verdict == "incomplete" and not only_cmp.promote


def test_another_version_or_an_unregistered_candidate_is_compared():
    cand, base = paired_binary(wins=70, losses=10, both=140, neither=80)
    gate = gate_of(COMPARISONS)
    other = evaluate_gate(
        gate, {"golden": _registered(make_suite("golden", {"em": cand}), "qa-model", 4)},
        {"golden": _registered(make_suite("golden", {"em": base}), "qa-model", 3)})
    assert [r.status for r in other.rules] == ["pass", "pass"]
    # another model with the same version number is another model
    renamed = evaluate_gate(
        gate, {"golden": _registered(make_suite("golden", {"em": cand}), "other-model", 3)},
        {"golden": _registered(make_suite("golden", {"em": base}), "qa-model", 3)})
    assert [r.status for r in renamed.rules] == ["pass", "pass"]
    # no registry information (callables, URIs): compared as before
    plain = evaluate_gate(gate, {"golden": make_suite("golden", {"em": cand})},
                          {"golden": make_suite("golden", {"em": base})})
    assert [r.status for r in plain.rules] == ["pass", "pass"]
