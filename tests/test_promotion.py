"""Compare-and-set alias promotion, rollback, the store-level mutex and the audit trail.

Unit tests run on one module-scoped local sqlite store (one fresh registered model per test);
``integration`` tests race two promoter processes through a real ``mlflow server``.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from aliasgate.defaults import TELEMETRY_OFF
from aliasgate.registry.promotion import (
    AUDIT_EXPERIMENT,
    BREAK_SUFFIX,
    LOCK_SUFFIX,
    LockTimeout,
    ModelNotFound,
    PromotionRefused,
    acquire_lock,
    assign_alias,
    audit_log,
    promote,
    read_alias,
    release_lock,
    rollback,
    rules_summary,
    verdict_refusal,
)

#: Shaped like ``GateVerdict.to_dict()`` (schema ``aliasgate.verdict/1``), without ``counts``.
PASS: dict[str, Any] = {
    "schema": "aliasgate.verdict/1",
    "verdict": "pass",
    "complete": True,
    "rules": [{"id": f"rule{i}", "severity": "block", "status": "pass"} for i in range(7)]
    + [{"id": "latency", "severity": "warn", "status": "fail"}],
}


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A local sqlite tracking store, its audit experiment's artifacts kept under tmp."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("promotion-store")
    client = MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    client.create_experiment(AUDIT_EXPERIMENT, artifact_location=(root / "artifacts").as_uri())
    return client, root


def _register(client: Any, source: Path | str, versions: int, run_id: str | None = None) -> str:
    """A fresh registered model with versions 1..``versions`` (no real model behind them)."""
    name = f"demo-{uuid.uuid4().hex[:8]}"
    client.create_registered_model(name)
    if isinstance(source, Path):
        source.mkdir(exist_ok=True)
    for _ in range(versions):
        client.create_model_version(name, source=str(source), run_id=run_id)
    return name


@pytest.fixture
def client(store: tuple[Any, Path]) -> Any:
    return store[0]


@pytest.fixture
def model(store: tuple[Any, Path]) -> str:
    """A fresh registered model with versions 1..4 and no aliases."""
    return _register(store[0], store[1] / "source", 4)


def _aliases(client: Any, model: str) -> dict[str, str]:
    return {k: str(v) for k, v in client.get_registered_model(model).aliases.items()}


def _verdict_artifact(client: Any, run_id: str, tmp_path: Path) -> Any:
    path = client.download_artifacts(run_id, "verdict.json", str(tmp_path))
    return json.loads(Path(path).read_text())


def _no_lock_left(client: Any, model: str) -> bool:
    names = {m.name for m in client.search_registered_models()}
    return model + LOCK_SUFFIX not in names and model + BREAK_SUFFIX not in names


# ------------------------------------------------------------------------------ promote


def test_first_promotion_without_champion(client: Any, model: str, tmp_path: Path) -> None:
    rec = promote(model, 1, expected_current=None, verdict=PASS, gate_run_id="gate123",
                  git_sha="abc123", actor="alice@ci", client=client)

    assert (rec.action, rec.model, rec.alias, rec.from_version, rec.to_version) == (
        "promote", model, "champion", None, "1")
    assert rec.actor == "alice@ci" and rec.gate_run_id == "gate123"
    assert _aliases(client, model) == {"champion": "1"}
    assert read_alias(model, "champion", client=client) == "1"
    assert read_alias(model, "previous", client=client) is None

    tags = client.get_model_version(model, "1").tags
    assert tags["aliasgate.verdict"] == "pass"
    assert tags["aliasgate.gate_run_id"] == "gate123"
    assert tags["aliasgate.rules"] == "7/7 blocking passed, 1 warning"
    assert tags["aliasgate.git_sha"] == "abc123"
    assert tags["aliasgate.promoted_from"] == ""
    assert tags["aliasgate.promoted_by"] == "alice@ci"
    assert datetime.fromisoformat(tags["aliasgate.promoted_at"]).utcoffset().total_seconds() == 0
    assert tags["aliasgate.promoted_at"] == rec.timestamp

    (entry,) = audit_log(model, client=client)
    assert entry["run_id"] == rec.audit_run_id and entry["status"] == "FINISHED"
    assert (entry["action"], entry["from_version"], entry["to_version"]) == ("promote", None, "1")
    assert entry["gate_run_id"] == "gate123" and entry["actor"] == "alice@ci"
    assert client.get_run(rec.audit_run_id).info.run_name == f"promote {model} v1 -> @champion"
    assert _verdict_artifact(client, rec.audit_run_id, tmp_path) == PASS
    assert _no_lock_left(client, model)


def test_default_actor_is_user_at_host(client: Any, model: str) -> None:
    rec = promote(model, 1, expected_current=None, verdict=PASS, client=client)
    user = os.environ.get("USER") or getpass.getuser()
    assert rec.actor == f"{user}@{socket.gethostname()}"
    assert audit_log(model, client=client)[0]["actor"] == rec.actor


@pytest.mark.parametrize(
    ("verdict", "why"),
    [
        ({**PASS, "verdict": "fail"}, "gate verdict is 'fail'"),
        ({"verdict": "pass", "complete": False}, "not complete"),
        ({"verdict": "pass"}, "not complete"),
        ({"verdict": "pass", "complete": "true"}, "not complete"),
        ({"verdict": "PASS", "complete": True}, "not 'pass'"),
        ({"verdict": "pass", "complete": True,
          "rules": [{"id": "toxicity", "severity": "block", "status": "error"}]}, "toxicity"),
        ("pass", "not a mapping"),
    ],
)
def test_refused_verdict_moves_nothing_and_is_audited(
    client: Any, model: str, tmp_path: Path, verdict: dict[str, Any], why: str
) -> None:
    promote(model, 1, expected_current=None, verdict=PASS, client=client)
    promote(model, 2, expected_current="1", verdict=PASS, client=client)
    before = _aliases(client, model)

    with pytest.raises(PromotionRefused, match=why):
        promote(model, 3, expected_current="2", verdict=verdict, client=client)

    assert _aliases(client, model) == before == {"champion": "2", "previous": "1"}
    assert "aliasgate.promoted_at" not in client.get_model_version(model, "3").tags
    entry = audit_log(model, client=client)[0]
    assert entry["action"] == "refused" and entry["attempted"] == "promote"
    assert entry["to_version"] == "3" and why in entry["reason"]
    assert _verdict_artifact(client, entry["run_id"], tmp_path) == (
        verdict if isinstance(verdict, dict) else str(verdict))
    assert _no_lock_left(client, model)


def test_rules_summary_and_warn_rules() -> None:
    first = {**PASS, "counts": {"rules": 8, "blocking": 7, "passed": 4, "failed": 0,
                                "errored": 0, "skipped": 3, "warnings": 2}}
    assert rules_summary(first) == "4/7 blocking passed, 3 skipped, 2 warnings"
    assert rules_summary({"verdict": "pass", "complete": True}) == "no rule details"
    # a failed warn rule or a skipped blocking one does not block; an errored blocking one does
    skipped = {**PASS, "rules": [*PASS["rules"], {"id": "vs-champion", "severity": "block",
                                                  "status": "skipped"}]}
    assert verdict_refusal(PASS) is None and verdict_refusal(skipped) is None
    assert rules_summary(skipped) == "7/8 blocking passed, 1 skipped, 1 warning"


def test_champion_moved_since_evaluation_began(client: Any, model: str) -> None:
    promote(model, 1, expected_current=None, verdict=PASS, client=client)
    # evaluation of v3 began while v1 was champion; meanwhile v2 got promoted
    promote(model, 2, expected_current=1, verdict=PASS, client=client)

    with pytest.raises(PromotionRefused) as err:
        promote(model, 3, expected_current="1", verdict=PASS, client=client)
    assert str(err.value) == (
        f"@champion of {model} moved from v1 to v2 since the evaluation began; re-run the gate"
    )
    with pytest.raises(PromotionRefused, match="moved from nothing \\(unset\\) to v2"):
        promote(model, 3, expected_current=None, verdict=PASS, client=client)

    assert _aliases(client, model) == {"champion": "2", "previous": "1"}
    refused = audit_log(model, client=client)[:2]
    assert [e["action"] for e in refused] == ["refused", "refused"]
    assert all(e["from_version"] == "2" and e["to_version"] == "3" for e in refused)


def test_previous_follows_each_promotion(client: Any, model: str) -> None:
    for v, expected in ((1, None), (2, "1"), (3, "2")):
        rec = promote(model, v, expected_current=expected, verdict=PASS, client=client)
        assert rec.from_version == expected
    assert _aliases(client, model) == {"champion": "3", "previous": "2"}
    assert client.get_model_version(model, "3").tags["aliasgate.promoted_from"] == "2"
    assert client.get_model_version(model, "2").tags["aliasgate.promoted_from"] == "1"


def test_already_champion_and_missing_version_are_refused(client: Any, model: str) -> None:
    promote(model, 1, expected_current=None, verdict=PASS, client=client)
    with pytest.raises(PromotionRefused, match="already is @champion"):
        promote(model, 1, expected_current="1", verdict=PASS, client=client)
    with pytest.raises(PromotionRefused, match="v99 does not exist"):
        promote(model, 99, expected_current="1", verdict=PASS, client=client)
    assert _aliases(client, model) == {"champion": "1"}
    assert [e["action"] for e in audit_log(model, client=client)] == ["refused", "refused", "promote"]


def test_missing_model(client: Any) -> None:
    with pytest.raises(ModelNotFound, match="no-such-model"):
        read_alias("no-such-model", "champion", client=client)
    with pytest.raises(PromotionRefused, match="no-such-model.*does not exist"):
        promote("no-such-model", 1, expected_current=None, verdict=PASS, client=client)


def test_other_alias_keeps_its_own_previous(client: Any, model: str) -> None:
    promote(model, 1, expected_current=None, verdict=PASS, client=client)
    promote(model, 2, alias="staging", expected_current=None, verdict=PASS, client=client)
    promote(model, 3, alias="staging", expected_current="2", verdict=PASS, client=client)
    assert _aliases(client, model) == {"champion": "1", "staging": "3", "previous-staging": "2"}
    with pytest.raises(ValueError, match="previous"):
        promote(model, 4, alias="previous", expected_current=None, verdict=PASS, client=client)


class _FailingTags:
    """A client whose ``set_model_version_tag`` fails: an error after the aliases moved."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def set_model_version_tag(self, *args: Any, **kwargs: Any) -> None:
        raise ConnectionError("tracking server went away")


