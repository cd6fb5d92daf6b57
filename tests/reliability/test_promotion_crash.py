"""`kill -9` at every step of a promotion leaves a state that a rerun completes.

Each case promotes v3 over @champion = v2 (with @previous = v1) in a child process that kills
itself at one failpoint (``ALIASGATE_FAILPOINT``), then reruns the same promotion: it must
succeed at once (the dead holder's lock is broken by liveness, not after 10 minutes), leave
@champion = v3 and @previous = v2 with v3's provenance tags, and close every audit record.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from aliasgate.registry.lock import LOCK_SUFFIX
from aliasgate.registry.promotion import FAILPOINT_ENV, audit_log, promote, rollback

PASS = {"schema": "aliasgate.verdict/1", "verdict": "pass", "complete": True,
        "rules": [{"id": "r", "severity": "block", "status": "pass"}]}

PROMOTE = """\
import json, sys
from mlflow import MlflowClient
from aliasgate.registry.promotion import promote
client = MlflowClient(tracking_uri=sys.argv[1])
promote(sys.argv[2], "3", expected_current="2", verdict=json.loads(sys.argv[3]),
        gate_run_id="gate-1", git_sha="abc", actor="crasher@ci", client=client)
"""

POINTS = ["promote.locked", "promote.audit-started", "promote.alias-moved",
          "promote.previous-moved", "promote.tagged"]


@pytest.fixture
def store(tmp_path: Path) -> tuple[Any, str, str]:
    from mlflow import MlflowClient

    from aliasgate.defaults import ensure_store

    uri = ensure_store(f"sqlite:///{tmp_path / 'mlflow.db'}")
    client = MlflowClient(tracking_uri=uri)
    name = f"crash-{uuid.uuid4().hex[:6]}"
    client.create_registered_model(name)
    (tmp_path / "src").mkdir()
    for _ in range(3):
        client.create_model_version(name, source=str(tmp_path / "src"))
    promote(name, "1", expected_current=None, verdict=PASS, client=client, actor="setup")
    promote(name, "2", expected_current="1", verdict=PASS, client=client, actor="setup")
    return client, uri, name


def _aliases(client: Any, name: str) -> dict[str, str]:
    return {k: str(v) for k, v in client.get_registered_model(name).aliases.items()}


@pytest.mark.parametrize("point", POINTS)
def test_kill_at_each_promotion_step_is_completed_by_a_rerun(store, point) -> None:
    client, uri, name = store
    env = {**os.environ, FAILPOINT_ENV: point, "MLFLOW_DISABLE_TELEMETRY": "true"}
    proc = subprocess.run([sys.executable, "-c", PROMOTE, uri, name, json.dumps(PASS)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    # the lock of the dead process is still there ...
    assert name + LOCK_SUFFIX in {m.name for m in client.search_registered_models()}
    # ... and the rerun breaks it at once (liveness), then completes or redoes the promotion
    t0 = time.monotonic()
    expected = _aliases(client, name)["champion"]  # what a rerun of the gate would read
    rec = promote(name, "3", expected_current=expected, verdict=PASS, gate_run_id="gate-1",
                  git_sha="abc", actor="rerun@ci", client=client, lock_timeout_s=20)
    assert time.monotonic() - t0 < 15
    assert _aliases(client, name) == {"champion": "3", "previous": "2"}
    tags = client.get_model_version(name, "3").tags
    assert tags["aliasgate.verdict"] == "pass" and tags["aliasgate.gate_run_id"] == "gate-1"
    assert tags["aliasgate.promoted_from"] == "2"
    assert rec.to_version == "3" and rec.from_version == "2"
    log = audit_log(name, client=client)
    assert all(e["status"] != "RUNNING" for e in log), log
    states = [e["state"] for e in log if e["attempted"] == "promote" and e["to_version"] == "3"
              and e["action"] != "refused"]
    if point in ("promote.locked",):  # killed before any record: the rerun promotes normally
        assert states == ["done"]
    elif point == "promote.audit-started":  # record written, nothing moved: aborted, redone
        assert sorted(states) == ["aborted", "done"]
    else:  # the alias had moved: the rerun completed that promotion
        assert states == ["completed"] and rec.recovered
    assert name + LOCK_SUFFIX not in {m.name for m in client.search_registered_models()}
    # and the history still rolls back correctly
    back = rollback(name, client=client, actor="ops")
    assert (back.from_version, back.to_version) == ("3", "2")
