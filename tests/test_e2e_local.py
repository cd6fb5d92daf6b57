"""End to end on the real embedded model: a bare `pytest evals/` on a fresh store registers
SmolLM2 as aliasgate-demo @challenger, evaluates a handful of golden cases through the MLflow
pyfunc, logs to MLflow, and a rerun makes no model call."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.model


@pytest.fixture
def project(pytester: pytest.Pytester) -> Path:
    pytest.importorskip("llama_cpp")
    (pytester.path / "evals").mkdir()
    shutil.copy(REPO / "evals" / "test_golden.py", pytester.path / "evals")
    (pytester.path / "datasets").mkdir()
    shutil.copy(REPO / "datasets" / "golden_qa.jsonl", pytester.path / "datasets")
    (pytester.path / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    return pytester.path


def test_bare_pytest_evals_on_fresh_store(pytester: pytest.Pytester, project: Path) -> None:
    args = ("evals", "--limit", "5", "--no-progress", "-p", "no:cacheprovider")
    res = pytester.runpytest_subprocess(*args)
    res.assert_outcomes(passed=1)
    out = res.stdout.str() + res.stderr.str()
    assert "registered the embedded SmolLM2 candidate as aliasgate-demo v1 @challenger" in out
    assert "model calls: 5, served from cache: 0" in out
    assert (project / "mlflow.db").exists()

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{project / 'mlflow.db'}")
    mv = client.get_model_version_by_alias("aliasgate-demo", "challenger")
    assert str(mv.version) == "1"
    exp = client.get_experiment_by_name("aliasgate")
    child = next(r for r in client.search_runs([exp.experiment_id])
                 if r.data.tags.get("aliasgate.suite") == "golden")
    assert child.data.metrics["golden.n"] == 5
    assert child.data.metrics["golden.unmeasured"] == 0
    assert child.data.params["candidate.model_version"] == "1"
    assert child.data.params["gen.max_tokens"] == "32"
    assert 0.0 <= child.data.metrics["golden.contains"] <= 1.0
    local = client.download_artifacts(child.info.run_id, "golden/cases.json", str(project))
    table = json.loads(Path(local).read_text())  # mlflow's table format: columns + data
    outputs = [r[table["columns"].index("output")] for r in table["data"]]
    assert len(outputs) == 5 and all(isinstance(o, str) and o for o in outputs)

    # rerun: same store, no new version, every answer from the cache, same scores
    res2 = pytester.runpytest_subprocess(*args)
    res2.assert_outcomes(passed=1)
    out2 = res2.stdout.str()
    assert "model calls: 0, served from cache: 5" in out2
    assert "registered the embedded" not in out2 + res2.stderr.str()
    assert len(client.search_model_versions("name='aliasgate-demo'")) == 1
