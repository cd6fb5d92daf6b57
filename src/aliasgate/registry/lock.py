"""The store-level mutex: a registered model whose name is unique in the tracking store.

It must hold across processes and across machines that share one tracking server, so it
cannot be a file lock. It is the uniqueness of registered-model names, enforced by the tracking
store itself: the lock is a registered model ``<model>.aliasgate-lock`` and
``create_registered_model`` of an existing name fails with ``RESOURCE_ALREADY_EXISTS`` (see
:mod:`aliasgate.registry.promotion` for the measurement). Releasing deletes the lock model.

The lock model carries its holder (``aliasgate.lock.owner``), a random token, the time it was
taken and the holder's host, pid and process start time. A lock is broken:

* **at once** when its holder is gone: on the same host, no live process has that pid and
  start time (a ``kill -9`` mid-promotion) — liveness, not age;
* when it is older than ``stale_s`` (10 minutes by default; confirmed on the store's own
  creation timestamps), for holders on other hosts, whose liveness cannot be checked.

Breaking is serialised by a second unique name, ``<model>.aliasgate-lock-break``, whose holder
re-checks the lock's token before deleting it, so two waiters cannot both break and then delete
each other's fresh lock.
"""

from __future__ import annotations

import os
import random
import socket
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOCK_SUFFIX = ".aliasgate-lock"
BREAK_SUFFIX = ".aliasgate-lock-break"
#: A lock older than this (seconds) was left by a crashed promoter and may be broken.
STALE_LOCK_S = 600.0

_LOCK = "aliasgate.lock."
_POLL_S = (0.05, 0.2)
#: Error codes that mean "contended or momentarily unavailable": wait and retry.
RETRY_CODES = {
    "RESOURCE_ALREADY_EXISTS",
    "RESOURCE_DOES_NOT_EXIST",  # the holder released between our INSERT and the store's re-read
    "TEMPORARILY_UNAVAILABLE",  # sqlite "database is locked"
    "INTERNAL_ERROR",
    "REQUEST_LIMIT_EXCEEDED",
}
MISSING_CODES = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}


def error_code(exc: BaseException) -> str:
    """MLflow's error code of ``exc`` (``RESOURCE_ALREADY_EXISTS``...), or ``""``."""
    return str(getattr(exc, "error_code", "") or "")


