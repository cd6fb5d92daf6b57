"""The hosted-model adapter (openai / azure / openai-compatible) against a real HTTP server on
127.0.0.1 (tests/openai_server.py): request mapping, retries, Retry-After, timeouts, malformed
answers, Azure URLs, keys kept out of everything logged, the registered (MLflow) wrapper, and the
pytest plugin end to end."""

from __future__ import annotations

import json
import os
import sqlite3
import textwrap
import uuid
from pathlib import Path

import pytest

from aliasgate.candidates import CandidateError, GenerationParams, load_candidate
from aliasgate.candidates.openai_ import OpenAICandidate, OpenAIConfig
from aliasgate.datasets.base import Case, Dataset
from aliasgate.run.cache import ResponseCache
from aliasgate.run.runner import run_suite
from aliasgate.run.suite import Suite
from openai_server import (
    OpenAITestServer,
    answer,
    content_filter,
    hang,
    malformed,
    no_choices,
    status,
)

pytestmark = pytest.mark.integration

KEY_ENV = "ALIASGATE_TEST_KEY"


@pytest.fixture
def key(monkeypatch: pytest.MonkeyPatch) -> str:
    """A unique fake key in ``$ALIASGATE_TEST_KEY`` (and a decoy in ``$OPENAI_API_KEY``)."""
    value = f"sk-test-{uuid.uuid4().hex}"
    monkeypatch.setenv(KEY_ENV, value)
    monkeypatch.setenv("OPENAI_API_KEY", f"sk-decoy-{uuid.uuid4().hex}")
    return value


@pytest.fixture
def server(key: str):
    with OpenAITestServer(api_key=key) as s:
        yield s


def compatible(server: OpenAITestServer, **kw) -> OpenAICandidate:
    kw.setdefault("api_key_env", KEY_ENV)
    return OpenAICandidate(OpenAIConfig(provider="compatible", model="test-model",
                                        base_url=server.base_url, **kw))


def qa_dataset(prompts: list[str]) -> Dataset:
    cases = tuple(Case(id=f"c{i}", input=p, expected=("ok",), source=f"mem:{i + 1}")
                  for i, p in enumerate(prompts))
    return Dataset("mem", "mem.jsonl", "golden_qa", cases, "sha256:" + "ef" * 32)


def qa_suite() -> Suite:
    return Suite(name="hosted", dataset="mem.jsonl", scorers=("exact_match",))


# --------------------------------------------------------------------------- requests


def test_params_usage_cost_and_request_id_are_mapped(server):
    cand = compatible(server, cost_per_1k_input=1.0, cost_per_1k_output=2.0,
                      system_prompt="Be brief.", extra_body={"min_p": 0.05})
    server.script("count", answer("one two three four five"))
    params = GenerationParams(temperature=0.7, top_p=0.9, top_k=40, max_tokens=3, seed=11,
                              repeat_penalty=1.1, stop=("STOP",))
    gen = cand.generate([{"role": "user", "content": "count please"}], params)
    body = server.chat_requests()[-1].body
    assert body["messages"] == [{"role": "system", "content": "Be brief."},
                                {"role": "user", "content": "count please"}]
    assert (body["temperature"], body["top_p"], body["max_tokens"], body["seed"]) == (0.7, 0.9, 3, 11)
    assert body["stop"] == ["STOP"]
    assert (body["top_k"], body["repeat_penalty"], body["min_p"]) == (40, 1.1, 0.05)
    assert "max_completion_tokens" not in body
    assert gen.text == "one two three" and gen.finish_reason == "length"
    assert (gen.prompt_tokens, gen.completion_tokens) == (4, 3)
    assert gen.extra["cost_usd"] == pytest.approx((4 * 1.0 + 3 * 2.0) / 1000)
    assert gen.extra["request_id"] == f"req_{server.chat_requests()[-1].index}"
    assert gen.extra["retries"] == 0


