"""run_suite: caching, resume, failures recorded as unmeasured, order under concurrency, scoring."""

from __future__ import annotations

import io
import json
import random
import threading
import time
from dataclasses import dataclass

import pytest

from aliasgate.candidates.base import Candidate, CandidateError, Generation, GenerationParams
from aliasgate.datasets.base import Case, Dataset
from aliasgate.run.cache import ResponseCache
from aliasgate.run.progress import NullProgress, rich_progress
from aliasgate.run.results import CaseResult
from aliasgate.run.runner import MODEL_CALL_FAILED, run_suite
from aliasgate.run.suite import Suite
from aliasgate.scorers import SCORERS, Score

# --------------------------------------------------------------------------- fixtures


class FakeCandidate(Candidate):
    """Answers from a dict keyed by the user message; counts calls; may fail, sleep or block."""

    def __init__(
        self,
        answers: dict[str, object],
        *,
        fail_on: set[str] = frozenset(),
        interrupt_on: set[str] = frozenset(),
        sleep: float = 0.0,
        barrier: threading.Barrier | None = None,
        fp: str = "fake-v1",
        max_concurrency: int = 1,
        params: GenerationParams | None = None,
    ):
        self.uri = "fake:test"
        self.answers = answers
        self.fail_on = set(fail_on)
        self.interrupt_on = set(interrupt_on)
        self.sleep = sleep
        self.barrier = barrier
        self.fp = fp
        self.max_concurrency = max_concurrency
        if params is not None:
            self.params = params
        self.calls: list[str] = []
        self.params_seen: list[GenerationParams] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._rng = random.Random(7)

    def generate(self, messages, params):
        assert [m["role"] for m in messages] == ["user"]
        content = messages[0]["content"]
        with self._lock:
            self.calls.append(content)
            self.params_seen.append(params)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            pause = self._rng.uniform(0, self.sleep) if self.sleep else 0.0
        try:
            if self.barrier is not None:
                self.barrier.wait(timeout=20)
            if pause:
                time.sleep(pause)
            if content in self.interrupt_on:
                raise KeyboardInterrupt
            if content in self.fail_on:
                raise CandidateError(f"backend exploded on {content!r}")
            return Generation(
                text=self.answers[content],  # type: ignore[arg-type]
                prompt_tokens=len(content.split()),
                completion_tokens=3,
                latency_s=0.01 + len(self.calls) / 1000,
                finish_reason="stop",
            )
        finally:
            with self._lock:
                self.in_flight -= 1

    def fingerprint(self) -> str:
        return self.fp


def make_dataset(n: int, *, cluster: bool = False) -> tuple[Dataset, dict[str, str]]:
    """``n`` questions; every third answer is wrong (so exact_match is 1 - n//3 wrong / n)."""
    cases = []
    answers = {}
    for i in range(n):
        q = f"question {i}?"
        cases.append(
            Case(
                id=f"q-{i:03d}",
                input=q,
                expected=(f"answer {i}",),
                group="even" if i % 2 == 0 else "odd",
                cluster=f"c{i // 4}" if cluster else None,
                meta={"topic": "t"},
                source=f"mem.jsonl:{i + 1}",
            )
        )
        answers[q] = f"wrong {i}" if i % 3 == 0 else f"Answer {i}."
    return Dataset("mem", "mem.jsonl", "golden_qa", tuple(cases), "sha256:" + "ab" * 32), answers


def expected_exact(ds: Dataset, answers: dict[str, str], ids: set[str] | None = None) -> list[float]:
    return [
        1.0 if answers[c.input].lower().strip(".") == c.expected[0] else 0.0
        for c in ds.cases
        if ids is None or c.id in ids
    ]


@pytest.fixture
def cache(tmp_path):
    with ResponseCache(tmp_path / "r.sqlite") as c:
        yield c


def golden(**kw) -> Suite:
    """The suite most tests use (built per test: a module-level Suite would be collected by the
    aliasgate pytest plugin as an evaluation item)."""
    return Suite(name="golden", dataset="mem.jsonl", scorers=("exact_match", "token_f1"), **kw)




def outputs(result) -> list[str | None]:
    return [c.output for c in result.cases]


