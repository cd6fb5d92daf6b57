"""Shared fixtures for tests/. Keep each fixture small and documented."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from aliasgate.defaults import TELEMETRY_OFF

# pytester subprocesses run with their own ini file: keep the third-party plugins that the
# `judges` extra installs (deepeval, langsmith) out of them too, as pyproject's addopts does here.
_NOISY = "-p no:deepeval -p no:langsmith_plugin"
if _NOISY not in os.environ.get("PYTEST_ADDOPTS", ""):
    os.environ["PYTEST_ADDOPTS"] = (os.environ.get("PYTEST_ADDOPTS", "") + " " + _NOISY).strip()


@pytest.fixture
def pytester(pytester: pytest.Pytester) -> pytest.Pytester:
    """pytester that, at teardown, drops only the scratch project's modules from sys.modules.

    pytester restores a snapshot of sys.modules when a test ends, dropping every module first
    imported during the test. For a C extension (numpy: "cannot load module more than once per
    process") or a package whose submodules stay referenced (mlflow, sqlalchemy) that breaks
    every later test importing it, depending on test order. Our pytester tests run pytest in
    subprocesses, so only modules loaded from the scratch project need to go.
    """
    from _pytest.pytester import SysModulesSnapshot

    root = str(pytester.path)

    def keep(name: str) -> bool:
        origin = getattr(sys.modules.get(name), "__file__", None) or ""
        return not origin.startswith(root)

    pytester._sys_modules_snapshot = SysModulesSnapshot(preserve=keep)  # type: ignore[attr-defined]
    return pytester


#: Seconds to wait for ``mlflow server`` to answer ``/health`` (it takes ~15 s on 2 cores).
MLFLOW_SERVER_START_TIMEOUT_S = 120.0


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no output)"


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``mlflow server`` (sqlite backend, local artifact root) on 127.0.0.1; yields its URL.

    Started once per session from the venv's ``mlflow`` executable in its own process group,
    so that teardown stops the server and its uvicorn worker together.
    """
    root = tmp_path_factory.mktemp("mlflow-server")
    exe = Path(sys.executable).with_name("mlflow")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        **TELEMETRY_OFF,
        # The background job runner is not needed and costs CPU on small machines.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
    }
    env.pop("MLFLOW_TRACKING_URI", None)
    out, err = root / "server.out", root / "server.err"
    with out.open("wb") as fout, err.open("wb") as ferr:
        proc = subprocess.Popen(
            [
                str(exe), "server",
                "--backend-store-uri", f"sqlite:///{root / 'db.sqlite'}",
                "--default-artifact-root", str(root / "artifacts"),
                "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
            ],
            stdout=fout, stderr=ferr, env=env, cwd=root, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + MLFLOW_SERVER_START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"mlflow server exited with code {proc.returncode} before answering "
                    f"{url}/health; its stderr:\n{_tail(err)}"
                )
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"mlflow server did not answer {url}/health within "
                    f"{MLFLOW_SERVER_START_TIMEOUT_S:g} s; its stderr:\n{_tail(err)}"
                )
            time.sleep(0.25)
        yield url
    finally:
        _stop_group(proc)


def _stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the process group we started (the server and its workers), then SIGKILL."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
    try:  # workers of an already-exited parent
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