def test_openai_provider_sends_no_sampler_extras_and_refuses_them(server, key):
    cand = OpenAICandidate(OpenAIConfig(provider="openai", model="gpt-test",
                                        base_url=server.base_url, api_key_env=KEY_ENV))
    cand.generate([{"role": "user", "content": "hi"}], cand.params)
    body = server.chat_requests()[-1].body
    assert "top_k" not in body and "repeat_penalty" not in body
    assert body["max_completion_tokens"] == cand.params.max_tokens and "max_tokens" not in body
    with pytest.raises(CandidateError, match="no top_k/repeat_penalty"):
        cand.generate([{"role": "user", "content": "hi"}], cand.params.merged({"top_k": 40}))
    assert len(server.chat_requests()) == 1  # refused before any request


def test_an_incoming_system_message_is_merged_after_the_candidates_own(server):
    cand = compatible(server, system_prompt="Own rules.")
    cand.generate([{"role": "system", "content": "Suite rules."},
                   {"role": "user", "content": "hi"}], cand.params)
    assert server.chat_requests()[-1].body["messages"] == [
        {"role": "system", "content": "Own rules.\n\nSuite rules."},
        {"role": "user", "content": "hi"},
    ]


# --------------------------------------------------------------------------- failures


def test_every_case_ends_scored_or_unmeasured_with_the_reason(server, tmp_path):
    prompts = ["fine-1", "fine-2", "limited", "broken", "garbled", "empty", "filtered", "stuck",
               "denied"]
    server.answers = lambda messages: "ok"
    server.script("limited", status(429, retry_after="0.2"), answer("ok"))
    server.script("broken", *[status(500)] * 5)
    server.script("garbled", *[malformed()] * 5)
    server.script("empty", *[no_choices()] * 5)
    server.script("filtered", *[content_filter()] * 5)
    server.script("stuck", *[hang(5)] * 5)
    server.script("denied", *[status(400)] * 5)
    cand = compatible(server, timeout_s=0.5, max_retries=1)
    with ResponseCache(tmp_path / "c.sqlite") as cache:
        res = run_suite(qa_suite(), qa_dataset(prompts), cand, cache=cache, concurrency=4)
        by = {c.prompt: c for c in res.cases}
        assert [c.prompt for c in res.cases] == prompts  # none lost, dataset order
        assert {p for p, c in by.items() if c.status == "scored"} == {"fine-1", "fine-2", "limited"}
        assert all(c.scores["exact_match"].value is None
                   for c in res.cases if c.status == "unmeasured")
        assert "HTTP 500" in by["broken"].error and "after 2 attempts" in by["broken"].error
        assert "request id req_" in by["broken"].error
        assert "malformed response" in by["garbled"].error
        assert "no choices[0].message" in by["empty"].error
        assert "content filter" in by["filtered"].error
        assert "within 0.5 s (2 attempts)" in by["stuck"].error
        assert "HTTP 400" in by["denied"].error and "attempts" not in by["denied"].error
        # retries: max_retries=1 -> 2 requests for retryable failures, 1 for the others
        counts = {p: len(server.chat_requests(p)) for p in prompts}
        assert counts == {"fine-1": 1, "fine-2": 1, "limited": 2, "broken": 2, "garbled": 1,
                          "empty": 1, "filtered": 1, "stuck": 2, "denied": 1}
        assert [r.headers["x-stainless-retry-count"] for r in server.chat_requests("broken")] \
            == ["0", "1"]

        # a rerun asks again only for what failed (failures are never cached)
        server.reset()
        res2 = run_suite(qa_suite(), qa_dataset(prompts), cand, cache=cache, concurrency=4)
        asked = {r.prompt for r in server.chat_requests()}
        assert asked == set(prompts) - {"fine-1", "fine-2", "limited"}
        assert res2.cache_hits == 3


def test_retry_after_is_honoured(server):
    """The client waits what Retry-After says (2 s) — far above its own first backoff (<= 0.5 s)."""
    server.script("slow down", status(429, retry_after=2), status(503, retry_after=2), answer("ok"))
    cand = compatible(server, max_retries=2)
    gen = cand.generate([{"role": "user", "content": "slow down"}], cand.params)
    assert gen.text == "ok" and gen.extra["retries"] == 2
    reqs = server.chat_requests("slow down")
    assert [r.status for r in reqs] == [429, 503, 200]
    gaps = [b.started - a.finished for a, b in zip(reqs, reqs[1:], strict=False)]
    assert all(g >= 1.9 for g in gaps), gaps


