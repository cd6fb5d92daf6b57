"""Run one suite against one candidate: render prompts, call the model concurrently through the
response cache, score, and aggregate with bootstrap confidence intervals.

Nothing is lost: every case of the dataset (up to ``limit``) appears in the result, in dataset
order; a failed model call or an unrenderable prompt makes that case ``unmeasured`` (never scored
0 or 1), and a scorer error makes that one score unmeasured.
"""

from __future__ import annotations

import math
import queue
import threading
import time
import warnings
from collections import Counter, deque
from collections.abc import Callable, Generator, Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from aliasgate.candidates.base import Candidate, Generation, GenerationParams, InnerModel, Message
from aliasgate.datasets.base import Case, Dataset
from aliasgate.redact import redact
from aliasgate.run.cache import ResponseCache
from aliasgate.run.progress import ProgressCallback
from aliasgate.run.results import CaseResult, MetricSummary, SuiteResult
from aliasgate.run.suite import Suite
from aliasgate.scorers import Score, Scorer, get_scorer, score_batch
from aliasgate.stats.aggregate import gap_specs

MODEL_CALL_FAILED = "model call failed"
PROMPT_FAILED = "prompt could not be rendered"


@dataclass(slots=True)
class _Request:
    """One unique request (cases with identical messages share one call, per repeat)."""

    #: The response-cache key with a cache; without one, any key unique to the request.
    key: Hashable
    messages: list[Message]
    slots: list[tuple[int, int]]  # (case index, repeat index)


@dataclass(slots=True)
class _Outcome:
    generation: Generation | None
    error: str | None
    cache_error: str | None = None
    #: A wrapping candidate answered without calling its model (cached answer, or its input
    #: filter refused the request).
    no_model_call: bool = False


@dataclass(slots=True)
class _Sample:
    """One repeat of one case: its generation, or why it failed."""

    generation: Generation | None
    error: str | None
    cached: bool


