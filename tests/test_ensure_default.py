"""`ensure_default_candidate` is atomic: two first runs racing on one fresh store (two pytest
processes, say) register exactly one version of the default model.

The registration itself is replaced by a stand-in in the racing processes (it creates a model
version and sets the alias, after a pause as long as a real ``log_model``), so the race needs no
GGUF; the check, the mutex and the re-check are the real ones. Against a local sqlite store, and
(``integration``) against a real ``mlflow server``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from aliasgate.defaults import TELEMETRY_OFF
from aliasgate.registry.models import ENSURE_LOCK_KEY
from aliasgate.registry.promotion import LOCK_SUFFIX

_WORKER = r"""
import json, sys, time
from pathlib import Path
from mlflow import MlflowClient
import aliasgate.registry.models as models

model, source, run_id, barrier, me, n = sys.argv[1:7]
barrier, n = Path(barrier), int(n)


def register(config, *, model_name, alias, experiment, **_):
    c = MlflowClient()
    time.sleep(1.5)  # a real registration (log_model) takes seconds: the window of the race
    try:
        c.create_registered_model(model_name)
    except Exception:
        pass  # created by the other process
    mv = c.create_model_version(model_name, source=source, run_id=run_id or None)
    c.set_registered_model_alias(model_name, alias, mv.version)
    return models.RegisteredCandidate(name=model_name, version=int(mv.version),
                                      uri=f"models:/{model_name}/{mv.version}", run_id="",
                                      alias=alias)


models.register_local_candidate = register
MlflowClient().search_experiments(max_results=1)  # warm up: imports and connection
(barrier / me).touch()
deadline = time.monotonic() + 120
while len(list(barrier.iterdir())) < n and time.monotonic() < deadline:
    time.sleep(0.01)
try:
    created = models.ensure_default_candidate(model_name=model, alias="challenger",
                                              lock_timeout_s=60)
    out = {"created": None if created is None else created.version}
except Exception as exc:
    out = {"error": repr(exc)}
print("RESULT " + json.dumps(out), flush=True)
"""


def _race(
    uri: str, source: str, tmp_path: Path, run_id: str = "", processes: int = 2
) -> tuple[str, list[dict[str, Any]]]:
    model = f"default-{uuid.uuid4().hex[:8]}"
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    env = {**os.environ, **TELEMETRY_OFF, "MLFLOW_TRACKING_URI": uri}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, model, source, run_id, str(barrier), f"w{i}",
             str(processes)],
            stdout=subprocess.PIPE, stderr=(tmp_path / f"w{i}.err").open("w"), text=True,
            env=env, cwd=tmp_path,
        )
        for i in range(processes)
    ]
    results = []
    for i, p in enumerate(procs):
        out, _ = p.communicate(timeout=240)
        lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
        assert lines, f"worker {i} exited {p.returncode}: {(tmp_path / f'w{i}.err').read_text()[-3000:]}"
        results.append(json.loads(lines[-1].removeprefix("RESULT ")))
    return model, results


def _check(client: Any, model: str, results: list[dict[str, Any]]) -> None:
    assert not [r["error"] for r in results if "error" in r], results
    created = [r["created"] for r in results if r["created"] is not None]
    versions = client.search_model_versions(f"name='{model}'")
    assert len(versions) == 1, f"{len(versions)} versions registered: {results}"
    assert created == [1], results  # exactly one process registered; the other found it
    assert str(client.get_model_version_by_alias(model, "challenger").version) == "1"
    names = {m.name for m in client.search_registered_models()}
    assert model + ENSURE_LOCK_KEY + LOCK_SUFFIX not in names  # the mutex was released


def test_two_first_runs_register_one_version_sqlite(tmp_path: Path) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    client.search_experiments(max_results=1)  # create the tables once, before the race
    source = tmp_path / "source"
    source.mkdir()
    model, results = _race(uri, str(source), tmp_path)
    _check(client, model, results)


@pytest.mark.integration
def test_two_first_runs_register_one_version_server(mlflow_server: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    # the server accepts a source only inside the artifacts of the run that produced it
    run_id = client.create_run(client.create_experiment(f"src-{uuid.uuid4().hex[:8]}")).info.run_id
    model, results = _race(mlflow_server, f"runs:/{run_id}/model", tmp_path, run_id)
    _check(client, model, results)


def test_an_existing_alias_needs_no_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The common case (the alias resolves) neither takes the mutex nor registers anything."""
    from mlflow import MlflowClient
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    import aliasgate.registry.models as models
    import aliasgate.registry.promotion as promotion

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    client.create_registered_model("m")
    (tmp_path / "src").mkdir()
    client.create_model_version("m", source=str(tmp_path / "src"))
    client.set_registered_model_alias("m", "challenger", "1")

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("must not be called")

    monkeypatch.setattr(promotion, "acquire_lock", boom)
    monkeypatch.setattr(models, "register_local_candidate", boom)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with _use_tracking_uri(uri):  # restores MLflow's global URI afterwards
        assert models.ensure_default_candidate(model_name="m", alias="challenger") is None
