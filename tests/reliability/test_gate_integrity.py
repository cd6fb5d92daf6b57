"""The holes a hostile review found in the gate, each closed: overrides, degenerate and vacuous
evidence, a deselected suite, MLflow failing at the end of a run, empty answers."""

from __future__ import annotations

import dataclasses

import pytest

from aliasgate.gates import evaluate_gate
from aliasgate.gates.schema import GateFileError
from aliasgate.session import promotion_usage_error
from test_gates import binary, gate_of, make_suite, one


@pytest.mark.parametrize(("baseline", "limit", "refused"), [
    ("models:/m/4", None, "--baseline"), ("callable:mod:fn", None, "--baseline"),
    ("previous", None, "--baseline"), (None, 2, "--limit"), ("champion", None, None),
    ("@champion", None, None), (None, None, None),
])
def test_promotion_is_never_judged_on_an_override_or_the_first_n_cases(baseline, limit, refused):
    problem = promotion_usage_error(promote=True, baseline=baseline, promote_alias="champion",
                                    limit=limit)
    assert (problem is None) == (refused is None)
    if refused:
        assert problem.startswith(refused)
    # without --promote, any baseline may be reported against
    assert promotion_usage_error(promote=False, baseline=baseline, promote_alias="champion",
                                 limit=limit) is None


def _vs(n: int, clusters: list[str] | None = None):
    cand = {"golden": make_suite("golden", {"em": binary(n, n)}, clusters=clusters)}
    base = {"golden": make_suite("golden", {"em": binary(n, n)}, clusters=clusters,
                                 candidate="base")}
    return cand, base


def test_a_comparison_on_too_few_pairs_is_an_error_never_a_pass():
    gate = gate_of("  - {id: ni, type: non_inferiority, metric: golden.em, margin: 0.03}\n")
    cand, base = _vs(2)  # the hostile case: n = 2, CI [0, 0], MDE 0
    v = evaluate_gate(gate, cand, base)
    r = one(v, "ni")
    assert r.status == "error" and "too few to compare" in r.message and "min_pairs" in r.message
    assert v.verdict == "incomplete"
    cand, base = _vs(40, clusters=[f"t{i % 3}" for i in range(40)])  # 40 pairs, 3 clusters
    r = one(evaluate_gate(gate, cand, base), "ni")
    assert r.status == "error" and "3 clusters" in r.message
    cand, base = _vs(40)
    assert one(evaluate_gate(gate, cand, base), "ni").status == "pass"
    # the limits are the gate file's
    loose = gate_of("  - {id: ni, type: non_inferiority, metric: golden.em, margin: 0.03}\n",
                    min_pairs=2)
    assert one(evaluate_gate(loose, *_vs(2)), "ni").status != "error"


@pytest.mark.parametrize("rule", [
    "{id: v, type: floor, metric: golden.em, threshold: -1.0e+308}",
    "{id: v, type: floor, metric: golden.em, threshold: 0}",
    "{id: v, type: ceiling, metric: golden.em, threshold: 1.0e+300}",
    "{id: v, type: non_inferiority, metric: golden.em, margin: 1.0e+12}",
    "{id: v, type: non_inferiority, metric: golden.em, margin: 1}",
])
def test_vacuous_rules_are_errors_not_passes(rule):
    from aliasgate.run.results import SuiteResult  # noqa: F401 - the field under test

    results = {"golden": dataclasses.replace(make_suite("golden", {"em": binary(30, 60)}),
                                             value_ranges={"em": (0.0, 1.0)})}
    base = {"golden": dataclasses.replace(make_suite("golden", {"em": binary(30, 60)},
                                                     candidate="b"), value_ranges={"em": (0.0, 1.0)})}
    v = evaluate_gate(gate_of(f"  - {rule}\n"), results, base)
    r = one(v, "v")
    assert r.status == "error" and "vacuous rule" in r.message, r.message
    assert v.verdict == "incomplete"


@pytest.mark.parametrize("rule", [
    "{id: v, type: rate, metric: safety.refused, min: 0}",
    "{id: v, type: floor, metric: golden.em, threshold: .inf}",
    "{id: v, type: ceiling, metric: golden.em, threshold: .nan}",
    "{id: v, type: non_inferiority, metric: golden.em, margin: .inf}",
])
def test_vacuous_or_non_finite_limits_are_refused_when_the_file_is_read(rule):
    with pytest.raises(GateFileError, match=r"inline\.yaml:\d+:"):
        gate_of(f"  - {rule}\n")