def run_suite(
    suite: Suite,
    dataset: Dataset,
    candidate: Candidate,
    *,
    cache: ResponseCache | None = None,
    concurrency: int | None = None,
    limit: int | None = None,
    sample: float | None = None,
    on_result: ProgressCallback | None = None,
    scorers: Sequence[Scorer | str] | None = None,
    seed: int = 0,
    repeats: int = 1,
) -> SuiteResult:
    """Evaluate ``candidate`` on ``dataset`` as ``suite`` says.

    Only the cases matching ``suite.where`` are evaluated. Each case's user message is
    ``suite.render(case.input, case.meta)``, preceded by a system message
    ``suite.render_system(...)`` when the suite has a ``system`` prefix; the candidate merges its
    own system prompt into that (or adds it). Identical requests within a run share one model
    call. Responses are looked up in, and stored to, ``cache`` (each as soon as it arrives, so an
    interrupted run resumes).

    With ``repeats`` K > 1 every case is asked K times (distinct cache keys carry the repeat
    index). A case's metric value is the mean of its K scores, its ``output`` the modal text and
    its ``agreement`` the share of repeats equal to that mode; it is ``unmeasured`` if any repeat
    failed (a rerun asks only for the missing repeats). Suite metrics stay means over cases.

    Args:
        suite: Prompt template, generation parameter overrides and scorer names.
        dataset: The validated cases.
        candidate: The model under evaluation.
        cache: Response cache; ``None`` disables caching.
        concurrency: Model calls in flight at once (default: ``candidate.max_concurrency``).
        limit: Evaluate only the first ``limit`` cases.
        sample: Evaluate a deterministic random sample of this share of the clusters
            (:meth:`~aliasgate.datasets.base.Dataset.sample`), before ``limit``.
        on_result: Called once per case, in the calling thread, as its call finishes (before
            scoring: ``scores`` is still empty). If it has a ``set_total`` method, that is
            called first with the number of cases that will be evaluated (after ``where`` and
            ``limit``). See :mod:`aliasgate.run.progress`.
        scorers: Scorer objects or registered names to use instead of ``suite.scorers``.
        seed: Seed of the bootstrap confidence intervals.
        repeats: How many times each case is asked (for non-deterministic candidates).

    Returns:
        A :class:`SuiteResult` with one :class:`CaseResult` per case, in dataset order.

    Raises:
        KeyError: an unknown scorer name (before any model call).
        TypeError: an unknown generation parameter in ``suite.params``.
        ValueError: ``limit`` < 0, ``concurrency`` < 1, ``repeats`` < 1, two scorers with the
            same name, or a ``suite.where`` that matches no case.
        KeyboardInterrupt: propagated once in-flight calls have finished and been cached.
    """
    t0 = time.perf_counter()
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    workers = concurrency if concurrency is not None else max(1, candidate.max_concurrency or 1)
    if workers < 1:
        raise ValueError(f"concurrency must be >= 1, got {workers}")
    built = build_scorers(suite, scorers)
    names = [s.name for s in built]
    try:
        params = candidate.params.merged(suite.params)
    except TypeError as exc:
        raise TypeError(f"suite {suite.name!r}: bad generation parameter in params ({exc})") from exc
    fingerprint = candidate.fingerprint()
    cases = suite.select(dataset).sample(sample).head(limit).cases
    results: list[CaseResult | None] = [None] * len(cases)
    notify = on_result or (lambda r: None)
    set_total = getattr(on_result, "set_total", None)
    if callable(set_total):
        set_total(len(cases))

    # Render prompts; group identical requests (per repeat). Within one run the fingerprint and
    # the parameters are fixed, so the messages (and repeat) identify a request: the cache key
    # (a sha256) is computed only when there is a cache to look it up in.
    cache_key = ResponseCache.key_function(fingerprint, params) if cache is not None else None
    requests: dict[Hashable, _Request] = {}
    prompts: list[str] = [""] * len(cases)
    for i, case in enumerate(cases):
        try:
            prompt = suite.render(case.input, case.meta)
            system = suite.render_system(case.input, case.meta) if suite.system else None
        except Exception as exc:  # noqa: BLE001 - recorded per case
            results[i] = CaseResult(
                case=case, prompt=suite.prompt, output=None, status="unmeasured",
                error=_render_error(exc, case),
                scores={n: Score.unmeasured(PROMPT_FAILED) for n in names},
            )
            notify(results[i])
            continue
        prompts[i] = prompt
        messages: list[Message] = [{"role": "user", "content": prompt}]
        if system:  # the suite's system-prompt prefix; the candidate merges in its own
            messages.insert(0, {"role": "system", "content": system})
        for r in range(repeats):
            rep = r if repeats > 1 else None
            key: Hashable = (cache_key(messages, rep) if cache_key is not None
                             else (system, prompt, rep))
            if key in requests:
                requests[key].slots.append((i, r))
            else:
                requests[key] = _Request(key, messages, [(i, r)])

    # A case is settled once all its repeats are.
    samples: list[list[_Sample | None]] = [[None] * repeats for _ in cases] if repeats > 1 else []
    waiting = [repeats] * len(cases)

    def settle(i: int, r: int, sample: _Sample) -> None:
        if repeats == 1:
            results[i] = _case_result(cases[i], prompts[i], [sample], names)
            notify(results[i])
            return
        samples[i][r] = sample
        waiting[i] -= 1
        if waiting[i] == 0:
            done = [s for s in samples[i] if s is not None]
            results[i] = _case_result(cases[i], prompts[i], done, names)
            notify(results[i])

    # Serve what the cache has.
    cache_hits = 0
    pending: list[_Request] = []
    found = cache.get_many([str(k) for k in requests]) if cache is not None and requests else {}
    for req in requests.values():
        gen = found.get(req.key)  # type: ignore[call-overload]
        if gen is None or no_answer(gen) is not None:  # (a blank cut-off from an older cache)
            pending.append(req)
            continue
        for i, r in req.slots:
            cache_hits += 1
            settle(i, r, _Sample(gen, None, cached=True))

    # Call the model for the rest.
    model_calls = 0
    meta_base = {"candidate": candidate.uri, "fingerprint": fingerprint, "suite": suite.name,
                 "params": params.as_dict()}

    # A wrapper around a model (a guard): the model's answers are cached under the model's own
    # fingerprint, so a variant that differs only by its wrapper reuses them.
    inner = candidate.inner_model() if cache is not None else None
    inner_key = ResponseCache.key_function(inner.fingerprint, params) if inner else None

    def call(req: _Request) -> _Outcome:
        if cache is None:
            return _call(candidate, req, params, None, None)
        i, r = req.slots[0]
        meta = {**meta_base, "case": cases[i].id}
        if repeats > 1:
            meta["repeat"] = r
        if inner is not None and inner_key is not None:
            return _call_wrapped(candidate, inner, inner_key(req.messages, r if repeats > 1
                                                             else None), req, params, cache, meta)
        return _call(candidate, req, params, cache, meta)

    if pending:
        model_calls = len(pending)
        finished = _call_all(call, pending, workers)
        try:
            for req, outcome in finished:
                if outcome.no_model_call:
                    model_calls -= 1
                if outcome.cache_error:
                    warnings.warn(outcome.cache_error, RuntimeWarning, stacklevel=2)
                for i, r in req.slots:
                    settle(i, r, _Sample(outcome.generation, outcome.error, cached=False))
        finally:
            finished.close()  # on an early exit: waits for the calls in flight

    final = [r for r in results if r is not None]
    if len(final) != len(cases):  # pragma: no cover - a bug, never a silent loss
        raise RuntimeError(f"suite {suite.name!r}: {len(cases) - len(final)} cases lost")
    metrics = score_and_aggregate(final, built, seed)
    tables, aggregate_errors = suite_aggregates(suite, final, metrics, seed)
    agreement = _agreement(final, seed) if repeats > 1 else None
    return SuiteResult(
        suite=suite.name,
        candidate=candidate.uri,
        dataset_digest=dataset.digest,
        dataset_path=dataset.path,
        params=params.as_dict(),
        cases=final,
        metrics=metrics,
        model_calls=model_calls,
        cache_hits=cache_hits,
        wall_time_s=time.perf_counter() - t0,
        candidate_info=candidate.describe(),
        tables=tables,
        aggregate_errors=aggregate_errors,
        repeats=repeats,
        agreement=agreement,
        scorer_info=scorer_info(built),
        gap_specs=gap_specs(suite.aggregates) if suite.aggregates else {},
        value_ranges={s.name: tuple(s.value_range) for s in built  # type: ignore[attr-defined]
                      if getattr(s, "value_range", None) is not None},
    )


