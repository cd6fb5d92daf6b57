"""Nothing is lost when a run dies: `pytest evals/` against the test OpenAI server is killed with
SIGKILL mid-way; the rerun asks the server only for the cases the cache does not have, and every
case is in its report."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from openai_server import OpenAITestServer

pytestmark = pytest.mark.integration

N = 30
#: Responses the killed run must have received before the kill (and not all of them).
KILL_AFTER = 8
START_TIMEOUT_S = 120.0
CONCURRENCY = 2


def _project(root: Path) -> list[str]:
    questions = [f"question {i:02d}" for i in range(N)]
    (root / "datasets").mkdir()
    (root / "datasets" / "qa.jsonl").write_text("".join(
        json.dumps({"id": f"q{i:02d}", "question": q, "answers": ["ok"], "topic": "t"}) + "\n"
        for i, q in enumerate(questions)))
    (root / "evals").mkdir()
    (root / "evals" / "test_qa.py").write_text(textwrap.dedent('''
        from aliasgate import Suite
        qa = Suite(name="qa", dataset="datasets/qa.jsonl", scorers=("exact_match",))
    '''))
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    return questions


def _cached_case_ids(root: Path) -> set[str]:
    with sqlite3.connect(root / ".aliasgate" / "cache" / "responses.sqlite") as conn:
        return {json.loads(meta)["case"] for (meta,) in conn.execute("SELECT meta FROM responses")}


def test_sigkill_mid_run_then_rerun_calls_only_the_missing_cases(tmp_path: Path) -> None:
    questions = _project(tmp_path)
    with OpenAITestServer(latency_s=0.25, answers=lambda messages: "ok") as server:
        cmd = [sys.executable, "-m", "pytest", "evals", "-p", "no:cacheprovider", "--no-progress",
               "--no-mlflow", "--concurrency", str(CONCURRENCY),
               "--candidate", f"openai-compatible:test-model@{server.base_url}"]
        log = (tmp_path / "killed.log").open("wb")
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
                                env={**os.environ})
        try:
            deadline = time.monotonic() + START_TIMEOUT_S
            while sum(r.status == 200 and r.finished > 0 for r in server.chat_requests()) < KILL_AFTER:
                assert proc.poll() is None, (tmp_path / "killed.log").read_text()
                assert time.monotonic() < deadline, "the run never reached the server"
                time.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)
            log.close()
        assert proc.returncode == -signal.SIGKILL
        answered = {r.prompt for r in server.chat_requests() if r.status == 200}
        cached = _cached_case_ids(tmp_path)
        # answers still on their way to the cache (at most one per worker) died with the process
        assert KILL_AFTER - CONCURRENCY <= len(cached) < N, "the kill must land mid-way"
        assert {f"question {c[1:]}" for c in cached} <= answered
        assert not (tmp_path / "reports").exists() or not list((tmp_path / "reports").rglob("*.jsonl"))

        server.reset()
        rerun = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300,
                               env={**os.environ})
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        asked = sorted(r.prompt for r in server.chat_requests())
        missing = sorted(q for i, q in enumerate(questions) if f"q{i:02d}" not in cached)
        assert asked == missing  # each missing case exactly once, nothing already cached

    (report,) = (tmp_path / "reports").iterdir()
    rows = [json.loads(line) for line in (report / "cases.jsonl").read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == [f"q{i:02d}" for i in range(N)]
    assert all(r["status"] == "scored" and r["output"] == "ok" for r in rows)
    summary = json.loads((report / "results.json").read_text())
    assert summary["model_calls"] == len(missing) and summary["cache_hits"] == len(cached)
