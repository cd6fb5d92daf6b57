"""Nightly reports from a REAL sqlite MLflow store seeded with four nights of `EvalSession` runs of
a callable candidate whose answers change between nights (tests/nightly_project.py):

* 2026-11-01 base, 2026-11-02 noise (two geo questions wrong), 2026-11-03 base,
* 2026-11-04 regressed: 16 even math questions answered wrongly (metric ``qa.exact_match``,
  slice ``math``, cases ``q042``...), two geo questions fixed (``q000``, ``q005``).

The history, the comparison, the HTML page, summary.md and ``aliasgate report --run`` are checked
against those known facts.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

import nightly_project as proj

NIGHTS = [("2026-11-01", "base"), ("2026-11-02", "noise"), ("2026-11-03", "base"),
          ("2026-11-04", "regressed")]
EXPERIMENT = "nightly-reports"


@dataclass
class Seeded:
    root: Path
    store: str
    runs: dict[str, str]  # night -> parent run id

    @property
    def tonight(self) -> str:
        return self.runs["2026-11-04"]


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    from aliasgate.session import EvalOptions, EvalSession

    root = proj.make_project(tmp_path_factory.mktemp("nightly_reports"))
    sys.path.insert(0, str(root))
    spec = importlib.util.spec_from_file_location("nightly_report_suites",
                                                  root / "evals" / "test_suites.py")
    assert spec is not None and spec.loader is not None
    suites = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(suites)
    store = f"sqlite:///{root / 'mlflow.db'}"
    before = os.environ.get("FAKE_NIGHT")
    runs = {}
    try:
        for night, behaviour in NIGHTS:
            os.environ["FAKE_NIGHT"] = behaviour
            session = EvalSession(EvalOptions(
                candidate="callable:fake_model:answer", tracking_uri=store, experiment=EXPERIMENT,
                use_cache=False, reports_dir=root / "reports", root=root, progress=False,
                auto_register=False, nightly=True, nightly_role="champion", nightly_date=night,
            ))
            for suite in (suites.qa, suites.privacy):
                session.run_suite(suite)
            session.finish()
            runs[night] = session.summary_dict()["parent_run_id"]
    finally:
        sys.path.remove(str(root))
        sys.modules.pop("fake_model", None)
        if before is None:
            os.environ.pop("FAKE_NIGHT", None)
        else:
            os.environ["FAKE_NIGHT"] = before
    return Seeded(root, store, runs)


def _compare(seeded: Seeded, night: str = "2026-11-04"):
    from aliasgate.reports.compare import compare_runs
    from aliasgate.reports.history import load_run, previous_runs

    run = load_run(seeded.runs[night], tracking_uri=seeded.store)
    return compare_runs(run, previous_runs(run, nights=13, cases_for=1))


def test_history_reads_the_nights_newest_first(seeded: Seeded) -> None:
    from aliasgate.reports.history import load_history

    runs = load_history(experiment=EXPERIMENT, tracking_uri=seeded.store, role="champion",
                        nights=10, cases_for=1)
    assert [r.night for r in runs] == [n for n, _ in reversed(NIGHTS)]
    assert [r.run_id for r in runs] == [seeded.runs[n] for n, _ in reversed(NIGHTS)]
    tonight, older = runs[0], runs[1]
    assert tonight.kind == "nightly" and tonight.role == "champion"
    assert tonight.candidate == "callable:fake_model:answer"
    qa = tonight.suites["qa"]
    assert len(qa.cases or []) == proj.N_QA
    assert qa.dataset_digest and qa.dataset_digest.startswith("sha256:")
    em = qa.metrics["exact_match"]
    right = proj.N_QA - len(proj.wrong_on("regressed"))
    assert em.value == pytest.approx(right / proj.N_QA)
    assert em.ci_low < em.value < em.ci_high and em.n == proj.N_QA
    assert {r["group"] for r in qa.tables["per_group"]} == set(proj.GROUPS)
    assert "exact_match_gap" in qa.metrics
    assert tonight.results is not None and tonight.results["parent_run_id"] == tonight.run_id
    assert older.suites["qa"].cases is None  # only the newest `cases_for` runs carry cases
    assert older.metric("qa", "exact_match").value == pytest.approx(0.8)


def test_compare_names_the_regressed_metric_slice_and_cases(seeded: Seeded) -> None:
    comp = _compare(seeded)
    assert comp.previous is not None and comp.previous.night == "2026-11-03"
    changes = {c.key: c for c in comp.changes}
    for key in ("qa.exact_match", "qa.contains"):
        c = changes[key]
        assert c.status == "regressed" and c.significant, c
        drop = len(proj.REGRESSED) - len(proj.RECOVERED)
        assert c.delta == pytest.approx(-drop / proj.N_QA)
        assert c.ci_low < c.delta < c.ci_high < 0
        assert c.n_pairs == proj.N_QA
        assert c.discordant == (len(proj.REGRESSED), len(proj.RECOVERED))
        # rolling baseline: mean of the three earlier nights' values
        earlier = [proj.N_QA - len(proj.wrong_on(b)) for _, b in NIGHTS[:3]]
        assert c.rolling_n == 3
        assert c.rolling_mean == pytest.approx(sum(earlier) / 3 / proj.N_QA)
    leak = changes["privacy.secret_leak"]
    assert leak.direction == "lower" and leak.status == "unchanged" and not leak.significant
    gap = changes["qa.exact_match_gap"]
    assert gap.direction == "lower" and gap.method == "ci_overlap" and gap.status == "regressed"

    regressed_slices = {(s.metric, s.group) for s in comp.slice_regressions}
    assert regressed_slices == {("exact_match", "math"), ("contains", "math")}
    math = next(s for s in comp.slices if s.metric == "exact_match" and s.group == "math")
    assert math.significant and math.delta == pytest.approx(-len(proj.REGRESSED) / 40)

    assert sorted(c.id for c in comp.regressed_cases) == proj.regressed_ids()
    assert sorted(c.id for c in comp.recovered_cases) == proj.recovered_ids()
    case = next(c for c in comp.regressed_cases if c.id == "q042")
    assert case.old_output == "43" and case.new_output == "I do not know"
    assert "What is 42 plus one?" in (case.input or "") and case.group == "math"
    assert case.metrics["exact_match"] == [1.0, 0.0]

    rows = {(g.table, g.group): g for g in comp.groups}
    assert rows[("per_group", "math")].previous == pytest.approx(0.8)
    assert rows[("per_group", "math")].value == pytest.approx(0.4)
    assert rows[("per_group", "sci")].delta == pytest.approx(0.0)


def test_noise_is_reported_but_does_not_block(seeded: Seeded) -> None:
    from aliasgate.reports.compare import NightReport, RoleReport

    comp = _compare(seeded, "2026-11-02")
    em = next(c for c in comp.changes if c.key == "qa.exact_match")
    assert em.delta == pytest.approx(-2 / proj.N_QA)
    assert not em.significant and em.status in ("regressed", "unchanged")
    assert sorted(c.id for c in comp.regressed_cases) == ["q001", "q002"]
    assert not comp.blocking and not any(s.significant for s in comp.slices)
    report = NightReport(night="2026-11-02", model="m", experiment=EXPERIMENT,
                         tracking_uri=seeded.store, options=comp.options,
                         roles=[RoleReport("champion", comp.tonight, comp)])
    assert report.status == "amber" and report.blocking == []


def test_page_and_summary_show_the_regression(seeded: Seeded, tmp_path: Path) -> None:
    from aliasgate.reports.compare import NightReport, RoleReport
    from aliasgate.reports.html import page_context, render_html
    from aliasgate.reports.nightly_markdown import render_nightly_markdown

    comp = _compare(seeded)
    report = NightReport(night="2026-11-04", model="fake", experiment=EXPERIMENT,
                         tracking_uri=seeded.store, options=comp.options,
                         roles=[RoleReport("champion", comp.tonight, comp)])
    assert report.status == "red"
    ctx = page_context(report)
    trends = ctx["roles"][0]["trends"]
    assert {t["suite"] for t in trends} == {"qa", "privacy"}
    assert all(t["nights"] == len(NIGHTS) >= 3 for t in trends)
    html = render_html(report)
    assert "qa.exact_match" in html and "math" in html
    for cid in [*proj.regressed_ids(), *proj.recovered_ids()]:
        assert cid in html
    assert "What is 42 plus one?" in html and "I do not know" in html
    _assert_self_contained(html, min_images=4)

    md = render_nightly_markdown(report)
    assert "REGRESSION" in md and "`qa.exact_match`" in md and "**math**" in md
    for cid in proj.regressed_ids()[:10]:
        assert cid in md


def test_report_cli_renders_any_past_run(seeded: Seeded, tmp_path: Path) -> None:
    from aliasgate.cli import main

    out = tmp_path / "night2"
    code = main(["--tracking-uri", seeded.store, "report", "--run", seeded.runs["2026-11-02"],
                 "--out", str(out)])
    assert code == 0
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "2026-11-02" in html and "2026-11-01" in html
    assert "2026-11-04" not in html and "2026-11-03" not in html  # only the nights before it
    _assert_self_contained(html, min_images=2)
    doc = json.loads((out / "report.json").read_text())
    assert doc["schema"] == "aliasgate.nightly/1" and doc["status"] == "amber"
    champion = doc["roles"]["champion"]
    assert champion["run_id"] == seeded.runs["2026-11-02"]
    assert champion["comparison"]["previous_run_id"] == seeded.runs["2026-11-01"]
    assert "q001" in (out / "report.md").read_text()

    tonight = tmp_path / "night4"
    assert main(["--tracking-uri", seeded.store, "report", "--run", seeded.tonight,
                 "--out", str(tonight)]) == 0
    doc = json.loads((tonight / "report.json").read_text())
    assert doc["status"] == "red" and doc["blocking"] is True
    assert any("qa.exact_match" in b for b in doc["blocking_reasons"])


def test_report_cli_unknown_run_is_a_usage_error(seeded: Seeded, tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    from aliasgate.cli import main

    code = main(["--tracking-uri", seeded.store, "report", "--run", "0" * 32,
                 "--out", str(tmp_path / "x")])
    assert code == 2
    assert "no MLflow run" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def _assert_self_contained(html: str, *, min_images: int) -> None:
    """No scripts, no external resources; every image is an inline PNG that decodes."""
    assert "<script" not in html.lower()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html, re.I)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//|@import", html, re.I)
    images = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= min_images
    assert len(images) == html.count("<img ")
    for data in images:
        png = base64.b64decode(data)
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 2000


def test_a_failed_evaluation_is_red_but_not_called_a_regression(seeded: Seeded) -> None:
    from aliasgate.reports.compare import CompareOptions, NightReport, RoleReport
    from aliasgate.reports.html import render_html
    from aliasgate.reports.nightly_markdown import render_nightly_markdown

    comp = _compare(seeded, "2026-11-03")
    report = NightReport(
        night="2026-11-05", model="fake", experiment=EXPERIMENT, tracking_uri=seeded.store,
        options=CompareOptions(),
        roles=[RoleReport("champion", None, None, error="pytest exited 3 (internal error)"),
               RoleReport("challenger", comp.tonight, comp, alerting=False)],
    )
    assert report.status == "red" and report.status_word == "FAILED" and not report.regressed
    assert report.blocking == ["@champion: evaluation failed — pytest exited 3 (internal error)"]
    html = render_html(report, charts=False)
    assert "Evaluation failed" in html and "pytest exited 3 (internal error)" in html
    assert "<img" not in html
    assert "FAILED" in render_nightly_markdown(report)


# -- "closer to zero is better" (signed bias scores) ---------------------------------------------


def _bias_night(night: str, value: float, low: float, high: float, cases: list[dict] | None = None):
    """A one-suite run whose ``bias_score_ambig`` is a suite-level aggregate (no per-case column)."""

    from aliasgate.reports.history import MetricValue, SuiteSnapshot

    metrics = {"bias_score_ambig": MetricValue(value, low, high, 200, 0),
               "bias_score_disambig": MetricValue(value, low, high, 200, 0)}
    if cases is not None:
        metrics["mc_bias"] = MetricValue(0.0, None, None, len(cases), 0)
    return _one_suite_night(night, SuiteSnapshot("bbq", metrics=metrics, cases=cases))


def _one_suite_night(night: str, suite):
    """A nightly champion run of one suite (a :class:`SuiteSnapshot`)."""
    import datetime as dt

    from aliasgate.reports.history import RunSnapshot

    return RunSnapshot(
        run_id=f"run-{night}", run_name=night, experiment_id="0",
        start_time=dt.datetime.fromisoformat(f"{night}T00:00:00+00:00"), status="FINISHED",
        night=night, kind="nightly", role="champion", candidate="c", model_name=None,
        model_version=None, git_sha=None, tags={}, params={}, metrics={},
        suites={suite.name: suite},
    )


@pytest.mark.parametrize(
    ("before", "after", "status", "significant"),
    [
        # 0 -> -0.4: anti-stereotypical bias appeared. "Lower is better" called it an improvement.
        ((0.0, -0.05, 0.05), (-0.4, -0.45, -0.35), "regressed", True),
        ((0.0, -0.05, 0.05), (0.4, 0.35, 0.45), "regressed", True),
        # back towards 0 from either side: better
        ((-0.4, -0.45, -0.35), (0.0, -0.05, 0.05), "improved", False),
        ((0.4, 0.35, 0.45), (-0.02, -0.06, 0.02), "improved", False),
        # the sign flipped, the distance from 0 did not change: not a change
        ((0.3, 0.25, 0.35), (-0.3, -0.35, -0.25), "unchanged", False),
        # folded intervals overlap ([0, 0.1] vs [0.05, 0.2]): within noise
        ((0.0, -0.1, 0.1), (-0.12, -0.2, -0.05), "unchanged", False),
    ],
)
def test_bias_scores_are_best_at_zero(before, after, status, significant) -> None:
    from aliasgate.reports.compare import CompareOptions, compare_runs

    opts = CompareOptions()
    assert opts.direction("bbq", "bias_score_ambig") == "zero"
    assert opts.direction("bbq", "bias_score_disambig") == "zero"
    assert opts.direction("bias", "yes_rate_gap") == "lower"  # other "bias"/"gap" names unchanged
    comp = compare_runs(_bias_night("2026-11-02", *after), [_bias_night("2026-11-01", *before)],
                        opts)
    for metric in ("bias_score_ambig", "bias_score_disambig"):
        c = next(c for c in comp.changes if c.metric == metric)
        assert (c.direction, c.method) == ("zero", "ci_overlap")
        assert (c.status, c.significant) == (status, significant), c.note
        assert c.delta == pytest.approx(after[0] - before[0])  # reported in the metric's units
    assert bool(comp.blocking) == significant


def test_zero_is_best_can_be_configured_and_applies_per_case() -> None:
    """Per-case values of a zero-best metric are compared on |x|; the pattern list is an option."""
    from aliasgate.reports.compare import CompareOptions, compare_runs

    prev_cases = [{"id": f"c{i}", "mc_bias": 0.0} for i in range(40)]
    now_cases = [{"id": f"c{i}", "mc_bias": -1.0 if i < 30 else 0.0} for i in range(40)]
    zero = CompareOptions(zero_is_best=("bias_score", "mc_bias"))
    comp = compare_runs(_bias_night("2026-11-02", 0.0, -0.05, 0.05, now_cases),
                        [_bias_night("2026-11-01", 0.0, -0.05, 0.05, prev_cases)], zero)
    c = next(c for c in comp.changes if c.metric == "mc_bias")
    assert c.direction == "zero" and c.method.startswith("paired_bootstrap")
    assert c.status == "regressed" and c.significant  # |x| 0 -> 0.75 on average
    assert c.delta == pytest.approx(0.75)
    assert sorted(x.id for x in comp.regressed_cases) == sorted(f"c{i}" for i in range(30))
    # without the pattern, "lower is better" would have called the same move an improvement
    lower = CompareOptions(zero_is_best=())
    assert lower.direction("bbq", "bias_score_ambig") == "lower"
    comp = compare_runs(_bias_night("2026-11-02", 0.0, -0.05, 0.05, now_cases),
                        [_bias_night("2026-11-01", 0.0, -0.05, 0.05, prev_cases)], lower)
    assert next(c for c in comp.changes if c.metric == "mc_bias").status == "improved"


# -- no better direction (yes rates, answer lengths) ----------------------------------------------


def _decisions_night(night: str, yes: list[float], words: list[float]):

    from aliasgate.reports.history import MetricValue, SuiteSnapshot

    cases = [{"id": f"d{i}", "group": "a" if i % 2 else "b", "yes_no": y, "answer_length": w}
             for i, (y, w) in enumerate(zip(yes, words, strict=True))]
    mean = sum(yes) / len(yes)
    metrics = {"yes_no": MetricValue(mean, mean - 0.1, mean + 0.1, len(yes), 0),
               "answer_length": MetricValue(sum(words) / len(words), None, None, len(yes), 0),
               "yes_no_gap": MetricValue(0.1, 0.0, 0.3, len(yes), 0)}
    return _one_suite_night(night, SuiteSnapshot("bias_decisions", metrics=metrics, cases=cases))


def test_a_yes_rate_or_an_answer_length_has_no_better_direction() -> None:
    """The yes rate halves and answers get longer: both are reported as *changed* with their
    paired interval — never a regression, a blocking alert or a regressed case; the yes-rate
    *gap* keeps "lower is better"."""
    from aliasgate.reports.compare import CompareOptions, RoleReport, compare_runs

    opts = CompareOptions()
    assert opts.direction("bias_decisions", "yes_no") == "either"
    assert opts.direction("bias_decisions", "answer_length") == "either"
    assert opts.direction("bias_decisions", "refused") == "either"
    assert opts.direction("safety_unsafe", "refused") == "higher"
    assert opts.direction("bias_decisions", "yes_no_gap") == "lower"
    before = _decisions_night("2026-11-01", [1.0] * 60, [1.0] * 60)
    after = _decisions_night("2026-11-02", [1.0] * 30 + [0.0] * 30, [5.0] * 60)
    comp = compare_runs(after, [before], opts)
    by_metric = {c.metric: c for c in comp.changes}
    for metric in ("yes_no", "answer_length"):
        c = by_metric[metric]
        assert (c.direction, c.status, c.significant) == ("either", "changed", False), c.note
        assert c.ci_low is not None and (c.ci_low > 0 or c.ci_high < 0)
        assert c.p_worse is None and "never a regression" in c.note
    assert by_metric["yes_no"].delta == pytest.approx(-0.5)
    assert by_metric["answer_length"].delta == pytest.approx(4.0)
    assert not comp.regressions and not comp.blocking and not comp.regressed_cases
    assert not [s for s in comp.slices if s.status == "regressed"]
    role = RoleReport(role="champion", run=after, comparison=comp).assess()
    assert role.status == "green", role.reasons
    # the same move on a metric with a direction is a regression
    directed = CompareOptions(neutral=())
    c = next(c for c in compare_runs(after, [before], directed).changes if c.metric == "yes_no")
    assert (c.direction, c.status, c.significant) == ("higher", "regressed", True)
    # unchanged when the interval covers 0
    same = compare_runs(_decisions_night("2026-11-02", [1.0] * 60, [1.0] * 60), [before], opts)
    assert {c.metric: c.status for c in same.changes}["yes_no"] == "unchanged"
