"""Is a latency-bound endpoint kept busy? 1,000 requests through the hosted-model adapter
(`openai-compatible:`) to the loopback test server (tests/openai_server.py, run in its own
process) answering every request after 100 ms, at concurrency 64, through the real runner and
response cache.

Prints, per run: wall time of the whole `run_suite` and of its call phase (until the last case
settled), the ideal N / c x latency, their ratio (target <= 1.25x), the calls the server saw, the
most requests it had in flight, whether every case is present and scored, the client's CPU time
(one GIL: the client side is CPU-bound well before 64 x 10 req/s) and the machine's load.
Run from the repository root: `python bench/latency_bound.py [--n 1000 --concurrency 64 ...]`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_server(latency: float) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "openai_server.py"), "--latency", str(latency)],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("PORT "):
        proc.kill()
        raise RuntimeError(f"test server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{line.split()[1]}"


def stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/_stats", timeout=10) as resp:
        return json.loads(resp.read())


def one_run(url: str, n: int, concurrency: int, offset: int) -> dict[str, float]:
    from aliasgate.candidates.openai_ import OpenAICandidate, OpenAIConfig
    from aliasgate.datasets.base import Case, Dataset
    from aliasgate.run.cache import ResponseCache
    from aliasgate.run.runner import run_suite
    from aliasgate.run.suite import Suite

    cases = tuple(Case(id=f"c{i}", input=f"question {offset + i}", expected=("x",),
                       source=f"bench:{i + 1}") for i in range(n))
    dataset = Dataset("bench", "bench.jsonl", "golden_qa", cases, "sha256:" + "00" * 32)
    suite = Suite(name="bench", dataset="bench.jsonl", scorers=("exact_match",))
    candidate = OpenAICandidate(OpenAIConfig(provider="compatible", model="bench",
                                             base_url=f"{url}/v1", max_concurrency=concurrency,
                                             timeout_s=30, max_retries=2))
    before = stats(url)["chat_requests"]
    last = [0.0]

    def on_result(_result: object) -> None:
        last[0] = time.perf_counter()

    with tempfile.TemporaryDirectory() as tmp, ResponseCache(Path(tmp) / "r.sqlite") as cache:
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        result = run_suite(suite, dataset, candidate, cache=cache, concurrency=concurrency,
                           on_result=on_result)
        wall = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        cached = len(cache)
    candidate.close()
    after = stats(url)
    return {
        "wall": wall,
        "cpu": cpu,
        "calls_phase": last[0] - t0,
        "server_calls": after["chat_requests"] - before,
        "model_calls": result.model_calls,
        "present": len(result.cases),
        "scored": sum(c.status == "scored" for c in result.cases),
        "cached": cached,
        "max_in_flight": after["max_in_flight"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--latency", type=float, default=0.1)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    ideal = args.n / args.concurrency * args.latency
    proc, url = start_server(args.latency)
    try:
        runs = []
        for r in range(args.runs):
            m = one_run(url, args.n, args.concurrency, offset=r * args.n)
            runs.append(m)
            print(f"run {r + 1}: wall {m['wall']:.2f} s (call phase {m['calls_phase']:.2f} s), "
                  f"ideal {ideal:.2f} s, ratio {m['wall'] / ideal:.2f}x "
                  f"(call phase {m['calls_phase'] / ideal:.2f}x); server calls "
                  f"{m['server_calls']}, model_calls {m['model_calls']}, max in flight "
                  f"{m['max_in_flight']}; cases present {m['present']}/{args.n}, scored "
                  f"{m['scored']}, cached {m['cached']}; client CPU {m['cpu']:.2f} s; "
                  f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
            # sanity only: a bench that lost cases measures nothing
            assert m["present"] == args.n, "cases lost"
        med_wall = statistics.median(m["wall"] for m in runs)
        med_calls = statistics.median(m["calls_phase"] for m in runs)
        print(f"median over {args.runs} runs: N={args.n}, c={args.concurrency}, latency "
              f"{args.latency * 1000:.0f} ms -> wall {med_wall:.2f} s = {med_wall / ideal:.2f}x "
              f"ideal {ideal:.2f} s (call phase {med_calls:.2f} s = {med_calls / ideal:.2f}x)")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