def test_retries_are_bounded_by_max_retries(server):
    server.script("always", *[status(429, retry_after="0.05")] * 10)
    cand = compatible(server, max_retries=3)
    with pytest.raises(CandidateError, match=r"HTTP 429 .*after 4 attempts"):
        cand.generate([{"role": "user", "content": "always"}], cand.params)
    assert len(server.chat_requests("always")) == 4


# --------------------------------------------------------------------------- keys


def test_key_travels_only_as_the_authorization_header(server, key):
    cand = compatible(server)
    cand.generate([{"role": "user", "content": "hi"}], cand.params)
    (req,) = server.chat_requests()
    assert req.headers["authorization"] == f"Bearer {key}"
    others = {k: v for k, v in req.headers.items() if k != "authorization"}
    assert key not in json.dumps(others) and key.encode() not in req.raw
    assert key not in req.path + json.dumps(req.query)
    decoy = os.environ["OPENAI_API_KEY"]
    assert decoy not in json.dumps(req.headers)
    assert key not in json.dumps(cand.describe()) + cand.fingerprint() + cand.uri


def test_compatible_server_never_gets_openai_api_key_by_default(server, key, monkeypatch):
    monkeypatch.setenv("OPENAI_ORG_ID", "org-decoy")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-decoy")
    server.api_key = None
    cand = OpenAICandidate(OpenAIConfig(provider="compatible", model="m", base_url=server.base_url))
    cand.generate([{"role": "user", "content": "hi"}], cand.params)
    (req,) = server.chat_requests()
    assert req.headers["authorization"] == "Bearer no-key"
    assert os.environ["OPENAI_API_KEY"] not in json.dumps(req.headers)
    assert "openai-organization" not in req.headers and "openai-project" not in req.headers


def test_missing_key_or_a_key_in_the_config_is_refused(monkeypatch, server):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(CandidateError, match="environment variable OPENAI_API_KEY is not set"):
        load_candidate("openai:gpt-test")
    with pytest.raises(CandidateError, match="api_key is not accepted"):
        load_candidate(f"openai-compatible:m@{server.base_url}", api_key="sk-123")
    with pytest.raises(CandidateError, match="NAME of an environment variable"):
        load_candidate(f"openai-compatible:m@{server.base_url}?api_key_env=sk-abc-123")


def test_fingerprint_follows_what_shapes_the_answer_not_the_transport(server, monkeypatch, key):
    base = compatible(server).fingerprint()
    assert compatible(server, timeout_s=3, max_retries=7, max_concurrency=2).fingerprint() == base
    monkeypatch.setenv(KEY_ENV, "sk-another-key")
    assert compatible(server).fingerprint() == base
    assert compatible(server, system_prompt="x").fingerprint() != base
    assert compatible(server, extra_body={"repeat_penalty": 1.0}).fingerprint() != base
    other = OpenAICandidate(OpenAIConfig(provider="compatible", model="other",
                                         base_url=server.base_url, api_key_env=KEY_ENV))
    assert other.fingerprint() != base


# --------------------------------------------------------------------------- URIs, Azure


def test_uris_and_env_defaults(server, monkeypatch, key):
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", key)
    cand = load_candidate("openai:gpt-test?timeout_s=5&max_retries=0&max_tokens=7&stop=a&stop=b")
    assert isinstance(cand, OpenAICandidate)
    assert cand.config.base_url == server.base_url and cand.config.timeout_s == 5
    assert cand.params.max_tokens == 7 and cand.params.stop == ("a", "b")
    assert cand.generate([{"role": "user", "content": "hi"}], cand.params).text == "echo: hi"

    comp = load_candidate(f"openai-compatible:served@{server.base_url}?api_key_env={KEY_ENV}")
    comp.generate([{"role": "user", "content": "hi"}], comp.params)
    assert server.chat_requests()[-1].body["model"] == "served"
    by_option = load_candidate("openai-compatible:served", base_url=server.base_url,
                               api_key_env=KEY_ENV)
    assert by_option.fingerprint() == comp.fingerprint()
    with pytest.raises(CandidateError, match="needs a base_url"):
        load_candidate("openai-compatible:served")
    hidden = load_candidate(f"openai-compatible:m@http://user:pw@127.0.0.1:{server.port}/v1"
                            f"?api_key_env={KEY_ENV}")
    assert "pw" not in hidden.uri + json.dumps(hidden.describe())