def suite_aggregates(
    suite: Suite, results: list[CaseResult], metrics: dict[str, MetricSummary], seed: int
) -> tuple[dict[str, list[dict[str, Any]]], dict[str, str]]:
    """Run the suite's aggregates; add their metrics to ``metrics``; return tables and errors."""
    tables: dict[str, list[dict[str, Any]]] = {}
    errors: dict[str, str] = {}
    if not suite.aggregates:
        return tables, errors
    from aliasgate.stats.aggregate import run_aggregate

    scored = [r for r in results if r.status == "scored"]
    failed = len(results) - len(scored)
    for name, options in suite.aggregates.items():
        out = run_aggregate(name, [r.case for r in scored], [r.scores for r in scored],
                            options, seed=seed)
        for metric, m in out.metrics.items():
            if metric in metrics:
                errors[metric] = f"aggregate {name!r} redefines metric {metric!r}; ignored"
                continue
            metrics[metric] = MetricSummary(
                name=metric, value=m.value, ci_low=m.ci_low, ci_high=m.ci_high,
                n=m.n, unmeasured=m.unmeasured + failed,
            )
            if m.error:
                errors[metric] = m.error
        tables.update(out.tables)
    return tables, errors


def _call_all(
    call: Callable[[_Request], _Outcome], pending: list[_Request], workers: int
) -> Generator[tuple[_Request, _Outcome], None, None]:
    """Yield ``(request, outcome)`` for every pending request, in the calling thread, in the
    order the calls finish; the calls run on ``min(workers, len(pending))`` threads.

    A fixed set of worker threads pulls requests from one queue, so at most ``workers`` calls
    are in flight and a slow call holds back only its own thread (no future, no per-request
    task object: a cheap call costs two queue operations). A ``BaseException`` raised by a call
    (``_call`` turns every ``Exception`` into an outcome) is re-raised here. When the caller
    stops early (``KeyboardInterrupt``, an exception from ``on_result``, a closed generator),
    no further request is started, and this returns only once the calls in flight have
    finished (and reached the cache).
    """
    jobs = deque(pending)
    done: queue.SimpleQueue[tuple[_Request, _Outcome | None, BaseException | None]] = (
        queue.SimpleQueue()
    )
    stop = threading.Event()
    # Threads wait at the gate until all are started: a thread started while others already
    # run cheap calls would wait for the GIL to report that it started (~1 ms each).
    gate = threading.Event()

    def work() -> None:
        gate.wait()
        while not stop.is_set():
            try:
                req = jobs.popleft()  # atomic: each request goes to exactly one thread
            except IndexError:
                return
            try:
                done.put((req, call(req), None))
            except BaseException as exc:  # noqa: BLE001 - handed to the calling thread
                done.put((req, None, exc))

    threads = [
        threading.Thread(target=work, name=f"aliasgate-call-{t}", daemon=False)
        for t in range(min(workers, len(pending)))
    ]
    try:
        for t in threads:
            t.start()
        gate.set()
        for _ in range(len(pending)):
            req, outcome, exc = done.get()
            if exc is not None:
                raise exc
            assert outcome is not None
            yield req, outcome
    finally:
        # Normal end: the queue is empty and the threads are leaving. Otherwise: start no
        # further call, and wait for those in flight.
        stop.set()
        gate.set()
        for t in threads:
            if t.ident is not None:  # started
                t.join()


