"""Project-wide defaults and environment set-up. Imports nothing heavy; every package may use it."""

from __future__ import annotations

import os
import threading
from pathlib import Path

DEFAULT_MODEL_NAME = "aliasgate-demo"
DEFAULT_CANDIDATE = f"models:/{DEFAULT_MODEL_NAME}@challenger"
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
DEFAULT_EXPERIMENT = "aliasgate"
DEFAULT_CACHE_DIR = ".aliasgate/cache"
DEFAULT_REPORTS_DIR = "reports"

#: Environment variables that turn off every telemetry channel of the libraries we drive.
TELEMETRY_OFF = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "1",
    "DEEPEVAL_TELEMETRY_OPT_OUT": "YES",
    "RAGAS_DO_NOT_TRACK": "true",
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "TRANSFORMERS_OFFLINE": "1",
}


def quiet_environment() -> None:
    """Switch telemetry off (without overriding an explicit user choice). Call before importing mlflow."""
    for key, value in TELEMETRY_OFF.items():
        os.environ.setdefault(key, value)


def tracking_uri() -> str:
    """The tracking URI in force: ``MLFLOW_TRACKING_URI`` if set, else the local sqlite store."""
    return os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


_READY: set[str] = set()
_READY_LOCK = threading.Lock()


def sqlite_path(uri: str) -> Path | None:
    """The file of a ``sqlite:///relative.db`` or ``sqlite:////abs.db`` URI (None otherwise)."""
    if not uri.startswith("sqlite:///"):
        return None
    rest = uri[len("sqlite:///"):].split("?", 1)[0]
    return Path(rest) if rest and rest != ":memory:" else None


def ensure_store(uri: str | None = None) -> str:
    """Create the tracking store's tables once per process, serialised across processes.

    Two first runs on a fresh sqlite store race MLflow's schema creation (alembic's temporary
    tables: "_alembic_tmp_tags already exists"), and a lost race can leave the store broken. For
    a local sqlite store the creation runs under an exclusive file lock beside the database
    (``<db>-aliasgate.lock``); other stores create their schema themselves. Call before the
    first MLflow access of a process; later calls return at once.

    Args:
        uri: The tracking URI (default :func:`tracking_uri`).

    Returns:
        The URI.
    """
    uri = uri or tracking_uri()
    with _READY_LOCK:
        if uri in _READY:
            return uri
        path = sqlite_path(uri)
        if path is not None:
            quiet_environment()
            from mlflow.tracking._model_registry.utils import _get_store as registry_store
            from mlflow.tracking._tracking_service.utils import _get_store as tracking_store

            path.parent.mkdir(parents=True, exist_ok=True)
            with open(f"{path}-aliasgate.lock", "a+b") as lock:
                try:
                    import fcntl
                except ImportError:  # pragma: no cover - not POSIX: no cross-process lock
                    fcntl = None  # type: ignore[assignment]
                if fcntl is not None:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
                try:
                    tracking_store(uri)
                    registry_store(uri)
                finally:
                    if fcntl is not None:
                        fcntl.flock(lock.fileno(), fcntl.LOCK_UN)
        _READY.add(uri)
    return uri


def redact_uri(uri: str) -> str:
    """``uri`` without credentials (see :func:`aliasgate.redact.redact_uri`)."""
    from aliasgate.redact import redact_uri as _redact_uri

    return _redact_uri(uri)
