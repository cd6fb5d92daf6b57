"""What aliasgate itself costs per evaluation, next to a bare floor and to `mlflow.genai.evaluate`.

Same data (1,000 synthetic golden_qa cases, half answered correctly), same instant in-process model
(a Python function: the model costs ~nothing, so only harness time is left) and the same scorers
(aliasgate's `exact_match` and `token_f1` objects) on three paths:

* aliasgate — what `pytest evals/` does per suite: `load_dataset` (validation + digest), `run_suite`
  with a `CallableCandidate` (thread pool, dedup, bootstrap CIs) and `TrackingSession.log_suite`
  (parent + child run, params, metrics, per-case table) + `finish()`, into a sqlite MLflow store.
  Timed without the response cache (the floor has none) and, on a separate line, with a fresh cold
  cache as `pytest evals/` runs by default.
* bare floor — read the JSONL, a plain loop calling the function and the scorers, the means, then
  one run with one `log_batch` and one `log_table`.
* `mlflow.genai.evaluate` — `predict_fn` undecorated, `MLFLOW_GENAI_EVAL_SKIP_TRACE_VALIDATION=true`
  (see ../shared/PITFALLS.md), the two scorers wrapped with `@scorer`, in a child process with a
  time cap; what it kept (traces, assessments, per-row table, run metrics) is counted and printed.

Fairness: the one-time costs are excluded on every side — `import mlflow`/pandas/scipy and the
creation of the fresh sqlite store (1-5 s of table creation, both printed) happen before any timer starts: the
parent process creates its store and runs each path once untimed on 20 cases; each genai child
creates its own store and experiment and imports `mlflow.genai` before its timer. Every timed run
of the two in-process paths uses the same warm store (alternating order, median of --repeats).

Besides wall time it prints each path's CPU time (``time.process_time``: all threads of the
process, not the time spent waiting for the disk — on a shared machine the sqlite commits'
fsyncs swing from ~3 to ~25 ms each) and how many tracking-store write transactions each path
commits (counted once, untimed, with SQLAlchemy events).

Run from the repository root: `python bench/overhead.py` (about 1.5 min on 2 cores, nearly all
of it in genai; `--genai-cap S` bounds each genai run, `--skip-genai` leaves it out, `--profile`
adds a cProfile breakdown of the aliasgate path).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_GENAI_EVAL_SKIP_TRACE_VALIDATION", "true")

from aliasgate.defaults import quiet_environment  # noqa: E402

quiet_environment()

N_CASES = 1000
SMALL_N = 100
SCORERS = ("exact_match", "token_f1")
PROMPT = "Answer the question with a short phrase only.\nQuestion: {input}"


# -- shared data and model ---------------------------------------------------------------------
def question(i: int) -> str:
    return f"What is the code word number {i}?"


def answer(i: int) -> str:
    return f"word {i}"


def reply(i: int) -> str:
    """The instant model's answer: right for even i, wrong (partly overlapping) for odd i."""
    return answer(i) if i % 2 == 0 else f"the word {i + 1}"


def _reply_to(q: str) -> str:
    return reply(int(q.rsplit(" ", 1)[1].rstrip("?")))


def instant_model(messages: list[dict[str, str]], params: Any) -> str:
    """A `callable:` candidate: answers from the question's number (the prompt's last line)."""
    return _reply_to(messages[-1]["content"].rsplit("Question: ", 1)[1])


def write_dataset(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(n):
            row = {"id": f"q-{i:05d}", "question": question(i), "answers": [answer(i)],
                   "topic": f"t{i % 7}"}
            fh.write(json.dumps(row) + "\n")
    return path


# -- the three paths -----------------------------------------------------------------------------
def run_aliasgate(dataset: Path, uri: str, experiment: str, cache_dir: Path | None = None) -> float:
    from aliasgate.candidates.callable_ import CallableCandidate
    from aliasgate.datasets import load_dataset
    from aliasgate.registry.tracking import TrackingSession
    from aliasgate.run.cache import ResponseCache
    from aliasgate.run.runner import run_suite
    from aliasgate.run.suite import Suite

    t0 = time.perf_counter()
    suite = Suite(name="overhead", dataset=str(dataset), scorers=SCORERS, prompt=PROMPT)
    data = load_dataset(dataset, kind="golden_qa", name=suite.name)
    candidate = CallableCandidate(instant_model, name="callable:bench.overhead:instant_model")
    cache = ResponseCache(cache_dir) if cache_dir is not None else None
    result = run_suite(suite, data, candidate, cache=cache)
    tracking = TrackingSession(uri, experiment)
    tracking.log_suite(result)
    tracking.finish()
    if cache is not None:
        cache.close()
    elapsed = time.perf_counter() - t0
    assert result.n == data.cases.__len__() and result.unmeasured == 0, "sanity: cases lost"
    return elapsed


def run_bare(dataset: Path, uri: str, experiment_id: str) -> float:
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    from aliasgate.datasets.base import Case
    from aliasgate.scorers import get_scorer

    t0 = time.perf_counter()
    scorers = [get_scorer(s) for s in SCORERS]
    rows = []
    sums = dict.fromkeys(SCORERS, 0.0)
    with dataset.open(encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            case = Case(id=r["id"], input=r["question"], expected=tuple(r["answers"]))
            prompt = PROMPT.format(input=case.input)
            output = instant_model([{"role": "user", "content": prompt}], None)
            row = {"id": case.id, "input": prompt, "output": output,
                   "expected": " | ".join(case.expected)}
            for s in scorers:
                v = s(output, case).value
                row[s.name] = v
                sums[s.name] += v
            rows.append(row)
    client = MlflowClient(uri)
    run_id = client.create_run(experiment_id, run_name="bare").info.run_id
    now = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, v / len(rows), now, 0) for k, v in sums.items()])
    client.log_table(run_id, data=pd.DataFrame(rows), artifact_file="cases.json")
    client.set_terminated(run_id, "FINISHED")
    return time.perf_counter() - t0


