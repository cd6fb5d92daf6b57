"""The response cache: cold run vs warm rerun, and resuming after `kill -9`.

1. Cold vs warm: 300 golden_qa cases against a `callable:` candidate that sleeps a fixed 20 ms per
   call (a realistic small-model latency; one call at a time by default, like the in-process
   local model). The cold run starts with an empty cache file; the warm rerun opens the same file
   with a new `ResponseCache` (as a new process would) and runs the same suite. Both timings cover
   `load_dataset` + opening the cache + `run_suite` (no MLflow). Printed: both wall times, the
   speed-up (target >= 50x) and the warm run's model calls (target 0), outputs compared.
2. Resume after SIGKILL: a child process runs the same suite through `run_suite` with a cache;
   this process watches the cache file and sends SIGKILL when it holds about half the cases, then
   reruns the suite with the same cache. Printed: how many responses survived, how many calls
   the rerun made vs how many were missing (must be equal), and whether every case came back
   scored with the right output (none lost).

Run from the repository root: `python bench/cache.py` (about 20 s on 2 cores;
`--cases`, `--latency-ms`, `--concurrency` change the set-up).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from aliasgate.candidates.callable_ import CallableCandidate
from aliasgate.datasets import load_dataset
from aliasgate.run.cache import ResponseCache
from aliasgate.run.results import SuiteResult
from aliasgate.run.runner import run_suite
from aliasgate.run.suite import Suite

PROMPT = "Answer the question with a short phrase only.\nQuestion: {input}"
SCORERS = ("exact_match", "token_f1")


class SlowModel:
    """A model with a fixed latency that counts its calls (thread-safe)."""

    def __init__(self, latency_s: float):
        self.latency_s = latency_s
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, messages: list[dict[str, str]], params: Any) -> str:
        time.sleep(self.latency_s)
        with self._lock:
            self.calls += 1
        return expected_reply(messages[-1]["content"])


def expected_reply(prompt: str) -> str:
    """What the model answers to a prompt: a deterministic function of its question number."""
    number = int(prompt.rsplit(" ", 1)[1].rstrip("?"))
    return f"word {number}" if number % 3 else f"not word {number}"


def write_dataset(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            row = {"id": f"q-{i:05d}", "question": f"What is the code word number {i}?",
                   "answers": [f"word {i}"], "topic": "codes"}
            fh.write(json.dumps(row) + "\n")
    return path


def evaluate(dataset: Path, cache_path: Path, model: SlowModel, concurrency: int) -> SuiteResult:
    """``load_dataset`` + a ``ResponseCache`` on ``cache_path`` + ``run_suite`` (closes the cache)."""
    suite = Suite(name="cachebench", dataset=str(dataset), scorers=SCORERS, prompt=PROMPT)
    data = load_dataset(dataset, kind="golden_qa", name=suite.name)
    # Same name, version and system prompt in every process: the same fingerprint, so the
    # child's responses are the parent's cache hits.
    candidate = CallableCandidate(model, name="callable:bench.cache:slow", version="bench-1",
                                  max_concurrency=concurrency)
    with ResponseCache(cache_path) as cache:
        return run_suite(suite, data, candidate, cache=cache)


def cached_count(cache_path: Path) -> int:
    """Rows in the cache file, read with a separate connection (the writer is another process)."""
    if not cache_path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{cache_path}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM responses").fetchone()[0])
    except sqlite3.OperationalError:  # the table is not created yet
        return 0


def check_outputs(result: SuiteResult) -> list[str]:
    """Case ids whose output is missing or not what the model answers to their prompt."""
    return [c.case.id for c in result.cases
            if c.status != "scored" or c.output != expected_reply(c.prompt)]


def child(dataset: Path, cache_path: Path, latency_s: float, concurrency: int) -> None:
    evaluate(dataset, cache_path, SlowModel(latency_s), concurrency)


def cold_vs_warm(tmp: Path, dataset: Path, n: int, latency_s: float, concurrency: int) -> None:
    cache_path = tmp / "warm" / "responses.sqlite"
    cold_model, warm_model = SlowModel(latency_s), SlowModel(latency_s)
    t0 = time.perf_counter()
    cold = evaluate(dataset, cache_path, cold_model, concurrency)
    cold_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    warm = evaluate(dataset, cache_path, warm_model, concurrency)
    warm_s = time.perf_counter() - t0
    same = [c.output for c in cold.cases] == [w.output for w in warm.cases]
    same_metrics = {k: m.value for k, m in cold.metrics.items()} == \
        {k: m.value for k, m in warm.metrics.items()}
    print(f"cold vs warm, {n} cases, {1e3 * latency_s:.0f} ms per call, concurrency {concurrency}:")
    print(f"  cold run : {cold_s:7.3f} s  model calls {cold_model.calls} "
          f"(runner: {cold.model_calls}), cache hits {cold.cache_hits}")
    print(f"  warm run : {warm_s:7.3f} s  model calls {warm_model.calls} "
          f"(runner: {warm.model_calls}), cache hits {warm.cache_hits}")
    print(f"  speed-up : {cold_s / warm_s:.0f}x (target >= 50x); warm model calls "
          f"{warm_model.calls} (target 0); same outputs: {same}; same metrics: {same_metrics}")
    if warm_model.calls or not same or check_outputs(warm):
        sys.exit("FAIL (sanity): the warm rerun called the model or changed an answer")


def resume_after_kill(tmp: Path, dataset: Path, n: int, latency_s: float, concurrency: int) -> None:
    cache_path = tmp / "killed" / "responses.sqlite"
    target = n // 2
    cmd = [sys.executable, __file__, "--child", str(dataset), str(cache_path),
           str(latency_s), str(concurrency)]
    proc = subprocess.Popen(cmd, start_new_session=True)
    t0 = time.perf_counter()
    deadline = time.monotonic() + 120
    try:
        while cached_count(cache_path) < target:
            if proc.poll() is not None:
                sys.exit(f"FAIL: the child exited ({proc.returncode}) before the cache held "
                         f"{target} responses")
            if time.monotonic() > deadline:
                sys.exit("FAIL: the child did not reach half the cases within 120 s")
            time.sleep(0.005)
        at_kill = cached_count(cache_path)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_after = time.perf_counter() - t0
    survived = cached_count(cache_path)
    missing = n - survived
    model = SlowModel(latency_s)
    t0 = time.perf_counter()
    rerun = evaluate(dataset, cache_path, model, concurrency)
    rerun_s = time.perf_counter() - t0
    wrong = check_outputs(rerun)
    ids = [c.case.id for c in rerun.cases]
    print(f"resume after SIGKILL, {n} cases:")
    print(f"  child killed (signal {-proc.returncode}) after {killed_after:.2f} s, when the cache "
          f"held {at_kill}; responses surviving in the cache: {survived}")
    print(f"  rerun: {model.calls} model calls (runner: {rerun.model_calls}) for {missing} missing "
          f"cases: equal = {model.calls == missing}; cache hits {rerun.cache_hits}; "
          f"{rerun_s:.2f} s")
    print(f"  cases in the result: {len(ids)}/{n} (distinct ids {len(set(ids))}), unmeasured "
          f"{rerun.unmeasured}, wrong or missing outputs {len(wrong)}: "
          f"no case lost = {len(set(ids)) == n and not wrong and rerun.unmeasured == 0}")
    print(f"  cache now holds {cached_count(cache_path)}/{n}")
    if model.calls != missing or wrong or len(set(ids)) != n:
        sys.exit("FAIL (sanity): the resumed run lost or re-ran cases")


def machine_line() -> str:
    """Cores and 1-minute load average: other work on the machine skews every figure here."""
    return f"machine: {os.cpu_count()} cores, load average (1 min) {os.getloadavg()[0]:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=300)
    ap.add_argument("--latency-ms", type=float, default=20.0)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--child", nargs=4, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        dataset, cache_path, latency, concurrency = args.child
        child(Path(dataset), Path(cache_path), float(latency), int(concurrency))
        return
    latency_s = args.latency_ms / 1000
    print(machine_line(), "(before)")
    with tempfile.TemporaryDirectory(prefix="aliasgate-bench-cache-") as tmp_s:
        tmp = Path(tmp_s)
        dataset = write_dataset(tmp / "cases.jsonl", args.cases)
        evaluate(write_dataset(tmp / "warmup.jsonl", 5), tmp / "warmup.sqlite",
                 SlowModel(0.0), 1)  # untimed: imports (numpy, scipy.stats) and first use
        cold_vs_warm(tmp, dataset, args.cases, latency_s, args.concurrency)
        resume_after_kill(tmp, dataset, args.cases, latency_s, args.concurrency)
    print(machine_line(), "(after)")


if __name__ == "__main__":
    main()