def scorer_info(scorers: Sequence[Scorer]) -> dict[str, Any]:
    """The loggable settings of the scorers that have a ``describe()`` method (LLM judges).

    Called after scoring, so a judge's calibration result is included. A key two scorers give
    different values (two judges with different settings) is kept once per scorer, as
    ``<key>[<scorer name>]``; a failing ``describe()`` is recorded as
    ``scorer.<name>.describe_error``.
    """
    described: list[tuple[str, dict[str, Any]]] = []
    for s in scorers:
        describe = getattr(s, "describe", None)
        if not callable(describe):
            continue
        try:
            d = dict(describe())
        except Exception as exc:  # noqa: BLE001 - recorded, never fatal after scoring
            d = {f"scorer.{s.name}.describe_error": f"{type(exc).__name__}: {exc}"}
        described.append((s.name, d))
    values: dict[str, set[str]] = {}
    for _, d in described:
        for k, v in d.items():
            values.setdefault(k, set()).add(repr(v))
    out: dict[str, Any] = {}
    for name, d in described:
        for k, v in d.items():
            out[k if len(values[k]) == 1 else f"{k}[{name}]"] = v
    return out


def build_scorers(suite: Suite, scorers: Sequence[Scorer | str] | None) -> list[Scorer]:
    specs = suite.scorers if scorers is None else scorers
    built = [get_scorer(s) if isinstance(s, str) else s for s in specs]
    names = [s.name for s in built]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"suite {suite.name!r}: several scorers named {', '.join(dupes)}")
    return built


