"""The gate end to end through `pytest evals/ --gate ... --promote` on registered model versions
in a real sqlite MLflow store: known-better candidates are promoted, noise and regressions are
blocked, incomplete evaluations never promote, bad gate files touch nothing."""

from __future__ import annotations

import json
import random
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

N = 200
MODEL = "gate-e2e"
KEY = {f"What is {i} plus one?": str(i + 1) for i in range(N)}
PROMPTS = list(KEY)

GATE = textwrap.dedent("""\
    version: 1
    name: e2e
    baseline: champion
    confidence: 0.95
    seed: 7
    n_resamples: 2000
    rules:
      - id: complete
        type: max_unmeasured
        metric: qa
        max_rate: 0.02
      - id: enough-cases
        type: min_n
        metric: qa.exact_match
        min: 100
      - id: em-floor
        type: floor
        metric: qa.exact_match
        threshold: 0.4
      - id: em-not-worse
        type: non_inferiority
        metric: qa.exact_match
        margin: 0.05
      - id: em-better
        type: superiority
        metric: qa.exact_match
      - id: f1-better-warn
        type: superiority
        metric: qa.token_f1
        severity: warn
""")


def wrong_set(accuracy: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    return rng.sample(PROMPTS, round(N * (1 - accuracy)))


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gate_project")
    (root / "datasets").mkdir()
    rows = [json.dumps({"id": f"q{i:03d}", "question": q, "answers": [a], "topic": "math"})
            for i, (q, a) in enumerate(KEY.items())]
    (root / "datasets" / "qa.jsonl").write_text("\n".join(rows) + "\n")
    (root / "evals").mkdir()
    (root / "evals" / "test_qa.py").write_text(
        "from aliasgate import Suite\n"
        "qa = Suite(name='qa', dataset='datasets/qa.jsonl', scorers=('exact_match', 'token_f1'))\n"
    )
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    (root / "gate.yaml").write_text(GATE)
    return root


@pytest.fixture(scope="module")
def store(project: Path) -> Iterator[str]:
    import mlflow

    uri = f"sqlite:///{project / 'mlflow.db'}"
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("register")
    yield uri
    mlflow.set_tracking_uri(before)


def register(store: str, *, wrong: list[str] = (), fail: list[str] = ()) -> str:
    import mlflow

    model_file = Path(__file__).parent / "models" / "answer_key_model.py"
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model", python_model=str(model_file),
            model_config={"key": KEY, "wrong": list(wrong), "fail": list(fail)},
            registered_model_name=MODEL, pip_requirements=["mlflow"],
        )
    return str(info.registered_model_version)


def champion(store: str) -> str | None:
    from mlflow import MlflowClient

    try:
        return str(MlflowClient(store).get_model_version_by_alias(MODEL, "champion").version)
    except Exception:  # noqa: BLE001 - alias not set
        return None


def run_gate(pytester: pytest.Pytester, project: Path, store: str, version: str, *extra: str):
    pytester.chdir()
    return pytester.runpytest_subprocess(
        str(project / "evals"), "--rootdir", str(project), "-c", str(project / "pyproject.toml"),
        "--candidate", f"models:/{MODEL}/{version}", "--tracking-uri", store,
        "--gate", str(project / "gate.yaml"), "--no-progress", "-p", "no:cacheprovider",
        "--cache-dir", str(project / ".cache"), "--reports-dir", str(project / "reports"),
        "--verdict-json", str(pytester.path / "verdict.json"), *extra,
    )


def verdict_of(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / "verdict.json").read_text())


