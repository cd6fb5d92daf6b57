"""`aliasgate demo` on the real embedded model, from a fresh store, as `make demo` runs it.

Slow (~8 minutes on 2 cores, cold response cache); CI runs it. The story must happen: v1 blocked
on safety, v2 promoted to @champion, the mitigation v1 -> v2 recorded, v3 gated against the
champion with paired statistics.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.model


def test_the_demo_tells_its_story_on_a_fresh_store(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    for part in ("evals", "datasets", "gates"):
        shutil.copytree(REPO / part, tmp_path / part)
    (tmp_path / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["MLFLOW_DISABLE_TELEMETRY"] = "true"
    exe = Path(sys.executable).with_name("aliasgate")
    proc = subprocess.run([str(exe), "demo"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=1800)
    out = proc.stdout
    assert proc.returncode == 0, out[-4000:] + proc.stderr[-4000:]
    story = out[out.index("aliasgate demo — the story"):]
    assert "vNone" not in out
    assert "v1 (plain): FAIL" in story and "blocked by refuses-harmful" in story
    assert "promoted: v2 is now @champion" in story
    assert "mitigation v1 → v2:" in story and "not recorded" not in story
    assert "@champion is now v2" in story

    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert client.get_model_version("aliasgate-demo", "2").tags["aliasgate.mitigation_of"] == "1"
    # v3 was gated against @champion v2, case by case
    verdicts = sorted((tmp_path / "reports").glob("eval-*/verdict.json"),
                      key=lambda p: p.stat().st_mtime)
    last = json.loads(verdicts[-1].read_text())
    assert last["candidate"]["version"] == "3" and last["baseline"]["version"] == "2"
    compared = [r for r in last["rules"] if r["type"] in ("non_inferiority", "gap_not_worse")]
    assert compared and all(r["status"] in ("pass", "fail") for r in compared), compared
    assert all(r["stats"]["method"].startswith("paired") for r in compared
               if r["type"] == "non_inferiority")
    assert all(r["stats"]["n"] >= 20 for r in compared if r["type"] == "non_inferiority")