def test_the_shipped_gates_have_no_vacuous_rule():
    from pathlib import Path

    from aliasgate.gates.schema import load_gate

    root = Path(__file__).resolve().parents[2] / "gates"
    for path in root.glob("*.yaml"):
        gate = load_gate(path)
        for rule in gate.rules:
            assert rule.vacuous(0.0, 1.0) is None or rule.type == "min_n", (path.name, rule.id)


def test_a_blank_cut_off_generation_is_unmeasured_a_chosen_empty_answer_is_scored():
    from aliasgate.candidates.base import Generation
    from aliasgate.run.runner import no_answer

    assert no_answer(Generation(text="", finish_reason="length"))
    assert no_answer(Generation(text="  \n", finish_reason="length"))
    assert no_answer(Generation(text="", finish_reason=None))
    assert no_answer(Generation(text="", finish_reason="content_filter"))
    assert no_answer(Generation(text="", finish_reason="stop")) is None
    assert no_answer(Generation(text="Paris", finish_reason="length")) is None


def test_empty_answers_never_score_zero(tmp_path):
    from aliasgate.candidates.base import Generation
    from aliasgate.candidates.callable_ import CallableCandidate
    from aliasgate.datasets.base import Case, Dataset
    from aliasgate.run.runner import run_suite
    from aliasgate.run.suite import Suite

    def cut_off(messages, params):
        return Generation(text="", finish_reason="length", completion_tokens=32)

    cases = tuple(Case(id=f"q{i}", input=f"question {i}?", expected=("a",)) for i in range(30))
    ds = Dataset("d", "d.jsonl", "golden_qa", cases, "sha256:x")
    result = run_suite(Suite(name="g", dataset="d.jsonl", scorers=("exact_match",)), ds,
                       CallableCandidate(cut_off))
    assert all(r.status == "unmeasured" for r in result.cases)
    assert "finish_reason='length'" in result.cases[0].error
    assert result.metrics["exact_match"].n == 0


@pytest.mark.parametrize("args", [
    ("--baseline", "models:/m/4"), ("--baseline", "callable:fake:fn"), ("--limit", "2"),
])
def test_pytest_refuses_to_promote_on_an_override_before_any_model_call(pytester, args) -> None:
    pytester.makefile(".toml", pyproject="[tool.pytest.ini_options]\n")
    pytester.makefile(".yaml", gate="version: 1\nname: g\nrules:\n"
                      "  - {id: ni, type: non_inferiority, metric: qa.em, margin: 0.1}\n")
    (pytester.path / "evals").mkdir()
    (pytester.path / "evals" / "test_qa.py").write_text(
        "from aliasgate import Suite\nqa = Suite(name='qa', dataset='qa.jsonl')\n")
    res = pytester.runpytest_subprocess("evals", "--candidate", "models:/m/5", "--gate",
                                        "gate.yaml", "--promote", *args, "--no-mlflow")
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    err = res.stderr.str()
    assert "--promote" in err and args[0] in err
    assert not (pytester.path / "reports").exists()  # nothing ran


FAKE = '''
def answer(messages, params):
    return "Paris"
'''