def _render_error(exc: Exception, case: Case) -> str:
    if isinstance(exc, KeyError):
        field = exc.args[0] if exc.args else "?"
        available = ", ".join(sorted({*case.meta, "input"}))
        return (
            f"KeyError: prompt template field {field!r} not found for case {case.id!r} "
            f"(available: {available})"
        )
    return f"{type(exc).__name__}: prompt template could not be rendered for case {case.id!r}: {exc}"


def _call(
    candidate: Candidate,
    req: _Request,
    params: GenerationParams,
    cache: ResponseCache | None,
    meta: dict[str, Any] | None,
) -> _Outcome:
    """One model call, in a worker thread: any ``Exception`` becomes an error string."""
    start = time.perf_counter()
    try:
        gen = candidate.generate(req.messages, params)
    except Exception as exc:  # noqa: BLE001 - recorded as unmeasured, never cached
        return _Outcome(None, redact(f"{type(exc).__name__}: {exc}"))
    elapsed = time.perf_counter() - start
    if not isinstance(gen, Generation):
        return _Outcome(None, f"TypeError: candidate returned {type(gen).__name__}, not Generation")
    if not isinstance(gen.text, str):
        return _Outcome(None, f"TypeError: candidate returned text of type {type(gen.text).__name__}")
    missing = no_answer(gen)
    if missing is not None:  # unmeasured, and not cached: a rerun asks again
        return _Outcome(None, missing)
    if not gen.latency_s:
        gen = replace(gen, latency_s=elapsed)
    if gen.cached:
        gen = replace(gen, cached=False)
    cache_error = None
    if cache is not None:
        try:
            cache.put(str(req.key), gen, meta=meta)
        except Exception as exc:  # noqa: BLE001 - the answer is still used; the run warns
            cache_error = f"response not cached: {type(exc).__name__}: {exc}"
    return _Outcome(gen, None, cache_error)


#: Finish reasons after which a blank text is the model's answer (it chose to stop; the guard
#: answered). After any other (``length``: cut off; ``content_filter``; unknown) it is not.
ANSWERED_FINISH = frozenset({"stop", "guard", "end_turn", "eos"})


def no_answer(gen: Generation) -> str | None:
    """Why ``gen`` is not an answer (None when it is): blank text the model did not choose.

    A generation cut off before any text (``finish_reason="length"``), filtered, or blank for
    an unknown reason is ``unmeasured`` with this reason — never scored 0. A blank text after
    ``stop`` is the model's own (empty) answer and is scored.
    """
    if gen.text.strip() or gen.finish_reason in ANSWERED_FINISH:
        return None
    return (f"no answer: blank text with finish_reason={gen.finish_reason!r} (a generation cut "
            "off or dropped, not an answer)")


def _call_wrapped(
    candidate: Candidate,
    inner: InnerModel,
    inner_key: str,
    req: _Request,
    params: GenerationParams,
    cache: ResponseCache,
    meta: dict[str, Any],
) -> _Outcome:
    """:func:`_call` for a wrapping candidate: the wrapped model's answer is looked up in (and
    written to) the cache under ``inner_key``; the wrapper runs on it either way. The outer
    answer is cached under the request's own key too (a rerun finds it at once)."""
    called: list[bool] = []
    errors: list[str] = []

    def cached_inner(messages: list[Message], p: GenerationParams) -> Generation:
        if messages == req.messages and p == params:  # the request as keyed (else: no cache)
            found = cache.get(inner_key)
            if found is not None and no_answer(found) is None:
                return found
        called.append(True)
        gen = inner.generate(messages, p)
        if (messages == req.messages and p == params and isinstance(gen, Generation)
                and isinstance(gen.text, str) and no_answer(gen) is None):
            try:
                cache.put(inner_key, replace(gen, cached=False),
                          meta={**meta, "fingerprint": inner.fingerprint, "wrapped": True})
            except Exception as exc:  # noqa: BLE001 - the answer is still used; the run warns
                errors.append(f"response not cached: {type(exc).__name__}: {exc}")
        return gen

    wrapped = _CallVia(candidate, cached_inner)
    outcome = _call(wrapped, req, params, cache, meta)  # type: ignore[arg-type]
    outcome.no_model_call = outcome.error is None and not called
    if errors and outcome.cache_error is None:
        outcome.cache_error = errors[0]
    return outcome


