"""``aliasgate`` command line: eval, promote, rollback, audit, register, demo, nightly, report,
mitigation, score.

Exit codes (also of ``pytest evals/ --gate``, except that pytest reports 1 for 3 and 4):
    0  passed (and promoted, when asked)
    1  the gate failed (a blocking rule did not pass) or a suite failed
    2  bad input or usage (bad gate file, unknown metric, bad arguments)
    3  incomplete evaluation (a suite errored, interrupted, too many unmeasured cases)
    4  promotion refused although the gate passed (the alias moved meanwhile, lock held)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from aliasgate import __version__
from aliasgate.defaults import DEFAULT_MODEL_NAME, quiet_environment

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INCOMPLETE, EXIT_REFUSED = 0, 1, 2, 3, 4


def _pytest_exit(code: int) -> int:
    # pytest: 0 ok, 1 tests failed, 2 interrupted, 3 internal error, 4 usage error, 5 no tests
    return {0: EXIT_OK, 1: EXIT_FAILED, 2: EXIT_INCOMPLETE, 4: EXIT_USAGE, 5: EXIT_USAGE}.get(
        code, EXIT_FAILED
    )


def exit_code(pytest_code: int, verdict: dict | None) -> int:
    """The documented exit code from pytest's exit code and the verdict (if a gate ran)."""
    if pytest_code in (2, 3, 4, 5) or verdict is None:
        return _pytest_exit(pytest_code)
    if verdict["verdict"] == "incomplete":
        return EXIT_INCOMPLETE
    if verdict["verdict"] == "fail":
        return EXIT_FAILED
    promotion = verdict.get("promotion")
    if promotion is not None and promotion.get("action") == "refused":
        return EXIT_REFUSED
    return _pytest_exit(pytest_code)


def run_evals(path: str, candidate: str, *, gate: str | None = None, promote: bool = False,
              baseline: str | None = None, extra: list[str] | None = None) -> tuple[int, dict | None]:
    """Run ``pytest <path>`` in-process; returns (documented exit code, verdict dict or None)."""
    import json
    import tempfile

    import pytest

    argv = [path, "-p", "no:cacheprovider", "--candidate", candidate]
    with tempfile.TemporaryDirectory(prefix="aliasgate-") as scratch:  # removed afterwards
        verdict_path = None
        if gate:
            verdict_path = Path(scratch) / "verdict.json"
            argv += ["--gate", gate, "--verdict-json", str(verdict_path)]
        if baseline:
            argv += ["--baseline", baseline]
        if promote:
            argv.append("--promote")
        code = int(pytest.main(argv + list(extra or [])))
        verdict = None
        if verdict_path is not None and verdict_path.exists():
            verdict = json.loads(verdict_path.read_text(encoding="utf-8"))
    return exit_code(code, verdict), verdict


def cmd_eval(args: argparse.Namespace, extra: list[str]) -> int:
    code, _ = run_evals(args.path, args.candidate, gate=args.gate, promote=args.promote,
                        baseline=args.baseline, extra=extra)
    return code


def cmd_promote(args: argparse.Namespace, extra: list[str]) -> int:
    code, verdict = run_evals(args.path, args.candidate, gate=args.gate, promote=True,
                              baseline=args.baseline, extra=extra)
    return code


def cmd_rollback(args: argparse.Namespace, extra: list[str]) -> int:
    from aliasgate.registry.promotion import PromotionRefused, rollback

    try:
        rec = rollback(args.name, alias=args.alias, reason=args.reason)
    except PromotionRefused as exc:
        print(f"rollback refused: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    print(f"rolled back {rec.model} @{rec.alias}: v{rec.from_version} -> v{rec.to_version}")
    return EXIT_OK


def cmd_audit(args: argparse.Namespace, extra: list[str]) -> int:
    from aliasgate.registry.promotion import audit_log

    for rec in audit_log(args.name):
        print("  ".join(f"{k}={v}" for k, v in rec.items() if v not in (None, "")))
    return EXIT_OK


def cmd_register(args: argparse.Namespace, extra: list[str]) -> int:
    from aliasgate.registry.models import register_local_candidate

    config: dict[str, object] = {}
    if args.system_prompt is not None:
        config["system_prompt"] = args.system_prompt
    reg = register_local_candidate(
        config or None, model_name=args.name, alias=args.alias or None,
        description=args.description,
    )
    alias = f" @{args.alias}" if args.alias else ""
    print(f"registered {reg.name} version {reg.version}{alias} (run {reg.run_id})")
    print(f"candidate URI: {reg.uri}")
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, extra: list[str]) -> int:
    from aliasgate.demo import run_demo

    return run_demo(full=args.full)