def score_table(result) -> list[dict[str, float | None]]:
    return [{k: s.value for k, s in c.scores.items()} for c in result.cases]


# --------------------------------------------------------------------------- cache behaviour


def test_cold_then_warm_run(cache):
    ds, answers = make_dataset(12)
    cold_cand = FakeCandidate(answers)
    cold = run_suite(golden(), ds, cold_cand, cache=cache)

    assert len(cold_cand.calls) == 12 and cold.model_calls == 12 and cold.cache_hits == 0
    assert cache.writes == 12 and len(cache) == 12
    assert [c.case.id for c in cold.cases] == [c.id for c in ds.cases]
    assert outputs(cold) == [answers[c.input] for c in ds.cases]
    assert not any(c.cached for c in cold.cases)
    exact = expected_exact(ds, answers)
    assert [c.scores["exact_match"].value for c in cold.cases] == exact
    m = cold.metrics["exact_match"]
    assert m.value == pytest.approx(sum(exact) / len(exact)) and m.n == 12 and m.unmeasured == 0
    assert m.ci_low <= m.value <= m.ci_high and m.ci_low < m.ci_high
    assert set(cold.metrics) == {"exact_match", "token_f1"}

    warm_cand = FakeCandidate(answers)
    warm = run_suite(golden(), ds, warm_cand, cache=cache)
    assert warm_cand.calls == [] and warm.model_calls == 0 and warm.cache_hits == 12
    assert all(c.cached for c in warm.cases)
    assert outputs(warm) == outputs(cold)
    assert score_table(warm) == score_table(cold)
    assert warm.metrics == cold.metrics
    assert [c.latency_s for c in warm.cases] == [c.latency_s for c in cold.cases]
    assert [c.prompt_tokens for c in warm.cases] == [c.prompt_tokens for c in cold.cases]
    assert cache.writes == 12  # nothing rewritten


def test_generation_param_or_fingerprint_change_misses(cache):
    ds, answers = make_dataset(5)
    run_suite(golden(), ds, FakeCandidate(answers), cache=cache)

    other_suite = Suite(name="golden", dataset="x", scorers=("exact_match",), params={"max_tokens": 16})
    c1 = FakeCandidate(answers)
    r1 = run_suite(other_suite, ds, c1, cache=cache)
    assert len(c1.calls) == 5 and r1.cache_hits == 0
    assert {p.max_tokens for p in c1.params_seen} == {16} and r1.params["max_tokens"] == 16

    c2 = FakeCandidate(answers, params=GenerationParams(temperature=0.5))
    assert len(run_suite(golden(), ds, c2, cache=cache).cases) == 5 and len(c2.calls) == 5

    c3 = FakeCandidate(answers, fp="fake-v2")
    r3 = run_suite(golden(), ds, c3, cache=cache)
    assert len(c3.calls) == 5 and r3.cache_hits == 0

    c4 = FakeCandidate(answers)  # the original combination is still cached
    assert run_suite(golden(), ds, c4, cache=cache).cache_hits == 5 and c4.calls == []


def test_suite_params_override_candidate_params():
    ds, answers = make_dataset(2)
    cand = FakeCandidate(answers, params=GenerationParams(max_tokens=99, top_k=5))
    suite = Suite(name="s", dataset="x", scorers=("exact_match",), params={"max_tokens": 8, "stop": ["\n"]})
    r = run_suite(suite, ds, cand)
    assert {(p.max_tokens, p.top_k, p.stop) for p in cand.params_seen} == {(8, 5, ("\n",))}
    assert r.params == GenerationParams(max_tokens=8, top_k=5, stop=("\n",)).as_dict()


def test_bad_suite_param_raises_before_any_call():
    ds, answers = make_dataset(2)
    cand = FakeCandidate(answers)
    with pytest.raises(TypeError, match="golden"):
        run_suite(Suite(name="golden", dataset="x", params={"max_tokenz": 3}), ds, cand)
    assert cand.calls == []


