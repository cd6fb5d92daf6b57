"""TrackingSession against a real sqlite MLflow store: what a logged suite holds (params with the
judge settings, metrics, tables readable as MLflow tables) and how many requests it takes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aliasgate.candidates.callable_ import CallableCandidate
from aliasgate.datasets.base import Case, Dataset
from aliasgate.run.runner import run_suite
from aliasgate.run.suite import Suite
from aliasgate.scorers.base import Score
from aliasgate.scorers.judge_calibration import (
    JudgeScorer,
    clear_calibrations,
    load_calibration_set,
)
from aliasgate.scorers.judge_config import JudgeConfig, default_calibration_path

SECRET_URL = "http://judge-user:s3cret-pw@127.0.0.1:9/v1?api-key=k3y-value"
RUBRIC = "Is the answer the expected one?"


class KnownAnswerJudge(JudgeScorer):
    """A judge with no model behind it: right on every calibration item, exact match otherwise.
    Enough to go through calibration, trust and ``describe()`` exactly as a real judge does."""

    calibration_kinds = ("correctness",)

    def __init__(self, judge: JudgeConfig) -> None:
        super().__init__("known_answer_judge", judge)
        items = load_calibration_set(self.judge.calibration_path())
        self.good = {i.response for i in items if i.verdict == "pass"}

    def measure(self, output: str, case: Case) -> Score:
        if case.meta.get("calibration"):
            return Score(value=1.0 if output in self.good else 0.0)
        return Score(value=1.0 if output.strip() in case.expected else 0.0)

    def prompt_hashes(self) -> dict[str, str]:
        return {"rubric": hashlib.sha256(RUBRIC.encode()).hexdigest()}


def answer(messages: list[dict[str, str]], params: Any) -> str:
    q = messages[-1]["content"]
    return "Paris" if "France" in q else "no idea"


def dataset() -> Dataset:
    cases = (
        Case(id="fr", input="Capital of France?", expected=("Paris",), source="t:1"),
        Case(id="de", input="Capital of Germany?", expected=("Berlin",), source="t:2"),
        Case(id="it", input="Capital of Italy?", expected=("Rome",), source="t:3"),
    )
    return Dataset("caps", "caps.jsonl", "golden_qa", cases, "sha256:" + "ab" * 32)


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[str]:
    """A fresh sqlite store; the global tracking URI (TrackingSession sets it) is restored."""
    import mlflow
    from mlflow.tracking._tracking_service import utils as tracking_utils

    before = tracking_utils._tracking_uri
    try:
        yield f"sqlite:///{tmp_path / 'mlflow.db'}"
    finally:
        mlflow.set_tracking_uri(before)


@pytest.fixture(autouse=True)
def _fresh_calibrations() -> Iterator[None]:
    clear_calibrations()
    yield
    clear_calibrations()


def test_judge_settings_reach_the_child_run_params(store: str) -> None:
    from mlflow import MlflowClient

    from aliasgate.registry.tracking import TrackingSession

    judge = JudgeConfig(provider="compatible", model="judge-model-7b", base_url=SECRET_URL)
    scorer = KnownAnswerJudge(judge)
    suite = Suite(name="caps", dataset="caps.jsonl", scorers=("exact_match",))
    cand = CallableCandidate(answer, name="callable:test:answer")
    result = run_suite(suite, dataset(), cand, scorers=["exact_match", scorer])
    assert result.metrics["known_answer_judge"].n == 3  # trusted: it scored every case

    session = TrackingSession(store, "judges")
    child = session.log_suite(result)
    session.finish()

    client = MlflowClient(store)
    params = client.get_run(child).data.params
    # what replaying the judge needs: model, endpoint, prompt, calibration and trust
    assert params["judge.provider"] == "compatible"
    assert params["judge.model"] == "judge-model-7b"
    assert params["judge.endpoint"] == "http://127.0.0.1:9/v1"
    assert params["judge.known_answer_judge.prompt.rubric"] == hashlib.sha256(
        RUBRIC.encode()).hexdigest()
    assert len(params["judge.known_answer_judge.prompt_sha256"]) == 64
    assert params["judge.calibration_sha256"] == hashlib.sha256(
        default_calibration_path().read_bytes()).hexdigest()
    assert params["judge.config_sha256"] == judge.key()
    assert float(params["judge.known_answer_judge.agreement"]) == 1.0
    assert params["judge.known_answer_judge.trusted"] == "true"
    assert int(params["judge.known_answer_judge.n"]) >= 4
    assert params["judge.temperature"] == "0.0" and params["judge.seed"] == "0"
    # never a secret: no password, no query-string key
    logged = json.dumps(params)
    assert "s3cret-pw" not in logged and "k3y-value" not in logged and "judge-user" not in logged


def test_an_untrusted_judge_is_logged_as_such(store: str) -> None:
    from mlflow import MlflowClient

    from aliasgate.registry.tracking import TrackingSession

    class Contrarian(KnownAnswerJudge):
        def measure(self, output: str, case: Case) -> Score:
            return Score(value=1.0 - super().measure(output, case).value)  # type: ignore[operator]

    scorer = Contrarian(JudgeConfig(provider="compatible", model="m", base_url=SECRET_URL))
    suite = Suite(name="caps", dataset="caps.jsonl", scorers=("exact_match",))
    result = run_suite(suite, dataset(), CallableCandidate(answer, name="callable:t:a"),
                       scorers=[scorer])
    assert result.metrics["known_answer_judge"].n == 0  # untrusted: scores nothing
    session = TrackingSession(store, "judges")
    params = MlflowClient(store).get_run(session.log_suite(result)).data.params
    assert params["judge.known_answer_judge.trusted"] == "false"
    assert float(params["judge.known_answer_judge.agreement"]) < 0.8
    assert "judge.known_answer_judge.reasons" in params


def test_suite_tables_are_mlflow_tables_and_logging_is_batched(store: str, monkeypatch) -> None:
    """The per-case table is byte for byte what MlflowClient.log_table writes, listed in the
    ``mlflow.loggedArtifacts`` tag, and a suite costs a fixed number of store writes."""
    from mlflow import MlflowClient

    from aliasgate.registry import tracking as tracking_mod
    from aliasgate.registry.tracking import TrackingSession

    suite = Suite(name="caps", dataset="caps.jsonl", scorers=("exact_match", "token_f1"))
    result = run_suite(suite, dataset(), CallableCandidate(answer, name="callable:t:a"))
    result.tables["per_group"] = [{"group": "a", "rate": 0.5}]
    session = TrackingSession(store, "tables")
    session.parent()
    client = session.client

    calls: list[str] = []
    for name in ("create_run", "log_batch", "log_artifacts", "log_artifact", "log_table",
                 "set_tag", "set_terminated"):
        real = getattr(client, name)

        def spy(*a: Any, _real: Any = real, _name: str = name, **k: Any) -> Any:
            calls.append(_name)
            return _real(*a, **k)

        monkeypatch.setattr(client, name, spy)
    child = session.log_suite(result, extra_params={"git.sha": "abc"})
    assert sorted(calls) == sorted(["create_run", "log_artifacts", "log_batch", "log_batch",
                                    "set_terminated"])
    monkeypatch.undo()
    session.finish()

    c = MlflowClient(store)
    run = c.get_run(child)
    assert run.info.status == "FINISHED"
    assert json.loads(run.data.tags[tracking_mod.LOGGED_ARTIFACTS_TAG]) == [
        {"path": "caps/cases.json", "type": "table"},
        {"path": "caps/per_group.json", "type": "table"}]
    assert run.data.params["git.sha"] == "abc" and run.data.params["suite"] == "caps"
    assert run.data.metrics["caps.n"] == 3.0 and "caps.exact_match_ci_low" in run.data.metrics
    parent = c.get_run(session.parent_run_id)
    assert parent.data.metrics["caps.exact_match"] == run.data.metrics["caps.exact_match"]

    ours = Path(c.download_artifacts(child, "caps/cases.json"))
    table = json.loads(ours.read_text())
    assert [row[table["columns"].index("id")] for row in table["data"]] == ["fr", "de", "it"]
    assert {"output", "status", "attempts", "exact_match", "token_f1"} <= set(table["columns"])

    # the same rows through MLflow's own log_table give the same table
    import pandas as pd

    ref = c.create_run(session.experiment_id).info.run_id
    c.log_table(ref, data=pd.DataFrame([r.row() for r in result.cases]),
                artifact_file="caps/cases.json")
    theirs = json.loads(Path(c.download_artifacts(ref, "caps/cases.json")).read_text())
    assert_same_table(table, theirs)


def assert_same_table(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert ours["columns"] == theirs["columns"]
    assert len(ours["data"]) == len(theirs["data"])
    for a_row, b_row in zip(ours["data"], theirs["data"], strict=True):
        for a, b in zip(a_row, b_row, strict=True):
            if isinstance(a, float | int) and not isinstance(a, bool) and b is not None:
                assert a == pytest.approx(b, rel=1e-9, abs=1e-10)  # pandas keeps 10 digits
            else:
                assert a == b


def test_table_json_reads_like_pandas_split_json() -> None:
    import numpy as np
    import pandas as pd

    from aliasgate.registry.tracking import table_json

    rows: list[dict[str, Any]] = [
        {"id": "a", "value": 0.1234567891234, "n": 3, "ok": True, "outputs": ["x", "y"]},
        {"id": "b/é", "value": float("nan"), "n": None, "ok": False, "outputs": None,
         "extra.error": "boom"},
        {"id": "c", "value": np.float64(2.5), "n": np.int64(4), "ok": np.bool_(True),
         "outputs": ["z"], "extra.error": None},
    ]
    ours = json.loads(table_json(rows))
    theirs = json.loads(pd.DataFrame(rows).to_json(orient="split", index=False))
    assert ours["columns"] == ["id", "value", "n", "ok", "outputs", "extra.error"]
    assert ours["data"][1][1] is None and ours["data"][0][5] is None  # NaN, missing: null
    assert_same_table(ours, theirs)
    assert json.loads(table_json([])) == {"columns": [], "data": []}


def test_log_batches_respect_mlflow_limits() -> None:
    from aliasgate.registry.tracking import _batches

    metrics, params, tags = list(range(1500)), list(range(230)), list(range(3))
    batches = list(_batches(metrics, params, tags))
    for b in batches:
        assert len(b.get("params", [])) <= 100 and len(b.get("tags", [])) <= 100
        assert sum(len(v) for v in b.values()) <= 1000
    assert sum((b.get("metrics", []) for b in batches), []) == metrics
    assert sum((b.get("params", []) for b in batches), []) == params
    assert sum((b.get("tags", []) for b in batches), []) == tags
    assert len(list(_batches(list(range(40)), list(range(30)), [1]))) == 1  # a suite: one request
    assert list(_batches([], [], [])) == []


def test_a_suite_whose_logging_fails_ends_failed(store: str, monkeypatch) -> None:
    from mlflow import MlflowClient

    from aliasgate.registry.tracking import TrackingSession

    suite = Suite(name="caps", dataset="caps.jsonl", scorers=("exact_match",))
    result = run_suite(suite, dataset(), CallableCandidate(answer, name="callable:t:a"))
    session = TrackingSession(store, "fails")
    session.parent()

    def broken_upload(*args: Any, **kwargs: Any) -> None:
        raise OSError("artifact store unreachable")

    monkeypatch.setattr(session.client, "log_artifacts", broken_upload)
    with pytest.raises(OSError, match="unreachable"):
        session.log_suite(result)
    runs = MlflowClient(store).search_runs([session.experiment_id],
                                            "tags.`aliasgate.kind` = 'suite'")
    assert [r.info.status for r in runs] == ["FAILED"]
