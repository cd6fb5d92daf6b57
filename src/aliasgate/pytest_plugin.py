"""pytest plugin (entry point ``pytest11``): ``pytest evals/`` evaluates the declared suites.

Every module-level :class:`aliasgate.Suite` in a collected test module becomes one pytest item
``suite[<name>]``. Running it evaluates the suite against ``--candidate``, logs a child run to
MLflow and adds its metrics to the summary printed at the end. The plugin is inert in sessions
that collect no suite, and imports nothing heavy until a suite runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from aliasgate.defaults import (
    DEFAULT_CACHE_DIR,
    DEFAULT_CANDIDATE,
    DEFAULT_EXPERIMENT,
    DEFAULT_REPORTS_DIR,
)
from aliasgate.run.suite import Suite

# No import-time side effects: the telemetry switches (HF_HUB_OFFLINE...) are set by the
# evaluation session, only in a pytest run that evaluates suites — never in an unrelated
# project's tests that merely share the virtualenv.

_SESSION_KEY = pytest.StashKey["Any"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("aliasgate", "aliasgate LLM evaluation")
    g.addoption("--candidate", default=os.environ.get("ALIASGATE_CANDIDATE", DEFAULT_CANDIDATE),
                help="candidate URI: models:/NAME@ALIAS, models:/NAME/VERSION, local:smollm2, "
                     "callable:module:function, openai:MODEL, azure:DEPLOYMENT, "
                     "openai-compatible:MODEL@BASE_URL (default: %(default)s)")
    g.addoption("--tracking-uri", default=None,
                help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    g.addoption("--experiment", default=DEFAULT_EXPERIMENT, help="MLflow experiment name")
    g.addoption("--suites", default=None,
                help="comma-separated suite names to run (default: all collected)")
    g.addoption("--limit", type=int, default=None, help="evaluate only the first N cases per suite")
    g.addoption("--sample", default=None,
                help="evaluate a deterministic random sample of each suite's clusters: a share "
                     "F in (0, 1] for every suite, or per suite as SUITE=F,SUITE=F (others in "
                     "full); the same cases on every machine and for every candidate")
    g.addoption("--no-cache", action="store_true", help="neither read nor write the response cache")
    g.addoption("--cache-dir", default=DEFAULT_CACHE_DIR, help="response cache directory")
    g.addoption("--concurrency", type=int, default=None, help="max model calls in flight")
    g.addoption("--repeats", type=int, default=1,
                help="ask each case K times (non-deterministic candidates): a case's value is the "
                     "mean over its repeats; per-case agreement is reported (default: 1)")
    g.addoption("--no-mlflow", action="store_true", help="do not log to MLflow")
    g.addoption("--reports-dir", default=DEFAULT_REPORTS_DIR, help="where reports are written")
    g.addoption("--no-progress", action="store_true", help="hide the progress bar")
    g.addoption("--gate", default=None,
                help="gate file (YAML): each rule becomes a pytest item; the exit code is the verdict")
    g.addoption("--baseline", default=None,
                help="baseline for comparison rules: an alias of the candidate's registered model "
                     "or a candidate URI (default: the gate file's `baseline`, usually champion)")
    g.addoption("--promote", action="store_true",
                help="move --promote-alias to the candidate if every blocking rule passed on "
                     "complete results (compare-and-set, audited)")
    g.addoption("--promote-alias", default="champion", help="alias to promote to (default: %(default)s)")
    g.addoption("--verdict-json", default=None, help="also write verdict.json to this path")
    g.addoption("--nightly", action="store_true",
                help="tag the MLflow run as a nightly evaluation (aliasgate.kind=nightly, "
                     "aliasgate.role, aliasgate.night) and write its report page (index.html)")
    g.addoption("--nightly-role", default=None,
                help="role of the candidate in the nightly history: champion, challenger... "
                     "(default: the alias of --candidate)")
    g.addoption("--nightly-date", default=None,
                help="the night's label, YYYY-MM-DD (default: today, UTC)")
    g.addoption("--no-nightly-page", action="store_true",
                help="with --nightly: do not write the run's index.html (`aliasgate nightly` "
                     "writes one page for all roles)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "aliasgate_suite: an aliasgate evaluation suite item")
    config.addinivalue_line("markers", "aliasgate_gate: an aliasgate gate rule item")
    if config.getoption("--repeats", 1) < 1:
        raise pytest.UsageError("--repeats must be >= 1")
    if config.getoption("--promote", False) and not config.getoption("--gate", None):
        raise pytest.UsageError("--promote needs --gate: nothing is promoted without a gate")
    from aliasgate.session import promotion_usage_error

    problem = promotion_usage_error(
        promote=config.getoption("--promote", False), baseline=config.getoption("--baseline", None),
        promote_alias=config.getoption("--promote-alias", "champion"),
        limit=config.getoption("--limit", None))
    if problem:
        raise pytest.UsageError(problem)
    if config.getoption("--gate", None):
        from aliasgate.gates.schema import GateFileError

        try:
            _eval_session(config)
        except (GateFileError, OSError) as exc:
            raise pytest.UsageError(f"aliasgate: bad gate file: {exc}") from None


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(collector: pytest.Collector, name: str, obj: object) -> Any:
    if isinstance(obj, Suite):
        return SuiteItem.from_parent(collector, name=f"suite[{obj.name}]", suite=obj)
    return None


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    ev = config.stash.get(_SESSION_KEY, None)
    if ev is not None and ev.gate is not None:
        _add_gate_items(session, ev, items)
    wanted = config.getoption("--suites")
    if not wanted:
        return
    names = {s.strip() for s in wanted.split(",") if s.strip()}
    keep, drop = [], []
    for item in items:
        if isinstance(item, SuiteItem) and item.suite.name not in names:
            drop.append(item)
        else:
            keep.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


class SuiteError(Exception):
    """The suite could not be evaluated (bad dataset, candidate not loadable, nothing measured)."""


class SuiteItem(pytest.Item):
    """One suite, evaluated as one pytest item."""

    def __init__(self, *, suite: Suite, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.suite = suite
        self.add_marker("aliasgate_suite")

    def runtest(self) -> None:
        from aliasgate.candidates.base import CandidateError
        from aliasgate.datasets.base import DatasetError

        session = _eval_session(self.config)
        capman = self.config.pluginmanager.getplugin("capturemanager")
        try:
            if capman is not None:
                with capman.global_and_fixture_disabled():
                    result = session.run_suite(self.suite)
            else:
                result = session.run_suite(self.suite)
        except (DatasetError, CandidateError) as exc:
            raise SuiteError(str(exc)) from exc
        if result.n and result.unmeasured == result.n:
            first = next((c.error for c in result.cases if c.error), "unknown error")
            raise SuiteError(
                f"all {result.n} cases of suite {self.suite.name!r} are unmeasured; first error: {first}"
            )

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, SuiteError):
            return f"suite {self.suite.name!r}: {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"suite[{self.suite.name}]"


def _add_gate_items(session: pytest.Session, ev: Any, items: list[pytest.Item]) -> None:
    """Check the gate's metrics against the collected suites; append one item per rule."""
    from aliasgate.gates.schema import GateFileError
    from aliasgate.stats.aggregate import declared_metrics

    available = {
        i.suite.name: [*i.suite.scorers, *declared_metrics(i.suite.aggregates)]
        for i in items if isinstance(i, SuiteItem)
    }
    try:
        ev.gate.check_metrics(available)
    except GateFileError as exc:
        raise pytest.UsageError(f"aliasgate: bad gate file: {exc}") from None
    path = Path(ev.options.gate).resolve()
    collector = GateCollector.from_parent(session, path=path)
    items.extend(
        GateRuleItem.from_parent(collector, name=f"gate[{rule.id}]", rule=rule)
        for rule in ev.gate.rules
    )