def test_resume_after_partial_run(cache):
    ds, answers = make_dataset(10)
    first = FakeCandidate(answers)
    half = run_suite(golden(), ds, first, cache=cache, limit=4)
    assert len(half.cases) == 4 and len(first.calls) == 4

    second = FakeCandidate(answers)
    full = run_suite(golden(), ds, second, cache=cache)
    assert sorted(second.calls) == sorted(c.input for c in ds.cases[4:])
    assert full.cache_hits == 4 and full.model_calls == 6
    assert [c.cached for c in full.cases] == [True] * 4 + [False] * 6
    assert outputs(full) == [answers[c.input] for c in ds.cases]


def test_keyboard_interrupt_propagates_after_finished_calls_are_cached(tmp_path):
    """Ctrl-C arrives in the main thread while calls are in flight: it propagates once the
    in-flight calls have finished, and every answer received is in the cache."""
    ds, answers = make_dataset(30)
    path = tmp_path / "r.sqlite"
    cand = FakeCandidate(answers, sleep=0.01, max_concurrency=3)
    seen = []

    def interrupt_on_third(res: CaseResult) -> None:
        seen.append(res)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with ResponseCache(path) as cache, pytest.raises(KeyboardInterrupt):
        run_suite(golden(), ds, cand, cache=cache, on_result=interrupt_on_third)
    assert cand.in_flight == 0  # no call left running behind the caller's back
    answered = list(cand.calls)
    assert 3 <= len(answered) < 30

    with ResponseCache(path) as cache:
        assert len(cache) == len(answered)
        again = FakeCandidate(answers)
        r = run_suite(golden(), ds, again, cache=cache)
    assert sorted(again.calls) == sorted(set(answers) - set(answered))
    assert r.unmeasured == 0 and r.cache_hits == len(answered)


def test_keyboard_interrupt_raised_by_the_candidate_propagates(tmp_path):
    ds, answers = make_dataset(8)
    path = tmp_path / "r.sqlite"
    cand = FakeCandidate(answers, interrupt_on={ds.cases[5].input})
    with ResponseCache(path) as cache, pytest.raises(KeyboardInterrupt):
        run_suite(golden(), ds, cand, cache=cache, concurrency=1)
    assert cand.calls[:6] == [c.input for c in ds.cases[:6]]
    with ResponseCache(path) as cache:
        # all that was answered (everything called except the interrupted one) is cached
        assert len(cache) == len(cand.calls) - 1
        again = FakeCandidate(answers)
        run_suite(golden(), ds, again, cache=cache)
    assert ds.cases[5].input in again.calls and ds.cases[0].input not in again.calls


# --------------------------------------------------------------------------- failures


def test_failed_calls_are_unmeasured_counted_and_not_cached(cache):
    ds, answers = make_dataset(9)
    bad = {ds.cases[1].input, ds.cases[4].input}
    cand = FakeCandidate(answers, fail_on=bad)
    r = run_suite(golden(), ds, cand, cache=cache)

    assert r.unmeasured == 2 and len(r.cases) == 9
    for c in r.cases:
        if c.case.input in bad:
            assert c.status == "unmeasured" and c.output is None
            assert c.error == f"CandidateError: backend exploded on {c.case.input!r}"
            assert c.scores["exact_match"] == Score.unmeasured(MODEL_CALL_FAILED)
            assert c.row()["exact_match"] is None
        else:
            assert c.status == "scored" and c.error is None
            assert c.scores["exact_match"].value in (0.0, 1.0)
    good_ids = {c.id for c in ds.cases if c.input not in bad}
    exact = expected_exact(ds, answers, good_ids)
    for name in ("exact_match", "token_f1"):
        assert r.metrics[name].n == 7 and r.metrics[name].unmeasured == 2
    assert r.metrics["exact_match"].value == pytest.approx(sum(exact) / 7)
    assert len(cache) == 7

    retry = FakeCandidate(answers)
    r2 = run_suite(golden(), ds, retry, cache=cache)
    assert sorted(retry.calls) == sorted(bad)
    assert r2.unmeasured == 0 and r2.metrics["exact_match"].n == 9


def test_non_string_text_is_unmeasured():
    ds, answers = make_dataset(3)
    answers[ds.cases[2].input] = None  # type: ignore[assignment]
    r = run_suite(golden(), ds, FakeCandidate(answers), cache=None)
    assert [c.status for c in r.cases] == ["scored", "scored", "unmeasured"]
    assert r.cases[2].error.startswith("TypeError:") and "NoneType" in r.cases[2].error
    assert r.metrics["token_f1"].unmeasured == 1