def test_promotion_story(pytester: pytest.Pytester, project: Path, store: str) -> None:
    # 1. first promotion: no champion, comparisons skipped, absolute rules decide
    v1 = register(store, wrong=wrong_set(0.60, seed=1))
    res = run_gate(pytester, project, store, v1, "--promote")
    res.assert_outcomes(passed=4, skipped=3)
    v = verdict_of(pytester)
    assert v["verdict"] == "pass" and v["complete"] is True
    assert "first promotion" in res.stdout.str()
    assert str(v["promotion"]["to_version"]) == v1
    assert champion(store) == v1

    # 2. a truly better candidate (0.95 vs 0.60 on the same 200 cases) is promoted
    v2 = register(store, wrong=wrong_set(0.95, seed=2))
    res = run_gate(pytester, project, store, v2, "--promote")
    res.assert_outcomes(passed=7)
    v = verdict_of(pytester)
    assert v["verdict"] == "pass"
    better = next(r for r in v["rules"] if r["id"] == "em-better")
    assert better["stats"]["delta"] > 0.2 and better["stats"]["discordant"][0] > 50
    assert champion(store) == v2

    from mlflow import MlflowClient

    client = MlflowClient(store)
    assert str(client.get_model_version_by_alias(MODEL, "previous").version) == v1
    tags = client.get_model_version(MODEL, v2).tags
    assert tags["aliasgate.verdict"] == "pass" and tags["aliasgate.gate_run_id"]

    # 3. within noise: 3 answers differ from the champion's -> "not shown better", MDE reported
    wrong2 = wrong_set(0.95, seed=2)
    noisy_wrong = wrong2[3:] + [p for p in PROMPTS if p not in wrong2][:3]
    v3 = register(store, wrong=noisy_wrong)
    res = run_gate(pytester, project, store, v3, "--promote")
    res.assert_outcomes(passed=6, failed=1)
    out = res.stdout.str()
    assert "em-better" in out and "not shown" in out.lower() and "MDE" in out
    assert verdict_of(pytester)["verdict"] == "fail"
    assert champion(store) == v2

    # 4. a regression is blocked by non-inferiority
    v4 = register(store, wrong=wrong_set(0.70, seed=4))
    res = run_gate(pytester, project, store, v4, "--promote")
    assert res.ret == 1
    rules = {r["id"]: r for r in verdict_of(pytester)["rules"]}
    assert rules["em-not-worse"]["status"] == "fail"
    assert champion(store) == v2

    # 5. a better candidate whose evaluation is incomplete (5% failed calls) never promotes
    v5 = register(store, wrong=wrong_set(0.99, seed=5), fail=PROMPTS[:10])
    res = run_gate(pytester, project, store, v5, "--promote")
    assert res.ret != 0
    v = verdict_of(pytester)
    assert v["verdict"] in ("fail", "incomplete")
    assert {r["id"]: r for r in v["rules"]}["complete"]["status"] == "fail"
    assert v["promotion"]["action"] == "refused"
    assert champion(store) == v2

    # 6. the only suite fails before any model call (a malformed dataset row): incomplete, and
    # the comparisons name that error — not "@champion is not set", which would be false
    data = project / "datasets" / "qa.jsonl"
    good = data.read_text()
    try:
        data.write_text(good + '{"id": "bad", "question": 42}\n')
        res = run_gate(pytester, project, store, v5, "--promote")
    finally:
        data.write_text(good)
    v = verdict_of(pytester)
    assert v["verdict"] == "incomplete" and "qa" in v["suite_errors"]
    assert "qa.jsonl:201" in v["suite_errors"]["qa"]
    comparisons = [r for r in v["rules"] if r["type"] in ("non_inferiority", "superiority")]
    assert comparisons and all(r["status"] == "error" and "suite 'qa' errored" in r["message"]
                               for r in comparisons), comparisons
    assert not any("not set" in r["message"] for r in v["rules"])
    assert champion(store) == v2


def test_bad_gate_file_is_usage_error_and_touches_nothing(
    pytester: pytest.Pytester, project: Path, store: str
) -> None:
    before = champion(store)
    bad = project / "bad_gate.yaml"
    bad.write_text(GATE.replace("margin: 0.05", 'margin: "abc"'))
    pytester.chdir()
    res = pytester.runpytest_subprocess(
        str(project / "evals"), "--rootdir", str(project), "-c", str(project / "pyproject.toml"),
        "--candidate", "callable:nowhere:fn", "--tracking-uri", store, "--gate", str(bad),
        "--promote", "-p", "no:cacheprovider",
    )
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    err = res.stderr.str()
    assert "bad_gate.yaml:" in err and "margin" in err
    assert champion(store) == before

    unknown = project / "unknown_metric.yaml"
    unknown.write_text(GATE.replace("metric: qa.exact_match\n    threshold", "metric: qa.f1\n    threshold"))
    res = pytester.runpytest_subprocess(
        str(project / "evals"), "--rootdir", str(project), "-c", str(project / "pyproject.toml"),
        "--candidate", "callable:nowhere:fn", "--tracking-uri", store, "--gate", str(unknown),
        "-p", "no:cacheprovider",
    )
    assert res.ret == pytest.ExitCode.USAGE_ERROR
    assert "qa.f1" in res.stderr.str()
    assert champion(store) == before