GENAI_MARK = "GENAI_RESULT="


def genai_child(n: int) -> None:
    """Runs in a child process: one `mlflow.genai.evaluate` on n cases; prints a JSON result line."""
    with tempfile.TemporaryDirectory(prefix="aliasgate-bench-genai-") as tmp:
        import mlflow
        import mlflow.genai  # noqa: F401 - imported before the timer
        from mlflow import MlflowClient
        from mlflow.genai.scorers import scorer

        from aliasgate.datasets.base import Case
        from aliasgate.scorers import get_scorer

        uri = f"sqlite:///{tmp}/mlflow.db"
        mlflow.set_tracking_uri(uri)
        exp_id = mlflow.set_experiment("genai").experiment_id  # store creation: untimed
        em, f1 = (get_scorer(s) for s in SCORERS)

        def _case(expectations: dict[str, Any]) -> Case:
            return Case(id="x", input="", expected=(expectations["expected_response"],))

        @scorer
        def exact_match(outputs: str, expectations: dict[str, Any]) -> float:
            return em(outputs, _case(expectations)).value

        @scorer
        def token_f1(outputs: str, expectations: dict[str, Any]) -> float:
            return f1(outputs, _case(expectations)).value

        data = [{"inputs": {"question": question(i)},
                 "expectations": {"expected_response": answer(i)}} for i in range(n)]

        def predict_fn(question: str) -> str:  # undecorated (PITFALLS)
            return _reply_to(question)

        t0 = time.perf_counter()
        result = mlflow.genai.evaluate(data=data, predict_fn=predict_fn,
                                       scorers=[exact_match, token_f1])
        elapsed = time.perf_counter() - t0
        traces = mlflow.search_traces(locations=[exp_id], return_type="list")
        run_metrics = MlflowClient(uri).get_run(result.run_id).data.metrics
        df = result.result_df
        out = {
            "n": n, "seconds": elapsed, "traces": len(traces),
            "assessments": sum(len(t.info.assessments or []) for t in traces),
            "result_rows": None if df is None else len(df),
            "metrics": {k: float(v) for k, v in (result.metrics or {}).items()},
            "run_metrics": sorted(run_metrics),
        }
    print(GENAI_MARK + json.dumps(out), flush=True)


def run_genai(n: int, cap_s: float) -> dict[str, Any]:
    """`genai_child(n)` in its own process group, killed after ``cap_s`` seconds."""
    cmd = [sys.executable, __file__, "--genai-child", str(n)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=cap_s + 60)  # + store creation and imports
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"n": n, "timeout": True, "wall": time.perf_counter() - t0}
    for line in out.splitlines():
        if line.startswith(GENAI_MARK):
            result = json.loads(line[len(GENAI_MARK):])
            warnings = [ln.split("WARNING", 1)[1] for ln in err.splitlines() if "WARNING" in ln]
            result["warnings"] = len(warnings)
            if warnings:
                common = max(set(warnings), key=warnings.count)
                result["warning"] = f"{warnings.count(common)}x{common[:110]}"
            if result["seconds"] > cap_s:
                result["over_cap"] = True
            return result
    return {"n": n, "error": f"exit {proc.returncode}: {err.strip().splitlines()[-1:]}"}