class _CallVia:
    """A candidate whose ``generate`` is ``candidate.generate_via(inner, ...)``."""

    def __init__(self, candidate: Candidate, inner: Any) -> None:
        self.candidate, self.inner = candidate, inner

    def generate(self, messages: list[Message], params: GenerationParams) -> Generation:
        return self.candidate.generate_via(self.inner, messages, params)


def _scored(case: Case, prompt: str, gen: Generation, *, cached: bool) -> CaseResult:
    return CaseResult(
        case=case,
        prompt=prompt,
        output=gen.text,
        status="scored",
        latency_s=gen.latency_s,
        prompt_tokens=gen.prompt_tokens,
        completion_tokens=gen.completion_tokens,
        cached=cached,
        attempts=0 if cached else 1,
    )


def _case_result(
    case: Case, prompt: str, samples: list[_Sample], names: list[str]
) -> CaseResult:
    """One case from its repeats (one sample: exactly the single-call result)."""
    k = len(samples)
    if k == 1 and samples[0].generation is not None:
        return _scored(case, prompt, samples[0].generation, cached=samples[0].cached)
    attempts = sum(1 for s in samples if not s.cached)
    failed = [(r, s) for r, s in enumerate(samples) if s.generation is None]
    if failed:
        r, first = failed[0]
        error = first.error if k == 1 else (
            f"repeat {r + 1}/{k} failed ({len(failed)} of {k} failed): {first.error}")
        return CaseResult(
            case=case, prompt=prompt, output=None, status="unmeasured", error=error,
            scores={n: Score.unmeasured(MODEL_CALL_FAILED) for n in names}, repeats=k,
            attempts=attempts,
        )
    gens = [s.generation for s in samples if s.generation is not None]
    if k == 1:
        return _scored(case, prompt, gens[0], cached=samples[0].cached)
    texts = [g.text for g in gens]
    mode, agreement = modal_output(texts)
    tokens = [g.completion_tokens for g in gens if g.completion_tokens is not None]
    return CaseResult(
        case=case,
        prompt=prompt,
        output=mode,
        status="scored",
        latency_s=sum(g.latency_s for g in gens) / k,
        prompt_tokens=gens[0].prompt_tokens,
        completion_tokens=round(sum(tokens) / k) if len(tokens) == k else None,
        cached=all(s.cached for s in samples),
        attempts=attempts,
        repeats=k,
        agreement=agreement,
        outputs=texts,
    )


def modal_output(texts: Sequence[str]) -> tuple[str, float]:
    """The most frequent text (ties: the earliest) and the share of ``texts`` equal to it.

    Args:
        texts: One output per repeat (compared exactly, character for character).
    """
    counts = Counter(texts)
    mode = max(texts, key=lambda t: (counts[t], -texts.index(t)))
    return mode, counts[mode] / len(texts)


def _repeat_mean(scores: list[Score]) -> Score:
    """A case's score from its repeats' scores: their mean, unmeasured if any is."""
    k = len(scores)
    values = [s.value for s in scores]
    detail: dict[str, Any] = {"repeat_values": values}
    for r, s in enumerate(scores):
        if s.value is None:
            return Score(value=None, error=f"repeat {r + 1}/{k}: {s.error}", detail=detail)
    labels = {s.label for s in scores}
    return Score(
        value=sum(float(v) for v in values if v is not None) / k,
        label=labels.pop() if len(labels) == 1 else None,
        detail=detail,
    )


