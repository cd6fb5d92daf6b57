"""The demo's pieces that run without the model: its candidate configs and the story lines."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def _eval_modules(root: Path) -> list:
    """The modules of ``evals/`` (by path: tests/ has modules of the same names)."""
    import importlib.util

    mods = []
    for path in sorted((root / "evals").glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"_demo_evals_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mods.append(mod)
    return mods


def test_demo_gates_are_valid_and_differ_only_where_documented() -> None:
    from aliasgate.demo import DEMO_GATE, FULL_GATE
    from aliasgate.gates.schema import load_gate

    root = Path(__file__).resolve().parents[1]
    demo, full = load_gate(root / DEMO_GATE), load_gate(root / FULL_GATE)
    by_id = {r.id: r for r in full.rules}
    for rule in demo.rules:
        assert rule.id in by_id, rule.id  # no rule of its own
        assert rule.metric == by_id[rule.id].metric and rule.type == by_id[rule.id].type
    # what the guard changes is gated exactly as in the promotion gate
    for rid in ("refuses-harmful", "answers-safe-look-alikes", "no-canary-leak"):
        mine = demo.rules[[r.id for r in demo.rules].index(rid)].model_dump(exclude={"description"})
        assert mine == by_id[rid].model_dump(exclude={"description"})
    blocking = {r.id for r in demo.rules if r.blocking}
    assert {"parity-gender-not-worse", "golden-contains-not-worse"} <= blocking
    assert not {"parity-gender", "counterfactual-flips", "bbq-ambiguous-bias"} & blocking


def test_demo_sample_keeps_every_min_n_rule_of_the_gate_and_the_decisions_whole() -> None:
    """The demo evaluates a sample; its gate's min_n rules must still hold on it, on any machine
    (membership depends only on case ids), with enough scenarios for the paired gap rules."""
    from aliasgate.datasets import load_dataset
    from aliasgate.demo import DEMO_GATE, DEMO_SAMPLE
    from aliasgate.gates.schema import load_gate
    from aliasgate.session import parse_sample

    root = Path(__file__).resolve().parents[1]
    shares = parse_sample(DEMO_SAMPLE)
    suites = {s.name: s for m in _eval_modules(root)
              for s in vars(m).values() if type(s).__name__ == "Suite"}
    assert set(shares) <= set(suites)
    sizes = {}
    for name, suite in suites.items():
        ds = suite.select(load_dataset(suite.dataset_path(root), kind=suite.kind, name=name))
        sizes[name] = len(ds.sample(shares.get(name)).cases)
        assert sizes[name] > 0
    for rule in load_gate(root / DEMO_GATE).rules:
        if rule.type == "min_n":
            suite = rule.metric.split(".")[0]
            assert sizes[suite] >= rule.min, (rule.id, sizes[suite])
    scenarios = {c.cluster for c in suites["bias_decisions"].select(load_dataset(
        root / suites["bias_decisions"].dataset, kind="bias_decisions")).sample(
            shares.get("bias_decisions")).cases}
    assert len(scenarios) >= load_gate(root / DEMO_GATE).min_clusters
    # the three safety suites share one sample of one file: their cases line up
    assert sizes["safety"] == sizes["safety_safe"] + sizes["safety_unsafe"]


@pytest.mark.parametrize(("spec", "expected"), [
    (None, {}), ("", {}), ("0.5", {"*": 0.5}), ("golden=0.2, safety=1", {"golden": 0.2, "safety": 1.0}),
    ("0.3,golden=0.6", {"*": 0.3, "golden": 0.6}),
])
def test_parse_sample(spec, expected) -> None:
    from aliasgate.session import parse_sample

    assert parse_sample(spec) == expected


@pytest.mark.parametrize("spec", ["0", "1.5", "golden=x", "=0.5", "golden=0.5,golden=0.6", "nan"])
def test_parse_sample_rejects_bad_specs(spec) -> None:
    from aliasgate.session import parse_sample

    with pytest.raises(ValueError):
        parse_sample(spec)


def test_demo_fails_loudly_when_nothing_is_promoted(tmp_path, monkeypatch, capsys) -> None:
    """No version passes: the demo says so and exits 1; it never prints 'vNone'."""
    import aliasgate.demo as demo

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    registered = []

    class Reg:
        def __init__(self, v: int) -> None:
            self.version, self.uri = v, f"models:/m/{v}"

    def fake_register(config, model_name, description):
        registered.append(config)
        return Reg(len(registered)), True

    blocked = {"verdict": "fail", "summary": "0/1 blocking rules passed", "rules": [
        _rule("parity-gender", "fail", "ci_high 0.304 above ceiling 0.300")],
        "promotion": {"action": "refused", "reason": "gate verdict is 'fail', not 'pass'"}}
    calls = []
    monkeypatch.setattr("aliasgate.registry.models.find_or_register", fake_register)
    monkeypatch.setattr("aliasgate.registry.promotion.read_alias", lambda name, alias: None)
    monkeypatch.setattr(demo, "_gate",
                        lambda uri, gate, **kw: calls.append((uri, {**kw, "gate": gate})) or (1, blocked))
    monkeypatch.setattr("aliasgate.mitigation.find_evaluation_run",
                        lambda uri: (_ for _ in ()).throw(LookupError("no run")))
    assert demo.run_demo(name="m") == demo.EXIT_FAILED
    out, err = capsys.readouterr()
    assert "vNone" not in out + err
    assert "@champion is not set" in out
    assert "blocked by parity-gender: ci_high 0.304 above ceiling 0.300" in out
    assert "no version was promoted" in err
    assert [uri for uri, _ in calls] == ["models:/m/1", "models:/m/2"]  # v3 is never gated
    assert all(kw["sample"] == demo.DEMO_SAMPLE and kw["gate"] == demo.DEMO_GATE for _, kw in calls)
    calls.clear()
    assert demo.run_demo(name="m", full=True) == demo.EXIT_FAILED
    assert all(kw["sample"] is None and kw["gate"] == demo.FULL_GATE for _, kw in calls)
