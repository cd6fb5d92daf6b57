"""``aliasgate`` command line: eval, gate, promote, rollback, audit, register, demo.

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
    verdict_path = None
    if gate:
        verdict_path = Path(tempfile.mkdtemp(prefix="aliasgate-")) / "verdict.json"
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
    import pytest

    print("aliasgate demo: evaluate the embedded SmolLM2-135M-Instruct on our golden QA set\n")
    from aliasgate.registry.models import ensure_default_candidate

    reg = ensure_default_candidate(model_name=DEFAULT_MODEL_NAME, alias="challenger")
    if reg is not None:
        print(f"registered {reg.name} v{reg.version} as @challenger ({reg.uri})")
    else:
        print(f"models:/{DEFAULT_MODEL_NAME}@challenger already registered: reusing it")
    code = int(pytest.main(["evals/", "-p", "no:cacheprovider", "-q", *extra]))
    report = _latest_report(Path("reports"))
    print()
    verdict = "evaluated" if code == 0 else "evaluation FAILED"
    print(f"verdict: {verdict} (gate rules: not configured yet)")
    if report is not None:
        print(f"report: {report}")
    return _pytest_exit(code)


def _latest_report(root: Path) -> Path | None:
    reports = sorted(root.glob("*/summary.md"), key=lambda p: p.stat().st_mtime)
    return reports[-1] if reports else None


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

    d = sub.add_parser("demo", help="the full story on the embedded model (what `make demo` runs)")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: list[str] | None = None) -> int:
    quiet_environment()
    args, extra = build_parser().parse_known_args(argv)
    if extra and args.command in ("register", "rollback", "audit", "demo"):
        print(f"aliasgate register: unknown arguments {extra}", file=sys.stderr)
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