@pytest.mark.parametrize(("rules", "verdict"), [
    ("  - {id: f, type: floor, metric: qa.exact_match, threshold: 0.5}\n", "pass"),
    ("  - {id: f, type: floor, metric: qa.exact_match, threshold: 0.5}\n"
     "  - {id: ni, type: non_inferiority, metric: qa.exact_match, margin: 0.1}\n", "incomplete"),
])
def test_an_unregistered_candidate_is_gated_and_its_calls_counted(pytester, rules, verdict):
    import json

    pytester.makepyfile(fake_model=FAKE)
    pytester.makefile(".toml", pyproject="[tool.pytest.ini_options]\n")
    pytester.makefile(".yaml", gate="version: 1\nname: g\nrules:\n" + rules)
    rows = [{"id": f"q{i}", "question": f"capital {i}?", "answers": ["Paris"], "topic": "t"}
            for i in range(30)]
    (pytester.path / "qa.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    (pytester.path / "evals").mkdir()
    (pytester.path / "evals" / "test_qa.py").write_text(
        "from aliasgate import Suite\nqa = Suite(name='qa', dataset='qa.jsonl', "
        "scorers=('exact_match',))\n")
    pytester.runpytest_subprocess("evals", "--candidate", "callable:fake_model:answer", "--gate",
                                  "gate.yaml", "--no-mlflow", "--no-progress",
                                  "--verdict-json", "v.json")
    v = json.loads((pytester.path / "v.json").read_text())
    assert v["verdict"] == verdict
    results = json.loads(next((pytester.path / "reports").glob("eval-*/results.json")).read_text())
    assert results["model_calls"] == 30  # the candidate's calls are reported, whatever failed after


def test_allow_models_refuses_other_registered_models_before_loading_them():
    gate = gate_of("  - {id: f, type: floor, metric: qa.em, threshold: 0.5}\n",
                   allow_models='["aliasgate-*", prod-model]')
    assert gate.allows("models:/aliasgate-demo@challenger") and gate.allows("models:/prod-model/3")
    assert not gate.allows("models:/evil/1") and not gate.allows("runs:/abc/model")
    assert gate.allows("callable:mod:fn")  # not from the registry: nothing of theirs runs
    assert gate_of("  - {id: f, type: floor, metric: qa.em, threshold: 0.5}\n").allows(
        "models:/anything/1")


def test_a_refused_model_is_never_loaded(tmp_path):
    from aliasgate.session import EvalOptions, EvalSession

    gate = tmp_path / "gate.yaml"
    gate.write_text("version: 1\nname: g\nallow_models: [trusted]\nrules:\n"
                    "  - {id: f, type: floor, metric: qa.em, threshold: 0.5}\n")
    session = EvalSession(EvalOptions(candidate="models:/evil/1", gate=gate, log_to_mlflow=False,
                                      root=tmp_path))
    with pytest.raises(Exception, match="allow_models"):
        session.candidate()


def test_case_ids_are_nfc_and_refuse_invisible_characters(tmp_path):
    import json

    from aliasgate.datasets import DatasetError, load_dataset

    def write(ids):
        path = tmp_path / "d.jsonl"
        path.write_text("\n".join(json.dumps({"id": i, "question": "q?", "answers": ["a"],
                                              "topic": "t"}) for i in ids) + "\n")
        return path

    with pytest.raises(DatasetError, match=r"d\.jsonl:2: duplicate id"):
        load_dataset(write(["caf\u00e9", "cafe\u0301"]))  # the same id once normalised
    for bad in ("a\u200bb", "x\x1b[31m", "rtl\u202e"):
        with pytest.raises(DatasetError, match=r"d\.jsonl:1: field 'id': .*U\+"):
            load_dataset(write([bad]))
    assert load_dataset(write(["cafe\u0301"])).cases[0].id == "caf\u00e9"


def test_no_temp_folder_is_left_by_a_cli_run(tmp_path, monkeypatch):
    import tempfile

    from aliasgate import cli

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr("pytest.main", lambda argv: 5)
    cli.run_evals("evals", "callable:m:f", gate="gates/demo.yaml")
    assert not list(tmp_path.glob("aliasgate-*"))


def test_a_comparison_whose_suite_did_not_run_never_claims_a_first_promotion(tmp_path,
                                                                          monkeypatch):
    from mlflow import MlflowClient

    from aliasgate.defaults import ensure_store
    from aliasgate.session import EvalOptions, EvalSession

    uri = ensure_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    client = MlflowClient(uri)
    client.create_registered_model("m")
    for _ in range(2):
        client.create_model_version("m", source=str(tmp_path))
    client.set_registered_model_alias("m", "champion", "1")
    gate = tmp_path / "gate.yaml"
    gate.write_text("version: 1\nname: g\nrules:\n"
                    "  - {id: ni, type: non_inferiority, metric: qa.em, margin: 0.1}\n")
    session = EvalSession(EvalOptions(candidate="models:/m/2", gate=gate, tracking_uri=uri,
                                      log_to_mlflow=False, root=tmp_path))
    v = session.verdict()  # the suite was deselected: nothing ran
    r = one(v, "ni")
    assert r.status == "error" and "first promotion" not in r.message
    assert v.verdict == "incomplete"
