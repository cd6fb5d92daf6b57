"""Audited compare-and-set promotion and rollback of registry aliases.

MLflow has no compare-and-set on aliases, so :func:`promote` builds one: under a mutex it
re-reads ``@alias`` right before moving it and refuses unless it still points at the version
the evaluation began with (``expected_current``). Every move keeps the old target in
``@previous`` so that :func:`rollback` can undo it, and every attempt, refused ones included,
is one run in the ``aliasgate-audit`` experiment (:func:`audit_log`).

The mutex
---------
:mod:`aliasgate.registry.lock`: a registered model ``<model>.aliasgate-lock`` whose name the
tracking store keeps unique. Measured on MLflow 3.17: 4 processes racing
``create_registered_model`` on one name, 3 rounds, against a sqlite store and against ``mlflow
server`` (sqlite backend) -- exactly one winner per round, every loser
``RESOURCE_ALREADY_EXISTS`` (``tests/test_promotion.py`` re-checks it with concurrent
promotions). A lock whose holder process is gone is broken at once; one from another host once
stale. Before moving anything the holder re-checks that the lock still carries its token.

Crash recovery
--------------
Every move is written down before it happens and completed after: the audit run is created
with ``aliasgate.audit.state = moving`` (and what each alias pointed at), the gated alias moves
first, then ``@previous``, then the version's provenance tags, and only then is the run closed
(``state = done``). A process killed anywhere in between leaves a ``moving`` record, and the
next promote/rollback/assign of that alias — under the lock, before anything else — finishes
it (the alias had moved: ``@previous`` and the tags are written, ``state = completed``) or
closes it as ``aborted`` (the alias had not moved: nothing to undo). A rerun of an interrupted
promotion therefore completes it instead of answering "already is @champion".

Limits: only callers that go through this module are serialised -- a direct
``set_registered_model_alias`` (UI, another tool) bypasses the mutex, though the re-read still
catches any move that happened before ours. A holder that stalls for longer than
``lock_stale_s`` between its token check and its alias move could still race the process
that broke its lock.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from aliasgate.defaults import quiet_environment
from aliasgate.registry.lock import (
    BREAK_SUFFIX,
    LOCK_SUFFIX,
    MISSING_CODES,
    STALE_LOCK_S,
    LockTimeout,
    StoreLock,
    acquire_lock,
    error_code,
    lock_info,
    now_iso,
    release_lock,
)

AUDIT_EXPERIMENT = "aliasgate-audit"
DEFAULT_ALIAS = "champion"
PREVIOUS_ALIAS = "previous"

_log = logging.getLogger(__name__)
_AUDIT = "aliasgate.audit."


class PromotionRefused(RuntimeError):
    """An alias move was refused; nothing was moved. The message says why."""


class ModelNotFound(LookupError):
    """The registered model does not exist in the tracking store in use."""


@dataclass(frozen=True)
class PromotionRecord:
    """One alias move, as returned by :func:`promote` and :func:`rollback`.

    Attributes:
        action: ``"promote"`` or ``"rollback"``.
        model: Registered model name.
        alias: The alias that moved (``champion``).
        from_version: The version it pointed at before (None: it was unset).
        to_version: The version it points at now.
        timestamp: UTC ISO-8601 time of the move.
        actor: Who moved it (``$USER@hostname`` by default).
        gate_run_id: The MLflow run of the gate that allowed it (None for a rollback).
        audit_run_id: The run in the ``aliasgate-audit`` experiment that records it.
    """

    action: str
    model: str
    alias: str
    from_version: str | None
    to_version: str
    timestamp: str
    actor: str
    gate_run_id: str | None
    audit_run_id: str
    #: True when this call completed an earlier, interrupted move (crash recovery).
    recovered: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# public API


def read_alias(model_name: str, alias: str, *, client: Any = None) -> str | None:
    """The version ``@alias`` of ``model_name`` points at, or None if the alias is unset.

    Args:
        model_name: Registered model name.
        alias: Alias name, without ``@``.
        client: An ``MlflowClient`` (default: one for ``mlflow.get_tracking_uri()``).

    Raises:
        ModelNotFound: the registered model does not exist.
    """
    c = _client(client)
    try:
        model = c.get_registered_model(model_name)
    except Exception as exc:
        if error_code(exc) in MISSING_CODES:
            raise ModelNotFound(
                f"registered model {model_name!r} does not exist in {_uri(c)}"
            ) from exc
        raise
    version = (model.aliases or {}).get(alias)
    return None if version is None else str(version)


def previous_alias(alias: str = DEFAULT_ALIAS) -> str:
    """The alias that keeps the former target of ``alias``: ``previous`` for ``champion``.

    Args:
        alias: The promoted alias.
    """
    return PREVIOUS_ALIAS if alias == DEFAULT_ALIAS else f"{PREVIOUS_ALIAS}-{alias}"


def promote(
    model_name: str,
    version: str | int,
    *,
    alias: str = DEFAULT_ALIAS,
    expected_current: str | int | None,
    verdict: Mapping[str, Any],
    gate_run_id: str | None = None,
    git_sha: str | None = None,
    actor: str | None = None,
    lock_timeout_s: float = 30.0,
    lock_stale_s: float = STALE_LOCK_S,
    client: Any = None,
) -> PromotionRecord:
    """Move ``@alias`` to ``version`` if the gate passed and nobody moved it meanwhile.

    Fails closed: refuses unless ``verdict["verdict"] == "pass"`` and ``verdict["complete"] is
    True`` (and no blocking rule listed in ``verdict["rules"]`` explicitly failed). Under the
    store-level mutex it re-reads ``@alias`` and refuses if it no longer points at
    ``expected_current``; otherwise ``@previous`` gets the old target, ``@alias`` the candidate,
    and the candidate version is tagged ``aliasgate.verdict``, ``aliasgate.gate_run_id``,
    ``aliasgate.rules``, ``aliasgate.git_sha``, ``aliasgate.promoted_at``,
    ``aliasgate.promoted_from`` and ``aliasgate.promoted_by`` (empty string = none). Every
    attempt is an audit run; a refused one moves nothing.

    Args:
        model_name: Registered model name.
        version: The candidate model version.
        alias: The alias to move.
        expected_current: The version ``@alias`` pointed at when the evaluation began (None:
            there was no champion).
        verdict: The gate verdict (``aliasgate.verdict/1``: ``verdict``, ``complete``,
            ``counts``, ``rules``); logged as ``verdict.json`` on the audit run.
        gate_run_id: The MLflow run that holds the gate results.
        git_sha: Commit of the evaluated code.
        actor: Who promotes (default ``$USER@hostname``).
        lock_timeout_s: How long to wait for a concurrent promotion of the same model.
        lock_stale_s: Age after which a lock is considered abandoned and broken.
        client: An ``MlflowClient`` (default: one for ``mlflow.get_tracking_uri()``).

    Raises:
        PromotionRefused: verdict not a complete pass, alias moved since the evaluation
            began, candidate already there or missing, or the lock could not be taken.
    """
    c = _client(client)
    to_version = str(version)
    expected = None if expected_current is None else str(expected_current)
    attempt = _Attempt(
        c, "promote", model_name, alias, resolve_actor(actor), to_version=to_version,
        from_version=expected, gate_run_id=gate_run_id, verdict=verdict, git_sha=git_sha,
    )
    _check_alias(alias)
    refusal = verdict_refusal(verdict)
    if refusal:
        attempt.refuse(f"refusing to promote {model_name} v{to_version} to @{alias}: {refusal}")
    with attempt.locked(lock_timeout_s, lock_stale_s):
        _failpoint("promote.locked")
        completed = recover(c, model_name, alias, attempt.actor)
        current = attempt.read(alias)
        attempt.from_version = current
        if current == to_version:
            done = next((r for r in completed if r.to_version == to_version), None)
            if done is not None:  # this promotion was interrupted after its move: now complete
                return done
        if current != expected:
            attempt.refuse(
                f"@{alias} of {model_name} moved from {_v(expected)} to {_v(current)} since the "
                f"evaluation began; re-run the gate"
            )
        if current == to_version:
            attempt.refuse(f"v{to_version} already is @{alias} of {model_name}; nothing to do")
        attempt.require_version(to_version)
        attempt.check_lock()
        prev = previous_alias(alias)
        with attempt.moving(previous_before=attempt.read(prev)) as move:
            _failpoint("promote.audit-started")
            move(alias, to_version)  # the gated alias first: recovery completes from there
            _failpoint("promote.alias-moved")
            if current is not None:
                move(prev, current)
            _failpoint("promote.previous-moved")
            _tag_promoted(c, model_name, to_version, attempt._tags("promote"))
            _failpoint("promote.tagged")
    return attempt.record()


def rollback(
    model_name: str,
    *,
    alias: str = DEFAULT_ALIAS,
    actor: str | None = None,
    reason: str | None = None,
    lock_timeout_s: float = 30.0,
    lock_stale_s: float = STALE_LOCK_S,
    client: Any = None,
) -> PromotionRecord:
    """Point ``@alias`` back at ``@previous``, and ``@previous`` at the version rolled back from.

    A second rollback therefore undoes the first. Uses the same mutex as :func:`promote`, is
    audited the same way, and tags the version rolled back from with ``aliasgate.rolled_back_at``.

    Args:
        model_name: Registered model name.
        alias: The alias to move back.
        actor: Who rolls back (default ``$USER@hostname``).
        reason: Why (recorded on the audit run).
        lock_timeout_s: How long to wait for a concurrent promotion of the same model.
        lock_stale_s: Age after which a lock is considered abandoned and broken.
        client: An ``MlflowClient`` (default: one for ``mlflow.get_tracking_uri()``).

    Raises:
        PromotionRefused: no ``@previous`` to roll back to, or the lock could not be taken.
    """
    c = _client(client)
    attempt = _Attempt(c, "rollback", model_name, alias, resolve_actor(actor), reason=reason)
    _check_alias(alias)
    prev = previous_alias(alias)
    with attempt.locked(lock_timeout_s, lock_stale_s):
        recover(c, model_name, alias, attempt.actor)
        current = attempt.read(alias)
        target = attempt.read(prev)
        attempt.from_version, attempt.to_version = current, target
        if target is None:
            attempt.refuse(f"{model_name} has no @{prev}: nothing to roll @{alias} back to")
        if target == current:
            attempt.refuse(f"@{prev} and @{alias} both point at v{target}: nothing to roll back")
        attempt.require_version(target)
        attempt.check_lock()
        with attempt.moving(previous_before=target) as move:
            move(alias, target)
            if current is None:
                move(prev, None)
            else:
                move(prev, current)
                c.set_model_version_tag(
                    model_name, current, "aliasgate.rolled_back_at", attempt.timestamp
                )
    return attempt.record()


def assign_alias(
    model_name: str,
    alias: str,
    version: str | int,
    *,
    reason: str | None = None,
    actor: str | None = None,
    lock_timeout_s: float = 30.0,
    lock_stale_s: float = STALE_LOCK_S,
    client: Any = None,
) -> PromotionRecord:
    """Point an ungated alias (``@challenger``, ``@candidate``...) at ``version``, audited.

    The gated alias (``@champion``) and the ``@previous`` aliases are refused: they move only
    through :func:`promote` and :func:`rollback`. Same mutex and audit run as those; an alias
    that already points at ``version`` is left alone (action ``unchanged``, no audit run).

    Args:
        model_name: Registered model name.
        alias: The alias to set.
        version: The model version it should point at.
        reason: Why (recorded on the audit run).
        actor: Who (default ``$USER@hostname``).
        lock_timeout_s: How long to wait for a concurrent move of the same model.
        lock_stale_s: Age after which a lock is considered abandoned and broken.
        client: An ``MlflowClient`` (default: one for ``mlflow.get_tracking_uri()``).

    Raises:
        PromotionRefused: a gated alias, a missing version, or the lock could not be taken.
    """
    c = _client(client)
    to_version = str(version)
    if alias == DEFAULT_ALIAS or alias == PREVIOUS_ALIAS or alias.startswith(PREVIOUS_ALIAS + "-"):
        raise PromotionRefused(
            f"@{alias} is gated: it moves only through `aliasgate promote` / rollback"
        )
    _check_alias(alias)
    attempt = _Attempt(c, "assign", model_name, alias, resolve_actor(actor), to_version=to_version,
                       reason=reason)
    with attempt.locked(lock_timeout_s, lock_stale_s):
        recover(c, model_name, alias, attempt.actor)
        current = attempt.read(alias)
        attempt.from_version = current
        if current == to_version:
            return PromotionRecord(
                action="unchanged", model=model_name, alias=alias, from_version=current,
                to_version=to_version, timestamp=attempt.timestamp, actor=attempt.actor,
                gate_run_id=None, audit_run_id="",
            )
        attempt.require_version(to_version)
        attempt.check_lock()
        with attempt.moving() as move:
            move(alias, to_version)
    return attempt.record()


def audit_log(model_name: str, *, client: Any = None) -> list[dict[str, Any]]:
    """Every audited alias move (and refused attempt) of ``model_name``, newest first.

    Each entry has ``run_id``, ``status`` (FINISHED, or FAILED when a move raised and was
    undone or was interrupted before it happened, RUNNING while in progress), ``state``
    (``moving`` until the move is complete, then ``done``; ``completed`` or ``aborted`` when a
    later call recovered an interrupted one; ``undone``), ``action`` (promote/rollback/refused), ``attempted``,
    ``model``, ``alias``, ``from_version``, ``to_version``, ``actor``, ``gate_run_id``,
    ``reason``, ``timestamp``, ``verdict``, ``rules``, ``git_sha``, ``lock_broken`` and
    ``error`` (None where not applicable).

    Args:
        model_name: Registered model name.
        client: An ``MlflowClient`` (default: one for ``mlflow.get_tracking_uri()``).
    """
    c = _client(client)
    exp = c.get_experiment_by_name(AUDIT_EXPERIMENT)
    if exp is None:
        return []
    filt = None if "'" in model_name else f"tags.\"{_AUDIT}model\" = '{model_name}'"
    runs: list[Any] = []
    token = None
    while True:
        page = c.search_runs(
            [exp.experiment_id], filter_string=filt or "", max_results=1000, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            break
    fields = (
        "action", "attempted", "model", "alias", "from_version", "to_version", "actor",
        "gate_run_id", "reason", "timestamp", "verdict", "rules", "git_sha", "lock_broken",
        "error", "state", "previous_before", "completed_by",
    )
    out = []
    for run in runs:
        tags = run.data.tags
        if tags.get(f"{_AUDIT}model") != model_name:
            continue
        entry: dict[str, Any] = {"run_id": run.info.run_id, "status": run.info.status}
        entry.update({f: tags.get(_AUDIT + f) for f in fields})
        entry["_start"] = run.info.start_time or 0
        out.append(entry)
    out.sort(key=lambda e: (e["_start"], e["timestamp"] or ""), reverse=True)
    for entry in out:
        del entry["_start"]
    return out


# --------------------------------------------------------------------------------------------
# crash recovery


#: Environment variable naming a point where the process kills itself (``kill -9``): the
#: reliability suite's way to crash a promotion exactly there (``promote.locked``,
#: ``promote.audit-started``, ``promote.alias-moved``, ``promote.previous-moved``,
#: ``promote.tagged``). Unset in normal use.
FAILPOINT_ENV = "ALIASGATE_FAILPOINT"


def _failpoint(name: str) -> None:
    if os.environ.get(FAILPOINT_ENV) == name:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def _tag_promoted(c: Any, model: str, version: str, audit: Mapping[str, str]) -> None:
    """The provenance tags of a promoted version, from its audit record's tags."""
    def get(key: str) -> str:
        return audit.get(_AUDIT + key) or ""

    for key, value in {
        "aliasgate.verdict": get("verdict"),
        "aliasgate.gate_run_id": get("gate_run_id"),
        "aliasgate.rules": get("rules"),
        "aliasgate.git_sha": get("git_sha"),
        "aliasgate.promoted_at": get("timestamp"),
        "aliasgate.promoted_from": get("from_version"),
        "aliasgate.promoted_by": get("actor"),
    }.items():
        c.set_model_version_tag(model, version, key, value)


