"""One evaluation session: load the candidate once, run suites, log to MLflow, write the report.

Used by the pytest plugin (``pytest evals/``) and the CLI. It orchestrates: it may import any package.
Heavy imports happen inside methods, so importing this module is cheap.
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aliasgate.defaults import (
    DEFAULT_CACHE_DIR,
    DEFAULT_CANDIDATE,
    DEFAULT_EXPERIMENT,
    DEFAULT_REPORTS_DIR,
    quiet_environment,
    redact_uri,
    tracking_uri,
)
from aliasgate.redact import redact
from aliasgate.run.results import SuiteResult
from aliasgate.run.suite import Suite


@dataclass
class EvalOptions:
    """What ``pytest evals/`` (or ``aliasgate eval``) was asked to do.

    Args:
        candidate: Candidate URI (``models:/NAME@ALIAS``, ``local:smollm2``, ``callable:mod:fn``).
        tracking_uri: MLflow tracking URI (default: env or ``sqlite:///mlflow.db``).
        experiment: MLflow experiment name.
        limit: Evaluate only the first N cases of each suite.
        sample: Share of each suite's clusters to evaluate, by suite name (``"*"``: every
            suite not named); a deterministic random sample (:func:`parse_sample`).
        use_cache: Reuse cached responses (``--no-cache`` turns this off for reads and writes).
        cache_dir: Where the response cache lives.
        concurrency: Max calls in flight (default: what the candidate allows).
        log_to_mlflow: Log runs to MLflow.
        reports_dir: Where ``<run>/summary.md`` and ``results.json`` are written.
        root: Project root: relative dataset paths resolve against it.
        auto_register: Register the embedded model when the default candidate is missing.
        progress: Show a progress bar.
        gate: A gate file; its rules decide the verdict.
        baseline: Baseline for comparison rules: an alias of the candidate's registered model
            (``champion``) or a full candidate URI. Default: the gate file's ``baseline``.
        promote: Move ``promote_alias`` to the candidate if the verdict is ``pass``.
        promote_alias: The alias a passing candidate is promoted to.
        repeats: How many times each case is asked (non-deterministic candidates); a case's
            value is the mean over its repeats and ``agreement`` is reported.
        nightly: Tag the parent run as a nightly evaluation (``aliasgate.kind=nightly``,
            ``aliasgate.role``, ``aliasgate.night``), so ``aliasgate nightly``/``report`` find it.
        nightly_role: ``champion``, ``challenger``...; default: the candidate URI's alias.
        nightly_date: The night's label (``YYYY-MM-DD``); default: today (UTC).
    """

    candidate: str = DEFAULT_CANDIDATE
    tracking_uri: str | None = None
    experiment: str = DEFAULT_EXPERIMENT
    limit: int | None = None
    sample: dict[str, float] = field(default_factory=dict)
    use_cache: bool = True
    cache_dir: Path = Path(DEFAULT_CACHE_DIR)
    concurrency: int | None = None
    log_to_mlflow: bool = True
    reports_dir: Path = Path(DEFAULT_REPORTS_DIR)
    root: Path = field(default_factory=Path.cwd)
    auto_register: bool = True
    progress: bool = True
    gate: Path | None = None
    baseline: str | None = None
    promote: bool = False
    promote_alias: str = "champion"
    repeats: int = 1
    nightly: bool = False
    nightly_role: str | None = None
    nightly_date: str | None = None


#: Extra directories suites may read datasets from, besides the project (``os.pathsep`` list).
DATA_ROOTS_ENV = "ALIASGATE_DATA_ROOTS"


def promotion_usage_error(
    *, promote: bool, baseline: str | None, promote_alias: str, limit: int | None
) -> str | None:
    """Why these options cannot promote (None when they can).

    A promotion is always judged against the alias it replaces, on complete evidence:
    ``--baseline`` may change what a run is *compared with* in its report, never what a
    promotion is judged against; ``--limit`` evaluates the first N cases only (not a sample of
    the suite: ``--sample`` is), so a run with it never promotes.
    """
    if not promote:
        return None
    if baseline and baseline.lstrip("@") != promote_alias:
        return (f"--baseline {baseline} with --promote: a promotion is always judged against "
                f"the alias it replaces (@{promote_alias}); --baseline changes what a run is "
                "compared with, never what it is promoted against. Drop --baseline to promote, "
                "or --promote to compare.")
    if limit is not None:
        return (f"--limit {limit} with --promote: the first N cases of each suite are not "
                "evidence for a promotion. Drop --limit (or use --sample, a random sample of "
                "whole clusters, which promotes on what it measured).")
    return None


def parse_sample(spec: str | None) -> dict[str, float]:
    """``--sample``: ``"0.3"`` (every suite) or ``"golden=0.5,safety=0.3"`` (the rest in full).

    Raises:
        ValueError: a share outside (0, 1], a malformed item or a suite named twice.
    """
    shares: dict[str, float] = {}
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        name, eq, value = item.rpartition("=")
        name = name.strip() if eq else "*"
        try:
            share = float(value)
        except ValueError:
            raise ValueError(f"{item!r} is not F or SUITE=F (F a share in (0, 1])") from None
        if not 0 < share <= 1:
            raise ValueError(f"{item!r}: the share must be in (0, 1], got {share}")
        if not name or name in shares:
            raise ValueError(f"{item!r}: {'a suite named twice' if name else 'no suite name'}")
        shares[name] = share
    return shares


class EvalSession:
    """Runs suites against one candidate and records everything.

    Args:
        options: See :class:`EvalOptions`.
        console: A rich console for progress and messages (default: stderr).
    """

    def __init__(self, options: EvalOptions, console: Any = None) -> None:
        quiet_environment()
        self.options = options
        self.console = console
        self.uri = options.tracking_uri or tracking_uri()
        self.results: list[SuiteResult] = []
        self.errors: dict[str, str] = {}
        self.mlflow_error: str | None = None
        self.notes: list[str] = []
        self.started = time.time()
        self.run_name = time.strftime("eval-%Y%m%d-%H%M%S")
        self._candidate: Any = None
        self._candidate_error: Exception | None = None
        self._cache: Any = None
        self._tracking: Any = None
        self.report_dir: Path | None = None
        # gate state
        self.gate: Any = None
        self.baseline_results: dict[str, SuiteResult] = {}
        self.baseline_info: dict[str, Any] | None = None
        self.alias_at_start: str | None = None
        self.promotion: dict[str, Any] | None = None
        self._baseline: Any = None
        self._begun = False
        self._verdict: Any = None
        if options.gate is not None:
            from aliasgate.gates.schema import load_gate

            self.gate = load_gate(options.gate)  # GateFileError: bad input, before any model call
            problem = promotion_usage_error(
                promote=options.promote, baseline=options.baseline,
                promote_alias=options.promote_alias, limit=options.limit)
            if problem:
                raise ValueError(problem)
            spec = self.baseline_spec()
            if spec and spec != self.gate.baseline:
                # the rules' messages name what they were really compared with
                if options.promote and self.gate.baseline:
                    self.note(f"comparisons are against @{spec}, the alias a promotion replaces "
                              f"(the gate file's baseline @{self.gate.baseline} is not used)")
                self.gate = self.gate.model_copy(update={"baseline": spec})

    # -- lazily built parts -------------------------------------------------------------------
    def candidate(self) -> Any:
        """The candidate, loaded once (a load failure is remembered and re-raised for every suite)."""
        if self._candidate_error is not None:
            raise self._candidate_error
        if self._candidate is None:
            try:
                self._candidate = self._load_candidate()
            except Exception as exc:
                self._candidate_error = exc
                raise
        return self._candidate

    def _load_candidate(self) -> Any:
        from aliasgate.candidates import load_candidate

        uri = self.options.candidate
        if self.gate is not None and not self.gate.allows(uri):
            from aliasgate.candidates import CandidateError

            raise CandidateError(
                f"{redact_uri(uri)} is not in the gate's allow_models "
                f"({', '.join(self.gate.allow_models)}): not loaded (a registered model runs its "
                "own code when it is loaded)")
        if uri.startswith(("models:/", "runs:/")):
            import mlflow

            from aliasgate.defaults import ensure_store

            mlflow.set_tracking_uri(ensure_store(self.uri))
            if self.options.auto_register and uri == DEFAULT_CANDIDATE:
                from aliasgate.registry.models import ensure_default_candidate

                name, _, alias = uri.removeprefix("models:/").partition("@")
                registered = ensure_default_candidate(model_name=name, alias=alias)
                if registered is not None:
                    self.note(
                        f"registered the embedded SmolLM2 candidate as {registered.name} "
                        f"v{registered.version} @{alias} (fresh store)"
                    )
        return load_candidate(uri)

    @property
    def cache(self) -> Any:
        if self._cache is None and self.options.use_cache:
            from aliasgate.run.cache import ResponseCache

            path = self.options.cache_dir
            if not path.is_absolute():
                path = self.options.root / path
            self._cache = ResponseCache(path / "responses.sqlite")
        return self._cache

    @property
    def tracking(self) -> Any:
        if self._tracking is None:
            from aliasgate.registry.tracking import TrackingSession, git_sha

            tags = {"aliasgate.kind": "evaluation",
                    "aliasgate.candidate": redact_uri(self.options.candidate)}
            sha = git_sha(self.options.root)
            if sha:
                tags["aliasgate.git_sha"] = sha
            tags.update(self.model_tags())
            if self.options.nightly:
                tags.update(self.nightly_tags())
            self._tracking = TrackingSession(
                self.uri, self.options.experiment, run_name=self.run_name, tags=tags
            )
        return self._tracking

    def nightly_tags(self) -> dict[str, str]:
        """Parent-run tags of a nightly evaluation: kind, role, night, registered model/version."""
        import datetime as _dt

        from aliasgate.reports.history import nightly_role

        tags = {
            "aliasgate.kind": "nightly",
            "aliasgate.role": self.options.nightly_role or nightly_role(self.options.candidate),
            "aliasgate.night": self.options.nightly_date
            or _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d"),
        }
        tags.update(self.model_tags())
        return tags

    def model_tags(self) -> dict[str, str]:
        """``aliasgate.model_name``/``model_version`` when the candidate is a registered version
        (an alias is resolved when the run starts), so a model's evaluations can be found."""
        tags: dict[str, str] = {}
        ref = self._candidate_ref_or_none()
        if ref is not None and getattr(ref, "name", None):
            tags["aliasgate.model_name"] = str(ref.name)
            if getattr(ref, "version", None):
                tags["aliasgate.model_version"] = str(ref.version)
        return tags

    def note(self, message: str) -> None:
        self.notes.append(message)
        if self.console is not None:
            self.console.print(f"[aliasgate] {message}", markup=False, highlight=False)

    def model_ref(self) -> Any:
        """The candidate's registry reference (name, version...), None if not a registered model."""
        return getattr(self.candidate(), "ref", None)

    def _begin(self) -> None:
        """Before the first suite: remember where the promotion alias points (compare-and-set)."""
        if self._begun:
            return
        self._begun = True
        ref = self.model_ref()
        if self.gate is not None and ref is not None and ref.name:
            from aliasgate.registry.promotion import read_alias

            self.alias_at_start = read_alias(ref.name, self.options.promote_alias)

    def baseline(self) -> Any:
        """The baseline candidate for comparison rules, or None (no gate, or alias not set yet)."""
        if self._baseline is None:
            self._baseline = self._load_baseline() or False
        return self._baseline or None

    def baseline_spec(self) -> str | None:
        """What comparison rules compare with: the alias being promoted when promoting (always),
        else ``--baseline`` or the gate file's ``baseline``."""
        if self.gate is None:
            return None
        if self.options.promote:
            return self.options.promote_alias
        return (self.options.baseline or "").lstrip("@") or self.gate.baseline

    def _load_baseline(self) -> Any:
        from aliasgate.candidates import CandidateError, load_candidate

        spec = self.baseline_spec()
        if self.gate is None or not spec or not any(r.comparison for r in self.gate.rules):
            return None  # no rule compares: nothing to evaluate the baseline for
        if ":" in spec:  # a full URI
            if not self.gate.allows(spec):
                raise CandidateError(f"baseline {redact_uri(spec)} is not in the gate's "
                                     "allow_models: not loaded")
            info: dict[str, Any] = {"uri": redact_uri(spec), "label": redact_uri(spec),
                                    "alias": None}
            cand = load_candidate(spec)
        else:
            ref = self.model_ref()
            if ref is None or not ref.name:
                raise CandidateError(
                    f"baseline alias @{spec} needs a registered candidate (models:/NAME@ALIAS or "
                    f"models:/NAME/VERSION); got {self.options.candidate!r}. Pass --baseline URI."
                )
            from aliasgate.registry.promotion import read_alias

            version = read_alias(ref.name, spec)
            info = {"uri": f"models:/{ref.name}@{spec}", "alias": spec, "name": ref.name,
                    "version": version, "label": f"@{spec}"}
            if version is None:
                info["label"] = f"@{spec} (not set)"
                self.baseline_info = info
                self.note(f"no baseline: @{spec} is not set on {ref.name} — first promotion, "
                          "absolute rules only")
                return None
            info["label"] = f"@{spec} v{version}"
            if str(version) == str(ref.version):
                self.note(f"the candidate is {info['label']} itself: comparisons are trivial")
            cand = load_candidate(f"models:/{ref.name}/{version}")
        bref = getattr(cand, "ref", None)
        if bref is not None:
            info.setdefault("name", bref.name)
            info["version"] = bref.version
        self.baseline_info = info
        return cand

    # -- running -------------------------------------------------------------------------------
    def run_suite(self, suite: Suite) -> SuiteResult:
        """Evaluate ``suite``; log it to MLflow. Raises on a bad dataset or unloadable candidate.

        The candidate's results are kept (and counted, and logged) even when the baseline then
        fails: the suite errors, the verdict is incomplete, and no model call goes unreported.
        """
        from aliasgate.datasets import load_dataset

        result: SuiteResult | None = None
        base_result: SuiteResult | None = None
        try:
            dataset = load_dataset(
                self.dataset_path(suite), kind=suite.kind, name=suite.name
            )
            candidate = self.candidate()
            self._begin()
            result = self._run_one(suite, dataset, candidate, suite.name)
            self.results.append(result)
            baseline = self.baseline()
            if baseline is not None:
                label = (self.baseline_info or {}).get("label", "baseline")
                base_result = self._run_one(suite, dataset, baseline, f"{suite.name} {label}")
                self.baseline_results[suite.name] = base_result
        except Exception as exc:
            where = "" if result is None else "baseline: "
            self.errors[suite.name] = redact(f"{where}{type(exc).__name__}: {exc}")
            raise
        finally:
            if result is not None:
                self._log_suite(suite, result, base_result)
        return result

    def _log_suite(self, suite: Suite, result: SuiteResult, base: SuiteResult | None) -> None:
        if not self.options.log_to_mlflow or self.mlflow_error is not None:
            return
        try:
            extra = {"git.sha": self.tracking.tags.get("aliasgate.git_sha"),
                     "dataset.limit": self.options.limit,
                     "dataset.sample": self.sample_share(suite.name)}
            self.tracking.log_suite(result, extra_params=extra)
            if base is not None:
                self.tracking.log_suite(base, extra_params=extra, role="baseline")
        except Exception as exc:  # noqa: BLE001 - the results stand; the reports keep them
            self._mlflow_failed(f"suite {suite.name!r} was not logged", exc)

    def dataset_path(self, suite: Suite) -> Path:
        """The suite's dataset file, which must lie in the project or in a declared data root.

        A suite reads its file and error messages quote what is wrong in it, into reports that
        are uploaded: a path that leaves the project (``../../etc/...``, an absolute path
        elsewhere) is refused unless its directory is listed in ``$ALIASGATE_DATA_ROOTS``
        (``os.pathsep``-separated), so nothing outside what the project declares is read.

        Raises:
            DatasetError: the path lies outside the project and every data root.
        """
        from aliasgate.datasets import DatasetError

        path = suite.dataset_path(self.options.root)
        resolved = path.resolve()
        roots = [Path(self.options.root).resolve()] + [
            Path(r).expanduser().resolve()
            for r in os.environ.get(DATA_ROOTS_ENV, "").split(os.pathsep) if r.strip()]
        if not any(resolved.is_relative_to(root) for root in roots):
            raise DatasetError(
                f"{path}: outside the project ({roots[0]}); list its directory in "
                f"${DATA_ROOTS_ENV} to read it")
        return path

    def sample_share(self, suite: str) -> float | None:
        """The share of ``suite``'s clusters this session evaluates (None: all of them)."""
        share = self.options.sample.get(suite, self.options.sample.get("*"))
        return None if share is None or share == 1 else share

    def _run_one(self, suite: Suite, dataset: Any, candidate: Any, label: str) -> SuiteResult:
        from aliasgate.run.progress import NullProgress, rich_progress
        from aliasgate.run.runner import run_suite

        share = self.sample_share(suite.name)
        # as run_suite sees it
        total = len(suite.select(dataset).sample(share).head(self.options.limit).cases)
        bar = rich_progress(label, total, console=self.console) if self.options.progress \
            else NullProgress()
        with bar as on_result:
            return run_suite(
                suite, dataset, candidate, cache=self.cache,
                concurrency=self.options.concurrency, limit=self.options.limit, sample=share,
                on_result=on_result, repeats=self.options.repeats,
            )

    # -- gate ----------------------------------------------------------------------------------
    def verdict(self) -> Any:
        """The gate verdict over everything run so far (None without a gate). Computed once."""
        if self.gate is None:
            return None
        if self._verdict is None:
            from aliasgate.gates.evaluate import evaluate_gate

            has_baseline = bool(self.baseline_info and self.baseline_info.get("version")) or (
                self._baseline not in (None, False)
            )
            baseline_results = self.baseline_results if has_baseline else None
            if baseline_results is None and self._baseline is None and \
                    self._baseline_alias_set():
                # the baseline was never evaluated (every suite failed before it was reached, or
                # the rule's suite was not selected), but the alias *is* set: comparison rules
                # must report what is missing, never "not set — first promotion"
                baseline_results = {}
            self._verdict = evaluate_gate(
                self.gate,
                {r.suite: r for r in self.results},
                baseline_results,
                baseline_label=_version_label(self.baseline_info),
                suite_errors=self.errors,
            )
        return self._verdict

    def _baseline_alias_set(self) -> bool:
        """Whether the gate's baseline exists, without loading any model (False when unknown)."""
        spec = self.baseline_spec()
        if not spec:
            return False
        if ":" in spec:  # a full URI: given, so it exists as far as the gate is concerned
            return True
        m = re.match(r"^models:/([^/@]+)[/@]", self.options.candidate or "")
        if m is None:
            return False
        try:
            from aliasgate.registry.promotion import read_alias

            return read_alias(m.group(1), spec) is not None
        except Exception:  # noqa: BLE001 - an unreachable store: unknown, keep "not set"
            return False

    def verdict_dict(self) -> dict[str, Any] | None:
        """verdict.json: the gate's verdict plus provenance and the promotion outcome."""
        v = self.verdict()
        if v is None:
            return None
        d = v.to_dict()
        ref = self._candidate_ref_or_none()
        d["candidate"] = {
            "uri": redact_uri(self.options.candidate),
            "name": getattr(ref, "name", None),
            "version": getattr(ref, "version", None),
        }
        d["baseline"] = self.baseline_info
        d["alias"] = {"name": self.options.promote_alias, "version_at_start": self.alias_at_start}
        d["run"] = {
            "name": self.run_name,
            "tracking_uri": redact_uri(self.uri),
            "parent_run_id": self._tracking.parent_run_id if self._tracking else None,
            "git_sha": self._tracking.tags.get("aliasgate.git_sha") if self._tracking else None,
        }
        d["promotion"] = self.promotion
        return d

    def _candidate_ref_or_none(self) -> Any:
        if self._candidate is None:
            return None
        return getattr(self._candidate, "ref", None)

    def _promote(self, verdict: dict[str, Any]) -> None:
        from aliasgate.registry.promotion import PromotionRefused, promote

        ref = self._candidate_ref_or_none()
        if ref is None or not ref.name or not ref.version:
            self.promotion = {"action": "refused", "reason": (
                "only a registered model version can be promoted; candidate "
                f"{self.options.candidate!r} is not one")}
            return
        try:
            record = promote(
                ref.name, ref.version, alias=self.options.promote_alias,
                expected_current=self.alias_at_start, verdict=verdict,
                gate_run_id=verdict["run"]["parent_run_id"], git_sha=verdict["run"]["git_sha"],
            )
        except PromotionRefused as exc:
            self.promotion = {"action": "refused", "reason": str(exc)}
            return
        from dataclasses import asdict

        self.promotion = asdict(record)

    @property
    def model_calls(self) -> int:
        """Model calls made by this session (candidate and baseline)."""
        return sum(r.model_calls for r in [*self.results, *self.baseline_results.values()])

    @property
    def cache_hits(self) -> int:
        """Responses served from the cache (candidate and baseline)."""
        return sum(r.cache_hits for r in [*self.results, *self.baseline_results.values()])

    def finish(self) -> Path | None:
        """Write the report files (and verdict), log them to the parent run, close it, and
        promote if asked and the verdict allows. Returns the report dir."""
        if not self.results and not self.errors and self.gate is None:
            return None
        from aliasgate.reports.markdown import render_summary

        self._cache_note()

        parent = None
        if self.options.log_to_mlflow and self.mlflow_error is None and (
                self.results or self.gate is not None):
            try:
                parent = self.tracking.parent()
            except Exception as exc:  # noqa: BLE001 - the local reports are written regardless
                self._mlflow_failed("the parent run could not be opened", exc)
        out = self.options.reports_dir
        if not out.is_absolute():
            out = self.options.root / out
        out = out / (self.run_name + (f"-{parent[:8]}" if parent else ""))
        out.mkdir(parents=True, exist_ok=True)
        summary = render_summary(self.summary_dict())
        _write(out / "summary.md", summary)
        _write(out / "results.json", json.dumps(self.summary_dict(), indent=2, default=str))
        with (out / "cases.jsonl").open("w", encoding="utf-8") as fh:
            for r in self.results:  # one redaction pass per suite, not one per case
                lines = [json.dumps({"suite": r.suite, **row}, default=str) for row in r.rows()]
                if lines:
                    fh.write(redact("\n".join(lines), pairs=False) + "\n")
        names = ["summary.md", "results.json"]
        verdict = self.verdict_dict()
        if verdict is not None:
            if self.options.promote:
                self._promote(verdict)
                verdict["promotion"] = self.promotion
            _write(out / "verdict.json", json.dumps(verdict, indent=2))
            md = redact(self.verdict().to_markdown() + _promotion_markdown(self.promotion),
                        pairs=False)
            _write(out / "verdict.md", md)
            names += ["verdict.json", "verdict.md"]
            step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
            if step_summary:
                with open(step_summary, "a", encoding="utf-8") as fh:
                    fh.write(md + "\n")
        if parent is not None:
            try:
                if verdict is not None:
                    self.tracking.log(parent, tags={"aliasgate.verdict": verdict["verdict"]})
                for name in names:
                    self.tracking.log_artifact(parent, out / name, "report")
                self.tracking.finish("FAILED" if self.errors else "FINISHED")
            except Exception as exc:  # noqa: BLE001 - reports are on disk already
                self._mlflow_failed("the reports were not logged to MLflow", exc)
        if self._cache is not None:
            self._cache.close()
        self.report_dir = out
        return out

    def _cache_note(self) -> None:
        """Say when no call reached the candidate: its endpoint and key were not exercised."""
        if self.results and self.model_calls == 0 and self.cache_hits > 0:
            self.note("every answer came from the response cache: the candidate's endpoint and "
                      "credentials were not exercised (--no-cache asks again)")

    def _mlflow_failed(self, what: str, exc: Exception) -> None:
        self.mlflow_error = redact(f"{what}: {type(exc).__name__}: {exc}")
        self.note(f"MLflow: {self.mlflow_error} (local reports are complete)")

    def summary_dict(self) -> dict[str, Any]:
        """Machine-readable summary of the session (written as ``results.json``)."""
        return {
            "run_name": self.run_name,
            "candidate": redact_uri(self.options.candidate),
            "tracking_uri": redact_uri(self.uri),
            "parent_run_id": self._tracking.parent_run_id if self._tracking else None,
            "model_calls": self.model_calls,
            "cache_hits": self.cache_hits,
            "errors": self.errors,
            "mlflow_error": self.mlflow_error,
            "notes": self.notes,
            "suites": [
                {
                    "suite": r.suite,
                    "candidate": r.candidate,
                    "dataset": r.dataset_path,
                    "dataset_digest": r.dataset_digest,
                    "n": r.n,
                    "unmeasured": r.unmeasured,
                    "model_calls": r.model_calls,
                    "cache_hits": r.cache_hits,
                    "wall_time_s": round(r.wall_time_s, 3),
                    "metrics": {
                        k: {"value": m.value, "ci_low": m.ci_low, "ci_high": m.ci_high,
                            "n": m.n, "unmeasured": m.unmeasured}
                        for k, m in [*r.metrics.items(),
                                     *([("agreement", r.agreement)] if r.agreement else [])]
                    },
                    "repeats": r.repeats,
                }
                for r in self.results
            ],
        }


def _write(path: Path, text: str) -> None:
    """Write a report file; known secret values and URL credentials never reach it."""
    path.write_text(redact(text, pairs=False), encoding="utf-8")


def _promotion_markdown(promotion: dict[str, Any] | None) -> str:
    if not promotion:
        return ""
    if promotion.get("action") == "refused":
        return f"\n**Promotion refused:** {promotion.get('reason')}\n"
    return (
        f"\n**Promoted:** {promotion.get('model')} v{promotion.get('to_version')} is now "
        f"@{promotion.get('alias')} (was v{promotion.get('from_version')}).\n"
    )


def _version_label(info: dict[str, Any] | None) -> str | None:
    """What the verdict prints after the baseline alias: ``v3`` (or the URI for a non-alias)."""
    if not info:
        return None
    if info.get("alias") is None:
        return info.get("uri")
    return f"v{info['version']}" if info.get("version") else None