def _compare_options(args: argparse.Namespace) -> object:
    from aliasgate.reports.compare import (
        DEFAULT_HIGHER_IS_BETTER,
        DEFAULT_LOWER_IS_BETTER,
        DEFAULT_NEUTRAL,
        DEFAULT_ZERO_IS_BEST,
        CompareOptions,
    )

    return CompareOptions(
        margin=args.margin, rolling=args.rolling, case_drop=args.case_drop,
        lower_is_better=(*DEFAULT_LOWER_IS_BETTER, *args.lower_is_better),
        # added to the built-in exceptions (pii_leak, canary_leak...), never replacing them
        higher_is_better=(*DEFAULT_HIGHER_IS_BETTER, *args.higher_is_better),
        zero_is_best=(*DEFAULT_ZERO_IS_BEST, *args.zero_is_best),
        neutral=(*DEFAULT_NEUTRAL, *args.neutral),
    )


def cmd_nightly(args: argparse.Namespace, extra: list[str]) -> int:
    """Evaluate @champion (and @challenger), compare with the previous nights, report, alert."""
    from aliasgate.nightly import NightlyError, NightlyOptions, run_nightly

    root = Path(args.root).resolve() if args.root else Path.cwd()
    gate = None
    if not args.no_gate:
        gate = Path(args.gate) if args.gate else root / "gates" / "promotion.yaml"
        if not args.gate and not gate.exists():
            gate = None
    opts = NightlyOptions(
        model=args.model, evals=args.path, gate=gate, experiment=args.experiment,
        nights=args.nights, compare=_compare_options(args), out=Path(args.out), date=args.date,
        alert_roles=tuple(r for r in args.alert_roles.split(",") if r),
        alert_webhook=args.alert_webhook or os.environ.get("ALIASGATE_ALERT_WEBHOOK") or None,
        webhook_timeout=args.webhook_timeout, pytest_args=list(extra),
        cache_dir=Path(args.cache_dir) if args.cache_dir else None, root=root,
    )
    try:
        result = run_nightly(opts)
    except NightlyError as exc:
        print(f"aliasgate nightly: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report = result.report
    print("\n" + "=" * 78)
    print(f"aliasgate nightly {report.night} — {report.status.upper()}: {report.headline}")
    for reason in report.reasons:
        print(f"  - {reason}")
    for alert in result.alerts:
        state = "delivered" if alert.get("ok") else f"FAILED ({alert.get('error')})"
        print(f"  alert {alert['sink']} -> {alert.get('target')}: {state}")
    print(f"report: {result.page}  (and summary.md, verdict.json)")
    return result.exit_code


def cmd_mitigation(args: argparse.Namespace, extra: list[str]) -> int:
    from aliasgate.mitigation import DEFAULT_MITIGATION_SUITES, record_mitigation

    try:
        record = record_mitigation(
            args.before, args.after, suites=args.suites or DEFAULT_MITIGATION_SUITES,
            log=not args.no_log, out_dir=Path(args.out) if args.out else None)
    except LookupError as exc:
        print(f"aliasgate mitigation: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(record.markdown())
    if record.run_id:
        print(f"logged to MLflow run {record.run_id} (tag aliasgate.kind=mitigation)")
    return EXIT_OK


def cmd_report(args: argparse.Namespace, extra: list[str]) -> int:
    """Render the nightly page for any past evaluation run from its MLflow artifacts."""
    from aliasgate.nightly import render_run_report

    out = Path(args.out) if args.out else Path("reports") / f"run-{args.run[:8]}"
    try:
        page = render_run_report(args.run, out=out, nights=args.nights,
                                 compare=_compare_options(args))  # type: ignore[arg-type]
    except LookupError as exc:
        print(f"aliasgate report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"report: {page}  (and report.md, report.json)")
    return EXIT_OK


def cmd_score(args: argparse.Namespace, extra: list[str]) -> int:
    """Score stored outputs (predictions) against a dataset without calling a model."""
    from aliasgate.datasets import DatasetError
    from aliasgate.run.score_only import ScoreOnlyError, format_summary, run_score_only

    if extra:
        print(f"aliasgate score: unknown arguments {extra}", file=sys.stderr)
        return EXIT_USAGE
    try:
        scored, summary = run_score_only(
            args.dataset, args.predictions, args.out, kind=args.kind, scorers=args.scorer,
            name=args.name, id_column=args.id_column, output_column=args.output_column,
            seed=args.seed,
        )
    except (DatasetError, ScoreOnlyError) as exc:
        print(f"aliasgate score: {exc}", file=sys.stderr)
        return EXIT_USAGE
    for line in format_summary(scored.summary):
        print(line)
    print(f"results: {args.out}  summary: {summary}")
    if args.experiment:
        from aliasgate.registry.tracking import TrackingSession, git_sha

        tags = {"aliasgate.kind": "score_only"}
        sha = git_sha()
        if sha:
            tags["aliasgate.git_sha"] = sha
        tracking = TrackingSession(experiment=args.experiment, tags=tags,
                                   run_name=f"score-{scored.result.suite}")
        run_id = tracking.log_suite(scored.result, extra_params={"git.sha": sha})
        tracking.log_artifact(run_id, args.out, "score_only")
        tracking.log_artifact(run_id, summary, "score_only")
        tracking.finish()
        print(f"logged to MLflow experiment {args.experiment!r}: run {tracking.parent_run_id} "
              f"(browse: {tracking.ui_hint()})")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="aliasgate", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"aliasgate {__version__}")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)")
    sub = p.add_subparsers(dest="command", required=True)

    def eval_args(parser: argparse.ArgumentParser, gate_default: str | None) -> None:
        parser.add_argument("path", nargs="?", default="evals/")
        parser.add_argument("--candidate", default=f"models:/{DEFAULT_MODEL_NAME}@challenger")
        parser.add_argument("--gate", default=gate_default, help="gate file (YAML)")
        parser.add_argument("--baseline", default=None,
                            help="alias or URI to compare against (default: the gate's baseline)")

    e = sub.add_parser("eval", help="run the suites (pytest evals/); extra args go to pytest")
    eval_args(e, None)
    e.add_argument("--promote", action="store_true", help="promote if the gate passes")
    e.set_defaults(func=cmd_eval)

    pr = sub.add_parser("promote", help="evaluate, gate, and move @champion if the gate passes")
    eval_args(pr, "gates/promotion.yaml")
    pr.set_defaults(func=cmd_promote)

    rb = sub.add_parser("rollback", help="point @champion back at @previous (audited)")
    rb.add_argument("--name", default=DEFAULT_MODEL_NAME)
    rb.add_argument("--alias", default="champion")
    rb.add_argument("--reason", default=None)
    rb.set_defaults(func=cmd_rollback)

    au = sub.add_parser("audit", help="list the alias moves of a registered model, newest first")
    au.add_argument("--name", default=DEFAULT_MODEL_NAME)
    au.set_defaults(func=cmd_audit)

    r = sub.add_parser("register", help="register the embedded model as an MLflow model version")
    r.add_argument("--name", default=DEFAULT_MODEL_NAME)
    r.add_argument("--alias", default="challenger", help="alias to point at it ('' for none)")
    r.add_argument("--system-prompt", default=None)
    r.add_argument("--description", default=None)
    r.set_defaults(func=cmd_register)

    d = sub.add_parser("demo", help="the eval -> gate -> promote story on the embedded model "
                                    "(what `make demo` runs)")
    d.add_argument("--full", action="store_true",
                   help="evaluate every case of every suite (default: the demo's sample, "
                        "~10 min on 2 cores; --full takes ~30-40 min)")
    d.set_defaults(func=cmd_demo)

    def compare_args(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--nights", type=int, default=14, help="nights in the trends (14)")
        parser.add_argument("--margin", type=float, default=0.02,
                            help="non-inferiority margin of the night-to-night tests (0.02)")
        parser.add_argument("--rolling", type=int, default=7,
                            help="nights in the rolling baseline (7)")
        parser.add_argument("--case-drop", type=float, default=0.5,
                            help="a case regressed when a metric fell by at least this (0.5)")
        parser.add_argument("--lower-is-better", action="append", default=[], metavar="PATTERN",
                            help="metric where lower is better: a word in its name or a "
                                 "<suite>.<metric> glob (repeatable; unsafe, leak, toxic, gap... "
                                 "are built in)")
        parser.add_argument("--higher-is-better", action="append", default=[], metavar="PATTERN",
                            help="force 'higher is better' for matching metrics (repeatable)")
        parser.add_argument("--zero-is-best", action="append", default=[], metavar="PATTERN",
                            help="signed metric best at 0, compared on |value| (repeatable; "
                                 "bias_score is built in)")
        parser.add_argument("--neutral", action="append", default=[], metavar="PATTERN",
                            help="metric with no better direction: a significant move is "
                                 "'changed', never a regression (repeatable; *.yes_no, "
                                 "*.answer_length, safety.refused... are built in)")

    n = sub.add_parser("nightly", help="evaluate @champion (and @challenger), compare with the "
                                       "previous nights, write the report, alert on a regression; "
                                       "extra args go to pytest")
    n.add_argument("path", nargs="?", default="evals/")
    n.add_argument("--model", default=DEFAULT_MODEL_NAME, help="registered model to watch")
    n.add_argument("--experiment", default="aliasgate", help="MLflow experiment")
    n.add_argument("--gate", default=None,
                   help="gate file for each evaluation (default: gates/promotion.yaml if present)")
    n.add_argument("--no-gate", action="store_true", help="evaluate without a gate file")
    n.add_argument("--out", default="reports/nightly", help="reports go to OUT/<night>/")
    n.add_argument("--date", default=None, help="the night's label YYYY-MM-DD (default: today, UTC)")
    n.add_argument("--alert-webhook", default=None, metavar="URL",
                   help="POST a JSON alert here on a blocking regression "
                        "(default: $ALIASGATE_ALERT_WEBHOOK)")
    n.add_argument("--webhook-timeout", type=float, default=10.0, help="seconds per attempt (10)")
    n.add_argument("--alert-roles", default="champion",
                   help="comma-separated roles whose regressions alert (champion)")
    n.add_argument("--cache-dir", default=None,
                   help="response cache to reuse (default: a fresh cache for the night)")
    n.add_argument("--root", default=None, help="project root (default: the current directory)")
    compare_args(n)
    n.set_defaults(func=cmd_nightly)

    mg = sub.add_parser("mitigation", help="log the before/after of every safety and bias metric "
                                           "of a mitigation (paired, to MLflow)")
    mg.add_argument("--before", required=True, metavar="RUN_OR_MODEL",
                    help="the unmitigated model's evaluation: a run id, or models:/NAME/VERSION "
                         "(its newest evaluation run)")
    mg.add_argument("--after", required=True, metavar="RUN_OR_MODEL",
                    help="the mitigated model's evaluation (same forms)")
    mg.add_argument("--suites", action="append", default=[], metavar="PATTERN",
                    help="suite name or glob to compare (repeatable; default: safety*, "
                         "injection*, bias*, xstest*, bbq*)")
    mg.add_argument("--out", default=None, help="also write mitigation.json/.md here")
    mg.add_argument("--no-log", action="store_true", help="compare only, log nothing to MLflow")
    mg.set_defaults(func=cmd_mitigation)

    rp = sub.add_parser("report", help="render the report page for any past evaluation run")
    rp.add_argument("--run", required=True, metavar="RUN_ID", help="the evaluation's parent run id")
    rp.add_argument("--out", default=None, help="output directory (default: reports/run-<id>)")
    compare_args(rp)
    rp.set_defaults(func=cmd_report)

    sc = sub.add_parser(
        "score", help="score stored outputs (predictions) against a dataset, without a model",
        description="Score stored model outputs against a dataset without calling a model. "
                    "Writes one row per dataset case to --out and a summary JSON next to it "
                    "(results.jsonl -> results.summary.json). Cases without a prediction, and "
                    "answers a scorer cannot read, are counted as unmeasured, never scored.")
    sc.add_argument("--dataset", required=True, metavar="D",
                    help="dataset file (JSONL/CSV/Parquet) in any registered kind")
    sc.add_argument("--predictions", required=True, metavar="P",
                    help="JSONL/CSV with 'id' (or BBQ's 'category' + 'example_id') and 'output'")
    sc.add_argument("--out", required=True, metavar="R",
                    help="per-case results, R.jsonl or R.csv; the summary goes to R with the "
                         "suffix .summary.json")
    sc.add_argument("--kind", default=None,
                    help="dataset kind (default: detected from the first rows)")
    sc.add_argument("--scorer", action="append", default=None, metavar="NAME",
                    help="scorer to use (repeatable; default: the eval suite's scorers for the "
                         "dataset kind)")
    sc.add_argument("--name", default=None,
                    help="result name, the metric prefix in MLflow (default: the dataset's name)")
    sc.add_argument("--id-column", default="id", help="predictions column with the case id (id)")
    sc.add_argument("--output-column", default="output",
                    help="predictions column with the model's text (output; e.g. completion)")
    sc.add_argument("--seed", type=int, default=0, help="bootstrap seed (0)")
    sc.add_argument("--experiment", default=None,
                    help="also log the scores to this MLflow experiment (--tracking-uri)")
    sc.set_defaults(func=cmd_score)
    return p


def main(argv: list[str] | None = None) -> int:
    quiet_environment()
    args, extra = build_parser().parse_known_args(argv)
    if extra and args.command in ("register", "rollback", "audit", "demo", "report", "mitigation"):
        print(f"aliasgate {args.command}: unknown arguments {extra}", file=sys.stderr)
        return EXIT_USAGE
    if args.tracking_uri:
        os.environ["MLFLOW_TRACKING_URI"] = args.tracking_uri
    try:
        return int(args.func(args, extra))
    except KeyboardInterrupt:
        print("interrupted: finished cases are kept in the response cache", file=sys.stderr)
        return EXIT_INCOMPLETE


if __name__ == "__main__":
    sys.exit(main())