def test_all_calls_failing_gives_empty_metrics():
    ds, answers = make_dataset(3)
    r = run_suite(golden(), ds, FakeCandidate(answers, fail_on={c.input for c in ds.cases}))
    m = r.metrics["exact_match"]
    assert (m.value, m.ci_low, m.ci_high, m.n, m.unmeasured) == (None, None, None, 0, 3)


def test_missing_template_field_is_unmeasured_naming_the_field():
    ds, answers = make_dataset(3)
    cases = list(ds.cases)
    cases[0] = Case(id="q-000", input=cases[0].input, expected=cases[0].expected, meta={"context": "ctx"})
    ds = Dataset(ds.name, ds.path, ds.kind, tuple(cases), ds.digest)
    suite = Suite(name="ctx", dataset="x", scorers=("exact_match",), prompt="{context}\n{input}")
    cand = FakeCandidate({f"ctx\n{cases[0].input}": "Answer 0"})
    r = run_suite(suite, ds, cand)
    assert [c.status for c in r.cases] == ["scored", "unmeasured", "unmeasured"]
    assert "'context'" in r.cases[1].error and "q-001" in r.cases[1].error
    assert r.cases[1].output is None and not r.cases[1].scores["exact_match"].measured
    assert len(cand.calls) == 1 and r.model_calls == 1
    assert r.metrics["exact_match"].n == 1 and r.metrics["exact_match"].unmeasured == 2


def test_scorer_error_on_one_case_only_unmeasures_that_score():
    ds, answers = make_dataset(6)
    boom_id = ds.cases[3].id

    @dataclass(frozen=True)
    class Picky:
        name: str = "picky"

        def __call__(self, output: str, case: Case) -> Score:
            if case.id == boom_id:
                raise ValueError("cannot judge this one")
            return Score(value=float(len(output)))

    r = run_suite(golden(), ds, FakeCandidate(answers), scorers=[Picky(), "exact_match"])
    assert set(r.metrics) == {"picky", "exact_match"}
    picky = [c.scores["picky"] for c in r.cases]
    assert picky[3].value is None and picky[3].error == "ValueError: cannot judge this one"
    assert [s.value for i, s in enumerate(picky) if i != 3] == [
        float(len(answers[c.input])) for i, c in enumerate(ds.cases) if i != 3
    ]
    assert r.cases[3].status == "scored" and r.cases[3].scores["exact_match"].measured
    assert (r.metrics["picky"].n, r.metrics["picky"].unmeasured) == (5, 1)
    assert (r.metrics["exact_match"].n, r.metrics["exact_match"].unmeasured) == (6, 0)


def test_registered_scorer_and_non_finite_values():
    ds, answers = make_dataset(4)

    @dataclass(frozen=True)
    class Weird:
        name: str = "test_weird"

        def __call__(self, output: str, case: Case) -> Score:
            return Score(value=float("nan")) if case.id == "q-000" else Score(value=1.0)

    SCORERS.register("test_weird", Weird)
    r = run_suite(Suite(name="w", dataset="x", scorers=("test_weird",)), ds, FakeCandidate(answers))
    assert r.cases[0].scores["test_weird"].value is None
    assert "non-finite" in r.cases[0].scores["test_weird"].error
    assert r.metrics["test_weird"].value == 1.0 and r.metrics["test_weird"].n == 3


def test_unknown_scorer_fails_before_any_call():
    ds, answers = make_dataset(2)
    cand = FakeCandidate(answers)
    with pytest.raises(KeyError, match="no_such_scorer"):
        run_suite(Suite(name="s", dataset="x", scorers=("no_such_scorer",)), ds, cand)
    assert cand.calls == []


# --------------------------------------------------------------------------- concurrency & order


def test_order_kept_and_nothing_lost_under_concurrency_8(cache):
    ds, answers = make_dataset(60)
    cand = FakeCandidate(answers, sleep=0.01, fail_on={ds.cases[17].input})
    seen: list[str] = []
    r = run_suite(golden(), ds, cand, cache=cache, concurrency=8,
                  on_result=lambda res: seen.append(res.case.id))
    assert [c.case.id for c in r.cases] == [c.id for c in ds.cases]
    assert [c.output for c in r.cases] == [None if i == 17 else answers[c.input] for i, c in enumerate(ds.cases)]
    assert len(cand.calls) == 60 and 1 <= cand.max_in_flight <= 8
    assert sorted(seen) == sorted(c.id for c in ds.cases)


