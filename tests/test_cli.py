"""The CLI's documented exit codes, and rollback/audit through the command line."""

from __future__ import annotations

import pytest

from aliasgate import cli


@pytest.mark.parametrize(
    ("pytest_code", "verdict", "expected"),
    [
        (0, None, cli.EXIT_OK),
        (1, None, cli.EXIT_FAILED),
        (4, None, cli.EXIT_USAGE),
        (2, None, cli.EXIT_INCOMPLETE),
        (0, {"verdict": "pass", "promotion": None}, cli.EXIT_OK),
        (0, {"verdict": "pass", "promotion": {"action": "promote"}}, cli.EXIT_OK),
        (1, {"verdict": "pass", "promotion": {"action": "refused", "reason": "moved"}},
         cli.EXIT_REFUSED),
        (1, {"verdict": "fail", "promotion": {"action": "refused"}}, cli.EXIT_FAILED),
        (1, {"verdict": "incomplete", "promotion": None}, cli.EXIT_INCOMPLETE),
        (4, {"verdict": "pass"}, cli.EXIT_USAGE),
    ],
)
def test_exit_codes(pytest_code: int, verdict: dict | None, expected: int) -> None:
    assert cli.exit_code(pytest_code, verdict) == expected


def test_rollback_and_audit_commands(tmp_path, monkeypatch, capsys) -> None:
    import mlflow
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    try:
        client = MlflowClient(uri)
        client.create_registered_model("m")
        for _ in range(2):
            client.create_model_version("m", source=str(tmp_path))
        client.set_registered_model_alias("m", "champion", "2")
        client.set_registered_model_alias("m", "previous", "1")

        assert cli.main(["rollback", "--name", "m", "--reason", "bad answers"]) == cli.EXIT_OK
        assert "v2 -> v1" in capsys.readouterr().out
        assert str(client.get_model_version_by_alias("m", "champion").version) == "1"
        assert cli.main(["audit", "--name", "m"]) == cli.EXIT_OK
        out = capsys.readouterr().out
        assert "action=rollback" in out and "bad answers" in out

        client.delete_registered_model_alias("m", "previous")
        assert cli.main(["rollback", "--name", "m"]) == cli.EXIT_REFUSED
        assert "no @previous" in capsys.readouterr().err
    finally:
        mlflow.set_tracking_uri(before)


def test_eval_with_bad_gate_file_is_usage_error(tmp_path, monkeypatch) -> None:
    bad = tmp_path / "gate.yaml"
    bad.write_text("version: 1\nname: x\nrules:\n  - id: a\n    type: nosuch\n    metric: golden\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "evals").mkdir()
    code = cli.main(["eval", "evals", "--candidate", "callable:nowhere:fn", "--gate", str(bad),
                     "--tracking-uri", f"sqlite:///{tmp_path / 'db.sqlite'}"])
    assert code == cli.EXIT_USAGE
    assert not (tmp_path / "db.sqlite").exists()  # nothing was evaluated or logged


def test_compare_options_add_to_the_built_in_directions() -> None:
    """--higher/--lower/--zero-is-best add patterns; the built-in exceptions stay (a leak
    scorer is 1.0 when nothing leaked, so it stays higher-is-better)."""
    from aliasgate.cli import _compare_options, build_parser

    args = build_parser().parse_args(["report", "--run", "x", "--higher-is-better", "mine",
                                      "--zero-is-best", "skew", "--lower-is-better", "cost"])
    opts = _compare_options(args)
    assert opts.direction("safety", "pii_leak") == "higher"
    assert opts.direction("injection", "canary_leak") == "higher"
    assert opts.direction("s", "mine_error") == "higher"
    assert opts.direction("bias_bbq", "bias_score_ambig") == "zero"
    assert opts.direction("s", "skew") == "zero"
    assert opts.direction("s", "cost") == "lower"
    assert opts.direction("safety", "toxicity") == "lower"
    assert opts.direction("bias_decisions", "demographic_parity_difference_gender") == "lower"
