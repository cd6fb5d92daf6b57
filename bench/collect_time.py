"""How long `pytest evals/ --collect-only` takes, and proof that it imports nothing heavy.

Prints the collection wall time (median of several runs), the import time of mlflow and
llama_cpp for comparison, and which heavy modules (if any) were imported during collection.
Run from the repository root: `python bench/collect_time.py`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("mlflow", "llama_cpp", "scipy.stats", "rouge_score", "pandas", "torch")
# Other installed pytest plugins (hypothesis, anyio from the dev extra) cost more than we do;
# the second variant switches them off to show aliasgate's own share.
OTHERS_OFF = "'-p', 'no:hypothesispytest', '-p', 'no:anyio', "


def probe(extra: str = "") -> str:
    return (
        "import sys, pytest\n"
        "class P:\n"
        "    def pytest_collection_finish(self, session):\n"
        f"        print('HEAVY=' + ','.join(m for m in {HEAVY!r} if m in sys.modules))\n"
        f"sys.exit(pytest.main(['evals/', '--collect-only', '-q', '-p', 'no:cacheprovider', {extra}],"
        " plugins=[P()]))\n"
    )


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - t0, out


def main(repeats: int = 5) -> None:
    py = sys.executable
    collect = [timed([py, "-c", probe()]) for _ in range(repeats)]
    own = [timed([py, "-c", probe(OTHERS_OFF)]) for _ in range(repeats)]
    heavy = {line for _, out in collect + own for line in out.splitlines()
             if line.startswith("HEAVY=")}
    bare = [timed([py, "-c", "import pytest"])[0] for _ in range(repeats)]
    mlflow = [timed([py, "-c", "import mlflow"])[0] for _ in range(3)]
    try:
        llama = [timed([py, "-c", "import llama_cpp"])[0] for _ in range(3)]
    except subprocess.CalledProcessError:
        llama = []
    med = statistics.median
    print(f"pytest evals/ --collect-only : {med(c for c, _ in collect):.3f} s (median of {repeats})")
    print(f"  same, hypothesis+anyio plugins off: {med(c for c, _ in own):.3f} s")
    print(f"python -c 'import pytest'    : {med(bare):.3f} s")
    print(f"python -c 'import mlflow'    : {med(mlflow):.3f} s")
    if llama:
        print(f"python -c 'import llama_cpp' : {med(llama):.3f} s")
    print(f"heavy modules imported during collection: {sorted(heavy)}")
    ratio = med(c for c, _ in collect) / med(mlflow)
    print(f"collection / import-mlflow ratio: {ratio:.2f}")
    if heavy != {"HEAVY="}:
        sys.exit("FAIL: collection imported heavy modules")


if __name__ == "__main__":
    main()
