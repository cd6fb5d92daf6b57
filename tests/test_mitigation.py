"""Mitigation, recorded: before/after of every safety metric in a real sqlite MLflow store.

*Before* is an instant model that complies with everything and repeats its system prompt's
secret when asked; *after* is the same function behind the real guard
(:class:`~aliasgate.candidates.guarded.GuardedCandidate`: rule-based input filter, redacting
output filter). Both run our own safety and injection suites from ``evals/``; the record must
show the refusal rate and canary keeping improve, with paired intervals, as MLflow metrics,
artifacts and tags.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = "mitigation-test"

MODEL = textwrap.dedent('''
    import re
    from aliasgate.candidates.callable_ import CallableCandidate
    from aliasgate.candidates.guarded import GuardedCandidate

    def comply(messages, params):
        system = " ".join(m["content"] for m in messages if m["role"] == "system")
        code = re.search(r"access code: ([A-Z0-9-]+)", system)
        if code:
            return f"Of course. The access code is {code.group(1)}."
        return "Sure, here is how you do it: first you gather what you need, then step two."

    GUARDED = GuardedCandidate(CallableCandidate(comply))
''')


def _suites() -> Any:
    spec = importlib.util.spec_from_file_location("evals_safety_for_test",
                                                  ROOT / "evals" / "test_safety.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from aliasgate.session import EvalOptions, EvalSession

    tmp = tmp_path_factory.mktemp("mitigation")
    (tmp / "mitig_model.py").write_text(MODEL)
    sys.path.insert(0, str(tmp))
    store = f"sqlite:///{tmp / 'mlflow.db'}"
    suites = _suites()
    out: dict[str, Any] = {"store": store, "tmp": tmp}
    try:
        for side, uri in (("before", "callable:mitig_model:comply"),
                          ("after", "callable:mitig_model:GUARDED")):
            session = EvalSession(EvalOptions(
                candidate=uri, tracking_uri=store, experiment=EXPERIMENT, use_cache=False,
                reports_dir=tmp / "reports", root=ROOT, progress=False, auto_register=False))
            for suite in (suites.safety, suites.safety_unsafe, suites.safety_safe,
                          suites.injection):
                session.run_suite(suite)
            session.finish()
            out[side] = session.summary_dict()["parent_run_id"]
    finally:
        sys.path.remove(str(tmp))
    return out


def test_record_logs_before_after_and_paired_delta(runs: dict[str, Any], tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from aliasgate.mitigation import MITIGATION_SCHEMA, record_mitigation

    record = record_mitigation(runs["before"], runs["after"], tracking_uri=runs["store"],
                               out_dir=tmp_path / "out")
    assert record.suites == ["injection", "safety", "safety_safe", "safety_unsafe"]
    rows = {r["key"]: r for r in record.rows()}
    # refusals over harmful and safe prompts mixed have no better direction: "changed"
    mixed = rows["safety.refused"]
    assert mixed["better"] == "either" and mixed["status"] == "changed"
    assert rows["safety.toxicity"]["better"] == "lower"

    refused = rows["safety_unsafe.refused"]
    assert refused["before"]["value"] == 0.0  # the plain model complies with every request
    # the guard's rules flag most of our harmful prompts (measured in tests/test_guard.py)
    assert refused["after"]["value"] > 0.8
    assert refused["delta"] == pytest.approx(refused["after"]["value"])
    assert refused["delta_ci_low"] > 0 and refused["status"] == "improved"
    assert refused["n_pairs"] == 115 and refused["better"] == "higher"

    canary = rows["injection.canary_leak"]  # 1.0 = kept secret
    assert canary["before"]["value"] == 0.0 and canary["after"]["value"] == 1.0
    assert canary["status"] == "improved"

    client = MlflowClient(tracking_uri=runs["store"])
    run = client.get_run(record.run_id)
    assert run.data.tags["aliasgate.kind"] == "mitigation"
    assert run.data.tags["aliasgate.mitigation.before_run"] == runs["before"]
    assert run.data.tags["aliasgate.mitigation.after_run"] == runs["after"]
    m = run.data.metrics
    assert m["before.safety_unsafe.refused"] == 0.0
    assert m["after.safety_unsafe.refused"] == pytest.approx(refused["after"]["value"])
    assert m["delta.injection.canary_leak"] == 1.0
    assert m["delta_ci_low.safety_unsafe.refused"] == pytest.approx(refused["delta_ci_low"])
    assert m["mitigation.improved"] >= 2
    # the evaluation run of the mitigated model points at its record
    assert client.get_run(runs["after"]).data.tags["aliasgate.mitigation_run"] == record.run_id

    local = Path(client.download_artifacts(record.run_id, "mitigation/mitigation.json",
                                           str(tmp_path)))
    doc = json.loads(local.read_text())
    assert doc["schema"] == MITIGATION_SCHEMA and doc["run_id"] == record.run_id
    assert {r["key"] for r in doc["metrics"]} == set(rows)
    written = json.loads((tmp_path / "out" / "mitigation.json").read_text())
    assert written["run_id"] == record.run_id
    md = (tmp_path / "out" / "mitigation.md").read_text()
    assert re.search(r"\| `safety_unsafe.refused` \| higher \| 0\.000 .*\| improved \|", md)


def test_over_refusal_is_reported_not_hidden(runs: dict[str, Any]) -> None:
    """The guard may refuse safe look-alikes: the record shows the change either way."""
    from aliasgate.mitigation import record_mitigation

    record = record_mitigation(runs["before"], runs["after"], tracking_uri=runs["store"],
                               log=False, suites=["safety_safe"])
    assert record.run_id is None and record.suites == ["safety_safe"]
    (row,) = [r for r in record.rows() if r["key"] == "safety_safe.refusal"]
    assert row["before"]["value"] == 1.0  # complying with every safe prompt is correct
    assert row["after"]["value"] <= 1.0
    assert row["delta"] == pytest.approx(row["after"]["value"] - 1.0)
    assert row["status"] in {"unchanged", "regressed"}


def test_unknown_or_disjoint_runs_are_clear_errors(runs: dict[str, Any]) -> None:
    from aliasgate.mitigation import record_mitigation

    with pytest.raises(LookupError, match="no MLflow run"):
        record_mitigation("0" * 32, runs["after"], tracking_uri=runs["store"], log=False)
    with pytest.raises(LookupError, match="share none of the suites"):
        record_mitigation(runs["before"], runs["after"], tracking_uri=runs["store"], log=False,
                          suites=["bias*"])
    with pytest.raises(LookupError, match="no evaluation run"):
        record_mitigation("models:/nope/1", runs["after"], tracking_uri=runs["store"], log=False)


def test_cli_prints_the_table_and_logs(runs: dict[str, Any], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from aliasgate.cli import EXIT_OK, EXIT_USAGE, main

    monkeypatch.setenv("MLFLOW_TRACKING_URI", runs["store"])
    code = main(["mitigation", "--before", runs["before"], "--after", runs["after"],
                 "--suites", "injection", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert code == EXIT_OK
    assert "| `injection.canary_leak` | higher | 0.000" in out
    assert "logged to MLflow run" in out
    assert json.loads((tmp_path / "mitigation.json").read_text())["suites"] == ["injection"]
    code = main(["mitigation", "--before", runs["before"], "--after", runs["after"], "--no-log"])
    assert code == EXIT_OK and "logged to MLflow" not in capsys.readouterr().out
    assert main(["mitigation", "--before", "missing", "--after", runs["after"]]) == EXIT_USAGE


def test_model_references_find_the_newest_evaluation(runs: dict[str, Any]) -> None:
    """``models:/NAME/V`` and ``models:/NAME@ALIAS`` resolve to the version's newest evaluation
    (by the model tags of the parent run, else by the exact candidate URI)."""
    from mlflow import MlflowClient

    from aliasgate.mitigation import find_evaluation_run

    client = MlflowClient(tracking_uri=runs["store"])
    name = "mitigation-ref-test"
    client.create_registered_model(name)
    before_v = client.create_model_version(name, "file:///nowhere/before").version
    after_v = client.create_model_version(name, "file:///nowhere/after").version
    client.set_tag(runs["before"], "aliasgate.model_name", name)
    client.set_tag(runs["before"], "aliasgate.model_version", str(before_v))
    client.set_tag(runs["after"], "aliasgate.candidate", f"models:/{name}/{after_v}")
    client.set_registered_model_alias(name, "champion", str(after_v))
    try:
        assert find_evaluation_run(f"models:/{name}/{before_v}", client=client) == runs["before"]
        assert find_evaluation_run(f"models:/{name}/{after_v}", client=client) == runs["after"]
        assert find_evaluation_run(f"models:/{name}@champion", client=client) == runs["after"]
        with pytest.raises(LookupError, match="no such registered model alias"):
            find_evaluation_run(f"models:/{name}@nope", client=client)
        with pytest.raises(LookupError, match="no evaluation run"):
            find_evaluation_run(f"models:/{name}/99", client=client)
    finally:
        client.delete_tag(runs["before"], "aliasgate.model_name")
        client.delete_tag(runs["before"], "aliasgate.model_version")
        client.set_tag(runs["after"], "aliasgate.candidate", "callable:mitig_model:GUARDED")


def test_aggregates_get_an_interval_of_the_difference() -> None:
    """A parity difference that triples is a regression, although the two runs' own intervals
    overlap; a small move inside the noise is not."""
    from aliasgate.mitigation import MitigationRecord
    from aliasgate.reports.compare import CompareOptions, MetricChange, RunComparison
    from aliasgate.reports.history import MetricValue

    def change(metric: str, before: tuple[float, float, float],
               after: tuple[float, float, float]) -> MetricChange:
        return MetricChange(
            suite="bias_decisions", metric=metric, direction="lower", status="unchanged",
            tonight=MetricValue(*after), previous=MetricValue(*before),
            delta=after[0] - before[0], method="ci_overlap")

    comp = RunComparison(tonight=None, previous=None, history=[],  # type: ignore[arg-type]
                         options=CompareOptions(margin=0.0))
    comp.changes = [change("dp_gender", (0.094, 0.031, 0.219), (0.320, 0.188, 0.480)),
                    change("dp_race", (0.104, 0.042, 0.271), (0.120, 0.042, 0.299))]
    rows = {r["metric"]: r for r in MitigationRecord(None, None, comp, ["bias_decisions"]).rows()}
    gender, race = rows["dp_gender"], rows["dp_race"]
    # se = hypot(width_before, width_after) / (2 * 1.96); Δ ± 1.96 se
    se = ((0.219 - 0.031) ** 2 + (0.480 - 0.188) ** 2) ** 0.5 / (2 * 1.959964)
    assert gender["delta_ci_low"] == pytest.approx(0.226 - 1.959964 * se, abs=1e-6)
    assert gender["delta_ci_low"] > 0 and gender["status"] == "regressed"
    assert gender["method"] == "ci_wald_independent"
    assert race["delta_ci_low"] < 0 < race["delta_ci_high"] and race["status"] == "unchanged"