class GateRuleFailed(Exception):
    """A blocking gate rule did not pass."""


class GateWarning(UserWarning):
    """A warn-severity gate rule did not pass (the verdict is unaffected)."""


class GateCollector(pytest.File):
    """The gate file as a collection node (its items are added after the suites)."""

    def collect(self) -> list[pytest.Item]:  # pragma: no cover - items are added directly
        return []


class GateRuleItem(pytest.Item):
    """One gate rule: passes, fails (blocking), warns, or is skipped (no baseline)."""

    def __init__(self, *, rule: Any, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rule = rule
        self.add_marker("aliasgate_gate")

    def runtest(self) -> None:
        import warnings

        ev = _eval_session(self.config)
        outcome = next(o for o in ev.verdict().rules if o.id == self.rule.id)
        if outcome.status == "pass":
            return
        if outcome.status == "skipped":
            pytest.skip(outcome.message)
        if outcome.severity == "warn":
            gate = ev.gate
            index = next(i for i, r in enumerate(gate.rules) if r.id == self.rule.id)
            warnings.warn_explicit(
                GateWarning(f"gate[{outcome.id}] (warn) {outcome.status}: {outcome.message}"),
                GateWarning, filename=str(self.path), lineno=gate.line_of("rules", index) or 0,
            )
            return
        raise GateRuleFailed(f"{outcome.status}: {outcome.message}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, GateRuleFailed):
            return f"gate rule {self.rule.id!r} ({self.rule.type}, blocking): {excinfo.value}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        return self.path, None, f"gate[{self.rule.id}]"


def _sample_option(spec: str | None) -> dict[str, float]:
    from aliasgate.session import parse_sample

    try:
        return parse_sample(spec)
    except ValueError as exc:
        raise pytest.UsageError(f"--sample: {exc}") from None


def _eval_session(config: pytest.Config) -> Any:
    session = config.stash.get(_SESSION_KEY, None)
    if session is None:
        from rich.console import Console

        from aliasgate.session import EvalOptions, EvalSession

        opts = EvalOptions(
            candidate=config.getoption("--candidate"),
            tracking_uri=config.getoption("--tracking-uri"),
            experiment=config.getoption("--experiment"),
            limit=config.getoption("--limit"),
            sample=_sample_option(config.getoption("--sample")),
            use_cache=not config.getoption("--no-cache"),
            cache_dir=Path(config.getoption("--cache-dir")),
            concurrency=config.getoption("--concurrency"),
            log_to_mlflow=not config.getoption("--no-mlflow"),
            reports_dir=Path(config.getoption("--reports-dir")),
            root=Path(config.rootpath),
            progress=not config.getoption("--no-progress"),
            gate=Path(config.getoption("--gate")) if config.getoption("--gate") else None,
            baseline=config.getoption("--baseline"),
            promote=config.getoption("--promote"),
            promote_alias=config.getoption("--promote-alias"),
            repeats=config.getoption("--repeats"),
            nightly=config.getoption("--nightly"),
            nightly_role=config.getoption("--nightly-role"),
            nightly_date=config.getoption("--nightly-date"),
        )
        session = EvalSession(opts, console=Console(stderr=True))
        config.stash[_SESSION_KEY] = session
    return session


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    ev = session.config.stash.get(_SESSION_KEY, None)
    if ev is None:
        return
    ev.finish()
    verdict = ev.verdict_dict() if ev.gate is not None else None
    target = session.config.getoption("--verdict-json")
    if verdict is not None and target:
        import json

        Path(target).write_text(json.dumps(verdict, indent=2), encoding="utf-8")
    if ev.options.nightly and not session.config.getoption("--no-nightly-page"):
        _nightly_page(session.config, ev)
    refused = ev.promotion is not None and ev.promotion.get("action") == "refused"
    if refused and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_NIGHTLY_PAGE_KEY = pytest.StashKey[str]()


def _nightly_page(config: pytest.Config, ev: Any) -> None:
    """``--nightly``: render this run's report page (vs the previous nights) into its report dir."""
    run_id = ev._tracking.parent_run_id if ev._tracking is not None else None
    if run_id is None or ev.report_dir is None:
        return
    try:
        from aliasgate.nightly import render_run_report

        page = render_run_report(run_id, out=ev.report_dir, tracking_uri=ev.uri)
        config.stash[_NIGHTLY_PAGE_KEY] = str(page)
    except Exception as exc:  # noqa: BLE001 - the evaluation is logged; the page is extra
        ev.note(f"nightly report page not written: {type(exc).__name__}: {exc}")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    ev = config.stash.get(_SESSION_KEY, None)
    if ev is None or (not ev.results and not ev.errors):
        return
    from aliasgate.reports.terminal import summary_lines

    tr = terminalreporter
    tr.write_sep("=", "aliasgate summary")
    for line in summary_lines(ev.summary_dict(), width=tr._tw.fullwidth, markup=tr.hasmarkup):
        tr.write_line(line)
    for note in ev.notes:
        tr.write_line(f"note: {note}")
    verdict = ev.verdict() if ev.gate is not None else None
    if verdict is not None:
        tr.write_line(f"gate {ev.gate.name}: {verdict.verdict.upper()} — {verdict.summary}",
                      bold=True, red=verdict.verdict != "pass", green=verdict.verdict == "pass")
    if ev.promotion is not None:
        p = ev.promotion
        if p.get("action") == "refused":
            tr.write_line(f"promotion refused: {p.get('reason')}", red=True)
        else:
            prev = f"v{p['from_version']}" if p.get("from_version") else "none"
            tr.write_line(f"promoted: {p.get('model')} v{p.get('to_version')} -> @{p.get('alias')} "
                          f"(previous champion: {prev})", green=True)
    if ev.report_dir is not None:
        tr.write_line(f"report: {ev.report_dir / 'summary.md'}")
        if verdict is not None:
            tr.write_line(f"verdict: {ev.report_dir / 'verdict.json'}")
    if ev._tracking is not None and ev._tracking.parent_run_id:
        tr.write_line(f"MLflow run: {ev._tracking.parent_run_id}  (browse: {ev._tracking.ui_hint()})")
    page = config.stash.get(_NIGHTLY_PAGE_KEY, None)
    if page is not None:
        tr.write_line(f"nightly report: {page}")