def recover(c: Any, model: str, alias: str, actor: str) -> list[PromotionRecord]:
    """Finish or close every interrupted move of ``@alias`` (audit state ``moving``).

    Call with the model's lock held. A move whose alias had already moved is completed
    (``@previous``, the version's tags), one whose alias had not is closed as aborted: moves
    go alias first, so nothing else can have happened.

    Returns:
        The completed moves, as records (``recovered=True``).
    """
    exp = c.get_experiment_by_name(AUDIT_EXPERIMENT)
    if exp is None:
        return []
    runs = c.search_runs(
        [exp.experiment_id],
        filter_string=f"tags.\"{_AUDIT}state\" = 'moving' and attributes.status = 'RUNNING'",
        max_results=100,
    )
    completed = []
    for run in sorted(runs, key=lambda r: r.info.start_time or 0):
        tags = run.data.tags
        if tags.get(_AUDIT + "model") != model or tags.get(_AUDIT + "alias") != alias:
            continue
        kind = tags.get(_AUDIT + "attempted")
        to_version = tags.get(_AUDIT + "to_version")
        from_version = tags.get(_AUDIT + "from_version")
        run_id = run.info.run_id
        c.set_tag(run_id, _AUDIT + "completed_by", actor)
        if read_alias(model, alias, client=c) != to_version:
            c.set_tag(run_id, _AUDIT + "state", "aborted")
            c.set_tag(run_id, _AUDIT + "error", "interrupted before the alias moved; nothing moved")
            c.set_terminated(run_id, "FAILED")
            continue
        prev = previous_alias(alias)
        if kind == "promote":
            if from_version:
                c.set_registered_model_alias(model, prev, from_version)
            _tag_promoted(c, model, str(to_version), tags)
        elif kind == "rollback":
            if from_version:
                c.set_registered_model_alias(model, prev, from_version)
                c.set_model_version_tag(model, from_version, "aliasgate.rolled_back_at",
                                        tags.get(_AUDIT + "timestamp") or "")
            elif read_alias(model, prev, client=c) is not None:
                c.delete_registered_model_alias(model, prev)
        c.set_tag(run_id, _AUDIT + "state", "completed")
        c.set_terminated(run_id, "FINISHED")
        completed.append(PromotionRecord(
            action=str(kind), model=model, alias=alias, from_version=from_version,
            to_version=str(to_version), timestamp=tags.get(_AUDIT + "timestamp") or "",
            actor=tags.get(_AUDIT + "actor") or "", gate_run_id=tags.get(_AUDIT + "gate_run_id"),
            audit_run_id=run_id, recovered=True,
        ))
    return completed