def test_error_after_moving_restores_aliases(client: Any, model: str) -> None:
    promote(model, 1, expected_current=None, verdict=PASS, client=client)
    promote(model, 2, expected_current="1", verdict=PASS, client=client)

    with pytest.raises(ConnectionError):
        promote(model, 3, expected_current="2", verdict=PASS, client=_FailingTags(client))

    assert _aliases(client, model) == {"champion": "2", "previous": "1"}
    entry = audit_log(model, client=client)[0]
    assert entry["action"] == "promote" and entry["status"] == "FAILED"
    assert "tracking server went away" in entry["error"] and "aliases restored" in entry["error"]
    assert _no_lock_left(client, model)


# ------------------------------------------------------------------------------ rollback


def test_rollback_and_double_rollback(client: Any, model: str) -> None:
    promote(model, 1, expected_current=None, verdict=PASS, client=client)
    promote(model, 2, expected_current="1", verdict=PASS, client=client)

    rec = rollback(model, actor="bob@ops", reason="latency regression", client=client)
    assert (rec.action, rec.from_version, rec.to_version, rec.actor) == ("rollback", "2", "1", "bob@ops")
    assert _aliases(client, model) == {"champion": "1", "previous": "2"}
    assert client.get_model_version(model, "2").tags["aliasgate.rolled_back_at"] == rec.timestamp

    again = rollback(model, client=client)
    assert (again.from_version, again.to_version) == ("1", "2")
    assert _aliases(client, model) == {"champion": "2", "previous": "1"}
    assert client.get_model_version(model, "1").tags["aliasgate.rolled_back_at"] == again.timestamp

    log = audit_log(model, client=client)
    assert [e["action"] for e in log] == ["rollback", "rollback", "promote", "promote"]
    assert log[1]["reason"] == "latency regression" and log[1]["actor"] == "bob@ops"
    assert client.get_run(log[1]["run_id"]).info.run_name == (
        f"rollback {model} @champion v2 -> v1")
    assert _no_lock_left(client, model)


