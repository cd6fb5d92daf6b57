"""The layout is the lifecycle: a package imports only packages before it in this order
(DEVELOPERS.md); the plugin, CLI and orchestration modules may import anything."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parent.parent / "src" / "aliasgate"
ORDER = ["datasets", "candidates", "scorers", "stats", "run", "gates", "registry", "serve",
         "monitor", "reports"]
SHARED = {"defaults", "_registry", "redact", "text"}  # tiny top-level modules every package may use


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "aliasgate" and len(parts) > 1:
                found.add(parts[1])
    return found


@pytest.mark.parametrize("package", ORDER)
def test_no_package_imports_downward(package: str) -> None:
    allowed = set(ORDER[: ORDER.index(package) + 1]) | SHARED | {"__init__"}
    bad = []
    for path in sorted((SRC / package).rglob("*.py")):
        for target in _imports(path) - allowed:
            if target in ORDER or target in {"pytest_plugin", "cli", "session", "nightly",
                                                   "demo", "mitigation"}:
                bad.append(f"{path.relative_to(SRC)} imports aliasgate.{target}")
    assert not bad, "imports against the lifecycle order:\n" + "\n".join(bad)


def test_checker_sees_imports(tmp_path: Path) -> None:
    f = tmp_path / "m.py"
    f.write_text("import aliasgate.gates.schema\nfrom aliasgate.run.suite import Suite\n"
                 "def f():\n    from aliasgate.registry import tracking\n")
    assert _imports(f) == {"gates", "run", "registry"}