# --------------------------------------------------------------------------------------------
# verdict helpers


def verdict_refusal(verdict: Mapping[str, Any]) -> str | None:
    """Why ``verdict`` does not allow a promotion, or None if it does (fail closed).

    Args:
        verdict: The gate verdict mapping (``aliasgate.verdict/1``: ``verdict``, ``complete``,
            ``rules`` with ``severity`` block/warn and ``status`` pass/fail/error/skipped).
    """
    if not isinstance(verdict, Mapping):
        return f"verdict is a {type(verdict).__name__}, not a mapping"
    if verdict.get("verdict") != "pass":
        return f"gate verdict is {verdict.get('verdict')!r}, not 'pass'"
    if verdict.get("complete") is not True:
        return f"gate results are not complete (complete={verdict.get('complete')!r})"
    failed = [_rule_name(r, i) for i, r in enumerate(_rules(verdict))
              if _is_blocking(r) and _rule_state(r) is False]
    if failed:
        return f"verdict says pass but blocking rule(s) {', '.join(failed)} did not pass"
    return None


def rules_summary(verdict: Mapping[str, Any]) -> str:
    """A compact summary of the rules in ``verdict``, e.g. ``"7/7 blocking passed"``.

    Uses the verdict's ``counts`` when present, else counts its ``rules``; skipped blocking
    rules and failed warn rules are appended (``"4/7 blocking passed, 3 skipped, 1 warning"``).

    Args:
        verdict: The gate verdict mapping.
    """
    counts = verdict.get("counts")
    rules = _rules(verdict)
    if isinstance(counts, Mapping) and "blocking" in counts and "passed" in counts:
        blocking, passed = int(counts["blocking"]), int(counts["passed"])
        skipped, warnings = int(counts.get("skipped", 0)), int(counts.get("warnings", 0))
    elif rules:
        block = [r for r in rules if _is_blocking(r)]
        blocking, passed = len(block), sum(_rule_state(r) is True for r in block)
        skipped = sum(str(r.get("status", "")).lower() == "skipped" for r in block)
        warnings = sum(_rule_state(r) is False for r in rules if not _is_blocking(r))
    else:
        return "no rule details"
    text = f"{passed}/{blocking} blocking passed"
    if skipped:
        text += f", {skipped} skipped"
    if warnings:
        text += f", {warnings} warning" + ("s" if warnings > 1 else "")
    return text