def test_azure_deployment_urls(server, monkeypatch, key):
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.url)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", key)
    monkeypatch.setenv("OPENAI_API_VERSION", "2024-10-21")
    cand = load_candidate("azure:my-gpt")
    gen = cand.generate([{"role": "user", "content": "hi"}], cand.params)
    assert gen.text == "echo: hi"
    (req,) = server.chat_requests()
    assert req.path == "/openai/deployments/my-gpt/chat/completions"
    assert req.query == {"api-version": "2024-10-21"} and req.deployment == "my-gpt"
    assert req.headers["api-key"] == key and "authorization" not in req.headers
    assert cand.describe()["candidate.api_version"] == "2024-10-21"
    monkeypatch.delenv("OPENAI_API_VERSION")
    with pytest.raises(CandidateError, match="OPENAI_API_VERSION"):
        load_candidate("azure:my-gpt")


# --------------------------------------------------------------------------- concurrency


def test_the_endpoint_is_kept_busy_at_the_configured_concurrency(server):
    server.latency_s = 0.3
    prompts = [f"p{i}" for i in range(24)]
    res = run_suite(qa_suite(), qa_dataset(prompts), compatible(server), concurrency=8)
    assert res.unmeasured == 0 and res.model_calls == 24
    assert server.max_in_flight == 8


def test_a_slow_case_does_not_hold_back_the_others(server):
    """Head-of-line: every other request starts while the slow one is still being answered."""
    server.latency_s = 0.02
    server.script("slow", answer("ok", delay_s=4.0))
    prompts = ["slow", *[f"p{i}" for i in range(30)]]
    res = run_suite(qa_suite(), qa_dataset(prompts), compatible(server), concurrency=3)
    assert res.unmeasured == 0
    (slow,) = server.chat_requests("slow")
    others = [r for r in server.chat_requests() if r.prompt != "slow"]
    assert len(others) == 30 and max(r.started for r in others) < slow.finished


# --------------------------------------------------------------------------- MLflow


def test_registered_hosted_model_unwraps_to_the_adapter(server, key, tmp_path, monkeypatch):
    import mlflow

    monkeypatch.chdir(tmp_path)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    try:
        from aliasgate.candidates.mlflow_pyfunc import MlflowHostedCandidate
        from aliasgate.registry.models import register_openai_candidate

        config = OpenAIConfig(provider="compatible", model="test-model", base_url=server.base_url,
                              api_key_env=KEY_ENV, system_prompt="Be brief.")
        reg = register_openai_candidate(config, model_name="hosted", alias="challenger")
        cand = load_candidate("models:/hosted@challenger")
        assert isinstance(cand, MlflowHostedCandidate)
        assert cand.fingerprint() == compatible(server, system_prompt="Be brief.").fingerprint()
        assert cand.fingerprint() == reg.fingerprint
        assert cand.generate([{"role": "user", "content": "hi"}], cand.params).text == "echo: hi"
        assert server.chat_requests()[-1].body["messages"][0]["content"] == "Be brief."
        assert cand.describe()["candidate.model_version"] == "1"
        assert _files_containing(tmp_path, key) == []
        monkeypatch.delenv(KEY_ENV)
        with pytest.raises(CandidateError, match=f"environment variable {KEY_ENV} is not set"):
            load_candidate("models:/hosted@challenger")
    finally:
        mlflow.set_tracking_uri(None)