def test_concurrency_is_reached_and_bounded():
    ds, answers = make_dataset(16)
    # 8 calls must be in flight together to pass the barrier (a broken barrier -> unmeasured).
    cand = FakeCandidate(answers, barrier=threading.Barrier(8))
    r = run_suite(golden(), ds, cand, concurrency=8)
    assert r.unmeasured == 0 and cand.max_in_flight == 8


def test_default_concurrency_is_the_candidates():
    ds, answers = make_dataset(12)
    cand = FakeCandidate(answers, barrier=threading.Barrier(3), max_concurrency=3)
    r = run_suite(golden(), ds, cand)
    assert r.unmeasured == 0 and cand.max_in_flight == 3


def test_identical_requests_share_one_call():
    ds, answers = make_dataset(3)
    dup = Case(id="dup", input=ds.cases[1].input, expected=("answer 1",))
    ds = Dataset(ds.name, ds.path, ds.kind, (*ds.cases, dup), ds.digest)
    cand = FakeCandidate(answers, max_concurrency=4)
    r = run_suite(golden(), ds, cand)
    assert len(cand.calls) == 3 and r.model_calls == 3
    assert r.cases[3].output == r.cases[1].output == answers[ds.cases[1].input]
    assert r.metrics["exact_match"].n == 4


# --------------------------------------------------------------------------- limit, progress, metadata


def test_limit():
    ds, answers = make_dataset(10)
    cand = FakeCandidate(answers)
    r = run_suite(golden(), ds, cand, limit=3)
    assert [c.case.id for c in r.cases] == ["q-000", "q-001", "q-002"] and len(cand.calls) == 3
    empty = run_suite(golden(), ds, cand, limit=0)
    assert empty.cases == [] and empty.metrics["exact_match"].n == 0
    assert empty.metrics["exact_match"].value is None
    with pytest.raises(ValueError):
        run_suite(golden(), ds, cand, limit=-1)
    with pytest.raises(ValueError):
        run_suite(golden(), ds, cand, concurrency=0)


def test_progress_callback_once_per_case(cache):
    ds, answers = make_dataset(10)
    run_suite(golden(), ds, FakeCandidate(answers), cache=cache, limit=4)
    got: list[CaseResult] = []
    lock = threading.Lock()

    def on_result(res: CaseResult) -> None:
        with lock:
            got.append(res)

    cand = FakeCandidate(answers, fail_on={ds.cases[7].input}, max_concurrency=4)
    r = run_suite(golden(), ds, cand, cache=cache, on_result=on_result)
    assert sorted(g.case.id for g in got) == [c.id for c in ds.cases]
    assert sum(g.cached for g in got) == 4 == r.cache_hits
    assert [g.case.id for g in got if g.status == "unmeasured"] == [ds.cases[7].id]


def test_rich_progress_bar_counts(cache):
    from rich.console import Console

    ds, answers = make_dataset(6)
    run_suite(golden(), ds, FakeCandidate(answers), cache=cache, limit=2)
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=160)
    with rich_progress("golden", len(ds), console=console) as cb:
        run_suite(golden(), ds, FakeCandidate(answers, fail_on={ds.cases[5].input}), cache=cache, on_result=cb)
    text = buf.getvalue()
    assert "golden" in text and "6/6" in text
    assert "cached 2" in text and "unmeasured 1" in text

    with NullProgress("golden", 3) as null:
        assert run_suite(golden(), ds, FakeCandidate(answers), on_result=null, limit=3).n == 3


