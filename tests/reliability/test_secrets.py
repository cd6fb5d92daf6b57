"""No credential string in any file a run writes: reports, cases, the MLflow store, the cache."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from aliasgate.redact import redact, redact_uri

KEY = "sk-test-Zq8ReallySecretKey0123456789"
PG_URI = "postgresql://mlflow:PGSECRET@db.internal:5432/mlflow"

ECHO_MODEL = '''
import os
def answer(messages, params):
    q = messages[-1]["content"]
    if "France" in q:
        return "Paris"
    # a server that echoes the API key in its 401 body
    raise RuntimeError("Error code: 401 - {'error': {'message': 'Incorrect API key provided: "
                       + os.environ["OPENAI_API_KEY"] + "'}}")
'''


@pytest.mark.parametrize(("uri", "secret"), [
    (PG_URI, "PGSECRET"),
    ("postgresql://mlflow:PG@SE/CRET@db:5432/mlflow", "SE/CRET"),
    ("postgresql://mlflow:PG@SECRET@db/mlflow", "PG@SECRET"),
    ("openai-compatible:m@https://u:p@ss/w0rd@host:8000/v1", "ss/w0rd"),
    ("https://host/v1?api-key=QUERYSECRET", "QUERYSECRET"),
    ("https://bob:hunter2@host", "hunter2"),
])
def test_redact_uri_removes_credentials_whatever_they_contain(uri, secret):
    out = redact_uri(uri)
    assert secret not in out
    assert "db" in out or "host" in out  # where it points is kept
    assert redact_uri(uri, query=False).count("?") == 0


def test_redact_keeps_what_is_not_a_credential():
    for text in ("sqlite:///mlflow.db", "models:/m@champion", "http://127.0.0.1:5000",
                 "write to bob@example.com", "https://host/a?email=a@b.com", "max_tokens=32"):
        assert redact(text) == text


def test_redact_removes_env_secrets_and_common_shapes(monkeypatch):
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-abcdefgh12345")
    monkeypatch.setenv("SHORT_KEY", "1")  # a flag, not a secret
    text = ("401: key tok-abcdefgh12345 rejected; Authorization: Bearer abc.def-123456; "
            "password=hunter22 sk-abcdefghijklmnop1234 SHORT 1")
    out = redact(text)
    for secret in ("tok-abcdefgh12345", "abc.def-123456", "hunter22", "sk-abcdefghijklmnop1234"):
        assert secret not in out
    assert out.endswith("SHORT 1")
    # whole documents: dataset text saying "password: x" stays, known secrets still go
    doc = "prompt: what is a good password: hunter22? key tok-abcdefgh12345"
    assert redact(doc, pairs=False) == "prompt: what is a good password: hunter22? key ***"


def test_candidate_url_with_slash_in_password_loads_and_never_shows_it():
    from aliasgate.candidates import load_candidate

    cand = load_candidate("openai-compatible:m@https://u:p@ss/w0rd@127.0.0.1:9/v1")
    text = json.dumps(cand.describe()) + cand.uri
    assert "w0rd" not in text and "p@ss" not in text


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


def test_no_run_output_holds_a_credential(pytester: pytest.Pytester, monkeypatch) -> None:
    """A run whose server echoes the API key, with a credentialed tracking URI in a report."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    pytester.makepyfile(echo_model=ECHO_MODEL)
    pytester.makefile(".toml", pyproject="[tool.pytest.ini_options]\n")
    (pytester.path / "datasets").mkdir()
    rows = [{"id": "q1", "question": "What is the capital of France?", "answers": ["Paris"], "topic": "t"},
            {"id": "q2", "question": "Who wrote Hamlet?", "answers": ["Shakespeare"], "topic": "t"}]
    (pytester.path / "datasets" / "qa.jsonl").write_text(
        "\n".join(json.dumps(r) for r in rows) + "\n")
    (pytester.path / "evals").mkdir()
    (pytester.path / "evals" / "test_qa.py").write_text(textwrap.dedent('''
        from aliasgate import Suite
        qa = Suite(name="qa", dataset="datasets/qa.jsonl", scorers=("exact_match",))
    '''))
    db = pytester.path / "mlflow.db"
    res = pytester.runpytest_subprocess(
        "evals", "--candidate", "callable:echo_model:answer", "--tracking-uri", f"sqlite:///{db}",
        "--no-progress", "-p", "no:cacheprovider")
    assert res.ret == 0, res.stdout.str()
    written = _files(pytester.path / "reports") + _files(pytester.path / ".aliasgate") + [db]
    written += _files(pytester.path / "mlruns") if (pytester.path / "mlruns").exists() else []
    assert any(p.name == "cases.jsonl" for p in written)
    cases = (next(p for p in written if p.name == "cases.jsonl")).read_text()
    assert "Incorrect API key provided" in cases  # the error is kept, the key is not
    for path in written:
        assert KEY.encode() not in path.read_bytes(), path
    # a credentialed tracking URI never reaches the summary
    from aliasgate.session import EvalOptions, EvalSession

    session = EvalSession(EvalOptions(candidate="callable:echo_model:answer", tracking_uri=PG_URI,
                                      log_to_mlflow=False, root=pytester.path))
    assert "PGSECRET" not in json.dumps(session.summary_dict(), default=str)


def test_a_suite_never_reads_a_dataset_outside_the_project(tmp_path, monkeypatch):
    from aliasgate.datasets import DatasetError
    from aliasgate.run.suite import Suite
    from aliasgate.session import DATA_ROOTS_ENV, EvalOptions, EvalSession

    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    secret = elsewhere / "passwd.jsonl"
    secret.write_text("root:x:0:0:SECRET-HEADER\n")
    monkeypatch.delenv(DATA_ROOTS_ENV, raising=False)
    session = EvalSession(EvalOptions(candidate="callable:m:f", log_to_mlflow=False, root=project))
    for ref in ("../elsewhere/passwd.jsonl", str(secret)):
        with pytest.raises(DatasetError, match="outside the project") as err:
            session.dataset_path(Suite(name="s", dataset=ref))
        assert "SECRET-HEADER" not in str(err.value)
    inside = Suite(name="s", dataset="data/qa.jsonl")
    assert session.dataset_path(inside) == project / "data" / "qa.jsonl"
    monkeypatch.setenv(DATA_ROOTS_ENV, str(elsewhere))
    assert session.dataset_path(Suite(name="s", dataset=str(secret))) == secret
