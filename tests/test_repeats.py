"""run_suite(repeats=K): K samples per case, distinct cache keys, mean scores, agreement, resume."""

from __future__ import annotations

import threading

import pytest

from aliasgate.candidates.base import Candidate, CandidateError, Generation
from aliasgate.datasets.base import Case, Dataset
from aliasgate.run.cache import ResponseCache
from aliasgate.run.runner import modal_output, run_suite
from aliasgate.run.suite import Suite


class Sampler(Candidate):
    """Answers question i with ``script[i][call number of that question]`` (cycled); may fail."""

    uri = "fake:sampler"

    def __init__(self, script: dict[str, list[str]], fail: set[tuple[str, int]] = frozenset()):
        self.script = script
        self.fail = set(fail)
        self.calls: list[str] = []
        self.seen: dict[str, int] = {}
        self.max_concurrency = 4
        self._lock = threading.Lock()

    def generate(self, messages, params):
        q = messages[-1]["content"]
        with self._lock:
            n = self.seen.get(q, 0)
            self.seen[q] = n + 1
            self.calls.append(q)
        if (q, n) in self.fail:
            raise CandidateError(f"backend failed on {q!r} call {n}")
        answers = self.script[q]
        return Generation(text=answers[n % len(answers)], completion_tokens=2, latency_s=0.01)

    def fingerprint(self) -> str:
        return "sampler-v1"


def dataset(n: int) -> Dataset:
    cases = tuple(
        Case(id=f"q{i}", input=f"question {i}?", expected=(f"answer {i}",), source=f"m:{i + 1}")
        for i in range(n)
    )
    return Dataset("mem", "mem.jsonl", "golden_qa", cases, "sha256:" + "cd" * 32)


def suite() -> Suite:
    return Suite(name="rep", dataset="mem.jsonl", scorers=("exact_match",))


SCRIPT = {
    "question 0?": ["answer 0"],                              # 3/3 right, agreement 1
    "question 1?": ["answer 1", "nope", "answer 1"],          # 2/3 right, agreement 2/3
    "question 2?": ["x", "y", "z"],                           # 0/3 right, agreement 1/3
}


def test_each_case_is_asked_k_times_and_scored_as_the_mean(tmp_path):
    cand = Sampler(SCRIPT)
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        # one call at a time: the n-th call of a question is its repeat n
        res = run_suite(suite(), dataset(3), cand, cache=cache, repeats=3, concurrency=1)
        assert len(cand.calls) == 9 and res.model_calls == 9
        assert len(cache) == 9  # distinct keys per repeat
        per_case = {c.case.id: c for c in res.cases}
        assert [per_case[f"q{i}"].scores["exact_match"].value for i in range(3)] == pytest.approx(
            [1.0, 2 / 3, 0.0])
        assert per_case["q1"].output == "answer 1" and per_case["q1"].agreement == pytest.approx(2 / 3)
        assert per_case["q2"].output == "x" and per_case["q2"].agreement == pytest.approx(1 / 3)
        assert per_case["q1"].outputs == ["answer 1", "nope", "answer 1"]
        assert res.metrics["exact_match"].value == pytest.approx((1 + 2 / 3 + 0) / 3)
        assert res.metrics["exact_match"].n == 3  # cases, not samples
        assert res.repeats == 3 and res.agreement is not None
        assert res.agreement.value == pytest.approx((1 + 2 / 3 + 1 / 3) / 3)
        row = per_case["q1"].row()
        assert row["repeats"] == 3 and row["agreement"] == pytest.approx(2 / 3)

        again = Sampler(SCRIPT)
        res2 = run_suite(suite(), dataset(3), again, cache=cache, repeats=3)
        assert again.calls == [] and res2.cache_hits == 9
        assert [c.outputs for c in res2.cases] == [c.outputs for c in res.cases]


def test_single_sample_keeps_the_old_cache_key_and_result_shape(tmp_path):
    cand = Sampler(SCRIPT)
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        res = run_suite(suite(), dataset(3), cand, cache=cache)
        key = ResponseCache.key("sampler-v1", [{"role": "user", "content": "question 1?"}],
                                cand.params)
        assert cache.get(key) is not None  # no repeat index in the key when K == 1
        assert res.repeats == 1 and res.agreement is None
        assert all(c.repeats == 1 and c.agreement is None and c.outputs is None
                   for c in res.cases)
        assert "agreement" not in res.cases[0].row()
        # K=3 keys differ from the K=1 key: three new calls per case
        more = Sampler(SCRIPT)
        run_suite(suite(), dataset(3), more, cache=cache, repeats=3)
        assert len(more.calls) == 9


