"""``aliasgate demo`` (what ``make demo`` runs): eval → gate → mitigate → promote, on the
embedded SmolLM2-135M-Instruct, with every step logged to the local MLflow store.

The story, on a fresh store:

1. Three versions of the embedded model are registered: ``plain`` (its own chat template),
   ``guarded`` (the rule-based input filter — flagged requests are refused without calling the
   model — and the output filter that redacts secrets and PII, from
   :mod:`aliasgate.candidates.guarded`) and ``guarded+prompt`` (the same filters plus the safety
   system prompt).
2. ``plain`` is gated with every suite in ``evals/`` (golden, safety, injection, bias) — no
   ``@champion`` yet, so the absolute rules decide: it answers well but refuses almost no harmful
   request and leaks the canary, so it is **blocked on safety**.
3. ``guarded`` is gated the same way; if it passes it becomes ``@champion`` (an audited move).
4. The mitigation is recorded: every safety and bias metric of ``plain`` → ``guarded``, paired
   case by case, logged to MLflow as its own run (:mod:`aliasgate.mitigation`).
5. ``guarded+prompt`` becomes ``@challenger`` and is gated against ``@champion`` with paired,
   Holm-corrected comparisons. Measured: the safety prompt also changes the model's yes/no
   decisions, unevenly across genders — the verdict says which rule blocks it and by how much.

By default every suite is evaluated on the demo's sample (:data:`DEMO_SAMPLE`: a deterministic
random sample of whole clusters, the same cases on every machine; ~10 minutes on 2 cores);
``aliasgate demo --full`` evaluates every case (~30-40 minutes). The story must reach a
promotion: if no version passes the gate, the demo says which rules blocked it and exits 1.

Run again on the same store, the champion exists: steps 2–3 are skipped, and the response cache
answers every repeated call.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from aliasgate.defaults import DEFAULT_MODEL_NAME

__all__ = ["DEMO_GATE", "DEMO_VERSIONS", "run_demo"]

#: Exit codes shared with :mod:`aliasgate.cli`.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

def _guarded_prompt_config() -> dict[str, Any]:
    from aliasgate.candidates.guarded import SAFETY_SYSTEM_PROMPT

    return {"system_prompt": SAFETY_SYSTEM_PROMPT,
            "guard": {"input_filter": "rules", "output_filter": "redact"}}


#: The demo's candidates: (key, config factory, description), registered in this order.
DEMO_VERSIONS: tuple[tuple[str, Any, str], ...] = (
    ("plain", dict, "SmolLM2-135M-Instruct with its default chat template"),
    ("guarded", lambda: {"guard": {"input_filter": "rules", "output_filter": "redact"}},
     "the same model behind a rule-based input filter (flagged requests are refused without "
     "calling the model) and an output filter that redacts secrets and PII"),
    ("guarded+prompt", _guarded_prompt_config,
     "the same filters plus a safety system prompt"),
)
#: The demo's gate: the promotion gate's rules for its sample (``gates/demo.yaml`` says how it
#: differs); ``--full`` evaluates every case under the promotion gate itself.
DEMO_GATE = "gates/demo.yaml"
FULL_GATE = "gates/promotion.yaml"

#: The demo's ``--sample``: the share of each suite's clusters it evaluates (whole clusters,
#: the same cases on every machine and for every version). ``tests/test_demo.py`` checks that
#: the gate's ``min_n`` rules hold on it.
DEMO_SAMPLE = ("golden=0.5,safety=0.3,safety_unsafe=0.3,safety_safe=0.3,injection=0.5,"
               "bias_bbq=0.34,bias_counterfactual=0.5,bias_decisions=0.5")


def _gate(candidate: str, gate: str, *, promote: bool = True,
          sample: str | None = None) -> tuple[int, dict[str, Any] | None]:
    """One ``pytest evals/ --gate [--promote] [--sample]`` in a child process (a clean pytest)."""
    from aliasgate.cli import exit_code

    with tempfile.TemporaryDirectory(prefix="aliasgate-demo-") as scratch:
        verdict_path = Path(scratch) / "verdict.json"
        argv = [sys.executable, "-m", "pytest", "evals/", "-q", "-p", "no:cacheprovider",
                "--candidate", candidate, "--gate", gate, "--verdict-json", str(verdict_path)]
        if promote:
            argv.append("--promote")
        if sample:
            argv += ["--sample", sample]
        code = subprocess.call(argv)
        verdict = json.loads(verdict_path.read_text()) if verdict_path.exists() else None
    return exit_code(code, verdict), verdict


def explain(title: str, verdict: dict[str, Any] | None, code: int) -> list[str]:
    """The lines of the story for one gate verdict: outcome, blocking rules, promotion."""
    if verdict is None:
        return [f"{title}: no verdict (exit {code}) — see the output above"]
    lines = [f"{title}: {verdict['verdict'].upper()} — {verdict['summary']}"]
    skipped: dict[str, list[str]] = {}
    for rule in verdict["rules"]:
        if rule["status"] in ("fail", "error") and rule["severity"] == "block":
            lines.append(f"    blocked by {rule['id']}: {rule['message']}")
        elif rule["status"] == "skipped":
            skipped.setdefault(rule["message"].split(" — ")[0], []).append(rule["id"])
    for why, ids in skipped.items():
        lines.append(f"    skipped {', '.join(ids)}: {why}")
    promotion = verdict.get("promotion") or {}
    if promotion.get("action") == "refused":
        lines.append(f"    not promoted: {promotion.get('reason')}")
    elif promotion:
        lines.append(f"    promoted: v{promotion.get('to_version')} is now @{promotion.get('alias')}")
    return lines


def _already_recorded(before: str, after: str) -> bool:
    """Whether a mitigation run for exactly these two evaluation runs is already logged."""
    from aliasgate.reports.history import tracking_client

    client = tracking_client(None)
    recorded = client.get_run(after).data.tags.get("aliasgate.mitigation_run")
    if not recorded:
        return False
    try:
        tags = client.get_run(recorded).data.tags
    except Exception:  # noqa: BLE001 - deleted or unreadable: record again
        return False
    return tags.get("aliasgate.mitigation.before_run") == before


def _run_id(verdict: dict[str, Any] | None) -> str | None:
    return ((verdict or {}).get("run") or {}).get("parent_run_id")


def run_demo(*, gate: str | None = None, name: str = DEFAULT_MODEL_NAME, full: bool = False) -> int:
    """Run the demo story.

    Args:
        gate: The gate file (default :data:`DEMO_GATE`, or :data:`FULL_GATE` with ``full``).
        name: The registered model's name.
        full: Evaluate every case (default: :data:`DEMO_SAMPLE`).

    Returns:
        0 when the story reached a promotion and the challenger was gated (blocked or not: both
        are the story); 1 when no version passed the gate; the gate's exit code when a gate
        could not decide (incomplete results, a usage error).
    """
    sample = None if full else DEMO_SAMPLE
    gate = gate or (FULL_GATE if full else DEMO_GATE)
    from aliasgate.defaults import tracking_uri
    from aliasgate.mitigation import find_evaluation_run, record_mitigation
    from aliasgate.registry.models import find_or_register
    from aliasgate.registry.promotion import assign_alias, read_alias

    print("aliasgate demo — evaluate, gate, mitigate and promote the embedded "
          "SmolLM2-135M-Instruct")
    print(f"tracking store: {tracking_uri()}   gate: {gate}   suites: evals/ (golden, safety, "
          "injection, bias)")
    print("cases: every case (--full)\n" if full else
          f"cases: the demo's sample of each suite ({sample}; `aliasgate demo --full` for "
          "every case)\n")
    versions = {}
    for key, config, about in DEMO_VERSIONS:
        reg, created = find_or_register(config(), model_name=name, description=about)
        versions[key] = reg
        print(f"{'registered' if created else 'found     '} {name} v{reg.version} ({key}): {about}")
    plain, guarded, prompted = versions["plain"], versions["guarded"], versions["guarded+prompt"]
    story: list[str] = []
    runs: dict[str, str | None] = {}
    champion = read_alias(name, "champion")
    if champion is None:
        for step, key, about in ((1, "plain", "plain"),
                                 (2, "guarded", "guarded: input filter + output filter")):
            if read_alias(name, "champion") is not None:
                break  # the plain model passed: nothing left to promote first
            reg = versions[key]
            print(f"\n== {step}. gate v{reg.version} ({about}) — no @champion yet: first "
                  "promotion, absolute rules only\n", flush=True)
            code, verdict = _gate(reg.uri, gate, sample=sample)
            story += explain(f"v{reg.version} ({key})", verdict, code)
            runs[key] = _run_id(verdict)
            if code not in (EXIT_OK, EXIT_FAILED):
                return _finish(story, name, verdict, code)
    else:
        print(f"\n== 1–2. @champion is already v{champion} (an earlier demo run): skipping the "
              "first promotion")
        story.append(f"@champion was already v{champion}")

    print(f"\n== 3. the mitigation, recorded: v{plain.version} (plain) → v{guarded.version} "
          "(guarded), every safety and bias metric, paired\n", flush=True)
    try:
        before = runs.get("plain") or find_evaluation_run(plain.uri)
        after = runs.get("guarded") or find_evaluation_run(guarded.uri)
        # a rerun on the same two evaluations shows the record again without logging a copy
        log = not _already_recorded(before, after)
        record = record_mitigation(before, after, out_dir=Path("reports") / "mitigation", log=log)
    except LookupError as exc:
        story.append(f"mitigation not recorded: {exc}")
    else:
        print(record.markdown())
        improved = [r["key"] for r in record.rows() if r["status"] == "improved"]
        worse = [r["key"] for r in record.rows() if r["status"] == "regressed"]
        where = f"MLflow run {record.run_id}" if record.run_id else "already in MLflow"
        story.append(f"mitigation v{plain.version} → v{guarded.version}: {len(improved)} metrics "
                     f"improved, {len(worse)} regressed ({where}; "
                     "reports/mitigation/mitigation.md)")

    champion = read_alias(name, "champion")
    if champion is None:
        story.append("the story stops here: no version passed the gate (the rules that blocked "
                     "each are listed above), so there is no @champion to serve or compare with")
        _finish(story, name, None, EXIT_FAILED)
        print("aliasgate demo: FAILED — no version was promoted to @champion. The demo's limits "
              "are set for SmolLM2-135M built as `make` builds it (docs/reproducibility.md); "
              "a different llama.cpp build or model gives other answers.", file=sys.stderr)
        return EXIT_FAILED
    assign_alias(name, "challenger", str(prompted.version),
                 reason="demo: the guarded model with a safety system prompt")
    print(f"\n== 4. gate @challenger = v{prompted.version} (guarded + safety system prompt) "
          f"against @champion v{champion}, paired\n", flush=True)
    code, verdict = _gate(f"models:/{name}@challenger", gate, sample=sample)
    story += explain(f"v{prompted.version} (guarded+prompt)", verdict, code)
    return _finish(story, name, verdict, code, challenger=str(prompted.version))


def _finish(story: list[str], name: str, verdict: dict[str, Any] | None, code: int,
            challenger: str | None = None) -> int:
    from aliasgate.defaults import tracking_uri
    from aliasgate.registry.promotion import read_alias

    reports = sorted(Path("reports").glob("*/summary.md"), key=lambda p: p.stat().st_mtime)
    print("\n" + "=" * 78)
    print("aliasgate demo — the story")
    for line in story:
        print("  " + line)
    champion = read_alias(name, "champion")
    print(f"  @champion is now v{champion}" if champion is not None else "  @champion is not set")
    if verdict is not None:
        who = f"@challenger v{challenger}" if challenger else "the last candidate"
        print(f"verdict: {verdict['verdict'].upper()} for {who}")
    if reports:
        print(f"report: {reports[-1].parent / 'verdict.md'}  (and summary.md, verdict.json)")
    print(f"browse: mlflow ui --backend-store-uri {tracking_uri()}")
    # the demo succeeded if it ran: a blocked candidate is the story, not an error
    return EXIT_OK if code in (EXIT_OK, EXIT_FAILED) else code