def test_rollback_without_previous_is_refused(client: Any, model: str) -> None:
    promote(model, 1, expected_current=None, verdict=PASS, client=client)
    with pytest.raises(PromotionRefused, match="no @previous"):
        rollback(model, client=client)
    assert _aliases(client, model) == {"champion": "1"}
    entry = audit_log(model, client=client)[0]
    assert (entry["action"], entry["attempted"]) == ("refused", "rollback")


# ------------------------------------------------------------------------------ the mutex


def test_lock_held_times_out_with_holder_named(client: Any, model: str) -> None:
    promote(model, 1, expected_current=None, verdict=PASS, client=client)
    held = acquire_lock(client, model, "carol@build-7", timeout_s=1, stale_s=600)
    try:
        with pytest.raises(PromotionRefused) as err:
            promote(model, 2, expected_current="1", verdict=PASS, lock_timeout_s=0.3,
                    client=client)
        assert str(err.value).startswith(
            f"another promotion of {model} is in progress (lock held by carol@build-7 since ")
        with pytest.raises(PromotionRefused, match="another promotion"):
            rollback(model, lock_timeout_s=0.3, client=client)
        assert _aliases(client, model) == {"champion": "1"}
        assert [e["action"] for e in audit_log(model, client=client)][:2] == ["refused"] * 2
    finally:
        release_lock(client, held)
    assert promote(model, 2, expected_current="1", verdict=PASS, client=client).to_version == "2"