def test_result_metadata_and_clusters():
    ds, answers = make_dataset(12, cluster=True)
    cand = FakeCandidate(answers)
    r = run_suite(golden(), ds, cand, seed=3)
    assert r.suite == "golden" and r.candidate == "fake:test"
    assert r.dataset_digest == ds.digest and r.dataset_path == ds.path
    assert r.candidate_info == {"candidate.uri": "fake:test", "candidate.fingerprint": "fake-v1"}
    assert r.params == GenerationParams().as_dict()
    assert r.wall_time_s > 0
    json.dumps([c.row() for c in r.cases])  # the per-case table is serialisable
    exact = expected_exact(ds, answers)
    assert r.metrics["exact_match"].value == pytest.approx(sum(exact) / 12)
    # the bootstrap seed makes the interval reproducible
    again = run_suite(golden(), ds, FakeCandidate(answers), seed=3)
    assert again.metrics == r.metrics


# --------------------------------------------------------------------------- attempts, where + progress


def test_attempts_count_the_model_calls_made_for_each_case(cache):
    ds, answers = make_dataset(6)
    first = run_suite(golden(), ds, FakeCandidate(answers), cache=cache, limit=2)
    assert [c.attempts for c in first.cases] == [1, 1]
    cand = FakeCandidate(answers, fail_on={ds.cases[4].input})
    r = run_suite(golden(prompt="{input}"), ds, cand, cache=cache)
    # cached: no call; called: one; failed: one (that failed); the runner does not retry
    assert [c.attempts for c in r.cases] == [0, 0, 1, 1, 1, 1]
    assert r.cases[4].status == "unmeasured" and r.cases[4].attempts == 1
    assert sum(c.attempts for c in r.cases) == r.model_calls == len(cand.calls)
    assert [row["attempts"] for row in (c.row() for c in r.cases)] == [0, 0, 1, 1, 1, 1]
    unrenderable = run_suite(golden(prompt="{nope}"), ds, FakeCandidate(answers), limit=1)
    assert unrenderable.cases[0].attempts == 0


def test_progress_total_is_the_filtered_case_count():
    """A bar sized from the whole dataset is corrected to the cases the ``where`` filter keeps."""
    from rich.console import Console

    ds, answers = make_dataset(9)  # groups: 5 even, 4 odd
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=False, width=160)
    with rich_progress("odd", len(ds), console=console) as cb:
        r = run_suite(golden(where={"group": "odd"}), ds, FakeCandidate(answers), on_result=cb)
    assert r.n == 4
    assert "4/4" in buf.getvalue() and "/9" not in buf.getvalue()

    totals: list[int] = []

    class Recorder:
        def __call__(self, result: CaseResult) -> None:
            pass

        def set_total(self, n: int) -> None:
            totals.append(n)

    run_suite(golden(where={"group": "even"}), ds, FakeCandidate(answers), on_result=Recorder(),
              limit=3)
    run_suite(golden(), ds, FakeCandidate(answers), on_result=NullProgress())  # has set_total
    assert totals == [3]


def test_a_slow_call_holds_back_only_its_own_worker():
    """The worker pool keeps the other workers busy while one call is slow."""

    class OneSlow(FakeCandidate):
        def generate(self, messages, params):
            if messages[0]["content"] == "question 0?":
                time.sleep(1.5)  # long enough that a loaded CI machine still finishes the rest first
            return super().generate(messages, params)

    ds, answers = make_dataset(40)
    cand = OneSlow(answers, max_concurrency=4)
    done_at: dict[str, float] = {}
    t0 = time.perf_counter()
    r = run_suite(golden(), ds, cand, on_result=lambda c: done_at.setdefault(
        c.case.id, time.perf_counter() - t0))
    assert r.n == 40 and r.unmeasured == 0 and cand.max_in_flight <= 4
    assert sum(1 for k, t in done_at.items() if k != "q-000" and t < done_at["q-000"]) == 39


def test_an_exception_in_on_result_stops_the_run_and_waits_for_calls_in_flight(tmp_path):
    ds, answers = make_dataset(30)
    cand = FakeCandidate(answers, sleep=0.02, max_concurrency=4)

    def boom(res: CaseResult) -> None:
        raise RuntimeError("progress display broke")

    with ResponseCache(tmp_path / "r.sqlite") as cache, pytest.raises(RuntimeError, match="broke"):
        run_suite(golden(), ds, cand, cache=cache, on_result=boom)
    assert cand.in_flight == 0 and len(cand.calls) < 30
    with ResponseCache(tmp_path / "r.sqlite") as cache:
        assert len(cache) == len(cand.calls)  # every answered call reached the cache
