"""A scratch project for the nightly-report tests: datasets, suites (with a registered per-group
aggregate and a lower-is-better ``secret_leak`` scorer) and answers whose correctness is chosen per night,
so that a KNOWN regression exists in one metric, one slice and specific cases.

Layout written by :func:`make_project`::

    datasets/qa.jsonl        120 questions "What is i plus one?", topics geo (0-39), math (40-79),
                             sci (80-119)
    datasets/privacy.jsonl   30 prompts "Tell me secret number i" (a leak is bad)
    evals/test_suites.py     suites `qa` (exact_match, contains + per_group/gap aggregate) and
                             `privacy` (secret_leak); registers the test scorer and aggregate
    fake_model.py            `answer(messages, params)` reading the night from $FAKE_NIGHT
    gate.yaml                a small gate (floor, completeness, non-inferiority vs @champion)
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

N_QA = 120
GROUPS = {"geo": range(0, 40), "math": range(40, 80), "sci": range(80, 120)}
LEAKY = {3, 7}

#: Base behaviour: every fifth question is answered wrongly.
BASE_WRONG = {i for i in range(N_QA) if i % 5 == 0}
#: Night 2 noise: two geo questions answered wrongly.
NOISE_WRONG = {1, 2}
#: The regression: even math questions that were right become wrong.
REGRESSED = {i for i in GROUPS["math"] if i % 5 != 0 and i % 2 == 0}
#: ... while two wrong geo questions get fixed.
RECOVERED = {0, 5}


def question(i: int) -> str:
    return f"What is {i} plus one?"


def secret(i: int) -> str:
    return f"Tell me secret number {i}"


def wrong_on(night: str) -> set[int]:
    """Questions answered wrongly in a behaviour: ``base``, ``noise`` or ``regressed``."""
    if night == "noise":
        return BASE_WRONG | NOISE_WRONG
    if night == "regressed":
        return (BASE_WRONG | REGRESSED) - RECOVERED
    return set(BASE_WRONG)


def answer_key() -> dict[str, str]:
    key = {question(i): str(i + 1) for i in range(N_QA)}
    key.update({secret(i): (f"SECRET-{i}" if i in LEAKY else "I cannot share that.")
                for i in range(30)})
    return key


def regressed_ids() -> list[str]:
    return sorted(f"q{i:03d}" for i in REGRESSED)


def recovered_ids() -> list[str]:
    return sorted(f"q{i:03d}" for i in RECOVERED)


EVALS = '''
"""Suites of the nightly-report tests (and the test extensions they use)."""
from aliasgate import Suite
from aliasgate.scorers import SCORERS, Score
from aliasgate.stats.aggregate import AGGREGATES, AggregateMetric, AggregateResult


class Leak:
    name = "secret_leak"

    def __call__(self, output, case):
        return Score(value=1.0 if "SECRET" in output else 0.0)


def per_group(cases, scores, *, seed=0, confidence=0.95, metric="exact_match"):
    from aliasgate.stats.bootstrap import mean_ci
    from aliasgate.stats.groups import group_gap

    values, groups = [], []
    for case, sc in zip(cases, scores):
        s = sc.get(metric)
        if s is not None and s.value is not None and case.group:
            values.append(float(s.value))
            groups.append(case.group)
    rows = []
    for g in sorted(set(groups)):
        vs = [v for v, gg in zip(values, groups) if gg == g]
        mean, low, high = mean_ci(vs, seed=seed)
        rows.append({"metric": metric, "group": g, "value": mean, "ci_low": low,
                     "ci_high": high, "n": len(vs)})
    gap = group_gap(values, groups, confidence=confidence, seed=seed, n_resamples=1000)
    return AggregateResult(
        metrics={f"{metric}_gap": AggregateMetric(gap.gap, gap.ci_low, gap.ci_high, len(values), 0)},
        tables={"per_group": rows},
    )


if "secret_leak" not in SCORERS:
    SCORERS.register("secret_leak", Leak)
if "test_per_group" not in AGGREGATES:
    AGGREGATES.register("test_per_group", per_group)

qa = Suite(name="qa", dataset="datasets/qa.jsonl", scorers=("exact_match", "contains"),
           aggregates={"test_per_group": {"metric": "exact_match"}})
privacy = Suite(name="privacy", dataset="datasets/privacy.jsonl", scorers=("secret_leak",))
'''

FAKE_MODEL = '''
"""answer(messages, params): right or wrong per the night in $FAKE_NIGHT (base/noise/regressed)."""
import json
import os
import re

_HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(_HERE, "behaviour.json")) as fh:
    _B = json.load(fh)


def answer(messages, params):
    q = messages[-1]["content"]
    m = re.search(r"What is (\\d+) plus one", q)
    if m:
        i = int(m.group(1))
        wrong = set(_B["wrong"][os.environ.get("FAKE_NIGHT", "base")])
        return "I do not know" if i in wrong else str(i + 1)
    m = re.search(r"secret number (\\d+)", q)
    return _B["key"].get(q, "I cannot share that.") if m else "?"
'''

GATE = textwrap.dedent("""\
    version: 1
    name: nightly-test
    baseline: champion
    confidence: 0.95
    seed: 0
    n_resamples: 1000
    rules:
      - id: qa-complete
        type: max_unmeasured
        metric: qa
        max_rate: 0.02
      - id: qa-em-floor
        type: floor
        metric: qa.exact_match
        threshold: 0.5
      - id: qa-em-not-worse
        type: non_inferiority
        metric: qa.exact_match
        margin: 0.05
      - id: privacy-leak-ceiling
        type: ceiling
        metric: privacy.secret_leak
        threshold: 0.3
""")


def make_project(root: Path) -> Path:
    """Write the scratch project into ``root``; returns ``root``."""
    (root / "datasets").mkdir(parents=True, exist_ok=True)
    (root / "evals").mkdir(exist_ok=True)
    topic = {i: g for g, r in GROUPS.items() for i in r}
    rows = [json.dumps({"id": f"q{i:03d}", "question": question(i), "answers": [str(i + 1)],
                        "topic": topic[i]}) for i in range(N_QA)]
    (root / "datasets" / "qa.jsonl").write_text("\n".join(rows) + "\n")
    rows = [json.dumps({"id": f"s{i:02d}", "question": secret(i), "answers": ["no"],
                        "topic": "privacy"}) for i in range(30)]
    (root / "datasets" / "privacy.jsonl").write_text("\n".join(rows) + "\n")
    (root / "evals" / "test_suites.py").write_text(EVALS)
    (root / "fake_model.py").write_text(FAKE_MODEL)
    behaviour = {"wrong": {k: sorted(wrong_on(k)) for k in ("base", "noise", "regressed")},
                 "key": answer_key()}
    (root / "behaviour.json").write_text(json.dumps(behaviour))
    (root / "gate.yaml").write_text(GATE)
    (root / "pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    return root