def test_a_failed_repeat_makes_the_case_unmeasured_and_a_rerun_asks_only_for_it(tmp_path):
    cand = Sampler(SCRIPT, fail={("question 1?", 1)})
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        res = run_suite(suite(), dataset(3), cand, cache=cache, repeats=3, concurrency=1)
        q1 = res.cases[1]
        assert q1.status == "unmeasured" and q1.output is None
        assert "repeat 2/3 failed (1 of 3 failed)" in (q1.error or "")
        assert "backend failed" in (q1.error or "")
        assert q1.scores["exact_match"].value is None
        assert res.metrics["exact_match"].n == 2 and res.metrics["exact_match"].unmeasured == 1
        assert res.agreement is not None and res.agreement.unmeasured == 1
        assert len(cache) == 8

        rerun = Sampler(SCRIPT)
        res2 = run_suite(suite(), dataset(3), rerun, cache=cache, repeats=3)
        assert rerun.calls == ["question 1?"]
        assert res2.cases[1].status == "scored" and res2.unmeasured == 0


def test_repeats_must_be_positive():
    with pytest.raises(ValueError, match="repeats must be >= 1"):
        run_suite(suite(), dataset(1), Sampler(SCRIPT), repeats=0)


def test_modal_output_breaks_ties_by_first_occurrence():
    assert modal_output(["b", "a", "a", "b", "c"]) == ("b", 0.4)
    assert modal_output(["x"]) == ("x", 1.0)


def test_plugin_refuses_repeats_below_one(pytester: pytest.Pytester) -> None:
    pytester.makefile(".toml", pyproject="[tool.pytest.ini_options]\n")
    res = pytester.runpytest_subprocess("--repeats", "0", "-p", "no:cacheprovider")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert "--repeats must be >= 1" in res.stderr.str()


# -- gate rules on repeated runs -----------------------------------------------------------------


def _thirds(n: int) -> dict[str, list[str]]:
    """Question i: always right (i % 3 == 0), right 2 times in 3 (1), never right (2)."""
    script = {}
    for i in range(n):
        right, wrong = f"answer {i}", "nope"
        script[f"question {i}?"] = [[right], [right, wrong, right], [wrong]][i % 3]
    return script


def test_a_rate_rule_on_a_repeated_binary_metric_uses_the_cases_as_units(tmp_path):
    from aliasgate.gates import evaluate_gate, parse_gate
    from aliasgate.stats.binary import wilson_interval

    res = run_suite(suite(), dataset(60), Sampler(_thirds(60)), repeats=3, concurrency=1)
    values = sorted({c.scores["exact_match"].value for c in res.cases})
    assert values == pytest.approx([0.0, 2 / 3, 1.0])  # case values are means over the repeats

    def rate_rule(limits: str):
        gate = parse_gate("version: 1\nname: t\nn_resamples: 2000\nrules:\n"
                          f"  - {{id: r, type: rate, metric: rep.exact_match, {limits}}}\n")
        return evaluate_gate(gate, {"rep": res}).rules[0]

    r = rate_rule("min: 0.3")
    assert r.status == "pass", r.message  # it used to error: "needs a binary (0/1) metric"
    st = r.stats
    assert st["rate"] == pytest.approx(5 / 9) == pytest.approx(res.metrics["exact_match"].value)
    assert (st["successes"], st["samples"], st["repeats"], st["n"]) == (100, 180, 3, 60)
    assert st["method"].startswith("wilson_cases+bootstrap_")
    assert "mean over 60 cases" in r.message and "100/180 samples" in r.message
    # the case is the unit: at least as wide as Wilson over 60 cases, wider than Wilson over
    # 180 "independent" samples
    case_low, case_high = wilson_interval(33, 60)  # about the same share (0.55) over 60 units
    sample_low, sample_high = wilson_interval(100, 180)
    assert st["ci_low"] < sample_low and st["ci_high"] > sample_high
    assert st["ci_high"] - st["ci_low"] >= (case_high - case_low) - 0.01
    assert rate_rule("min: 0.5").status == "fail"  # 5/9 is not shown above 0.5 with n = 60
    assert rate_rule("max: 0.8").status == "pass"


def test_a_rate_rule_refuses_repeats_whose_values_are_not_binary():
    from aliasgate.gates import evaluate_gate, parse_gate

    res = run_suite(Suite(name="rep", dataset="mem.jsonl", scorers=("token_f1",)), dataset(12),
                    Sampler({f"question {i}?": [f"answer {i}", "answer"] for i in range(12)}),
                    repeats=2, concurrency=1)
    gate = parse_gate("version: 1\nname: t\nn_resamples: 2000\nrules:\n"
                      "  - {id: r, type: rate, metric: rep.token_f1, min: 0.1}\n")
    r = evaluate_gate(gate, {"rep": res}).rules[0]
    assert r.status == "error"
    assert "every repeat's value must be 0/1" in r.message