def _files_containing(root: Path, secret: str) -> list[str]:
    needle = secret.encode()
    return [str(p) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


PROJECT_SUITE = '''
from aliasgate import Suite
qa = Suite(name="qa", dataset="datasets/qa.jsonl", scorers=("exact_match", "contains"))
'''

QUESTIONS = {"capital of France": "Paris", "legs does a spider": "eight",
             "color is the sky": "blue", "wrote Hamlet": "Shakespeare",
             "boiling point": "100 degrees"}


def _project(pytester: pytest.Pytester, prefix: str = "") -> None:
    rows = [{"id": f"q{i}", "question": f"{prefix}What about the {q}?", "answers": [a], "topic": "t"}
            for i, (q, a) in enumerate(QUESTIONS.items())]
    (pytester.path / "datasets").mkdir(exist_ok=True)
    (pytester.path / "datasets" / "qa.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows))
    (pytester.path / "evals").mkdir(exist_ok=True)
    (pytester.path / "evals" / "test_qa.py").write_text(textwrap.dedent(PROJECT_SUITE))
    pytester.makefile(".toml", pyproject="[tool.pytest.ini_options]\n")


def test_plugin_end_to_end_and_no_key_in_anything_logged(pytester, server, key):
    server.answers = {q: a for q, a in QUESTIONS.items() if q != "wrote Hamlet"}
    server.script("boiling point", *[status(500)] * 3)
    _project(pytester)
    db = pytester.path / "mlflow.db"
    candidate = f"openai-compatible:test-model@{server.base_url}?api_key_env={KEY_ENV}&max_retries=1"
    res = pytester.runpytest_subprocess(
        "evals", "--candidate", candidate, "--tracking-uri", f"sqlite:///{db}", "--no-progress",
        "-p", "no:cacheprovider", "--repeats", "2", "--concurrency", "4")
    res.assert_outcomes(passed=1)
    out = res.stdout.str() + res.stderr.str()
    assert "agreement" in out
    # 4 cases x 2 repeats answered; the failing case: 2 repeats x 2 attempts
    assert len(server.chat_requests()) == 4 * 2 + 2 * 2
    assert all(r.headers["authorization"] == f"Bearer {key}" for r in server.chat_requests())

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{db}")
    exp = client.get_experiment_by_name("aliasgate")
    runs = client.search_runs([exp.experiment_id])
    child = next(r for r in runs if r.data.tags.get("aliasgate.suite") == "qa")
    assert child.data.metrics["qa.n"] == 5 and child.data.metrics["qa.unmeasured"] == 1
    assert child.data.metrics["qa.repeats"] == 2 and child.data.metrics["qa.agreement"] == 1.0
    assert child.data.params["candidate.api_key_env"] == KEY_ENV
    assert child.data.params["repeats"] == "2"
    table = client.load_table(exp.experiment_id, "qa/cases.json", run_ids=[child.info.run_id])
    failed = table[table["status"] == "unmeasured"]
    assert len(failed) == 1 and "HTTP 500" in failed["error"].iloc[0]

    # the key appears nowhere: params, tags, metric names, artifacts, reports, cache, store, logs
    logged = []
    for run in runs:
        logged += [json.dumps(run.data.params), json.dumps(run.data.tags),
                   json.dumps(sorted(run.data.metrics))]
        artifacts = client.download_artifacts(run.info.run_id, "", str(pytester.path / "dl"))
        assert Path(artifacts).exists()
    assert key not in "".join(logged)
    assert list((pytester.path / "dl").rglob("*.json")), "artifacts were downloaded"
    assert _files_containing(pytester.path, key) == []
    assert key not in out
    with sqlite3.connect(db) as conn:  # belt and braces: every text cell of the store
        for (table_name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'"):
            for row in conn.execute(f'SELECT * FROM "{table_name}"'):
                assert key not in json.dumps(row, default=str)


def test_plugin_with_a_registered_hosted_model(pytester, server, key, monkeypatch):
    import mlflow

    _project(pytester)
    db = pytester.path / "mlflow.db"
    monkeypatch.chdir(pytester.path)
    mlflow.set_tracking_uri(f"sqlite:///{db}")
    try:
        from aliasgate.registry.models import register_openai_candidate

        register_openai_candidate(
            {"provider": "compatible", "model": "test-model", "base_url": server.base_url,
             "api_key_env": KEY_ENV, "max_tokens": 16},
            model_name="hosted", alias="challenger")
    finally:
        mlflow.set_tracking_uri(None)
    server.answers = QUESTIONS
    res = pytester.runpytest_subprocess(
        "evals", "--candidate", "models:/hosted@challenger", "--tracking-uri", f"sqlite:///{db}",
        "--no-progress", "-p", "no:cacheprovider")
    res.assert_outcomes(passed=1)
    assert len(server.chat_requests()) == 5
    assert {r.body["max_tokens"] for r in server.chat_requests()} == {16}
    assert "model calls: 5" in res.stdout.str()
    assert _files_containing(pytester.path, key) == []
