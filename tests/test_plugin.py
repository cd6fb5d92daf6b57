"""The pytest plugin end to end: `pytest evals/` in a scratch project, against a real sqlite MLflow
store, with a plain-callable candidate (the embedded model is covered by test_e2e_local.py)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

QUESTIONS = [
    ("q1", "What is the capital of France?", ["Paris"]),
    ("q2", "How many legs does a spider have?", ["8", "eight"]),
    ("q3", "What color is the sky on a clear day?", ["blue"]),
    ("q4", "Who wrote Hamlet?", ["William Shakespeare", "Shakespeare"]),
]

FAKE_MODEL = '''
import os
ANSWERS = {
    "What is the capital of France?": "Paris",
    "How many legs does a spider have?": "A spider has eight legs.",
    "What color is the sky on a clear day?": "green",
}
def answer(messages, params):
    with open(os.environ["FAKE_MODEL_LOG"], "a") as fh:
        fh.write("call\\n")
    q = messages[-1]["content"]
    if q not in ANSWERS:
        raise RuntimeError("model server exploded on: " + q)
    return ANSWERS[q]

def broken(messages, params):
    raise ConnectionError("connection refused")
'''


def _project(pytester: pytest.Pytester, rows: list[str] | None = None) -> Path:
    if rows is None:
        rows = [
            json.dumps({"id": i, "question": q, "answers": a, "topic": "t"}) for i, q, a in QUESTIONS
        ]
    pytester.makepyfile(fake_model=FAKE_MODEL)
    pytester.makefile(".toml", pyproject="[tool.pytest.ini_options]\n")
    (pytester.path / "datasets").mkdir(exist_ok=True)
    (pytester.path / "datasets" / "qa.jsonl").write_text("\n".join(rows) + "\n")
    (pytester.path / "evals").mkdir(exist_ok=True)
    (pytester.path / "evals" / "test_qa.py").write_text(textwrap.dedent('''
        from aliasgate import Suite
        qa = Suite(name="qa", dataset="datasets/qa.jsonl",
                   scorers=("exact_match", "token_f1", "contains"))
    '''))
    return pytester.path


def _run(pytester: pytest.Pytester, *args: str, candidate: str = "callable:fake_model:answer"):
    db = pytester.path / "mlflow.db"
    return pytester.runpytest_subprocess(
        "evals", "--candidate", candidate, "--tracking-uri", f"sqlite:///{db}",
        "--no-progress", "-p", "no:cacheprovider", *args,
    )


@pytest.fixture
def calls_log(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> Path:
    log = pytester.path / "calls.log"
    monkeypatch.setenv("FAKE_MODEL_LOG", str(log))
    return log


def test_suite_runs_logs_to_mlflow_and_caches(pytester, calls_log):
    _project(pytester)
    res = _run(pytester)
    res.assert_outcomes(passed=1)
    out = res.stdout.str()
    assert "aliasgate summary" in out
    assert "exact_match" in out and "token_f1" in out
    # q4 raised: unmeasured, not scored 0
    assert len(calls_log.read_text().splitlines()) == 4
    assert "model calls: 4, served from cache: 0" in out

    from mlflow import MlflowClient

    uri = f"sqlite:///{pytester.path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("aliasgate")
    runs = client.search_runs([exp.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and len(children) == 1
    child = children[0]
    assert child.data.tags["mlflow.parentRunId"] == parents[0].info.run_id
    m = child.data.metrics
    # q1 exact, q2 contains but not exact, q3 wrong, q4 unmeasured
    assert m["qa.exact_match"] == pytest.approx(1 / 3)
    assert m["qa.contains"] == pytest.approx(2 / 3)
    assert m["qa.exact_match_n"] == 3 and m["qa.exact_match_unmeasured"] == 1
    assert m["qa.unmeasured"] == 1 and m["qa.n"] == 4
    assert m["qa.exact_match_ci_low"] <= m["qa.exact_match"] <= m["qa.exact_match_ci_high"]
    assert child.data.params["dataset.digest"].startswith("sha256:")
    assert child.data.params["candidate"] == "callable:fake_model:answer"
    assert "gen.max_tokens" in child.data.params
    # per-case table
    local = client.download_artifacts(child.info.run_id, "qa/cases.json", str(pytester.path))
    table = json.loads(Path(local).read_text())  # mlflow's table format: columns + data
    rows = [dict(zip(table["columns"], r, strict=True)) for r in table["data"]]
    assert sorted(r["id"] for r in rows) == ["q1", "q2", "q3", "q4"]
    row4 = next(r for r in rows if r["id"] == "q4")
    assert row4["status"] == "unmeasured" and "exploded" in row4["error"]
    # report files
    reports = list((pytester.path / "reports").glob("*/summary.md"))
    assert len(reports) == 1 and "| qa | exact_match |" in reports[0].read_text()

    # rerun: the three successes come from the cache; only the failed case is called again
    res2 = _run(pytester)
    res2.assert_outcomes(passed=1)
    assert "model calls: 1, served from cache: 3" in res2.stdout.str()
    assert len(calls_log.read_text().splitlines()) == 5


def test_no_cache_calls_every_case(pytester, calls_log):
    _project(pytester)
    _run(pytester).assert_outcomes(passed=1)
    res = _run(pytester, "--no-cache")
    assert "model calls: 4, served from cache: 0" in res.stdout.str()


def test_malformed_dataset_row_fails_suite_naming_file_and_line(pytester, calls_log):
    rows = [
        json.dumps({"id": "a", "question": "Q?", "answers": ["x"], "topic": "t"}),
        json.dumps({"id": "b", "question": "Q2?", "answers": [], "topic": "t"}),
    ]
    _project(pytester, rows)
    res = _run(pytester)
    res.assert_outcomes(failed=1)
    out = res.stdout.str()
    assert "qa.jsonl:2" in out and "answers" in out
    assert not calls_log.exists()  # no model call on invalid data


def test_candidate_failing_everywhere_fails_suite(pytester, calls_log):
    _project(pytester)
    res = _run(pytester, candidate="callable:fake_model:broken")
    res.assert_outcomes(failed=1)
    assert "all 4 cases" in res.stdout.str() and "connection refused" in res.stdout.str()


def test_unknown_candidate_scheme_is_a_clear_failure(pytester, calls_log):
    _project(pytester)
    res = _run(pytester, candidate="nosuch:thing")
    res.assert_outcomes(failed=1)
    assert "unknown scheme 'nosuch'" in res.stdout.str()


def test_suites_option_deselects(pytester, calls_log):
    _project(pytester)
    res = _run(pytester, "--suites", "other")
    res.assert_outcomes(deselected=1)
    assert not calls_log.exists()


def test_limit(pytester, calls_log):
    _project(pytester)
    res = _run(pytester, "--limit", "2", "--no-mlflow")
    res.assert_outcomes(passed=1)
    assert len(calls_log.read_text().splitlines()) == 2
    assert not (pytester.path / "mlflow.db").exists()


def test_collect_only_imports_nothing_heavy(pytester):
    _project(pytester)
    pytester.makeconftest('''
        import sys
        def pytest_collection_finish(session):
            heavy = [m for m in ("mlflow", "llama_cpp", "scipy.stats", "rouge_score", "pandas")
                     if m in sys.modules]
            print("HEAVY_MODULES=" + ",".join(heavy))
    ''')
    res = pytester.runpytest_subprocess("evals", "--collect-only", "-q", "-s")
    res.stdout.fnmatch_lines(["*suite?qa?*"])
    line = next(ln for ln in res.stdout.lines if ln.startswith("HEAVY_MODULES="))
    assert line == "HEAVY_MODULES=", f"collection imported heavy modules: {line}"


def test_the_plugin_changes_no_environment_in_a_session_without_suites(pytester, monkeypatch):
    from aliasgate.defaults import TELEMETRY_OFF

    for key in TELEMETRY_OFF:
        monkeypatch.delenv(key, raising=False)
    keys = repr(sorted(TELEMETRY_OFF))
    pytester.makepyfile(test_plain=f'''
        import os
        KEYS = {keys}
        def test_env_untouched():
            assert [k for k in KEYS if k in os.environ] == []
    ''')
    res = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    res.assert_outcomes(passed=1)