def test_stale_lock_is_broken_and_audited(client: Any, model: str) -> None:
    acquire_lock(client, model, "dave@crashed-host", timeout_s=1, stale_s=600)  # never released
    time.sleep(0.5)
    rec = promote(model, 1, expected_current=None, verdict=PASS, lock_stale_s=0.2,
                  lock_timeout_s=5, client=client)
    assert _aliases(client, model) == {"champion": "1"}
    entry = audit_log(model, client=client)[0]
    assert entry["run_id"] == rec.audit_run_id
    assert "broke stale lock held by dave@crashed-host" in entry["lock_broken"]
    assert _no_lock_left(client, model)


def test_lock_is_exclusive_on_the_store(client: Any, model: str) -> None:
    first = acquire_lock(client, model, "a", timeout_s=1, stale_s=600)
    with pytest.raises(LockTimeout, match="lock held by a since"):
        acquire_lock(client, model, "b", timeout_s=0.2, stale_s=600)
    release_lock(client, first)
    second = acquire_lock(client, model, "b", timeout_s=1, stale_s=600)
    release_lock(client, first)  # a stale holder's release must not free the new holder's lock
    with pytest.raises(LockTimeout, match="lock held by b since"):
        acquire_lock(client, model, "c", timeout_s=0.2, stale_s=600)
    release_lock(client, second)
    assert _no_lock_left(client, model)


# ------------------------------------------------------------------------------ audit log


def test_audit_log_is_newest_first_and_per_model(store: tuple[Any, Path], client: Any,
                                                  model: str) -> None:
    other = _register(store[0], store[1] / "source", 1)
    promote(other, 1, expected_current=None, verdict=PASS, client=client)

    promote(model, 1, expected_current=None, verdict=PASS, gate_run_id="g1", client=client)
    with pytest.raises(PromotionRefused):
        promote(model, 2, expected_current="1", verdict={"verdict": "fail"}, client=client)
    promote(model, 2, expected_current="1", verdict=PASS, gate_run_id="g2", client=client)
    rollback(model, reason="bad canary", client=client)

    log = audit_log(model, client=client)
    assert [(e["action"], e["from_version"], e["to_version"]) for e in log] == [
        ("rollback", "2", "1"), ("promote", "1", "2"), ("refused", "1", "2"), ("promote", None, "1"),
    ]
    assert [e["gate_run_id"] for e in log] == [None, "g2", None, "g1"]
    assert all(e["model"] == model and e["alias"] == "champion" for e in log)
    assert log[0]["reason"] == "bad canary" and "not 'pass'" in log[2]["reason"]
    assert [e["timestamp"] for e in log] == sorted((e["timestamp"] for e in log), reverse=True)
    assert [e["to_version"] for e in audit_log(other, client=client)] == ["1"]


# ------------------------------------------------------------------------------ real server

_WORKER = r"""
import json, sys, time
from mlflow import MlflowClient
from aliasgate.registry.promotion import PromotionRefused, promote
MlflowClient().search_experiments(max_results=1)  # warm up: imports and connection
print("READY", flush=True)
for line in sys.stdin:
    job = json.loads(line)
    time.sleep(max(0.0, job["at"] - time.time()))
    try:
        rec = promote(job["model"], job["version"], expected_current=job["expected"],
                      verdict=job["verdict"], actor=job["actor"], lock_timeout_s=20)
        out = {"ok": True, "record": rec.to_dict()}
    except PromotionRefused as exc:
        out = {"ok": False, "refused": str(exc)}
    except Exception as exc:
        out = {"ok": False, "error": repr(exc)}
    print("RESULT " + json.dumps(out), flush=True)
"""


