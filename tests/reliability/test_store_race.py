"""Two (or more) first runs on a fresh sqlite store must not race MLflow's schema creation."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

FIRST_RUN = """\
import sys
from aliasgate.reports.history import tracking_client
client = tracking_client(sys.argv[1])
client.create_experiment("first-run-" + sys.argv[2])
print("ok")
"""


@pytest.mark.parametrize("round_", range(2))
def test_concurrent_first_runs_on_a_fresh_sqlite_store_all_succeed(tmp_path: Path, round_: int) -> None:
    store = f"sqlite:///{tmp_path / 'fresh' / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    procs = [subprocess.Popen([sys.executable, "-c", FIRST_RUN, store, str(i)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    outcomes = [p.communicate(timeout=240) for p in procs]
    for p, (out, err) in zip(procs, outcomes, strict=True):
        assert p.returncode == 0, err[-2000:]
        assert out.strip().endswith("ok")
    from mlflow import MlflowClient

    names = {e.name for e in MlflowClient(store).search_experiments()}
    assert {f"first-run-{i}" for i in range(4)} <= names
    assert (tmp_path / "fresh" / "mlflow.db-aliasgate.lock").exists()
