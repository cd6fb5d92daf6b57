"""Fault injection through a real loopback OpenAI-compatible server and the real `openai`
client: every case ends scored or unmeasured with its reason — none lost, none scored 0 for a
failure, retries answered where the server recovers."""

from __future__ import annotations

import random

import pytest

from aliasgate.candidates import load_candidate
from aliasgate.datasets.base import Case, Dataset
from aliasgate.run.runner import run_suite
from aliasgate.run.suite import Suite
from openai_server import OpenAITestServer, answer, content_filter, malformed, no_choices, status

from .conftest import record

N_CASES, FAULT_SHARE = 400, 0.2


def test_faults_on_a_fifth_of_400_requests_are_all_accounted_for() -> None:
    rng = random.Random(11)
    faults = {i: rng.choice(["500", "429", "malformed", "no_choices", "content_filter",
                             "recovers"])
              for i in rng.sample(range(N_CASES), int(N_CASES * FAULT_SHARE))}
    cases = tuple(Case(id=f"q{i:03d}", input=f"question {i:03d}?",
                       expected=(f"echo: question {i:03d}?",)) for i in range(N_CASES))
    ds = Dataset("faults", "faults.jsonl", "golden_qa", cases, "sha256:x")
    suite = Suite(name="faults", dataset="faults.jsonl", scorers=("exact_match",))
    with OpenAITestServer() as server:
        for i, kind in faults.items():
            marker = f"question {i:03d}?"
            behaviours = {
                "500": [status(500)] * 3, "429": [status(429, retry_after=0)] * 3,
                "malformed": [malformed()] * 3, "no_choices": [no_choices()] * 3,
                "content_filter": [content_filter()] * 3,
                "recovers": [status(503), answer()],  # a retry gets the answer
            }[kind]
            server.script(marker, *behaviours)
        cand = load_candidate(f"openai-compatible:test-model@{server.base_url}"
                              "?max_retries=2&timeout_s=10", max_concurrency=8)
        result = run_suite(suite, ds, cand, concurrency=8)
    assert len(result.cases) == N_CASES  # nothing lost
    by_id = {r.case.id: r for r in result.cases}
    for i in range(N_CASES):
        r = by_id[f"q{i:03d}"]
        kind = faults.get(i)
        if kind is None or kind == "recovers":
            assert r.status == "scored" and r.scores["exact_match"].value == 1.0, (i, r.error)
        else:
            assert r.status == "unmeasured" and r.error, (i, kind, r.output)
            assert r.scores["exact_match"].value is None  # never 0 for a failure
        record("fault injection: 400 requests via the openai client, 20% faulted",
               "answered" if r.status == "scored" else f"unmeasured ({kind})")
    m = result.metrics["exact_match"]
    assert m.value == 1.0 and m.unmeasured == sum(1 for k in faults.values() if k != "recovers")


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