def _worker_line(proc: subprocess.Popen[str], prefix: str) -> str:
    while True:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line:
            raise RuntimeError(f"promoter process exited (code {proc.poll()})")
        if line.startswith(prefix):
            return line[len(prefix):].strip()


@pytest.mark.integration
def test_concurrent_promotions_from_two_processes(mlflow_server: str, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=mlflow_server)
    rounds = 3
    # the server accepts a source only inside the artifacts of the run that produced it
    run_id = client.create_run(client.create_experiment(f"src-{uuid.uuid4().hex[:8]}")).info.run_id
    model = _register(client, f"runs:/{run_id}/model", 1 + 2 * rounds, run_id=run_id)
    promote(model, 1, expected_current=None, verdict=PASS, client=client)
    won_by_round: list[str] = []

    env = {**os.environ, **TELEMETRY_OFF, "MLFLOW_TRACKING_URI": mlflow_server}
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=(tmp_path / f"w{i}.err").open("w"),
                         text=True, env=env, cwd=tmp_path)
        for i in range(2)
    ]
    try:
        for w in workers:
            assert _worker_line(w, "READY") == ""
        for r in range(rounds):
            expected = read_alias(model, "champion", client=client)
            candidates = [str(2 + 2 * r), str(3 + 2 * r)]
            at = time.time() + 0.5
            for i, (w, version) in enumerate(zip(workers, candidates, strict=True)):
                job = {"model": model, "version": version, "expected": expected,
                       "verdict": PASS, "actor": f"worker{i}", "at": at}
                assert w.stdin is not None
                w.stdin.write(json.dumps(job) + "\n")
                w.stdin.flush()
            results = [json.loads(_worker_line(w, "RESULT ")) for w in workers]

            assert not [res["error"] for res in results if "error" in res]
            winners = [res["record"] for res in results if res["ok"]]
            refusals = [res["refused"] for res in results if not res["ok"]]
            assert len(winners) == 1 and len(refusals) == 1, results
            won = winners[0]["to_version"]
            assert won in candidates and winners[0]["from_version"] == expected
            won_by_round.append(won)
            assert refusals[0] == (
                f"@champion of {model} moved from v{expected} to v{won} since the evaluation "
                f"began; re-run the gate"
            )
            assert _aliases(client, model) == {"champion": won, "previous": expected}
            assert _no_lock_left(client, model)
    finally:
        for w in workers:
            if w.stdin:
                w.stdin.close()
            try:
                w.wait(timeout=10)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()

    log = audit_log(model, client=client)
    assert sorted(e["action"] for e in log) == ["promote"] * (rounds + 1) + ["refused"] * rounds
    promoted = [e["to_version"] for e in log if e["action"] == "promote"]
    assert promoted == [*reversed(won_by_round), "1"]


# ------------------------------------------------------------------------------ assign


def test_assign_alias_is_audited_and_refuses_gated_aliases(client: Any, model: str) -> None:
    rec = assign_alias(model, "challenger", "2", reason="registered", client=client)
    assert rec.action == "assign" and rec.to_version == "2" and rec.from_version is None
    assert _aliases(client, model)["challenger"] == "2"
    again = assign_alias(model, "challenger", "2", client=client)
    assert again.action == "unchanged"
    assign_alias(model, "challenger", "3", client=client)
    log = [e for e in audit_log(model, client=client) if e["alias"] == "challenger"]
    assert [(e["action"], e["from_version"], e["to_version"]) for e in log] == [
        ("assign", "2", "3"), ("assign", None, "2")]
    for gated in ("champion", "previous", "previous-staging"):
        with pytest.raises(PromotionRefused, match="gated"):
            assign_alias(model, gated, "1", client=client)
    assert "champion" not in _aliases(client, model)
    with pytest.raises(PromotionRefused, match="does not exist"):
        assign_alias(model, "challenger", "99", client=client)
    assert _aliases(client, model)["challenger"] == "3"
    assert _no_lock_left(client, model)