# -- main ------------------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=N_CASES)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--genai-cap", type=float, default=300.0, help="seconds per genai run")
    ap.add_argument("--skip-genai", action="store_true")
    ap.add_argument("--profile", action="store_true",
                    help="also print where the aliasgate path spends its time (cProfile)")
    ap.add_argument("--genai-child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.genai_child is not None:
        genai_child(args.genai_child)
        return

    import logging

    t0 = time.perf_counter()
    import mlflow  # noqa: F401 - untimed; its import configures the "mlflow" logger

    import_s = time.perf_counter() - t0

    logging.getLogger("mlflow").setLevel(logging.WARNING)  # not "Creating initial tables..."
    med = statistics.median
    print(machine_line(), "(before)")
    with tempfile.TemporaryDirectory(prefix="aliasgate-bench-overhead-") as tmp_s:
        tmp = Path(tmp_s)
        big = write_dataset(tmp / "big.jsonl", args.cases)
        small = write_dataset(tmp / "small.jsonl", SMALL_N)
        warm = write_dataset(tmp / "warm.jsonl", 20)
        uri = f"sqlite:///{tmp}/mlflow.db"

        # One-time costs, untimed: imports, store creation, experiments, first runs.
        t0 = time.perf_counter()
        from mlflow import MlflowClient

        client = MlflowClient(uri)
        bare_exp = client.create_experiment("bare")
        setup_s = time.perf_counter() - t0
        run_aliasgate(warm, uri, "aliasgate")
        run_aliasgate(warm, uri, "aliasgate", cache_dir=tmp / "cache-warmup")
        run_bare(warm, uri, bare_exp)

        timings: dict[str, list[float]] = {"aliasgate": [], "aliasgate+cache": [], "bare": [],
                                           "aliasgate@100": [], "bare@100": []}
        cpu: dict[str, list[float]] = {"aliasgate": [], "bare": []}

        def timed(key: str, fn: Any, *fn_args: Any) -> None:
            c0 = time.process_time()
            timings[key].append(fn(*fn_args))
            if key in cpu:
                cpu[key].append(time.process_time() - c0)

        for rep in range(args.repeats):
            order = ["aliasgate", "bare"] if rep % 2 == 0 else ["bare", "aliasgate"]
            for name in order:
                if name == "aliasgate":
                    timed("aliasgate", run_aliasgate, big, uri, "aliasgate")
                    timed("aliasgate@100", run_aliasgate, small, uri, "aliasgate")
                else:
                    timed("bare", run_bare, big, uri, bare_exp)
                    timed("bare@100", run_bare, small, uri, bare_exp)
            timed("aliasgate+cache", run_aliasgate, big, uri, "aliasgate", tmp / f"cache-{rep}")

        writes = {"aliasgate": count_store_writes(run_aliasgate, big, uri, "aliasgate"),
                  "bare": count_store_writes(run_bare, big, uri, bare_exp)}
        if args.profile:
            profile(big, uri)

    n = args.cases
    ag, bare, agc = med(timings["aliasgate"]), med(timings["bare"]), med(timings["aliasgate+cache"])
    ag100, bare100 = med(timings["aliasgate@100"]), med(timings["bare@100"])
    print(f"untimed one-time setup: import mlflow {import_s:.2f} s, create the sqlite store "
          f"{setup_s:.2f} s")
    print(f"{n} cases, instant model, scorers {', '.join(SCORERS)}; median of {args.repeats}:")
    print(f"  aliasgate (runner + TrackingSession), no cache : {ag:.3f} s  "
          f"({1e3 * ag / n:.3f} ms/case)  runs: {_fmt(timings['aliasgate'])}")
    print(f"  aliasgate with a cold response cache           : {agc:.3f} s  "
          f"runs: {_fmt(timings['aliasgate+cache'])}")
    print(f"  bare floor (loop + 1 log_batch + 1 log_table)  : {bare:.3f} s  "
          f"({1e3 * bare / n:.3f} ms/case)  runs: {_fmt(timings['bare'])}")
    print(f"  {SMALL_N} cases: aliasgate {ag100:.3f} s, bare {bare100:.3f} s")
    print(f"ratio aliasgate/bare @{n}: {ag / bare:.2f}x on medians, "
          f"{min(timings['aliasgate']) / min(timings['bare']):.2f}x on the fastest runs "
          f"(target <= 1.5x); with cache {agc / bare:.2f}x; @{SMALL_N}: {ag100 / bare100:.2f}x")
    cpu_ag, cpu_bare = med(cpu["aliasgate"]), med(cpu["bare"])
    print(f"CPU time @{n} (process_time, all threads; median): aliasgate {1e3 * cpu_ag:.1f} ms, "
          f"bare {1e3 * cpu_bare:.1f} ms = {cpu_ag / cpu_bare:.2f}x")
    print(f"tracking-store write transactions per run: aliasgate {writes['aliasgate']}, "
          f"bare {writes['bare']} (each one sqlite commit: fsync-bound on a loaded disk)")

    if args.skip_genai:
        print(machine_line(), "(after)")
        return
    for size, ours in ((SMALL_N, ag100), (n, ag)):
        g = run_genai(size, args.genai_cap)
        if g.get("timeout"):
            print(f"mlflow.genai.evaluate @{size}: did not finish within the {args.genai_cap:.0f} s "
                  f"cap (killed after {g['wall']:.0f} s)")
            continue
        if "error" in g:
            print(f"mlflow.genai.evaluate @{size}: failed: {g['error']}")
            continue
        over = " (over the cap)" if g.get("over_cap") else ""
        print(f"mlflow.genai.evaluate @{size}: {g['seconds']:.2f} s{over}; kept: "
              f"{g['traces']} traces, {g['assessments']} assessments, per-row table: "
              f"{g['result_rows']}, run metrics: {g['run_metrics']}; "
              f"{g['warnings']} WARNING lines on stderr")
        if g.get("warning"):
            print(f"  most common warning: {g['warning']}")
        print(f"ratio genai/aliasgate @{size}: {g['seconds'] / ours:.0f}x (target >= 100x)")
    print(machine_line(), "(after)")


#: Where the aliasgate path's time goes: (label, cProfile file suffix, function name).
PROFILE_POINTS = (
    ("load_dataset (validation + digest)", "aliasgate/datasets/loader.py", "load_dataset"),
    ("run_suite (total)", "aliasgate/run/runner.py", "run_suite"),
    ("  model calls (waiting on the worker threads)", "aliasgate/run/runner.py", "_call_all"),
    ("  _case_result (CaseResult per case)", "aliasgate/run/runner.py", "_case_result"),
    ("  score_and_aggregate", "aliasgate/run/runner.py", "score_and_aggregate"),
    ("    score_batch (the scorers)", "aliasgate/scorers/base.py", "score_batch"),
    ("    mean_cis (bootstrap CIs)", "aliasgate/stats/bootstrap.py", "mean_cis"),
    ("TrackingSession.log_suite (total)", "aliasgate/registry/tracking.py", "log_suite"),
    ("  CaseResult.row", "aliasgate/run/results.py", "row"),
    ("  table_json (per-case table)", "aliasgate/registry/tracking.py", "table_json"),
    ("  MlflowClient.log_artifacts", "mlflow/tracking/client.py", "log_artifacts"),
    ("  MlflowClient.log_batch (2)", "mlflow/tracking/client.py", "log_batch"),
    ("  MlflowClient.create_run (2)", "mlflow/tracking/client.py", "create_run"),
    ("  MlflowClient.set_terminated (1)", "mlflow/tracking/client.py", "set_terminated"),
    ("TrackingSession.finish", "aliasgate/registry/tracking.py", "finish"),
)


def count_store_writes(fn: Any, *fn_args: Any) -> int:
    """Run ``fn(*fn_args)`` once and count the write transactions it committed to the store."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    state = {"dirty": False, "writes": 0}

    def on_execute(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        if statement.lstrip().split(None, 1)[0].upper() in ("INSERT", "UPDATE", "DELETE"):
            state["dirty"] = True

    def on_commit(conn: Any) -> None:
        state["writes"] += state["dirty"]
        state["dirty"] = False

    event.listen(Engine, "before_cursor_execute", on_execute)
    event.listen(Engine, "commit", on_commit)
    try:
        fn(*fn_args)
    finally:
        event.remove(Engine, "before_cursor_execute", on_execute)
        event.remove(Engine, "commit", on_commit)
    return int(state["writes"])


def profile(dataset: Path, uri: str, runs: int = 5) -> None:
    """cProfile ``runs`` aliasgate runs; print each point's cumulative share of the total.

    cProfile slows every Python call (threads and locks most), so shares, not seconds, matter.
    """
    import cProfile
    import pstats

    prof = cProfile.Profile()
    prof.enable()
    for _ in range(runs):
        run_aliasgate(dataset, uri, "aliasgate")
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    total = sum(ct for (f, _, fn), (_, _, _, ct, _) in stats.items()
                if f.endswith("bench/overhead.py") and fn == "run_aliasgate")
    print(f"profile of {runs} aliasgate runs under cProfile ({total:.2f} s in total):")
    for label, suffix, name in PROFILE_POINTS:
        cum = sum(ct for (f, _, fn), (_, _, _, ct, _) in stats.items()
                  if f.endswith(suffix) and fn == name)
        print(f"  {label:<44s} {100 * cum / total:5.1f} %")


def machine_line() -> str:
    """Cores and 1-minute load average: other work on the machine skews every figure here."""
    return f"machine: {os.cpu_count()} cores, load average (1 min) {os.getloadavg()[0]:.2f}"


def _fmt(xs: list[float]) -> str:
    return " ".join(f"{x:.3f}" for x in xs)


if __name__ == "__main__":
    main()
