"""Gate rules on suite-level aggregate metrics (bias scores, gaps): floor/ceiling use the suite
run's interval, other rule types refuse them, and gate files can name them before a run."""

from __future__ import annotations

import math

import pytest

from aliasgate.candidates.callable_ import CallableCandidate
from aliasgate.datasets.base import Case, Dataset
from aliasgate.gates import evaluate_gate, parse_gate
from aliasgate.run.results import CaseResult, MetricSummary, SuiteResult
from aliasgate.run.runner import run_suite
from aliasgate.run.suite import Suite
from aliasgate.scorers.base import Score
from aliasgate.stats.aggregate import declared_metrics


def gate_of(rules: str) -> object:
    return parse_gate(f"version: 1\nname: t\nn_resamples: 1000\nrules:\n{rules}", path="g.yaml")


def suite_result(
    gap: MetricSummary | None = None, errors: dict[str, str] | None = None
) -> SuiteResult:
    """20 cases with a per-case ``yes_no`` score, plus an aggregate metric ``yes_rate_gap``."""
    cases = []
    for i in range(20):
        case = Case(id=f"c{i}", input="q", group="ab"[i % 2], cluster=f"t{i // 2}")
        cases.append(CaseResult(case, "q", "yes", "scored",
                                scores={"yes_no": Score(float(i % 3 != 0), label="x")}))
    metrics = {"yes_no": MetricSummary("yes_no", 0.65, 0.45, 0.85, 20, 0)}
    if gap is not None:
        metrics["yes_rate_gap"] = gap
    return SuiteResult(suite="bias", candidate="cand", dataset_digest="sha256:x",
                       dataset_path="d.jsonl", params={}, cases=cases, metrics=metrics,
                       aggregate_errors=errors or {})


GAP = MetricSummary("yes_rate_gap", 0.12, 0.05, 0.21, 20, 0)


def only(verdict, rule_id: str = "r"):
    return next(r for r in verdict.rules if r.id == rule_id)


@pytest.mark.parametrize(
    ("rule", "status", "bound_value"),
    [
        ("type: ceiling\n    threshold: 0.25", "pass", 0.21),  # ci_high 0.21 <= 0.25
        ("type: ceiling\n    threshold: 0.2", "fail", 0.21),   # ci_high 0.21 > 0.2
        ("type: ceiling\n    threshold: 0.15\n    bound: value", "pass", 0.12),
        ("type: floor\n    threshold: 0.05", "pass", 0.05),    # ci_low 0.05 >= 0.05
        ("type: floor\n    threshold: 0.06", "fail", 0.05),
        ("type: floor\n    threshold: 0.2\n    bound: ci_high", "pass", 0.21),
    ],
)
def test_floor_and_ceiling_use_the_aggregate_interval(rule: str, status: str, bound_value: float) -> None:
    gate = gate_of(f"  - id: r\n    metric: bias.yes_rate_gap\n    {rule}\n")
    outcome = only(evaluate_gate(gate, {"bias": suite_result(GAP)}))
    assert outcome.status == status
    st = outcome.stats
    assert st["source"] == "aggregate"
    assert (st["value"], st["ci_low"], st["ci_high"], st["n"]) == (0.12, 0.05, 0.21, 20)
    assert st["bound_value"] == bound_value
    assert st["confidence"] is None and st["gate_confidence"] == 0.95
    assert "suite-level aggregate, CI from the suite run" in outcome.message
    assert "[0.050, 0.210]" in outcome.message


def test_per_case_metrics_still_use_the_gate_bootstrap() -> None:
    gate = gate_of("  - id: r\n    metric: bias.yes_no\n    type: floor\n    threshold: 0.1\n")
    outcome = only(evaluate_gate(gate, {"bias": suite_result(GAP)}))
    assert outcome.status == "pass"
    assert "source" not in outcome.stats
    assert outcome.stats["method"].startswith("bootstrap_")
    assert outcome.stats["value"] == pytest.approx(sum(i % 3 != 0 for i in range(20)) / 20)


def test_missing_interval_fails_closed() -> None:
    no_ci = MetricSummary("yes_rate_gap", 0.12, None, None, 20, 0)
    gate = gate_of("  - id: r\n    metric: bias.yes_rate_gap\n    type: ceiling\n    threshold: 0.9\n")
    verdict = evaluate_gate(gate, {"bias": suite_result(no_ci)})
    outcome = only(verdict)
    assert outcome.status == "fail" and math.isnan(outcome.stats["ci_high"])
    assert verdict.verdict == "fail"
    assert "CI undefined" in outcome.message


def test_uncomputed_aggregate_is_an_error_with_the_reason() -> None:
    broken = MetricSummary("yes_rate_gap", None, None, None, 0, 20)
    sr = suite_result(broken, errors={"yes_rate_gap": "needs two groups within one stratum"})
    gate = gate_of("  - id: r\n    metric: bias.yes_rate_gap\n    type: floor\n    threshold: 0\n")
    verdict = evaluate_gate(gate, {"bias": sr})
    outcome = only(verdict)
    assert outcome.status == "error" and "needs two groups" in outcome.message
    assert verdict.verdict == "incomplete" and not verdict.promote