def _agreement(results: list[CaseResult], seed: int) -> MetricSummary:
    """Mean per-case agreement across repeats over the scored cases, with a bootstrap CI."""
    from aliasgate.stats.bootstrap import mean_ci

    scored = [r for r in results if r.status == "scored" and r.agreement is not None]
    values = [float(r.agreement) for r in scored if r.agreement is not None]
    mean = low = high = None
    if values:
        clusters = ([r.case.cluster for r in scored]
                    if any(r.case.cluster is not None for r in results) else None)
        mean, low, high = mean_ci(values, clusters=clusters, seed=seed)
    return MetricSummary(name="agreement", value=mean, ci_low=low, ci_high=high,
                         n=len(values), unmeasured=len(results) - len(values))


def _checked(score: object) -> Score:
    """A scorer's verdict, or an unmeasured score saying why it cannot be used."""
    if not isinstance(score, Score):
        return Score.unmeasured(f"TypeError: scorer returned {type(score).__name__}, not Score")
    if score.value is not None:
        try:
            ok = math.isfinite(float(score.value))
        except (TypeError, ValueError):
            ok = False
        if not ok:
            return Score(value=None, label=score.label,
                         error=f"ValueError: scorer returned non-finite value {score.value!r}",
                         detail=score.detail)
    return score


def score_and_aggregate(
    results: list[CaseResult], scorers: list[Scorer], seed: int
) -> dict[str, MetricSummary]:
    from aliasgate.stats.bootstrap import mean_cis  # deferred: numpy

    scored = [r for r in results if r.status == "scored"]
    # Every repeat's output is scored; a case's score is the mean over its repeats.
    outputs: list[str] = []
    scored_cases: list[Case] = []
    owner: list[int] = []
    for j, r in enumerate(scored):
        for text in r.outputs if r.outputs is not None else [r.output or ""]:
            outputs.append(text)
            scored_cases.append(r.case)
            owner.append(j)
    single = len(outputs) == len(scored)  # one output per case (no repeats)
    use_clusters = any(r.case.cluster is not None for r in results)
    # Metrics measured on the same cases share their bootstrap resamples (same seed, same
    # indices: each interval is exactly what mean_ci gives for that metric alone).
    by_cases: dict[tuple[int, ...], list[tuple[str, list[float]]]] = {}
    for scorer in scorers:
        name = scorer.name
        scores = score_batch(scorer, outputs, scored_cases) if scored else []
        if len(scores) != len(outputs):
            why = f"scorer returned {len(scores)} scores for {len(outputs)} outputs"
            scores = [Score.unmeasured(why)] * len(outputs)
        if single:
            for r, s in zip(scored, scores, strict=True):
                r.scores[name] = _checked(s)
        else:
            per_case: list[list[Score]] = [[] for _ in scored]
            for j, s in zip(owner, scores, strict=True):
                per_case[j].append(_checked(s))
            for r, case_scores in zip(scored, per_case, strict=True):
                r.scores[name] = (case_scores[0] if len(case_scores) == 1
                                  else _repeat_mean(case_scores))
        measured = tuple(j for j, r in enumerate(scored) if r.scores[name].value is not None)
        values = [float(scored[j].scores[name].value) for j in measured]  # type: ignore[arg-type]
        by_cases.setdefault(measured, []).append((name, values))
    metrics: dict[str, MetricSummary] = {}
    for measured, columns in by_cases.items():
        cis: list[tuple[float | None, float | None, float | None]]
        if measured:
            clusters = [scored[j].case.cluster for j in measured] if use_clusters else None
            cis = list(mean_cis([v for _, v in columns], clusters=clusters, seed=seed))
        else:
            cis = [(None, None, None)] * len(columns)
        for (name, values), (mean, low, high) in zip(columns, cis, strict=True):
            metrics[name] = MetricSummary(
                name=name, value=mean, ci_low=low, ci_high=high,
                n=len(values), unmeasured=len(results) - len(values),
            )
    return {s.name: metrics[s.name] for s in scorers}


__all__ = ["run_suite"]