def now_iso() -> str:
    """Now, UTC, ISO 8601 with microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def process_start(pid: int) -> str:
    """A process's start time in clock ticks since boot (Linux; ``""`` where unknown).

    With the pid it identifies a process: a pid reused by another process has another start.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def pid_alive(pid: int, start: str) -> bool:
    """Whether the process ``pid`` (started at ``start``, if known) still runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        pass
    except OSError:
        return True  # cannot tell: assume alive (the age rule still applies)
    return not start or process_start(pid) in ("", start)


@dataclass(frozen=True)
class StoreLock:
    name: str
    token: str
    broken: str | None = None  # description of a stale lock broken to take this one


@dataclass(frozen=True)
class LockInfo:
    token: str | None
    owner: str
    acquired_at: str
    created_ms: int
    host: str = ""
    pid: int | None = None
    start: str = ""

    def holder_gone(self) -> bool:
        """Whether the holder is known to be dead: on this host, its process no longer runs."""
        if self.pid is None or self.host != socket.gethostname():
            return False
        return not pid_alive(self.pid, self.start)


class LockTimeout(Exception):
    """The store-level lock was not acquired within the timeout."""


def lock_info(c: Any, name: str) -> LockInfo | None:
    try:
        rm = c.get_registered_model(name)
    except Exception as exc:
        if error_code(exc) in MISSING_CODES:
            return None
        raise
    tags = rm.tags or {}
    created = int(rm.creation_timestamp or 0)
    pid = tags.get(_LOCK + "pid", "")
    return LockInfo(
        token=tags.get(_LOCK + "token"),
        owner=tags.get(_LOCK + "owner", "an unknown holder"),
        acquired_at=tags.get(_LOCK + "acquired_at")
        or datetime.fromtimestamp(created / 1000, UTC).isoformat(timespec="seconds"),
        created_ms=created,
        host=tags.get(_LOCK + "host", ""),
        pid=int(pid) if pid.isdigit() else None,
        start=tags.get(_LOCK + "start", ""),
    )


def _create_unique(
    c: Any, name: str, owner: str, token: str, purpose: str
) -> tuple[bool, LockInfo | None, str]:
    """Create the registered model ``name``.

    Returns (whether this call created it, the current holder otherwise, the error seen).
    """
    tags = {
        _LOCK + "owner": owner,
        _LOCK + "token": token,
        _LOCK + "acquired_at": now_iso(),
        _LOCK + "pid": str(os.getpid()),
        _LOCK + "host": socket.gethostname(),
        _LOCK + "start": process_start(os.getpid()),
    }
    try:
        c.create_registered_model(name, tags=tags, description=purpose)
        return True, None, ""
    except Exception as exc:
        holder = lock_info(c, name)
        if holder is not None and holder.token == token:
            return True, None, ""  # created, but the answer was lost (e.g. a retried request)
        if error_code(exc) in RETRY_CODES or holder is not None:
            return False, holder, f"{type(exc).__name__}: {exc}"
        raise


def acquire_lock(
    c: Any, model: str, owner: str, timeout_s: float, stale_s: float
) -> StoreLock:
    name = model + LOCK_SUFFIX
    token = uuid.uuid4().hex
    deadline = time.monotonic() + timeout_s
    broken: str | None = None
    purpose = f"aliasgate promotion lock of {model!r}; held while its aliases move"
    while True:
        created, holder, error = _create_unique(c, name, owner, token, purpose)
        if created:
            return StoreLock(name, token, broken)
        # a dead holder (same host, no such process) at once; others once stale, suspected on
        # the local clock and confirmed on the store's clock by _break_stale
        gone = holder is not None and holder.holder_gone()
        if holder is not None and (gone or time.time() * 1000 - holder.created_ms > stale_s * 1000):
            note = _break_stale(c, model, name, holder, owner, stale_s, gone=gone)
            if note:
                broken = note
                continue
        if time.monotonic() >= deadline:
            if holder is None:  # released meanwhile, but the store keeps failing
                raise LockTimeout(
                    f"could not take the promotion lock of {model} within {timeout_s:g} s "
                    f"(last error: {error})"
                )
            raise LockTimeout(
                f"another promotion of {model} is in progress (lock held by {holder.owner} "
                f"since {holder.acquired_at}); gave up after {timeout_s:g} s"
            )
        time.sleep(random.uniform(*_POLL_S))


def _break_stale(
    c: Any, model: str, name: str, seen: LockInfo, owner: str, stale_s: float, *,
    gone: bool = False,
) -> str | None:
    """Delete the stale (or ``gone``: dead-holder) lock ``seen`` under the break guard; a
    description if we broke it."""
    guard = model + BREAK_SUFFIX
    token = uuid.uuid4().hex
    created, g, _ = _create_unique(c, guard, owner, token, f"breaking a stale lock of {model!r}")
    if not created:
        if g is not None and (g.holder_gone() or time.time() * 1000 - g.created_ms > 2 * stale_s * 1000):
            _delete_if(c, guard, g.token)  # a breaker crashed mid-break (twice unlucky)
        return None
    try:
        now_ms = int(c.get_registered_model(guard).creation_timestamp or 0)  # server clock
        current = lock_info(c, name)
        if (
            current is None
            or current.token != seen.token
            or current.created_ms != seen.created_ms
            or (not gone and now_ms - current.created_ms <= stale_s * 1000)
        ):
            return None
        c.delete_registered_model(name)
        if gone:
            return (f"broke the lock of {current.owner} (pid {current.pid} on {current.host}, "
                    f"since {current.acquired_at}): its process is gone")
        age = (now_ms - current.created_ms) / 1000
        return f"broke stale lock held by {current.owner} since {current.acquired_at} ({age:.0f} s old)"
    finally:
        _delete_if(c, guard, token)


def _delete_if(c: Any, name: str, token: str | None) -> None:
    """Delete the lock model ``name`` if it still carries ``token``."""
    try:
        info = lock_info(c, name)
        if info is not None and info.token == token:
            c.delete_registered_model(name)
    except Exception as exc:
        if error_code(exc) not in MISSING_CODES:
            raise


def release_lock(c: Any, lock: StoreLock) -> None:
    _delete_if(c, lock.name, lock.token)




__all__ = [
    "BREAK_SUFFIX", "LOCK_SUFFIX", "MISSING_CODES", "RETRY_CODES", "STALE_LOCK_S", "LockInfo",
    "LockTimeout", "StoreLock", "acquire_lock", "error_code", "lock_info", "now_iso",
    "pid_alive", "process_start", "release_lock",
]
