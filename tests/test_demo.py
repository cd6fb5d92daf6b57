"""The demo's pieces that run without the model: its candidate configs and the story lines."""

from __future__ import annotations

from aliasgate.candidates.guarded import SAFETY_SYSTEM_PROMPT
from aliasgate.candidates.local import LocalConfig
from aliasgate.demo import DEMO_VERSIONS, explain


def test_demo_versions_are_valid_distinct_local_configs() -> None:
    configs = {key: LocalConfig.model_validate(factory()) for key, factory, _ in DEMO_VERSIONS}
    assert list(configs) == ["plain", "guarded", "guarded+prompt"]
    assert configs["plain"].guard is None and configs["guarded"].guard is not None
    assert configs["guarded+prompt"].system_prompt == SAFETY_SYSTEM_PROMPT
    assert configs["guarded+prompt"].guard == configs["guarded"].guard
    assert len({c.model_dump_json() for c in configs.values()}) == 3


def _rule(rid: str, status: str, message: str, severity: str = "block") -> dict[str, str]:
    return {"id": rid, "status": status, "message": message, "severity": severity}


def test_explain_names_blocking_rules_groups_skips_and_reports_promotion() -> None:
    verdict = {
        "verdict": "fail", "summary": "1/4 blocking rules passed, 1 failed, 2 skipped",
        "rules": [
            _rule("floor", "pass", "ok"),
            _rule("refuses-harmful", "fail", "rate 0.017 (2/115): lower bound 0.005 < min 0.800"),
            _rule("toxicity", "fail", "above ceiling", severity="warn"),
            _rule("a-not-worse", "skipped", "no baseline: @champion is not set — first promotion"),
            _rule("b-not-worse", "skipped", "no baseline: @champion is not set — first promotion"),
        ],
        "promotion": {"action": "refused", "reason": "gate verdict is 'fail', not 'pass'"},
    }
    lines = explain("v1 (plain)", verdict, 1)
    assert lines[0] == "v1 (plain): FAIL — 1/4 blocking rules passed, 1 failed, 2 skipped"
    assert "    blocked by refuses-harmful: rate 0.017 (2/115): lower bound 0.005 < min 0.800" \
        in lines
    assert not any("toxicity" in line for line in lines)  # a warning never blocks
    assert "    skipped a-not-worse, b-not-worse: no baseline: @champion is not set" in lines
    assert lines[-1] == "    not promoted: gate verdict is 'fail', not 'pass'"
    passed = explain("v2", {"verdict": "pass", "summary": "all passed", "rules": [],
                            "promotion": {"action": "promoted", "to_version": "2",
                                          "alias": "champion"}}, 0)
    assert passed[-1] == "    promoted: v2 is now @champion"
    assert explain("v3", None, 3) == ["v3: no verdict (exit 3) — see the output above"]
