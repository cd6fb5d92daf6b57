"""Project-wide defaults and environment set-up. Imports nothing heavy; every package may use it."""

from __future__ import annotations

import os

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


def redact_uri(uri: str) -> str:
    """``uri`` without URL credentials (``https://user:secret@host`` → ``https://host``)."""
    import re

    return re.sub(r"(://)[^/@\s]+@", r"\1", uri)
