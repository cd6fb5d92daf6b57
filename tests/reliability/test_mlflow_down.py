"""MLflow unreachable: the local results are still written in full, and the failure is said."""

from __future__ import annotations

import json
import socket
import textwrap

import pytest

MODEL = '''
def answer(messages, params):
    return "Paris" if "France" in messages[-1]["content"] else "no idea"
'''


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens


def test_reports_are_written_when_mlflow_is_down(pytester: pytest.Pytester, monkeypatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    pytester.makepyfile(fake_model=MODEL)
    pytester.makefile(".toml", pyproject="[tool.pytest.ini_options]\n")
    (pytester.path / "datasets").mkdir()
    rows = [{"id": f"q{i}", "question": q, "answers": a, "topic": "t"} for i, (q, a) in
            enumerate([("What is the capital of France?", ["Paris"]), ("Who wrote Hamlet?",
                                                                      ["Shakespeare"])])]
    (pytester.path / "datasets" / "qa.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows) + "\n")
    (pytester.path / "evals").mkdir()
    (pytester.path / "evals" / "test_qa.py").write_text(textwrap.dedent('''
        from aliasgate import Suite
        qa = Suite(name="qa", dataset="datasets/qa.jsonl", scorers=("exact_match", "contains"))
    '''))
    res = pytester.runpytest_subprocess(
        "evals", "--candidate", "callable:fake_model:answer",
        "--tracking-uri", f"http://127.0.0.1:{_closed_port()}", "--no-progress",
        "-p", "no:cacheprovider", timeout=300)
    out = res.stdout.str()
    reports = list((pytester.path / "reports").glob("eval-*"))
    assert len(reports) == 1, out
    results = json.loads((reports[0] / "results.json").read_text())
    assert results["mlflow_error"] and "was not logged" in results["mlflow_error"]
    assert [s["suite"] for s in results["suites"]] == ["qa"]
    assert (reports[0] / "summary.md").read_text().count("MLflow:") == 1
    cases = (reports[0] / "cases.jsonl").read_text().splitlines()
    assert len(cases) == 2
    res.assert_outcomes(passed=1)
