"""Data files ship inside the package: the judges' calibration set is found through
importlib.resources, in the source tree and in an installed wheel."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import pytest

from aliasgate.scorers.judge_calibration import load_calibration_set
from aliasgate.scorers.judge_config import (
    CALIBRATION_FILE,
    CALIBRATION_PACKAGE,
    JudgeConfig,
    default_calibration_path,
)

ROOT = Path(__file__).resolve().parents[1]


def test_calibration_set_is_package_data_found_by_importlib_resources(tmp_path, monkeypatch):
    resource = resources.files(CALIBRATION_PACKAGE) / CALIBRATION_FILE
    assert resource.is_file()
    assert CALIBRATION_PACKAGE == "aliasgate.data" and CALIBRATION_FILE == "judge_calibration.jsonl"
    monkeypatch.chdir(tmp_path)  # not looked up relative to the working directory
    path = default_calibration_path()
    assert path.is_file() and path.read_bytes() == resource.read_bytes()
    assert JudgeConfig().calibration_path() == path
    assert len(load_calibration_set(path)) >= 20
    assert not (ROOT / "datasets" / CALIBRATION_FILE).exists()  # one copy, in the package


def test_an_installed_wheel_finds_the_calibration_set(tmp_path):
    """Build the wheel from a copy of the project, install it into a bare directory and look
    the file up from a process that imports aliasgate from there."""
    project = tmp_path / "project"
    project.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(ROOT / "src", project / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-q", "-w", str(tmp_path / "dist"), str(project)],
        capture_output=True, text=True, timeout=300,
    )
    if build.returncode != 0 and "No module named" in build.stderr:
        pytest.skip(f"cannot build a wheel offline here: {build.stderr.strip()[-200:]}")
    assert build.returncode == 0, build.stderr
    (wheel,) = (tmp_path / "dist").glob("aliasgate-*.whl")
    assert "aliasgate/data/judge_calibration.jsonl" in zipfile.ZipFile(wheel).namelist()

    target = tmp_path / "installed"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--no-compile",
         "-q", "--target", str(target), str(wheel)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stderr
    probe = (
        "import json, aliasgate\n"
        "from aliasgate.scorers.judge_config import default_calibration_path\n"
        "p = default_calibration_path()\n"
        "print(json.dumps({'pkg': aliasgate.__file__, 'path': str(p), 'ok': p.is_file()}))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path, env={"PYTHONPATH": str(target),
                                                         "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["pkg"].startswith(str(target)), found  # the installed copy, not the source tree
    assert found["ok"] and found["path"].startswith(str(target)), found