def _rules(verdict: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    rules = verdict.get("rules")
    if not isinstance(rules, list | tuple):
        return []
    return [r for r in rules if isinstance(r, Mapping)]


def _rule_name(rule: Mapping[str, Any], index: int) -> str:
    return str(rule.get("id", rule.get("name", f"#{index + 1}")))


def _is_blocking(rule: Mapping[str, Any]) -> bool:
    if "severity" in rule:
        return str(rule["severity"]).lower() == "block"
    return bool(rule.get("blocking", True))


def _rule_state(rule: Mapping[str, Any]) -> bool | None:
    """True passed, False failed/errored/unmeasured, None skipped or unknown."""
    if isinstance(rule.get("passed"), bool):
        return rule["passed"]
    status = str(rule.get("status", "")).lower()
    if status in ("pass", "passed"):
        return True
    if status in ("fail", "failed", "error", "unmeasured", "incomplete"):
        return False
    return None


# --------------------------------------------------------------------------------------------
# one audited attempt


class _Attempt:
    """State of one promote/rollback call: lock, audit run, moves done (for undo)."""

    def __init__(
        self,
        client: Any,
        action: str,
        model: str,
        alias: str,
        actor: str,
        *,
        to_version: str | None = None,
        from_version: str | None = None,
        gate_run_id: str | None = None,
        verdict: Mapping[str, Any] | None = None,
        git_sha: str | None = None,
        reason: str | None = None,
    ) -> None:
        self.c = client
        self.action = action
        self.model = model
        self.alias = alias
        self.actor = actor
        self.to_version = to_version
        self.from_version = from_version
        self.gate_run_id = gate_run_id
        self.verdict = verdict
        self.git_sha = git_sha
        self.reason = reason
        self.timestamp = now_iso()
        self.lock: StoreLock | None = None
        self.audit_run_id: str | None = None
        self.previous_before: str | None = None

    # -- reading ------------------------------------------------------------------------------
    def read(self, alias: str) -> str | None:
        try:
            return read_alias(self.model, alias, client=self.c)
        except ModelNotFound as exc:
            self.refuse(str(exc))
            raise  # pragma: no cover - refuse() always raises

    def require_version(self, version: str) -> None:
        try:
            mv = self.c.get_model_version(self.model, version)
        except Exception as exc:
            if error_code(exc) in MISSING_CODES | {"INVALID_PARAMETER_VALUE"}:
                self.refuse(f"{self.model} v{version} does not exist")
            raise
        status = str(getattr(mv, "status", "READY") or "READY")
        if status != "READY":
            self.refuse(f"{self.model} v{version} is not ready (status {status})")

    # -- locking ------------------------------------------------------------------------------
    def locked(self, timeout_s: float, stale_s: float) -> _Locked:
        return _Locked(self, timeout_s, stale_s)

    def check_lock(self) -> None:
        assert self.lock is not None
        holder = lock_info(self.c, self.lock.name)
        if holder is None or holder.token != self.lock.token:
            who = "nobody" if holder is None else f"{holder.owner} since {holder.acquired_at}"
            self.refuse(
                f"the promotion lock of {self.model} was broken while we held it (now held by "
                f"{who}); nothing was moved"
            )

    # -- auditing -----------------------------------------------------------------------------
    def _tags(self, action: str) -> dict[str, str]:
        values = {
            "action": action,
            "attempted": self.action,
            "model": self.model,
            "alias": self.alias,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "actor": self.actor,
            "gate_run_id": self.gate_run_id,
            "reason": self.reason,
            "timestamp": self.timestamp,
            "git_sha": self.git_sha,
            "lock_broken": self.lock.broken if self.lock else None,
            "state": "moving" if action not in ("refused",) else None,
            "previous_before": self.previous_before if action != "refused" else None,
        }
        if self.verdict is not None and isinstance(self.verdict, Mapping):
            values["verdict"] = str(self.verdict.get("verdict"))
            values["rules"] = rules_summary(self.verdict)
        return {_AUDIT + k: str(v)[:5000] for k, v in values.items() if v is not None}

    def _run_name(self, action: str) -> str:
        if self.action == "promote":
            name = f"promote {self.model} v{self.to_version} -> @{self.alias}"
        elif self.action == "assign":
            name = f"assign {self.model} @{self.alias} {_v(self.from_version)} -> v{self.to_version}"
        else:
            name = (f"rollback {self.model} @{self.alias} "
                    f"{_v(self.from_version)} -> {_v(self.to_version)}")
        return name if action != "refused" else f"refused {name}"

    def _start_audit(self, action: str) -> str:
        self.timestamp = now_iso()  # the moment of the move (or refusal), not of the call
        run = self.c.create_run(
            _audit_experiment(self.c), run_name=self._run_name(action), tags=self._tags(action)
        )
        run_id = run.info.run_id
        if self.verdict is not None:
            try:
                self.c.log_text(
                    run_id, json.dumps(self.verdict, indent=2, sort_keys=True, default=str),
                    "verdict.json",
                )
            except Exception as exc:  # nothing moved yet: close the record as failed
                self.c.set_tag(run_id, _AUDIT + "error", f"verdict.json not logged: {exc}"[:5000])
                self.c.set_terminated(run_id, "FAILED")
                raise
        return run_id

    def refuse(self, reason: str) -> None:
        """Write a ``refused`` audit run and raise :class:`PromotionRefused`."""
        self.reason = reason if not self.reason else f"{reason} (reason given: {self.reason})"
        try:
            run_id = self._start_audit("refused")
            self.c.set_terminated(run_id, "FINISHED")
        except Exception as exc:  # the refusal stands even if the record cannot be written
            raise PromotionRefused(f"{reason} (audit record not written: {exc})") from exc
        raise PromotionRefused(reason)

    # -- moving -------------------------------------------------------------------------------
    def moving(self, *, previous_before: str | None = None) -> _Moving:
        self.previous_before = previous_before
        return _Moving(self)

    def record(self) -> PromotionRecord:
        assert self.audit_run_id is not None and self.to_version is not None
        return PromotionRecord(
            action=self.action, model=self.model, alias=self.alias,
            from_version=self.from_version, to_version=self.to_version,
            timestamp=self.timestamp, actor=self.actor, gate_run_id=self.gate_run_id,
            audit_run_id=self.audit_run_id,
        )


class _Locked:
    """Context manager: take the model's promotion lock (refusing on timeout), always release."""

    def __init__(self, attempt: _Attempt, timeout_s: float, stale_s: float) -> None:
        self.attempt, self.timeout_s, self.stale_s = attempt, timeout_s, stale_s

    def __enter__(self) -> StoreLock:
        a = self.attempt
        try:
            a.lock = acquire_lock(a.c, a.model, a.actor, self.timeout_s, self.stale_s)
        except LockTimeout as exc:
            a.refuse(str(exc))
        assert a.lock is not None
        return a.lock

    def __exit__(self, *exc_info: object) -> None:
        lock, self.attempt.lock = self.attempt.lock, None
        if lock is None:
            return
        try:
            release_lock(self.attempt.c, lock)
        except Exception as exc:  # never mask the outcome; the lock goes stale eventually
            _log.warning("could not release %s (%s); it is broken once stale", lock.name, exc)


class _Moving:
    """Context manager around the alias moves: audit run first, undo the moves on any error."""

    def __init__(self, attempt: _Attempt) -> None:
        self.a = attempt
        self.done: list[tuple[str, str | None]] = []  # (alias, version before our move)

    def __enter__(self) -> Callable[[str, str | None], None]:
        self.a.audit_run_id = self.a._start_audit(self.a.action)
        return self.move

    def move(self, alias: str, version: str | None) -> None:
        c, model = self.a.c, self.a.model
        before = read_alias(model, alias, client=c)
        self.done.append((alias, before))
        if version is None:
            if before is not None:
                c.delete_registered_model_alias(model, alias)
        else:
            c.set_registered_model_alias(model, alias, version)

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        c, run_id = self.a.c, self.a.audit_run_id
        if exc is None:
            c.set_tag(run_id, _AUDIT + "state", "done")
            c.set_terminated(run_id, "FINISHED")
            return
        undo_errors = []
        for alias, before in reversed(self.done):
            try:
                if before is None:
                    c.delete_registered_model_alias(self.a.model, alias)
                else:
                    c.set_registered_model_alias(self.a.model, alias, before)
            except Exception as undo_exc:  # best effort; reported on the audit run
                undo_errors.append(f"@{alias}: {undo_exc}")
        error = f"{exc_type.__name__}: {exc}; aliases restored"
        if undo_errors:
            error += f" except {'; '.join(undo_errors)}"
        try:
            c.set_tag(run_id, _AUDIT + "error", error[:5000])
            c.set_tag(run_id, _AUDIT + "state", "undone")
            c.set_terminated(run_id, "FAILED")
        except Exception:  # noqa: S110 - the original exception is what the caller must see
            pass


# --------------------------------------------------------------------------------------------
# small helpers


def _client(client: Any) -> Any:
    if client is not None:
        return client
    quiet_environment()
    import mlflow
    from mlflow import MlflowClient

    from aliasgate.defaults import ensure_store

    return MlflowClient(tracking_uri=ensure_store(mlflow.get_tracking_uri()))


def _uri(c: Any) -> str:
    """The client's tracking URI without credentials (it ends up in messages and audit tags)."""
    from aliasgate.redact import redact_uri

    return redact_uri(str(getattr(c, "tracking_uri", None) or "the tracking store"))


def _v(version: str | None) -> str:
    return "nothing (unset)" if version is None else f"v{version}"


def resolve_actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        user = os.environ.get("USER") or getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def _check_alias(alias: str) -> None:
    """Reject aliases MLflow would refuse, and the ``@previous`` bookkeeping ones, up front."""
    if not re.fullmatch(r"[\w\-]+", alias) or alias.lower() == "latest" or re.fullmatch(r"[vV]\d+", alias):
        raise ValueError(f"invalid alias name {alias!r}")
    if alias == PREVIOUS_ALIAS or alias.startswith(f"{PREVIOUS_ALIAS}-"):
        raise ValueError(f"@{alias} is managed by aliasgate's rollback bookkeeping; promote another alias")


def _audit_experiment(c: Any) -> str:
    exp = c.get_experiment_by_name(AUDIT_EXPERIMENT)
    if exp is not None:
        return exp.experiment_id
    try:
        return c.create_experiment(AUDIT_EXPERIMENT)
    except Exception:  # created concurrently by another promoter
        exp = c.get_experiment_by_name(AUDIT_EXPERIMENT)
        if exp is None:
            raise
        return exp.experiment_id


__all__ = [
    "AUDIT_EXPERIMENT",
    "BREAK_SUFFIX",
    "FAILPOINT_ENV",
    "LOCK_SUFFIX",
    "recover",
    "ModelNotFound",
    "PromotionRecord",
    "PromotionRefused",
    "STALE_LOCK_S",
    "audit_log",
    "previous_alias",
    "promote",
    "read_alias",
    "rollback",
    "rules_summary",
    "verdict_refusal",
    "LockTimeout",
    "acquire_lock",
    "release_lock",
    "resolve_actor",
]