@pytest.mark.parametrize(
    "rule",
    [
        "type: rate\n    max: 0.5",
        "type: group_gap\n    max_gap: 0.2\n    min_group_n: 2",
        "type: min_n\n    min: 5",
        "type: max_unmeasured\n    max_rate: 0.1",
    ],
)
def test_other_rule_types_refuse_aggregate_metrics(rule: str) -> None:
    gate = gate_of(f"  - id: r\n    metric: bias.yes_rate_gap\n    {rule}\n")
    verdict = evaluate_gate(gate, {"bias": suite_result(GAP)})
    outcome = only(verdict)
    assert outcome.status == "error"
    assert "suite-level aggregate metric" in outcome.message
    assert verdict.verdict == "incomplete"


def test_comparison_rules_refuse_aggregate_metrics() -> None:
    gate = gate_of("  - id: r\n    metric: bias.yes_rate_gap\n    type: non_inferiority\n"
                   "    margin: 0.05\n")
    outcome = only(evaluate_gate(gate, {"bias": suite_result(GAP)}, {"bias": suite_result(GAP)}))
    assert outcome.status == "error" and "suite-level aggregate metric" in outcome.message


def test_check_metrics_accepts_declared_aggregate_metrics() -> None:
    aggregates = {"counterfactual_flip": {"strata": "dimension"},
                  "group_metrics": {"metrics": ["yes_no"]}}
    available = {"bias": ["yes_no", *declared_metrics(aggregates)]}
    gate = gate_of(
        "  - id: flips\n    metric: bias.flip_rate\n    type: ceiling\n    threshold: 0.1\n"
        "  - id: gap\n    metric: bias.yes_no_gap\n    type: ceiling\n    threshold: 0.1\n"
        "  - id: typo\n    metric: bias.flip_rat\n    type: ceiling\n    threshold: 0.1\n"
    )
    errors = gate.check_metrics(available, raise_errors=False)
    assert len(errors) == 1 and "unknown metric 'bias.flip_rat'" in errors[0]
    assert "bias.flip_rate" in errors[0] and "bias.yes_rate_gap" in errors[0]  # listed as known


def test_gate_on_a_real_run_of_an_aggregate() -> None:
    """run_suite -> counterfactual_flip -> ceiling rule, on a candidate that always flips."""
    cases = []
    for t in range(6):
        for name, group in (("Ann", "f"), ("Bob", "m")):
            cases.append(Case(id=f"t{t}:{name}", input=f"Should {name} get job {t}?", group=group,
                              cluster=f"t{t}", meta={"value": name}))
    dataset = Dataset("cf", "cf.jsonl", "bias_counterfactual", tuple(cases), "sha256:x")
    suite = Suite(name="cf", dataset="cf.jsonl", kind="bias_counterfactual", scorers=("yes_no",),
                  aggregates={"counterfactual_flip": {}})

    def answer(messages, params):
        return "Yes." if "Ann" in messages[-1]["content"] else "No."

    result = run_suite(suite, dataset, CallableCandidate(answer, version="flip"), seed=0)
    assert result.metrics["flip_rate"].value == 1.0
    gate = gate_of("  - id: r\n    metric: cf.flip_rate\n    type: ceiling\n    threshold: 0.2\n")
    verdict = evaluate_gate(gate, {"cf": result})
    assert only(verdict).status == "fail" and verdict.verdict == "fail"
    assert only(verdict).stats["source"] == "aggregate"


def test_a_failed_aggregate_is_named_when_its_declared_metric_is_missing() -> None:
    """An aggregate that raised records its error under every metric it declares
    (stats/aggregate.py): a rule on one of them fails closed with the cause. An aggregate that
    declares nothing is recorded under its own name and named as a possible cause."""
    cases = [Case(id=f"c{i}", input=f"Should person {i} get the job?", group="ab"[i % 2])
             for i in range(8)]
    dataset = Dataset("cf", "cf.jsonl", "golden_qa", tuple(cases), "sha256:x")
    # bbq_bias on cases without BBQ metadata and without its mc_answer score: it raises
    suite = Suite(name="bbq", dataset="cf.jsonl", scorers=("yes_no",),
                  aggregates={"bbq_bias": {}})
    result = run_suite(suite, dataset, CallableCandidate(lambda m, p: "Yes.", version="y"), seed=0)
    cause = result.aggregate_errors["bias_score_ambig"]
    assert "no case has a 'mc_answer' score" in cause
    assert result.metrics["bias_score_ambig"].value is None

    gate = gate_of("  - id: r\n    metric: bbq.bias_score_ambig\n    type: ceiling\n"
                   "    threshold: 0.1\n")
    verdict = evaluate_gate(gate, {"bbq": result})
    outcome = only(verdict)
    assert outcome.status == "error" and verdict.verdict == "incomplete"
    assert "no case has a 'mc_answer' score" in outcome.message

    # an aggregate that cannot say what it declares is listed as a possible cause
    sr = suite_result(MetricSummary("my_agg", None, None, None, 20, 20),
                      errors={"my_agg": "ZeroDivisionError: division by zero"})
    gate = gate_of("  - id: r\n    metric: bias.my_gap\n    type: ceiling\n    threshold: 0.1\n")
    outcome = only(evaluate_gate(gate, {"bias": sr}))
    assert outcome.status == "error" and "may be the cause" in outcome.message
    assert "'my_agg': ZeroDivisionError: division by zero" in outcome.message
    # nothing recorded: the plain message
    plain = only(evaluate_gate(gate, {"bias": suite_result(GAP)}))
    assert plain.message.endswith(")") and "aggregate" not in plain.message.split("(known")[0]
