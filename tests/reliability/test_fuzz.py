"""Hypothesis fuzzing of what users hand us: dataset files, gate files, CLI arguments.

Every generated input must end in a result or in *our* error (``DatasetError`` /
``GateFileError`` / argparse's usage exit), every error line located (``path:LINE:``) and
short; never another exception. Derandomised (the same inputs every run), bounded in count.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aliasgate.datasets import DatasetError, load_dataset
from aliasgate.gates.schema import GateFileError, load_gate

from .conftest import record

#: Inputs per probe (the suite's total is their sum: >= 10,000 per run).
N_DATASETS, N_GATES, N_CLI = 4000, 4500, 2000
LOCATED = re.compile(r"^(?P<path>[^\n]+?):(?P<line>\d+|row \d+)?:? ")
FUZZ = settings(max_examples=N_DATASETS, derandomize=True, deadline=None, database=None,
                suppress_health_check=list(HealthCheck))

text_chars = st.characters(codec="utf-8", exclude_categories=("Cs",))
nasty = st.sampled_from([
    "\x00", "\x1b[31m", "\u200b", "\u202e", "e\u0301", "\ufeff", "𝔘", "\r", "\t", "\\", '"',
    "1" * 5000, "9" * 4400, "[" * 2000, "{" * 1200, "NaN", "Infinity", "-0", "1e999",
])
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True),
                    st.text(text_chars, max_size=30), nasty)
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(text_chars, max_size=10), inner,
                                                  max_size=4)), max_leaves=12)
KEYS = ["id", "question", "answers", "topic", "cluster", "prompt", "label", "category", "type",
        "template_id", "template", "slot", "slot_values", "personas", "scenario_id"]
row_like = st.dictionaries(st.sampled_from(KEYS), values, max_size=6)


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


dataset_lines = st.one_of(
    row_like.map(lambda r: json.dumps(r, allow_nan=True)),
    st.text(text_chars, max_size=60),
    nasty,
    st.integers(400, 3000).map(lambda d: '{"id": "a", "question": ' + _deep(d) + "}"),
    st.integers(1, 6).map(lambda n: json.dumps({"id": "q", "question": "x" * 10 ** n,
                                               "answers": ["y"], "topic": "t"})),
)


def _check_located(message: str, path: Path) -> None:
    lines = message.splitlines()
    assert lines, "an error without a message"
    for line in lines:
        if line.startswith("... and "):
            continue
        assert line.startswith(str(path)), line[:200]
        assert len(line) <= 1000, f"{len(line)}-character error line"


@pytest.mark.parametrize("kind", ["golden_qa", "safety_prompts", "bias_counterfactual"])
def test_fuzzed_dataset_files_give_located_errors(tmp_path_factory, kind) -> None:
    root = tmp_path_factory.mktemp("fuzz-data")
    counter = iter(range(10 ** 9))

    @settings(FUZZ, max_examples=N_DATASETS // 3)
    @given(lines=st.lists(dataset_lines, min_size=0, max_size=5),
           suffix=st.sampled_from([".jsonl", ".jsonl", ".csv"]), raw=st.binary(max_size=40))
    def probe(lines: list[str], suffix: str, raw: bytes) -> None:
        path = root / f"d{next(counter)}{suffix}"
        path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass") + raw)
        try:
            ds = load_dataset(path, kind=kind)
        except DatasetError as exc:
            _check_located(str(exc), path)
            record("dataset files (JSONL/CSV, fuzzed rows and bytes)", "located error")
        else:
            assert ds.cases
            record("dataset files (JSONL/CSV, fuzzed rows and bytes)", "loaded")

    probe()


RULE_TYPES = ["floor", "ceiling", "rate", "non_inferiority", "superiority", "group_gap",
              "gap_not_worse", "max_unmeasured", "min_n", "nope"]
rule = st.fixed_dictionaries({"id": st.text(string.ascii_lowercase, min_size=1, max_size=6),
                              "type": st.sampled_from(RULE_TYPES),
                              "metric": st.sampled_from(["golden.contains", "golden", "x.y.z", ""])},
                             optional={"threshold": values, "margin": values, "min": values,
                                       "max": values, "max_rate": values, "bound": values,
                                       "severity": st.sampled_from(["block", "warn", "fatal"])})
gate_like = st.fixed_dictionaries({"version": st.sampled_from([1, 1, 2, "1"]),
                                   "name": st.text(text_chars, max_size=8)},
                                  optional={"rules": st.lists(rule, max_size=3),
                                            "confidence": values, "seed": values,
                                            "baseline": values, "min_pairs": values})


def _yaml(d: object) -> str:
    import yaml

    return yaml.safe_dump(d, allow_unicode=True)


gate_texts = st.one_of(
    gate_like.map(_yaml),
    st.text(text_chars, max_size=80),
    nasty,
    st.integers(300, 1500).map(lambda d: "version: 1\nname: x\nrules: " + _deep(d)),
    st.integers(300, 1500).map(lambda d: "a:\n" + "".join("  " * i + "- \n" for i in range(d))),
    st.just("version: 1\nname: x\nseed: " + "9" * 4400 + "\nrules: []\n"),
    st.sampled_from(["!!python/object:os.system {}", "version: 1\nname: \x1b[2J\n", "*a",
                     "version: 1\nname: x\nrules:\n  - {id: a, type: floor, metric: g.m, "
                     "threshold: -1e308}\n"]),
)


def test_fuzzed_gate_files_give_located_errors(tmp_path_factory) -> None:
    root = tmp_path_factory.mktemp("fuzz-gates")
    counter = iter(range(10 ** 9))

    @settings(FUZZ, max_examples=N_GATES)
    @given(text=gate_texts, raw=st.binary(max_size=20))
    def probe(text: str, raw: bytes) -> None:
        path = root / f"g{next(counter)}.yaml"
        path.write_bytes(text.encode("utf-8", "surrogatepass") + raw)
        try:
            load_gate(path)
        except GateFileError as exc:
            _check_located(str(exc), path)
            record("gate files (YAML, fuzzed structure, nesting, bytes)", "located error")
        else:
            record("gate files (YAML, fuzzed structure, nesting, bytes)", "loaded")

    probe()


def test_a_gate_file_that_never_ends_is_refused_unread(tmp_path) -> None:
    with pytest.raises(GateFileError, match="larger than"):
        load_gate("/dev/zero")
    record("gate file /dev/zero", "refused unread")


CLI_WORDS = ["eval", "promote", "rollback", "audit", "register", "demo", "nightly", "report",
             "mitigation", "score", "--gate", "--baseline", "--limit", "--sample", "--name",
             "--alias", "--full", "-x", "--", "'", "\x00", "1e9", "-1", "models:/m@champion"]


def test_fuzzed_cli_arguments_parse_or_exit_2() -> None:
    from aliasgate.cli import build_parser
    from aliasgate.session import parse_sample, promotion_usage_error

    @settings(FUZZ, max_examples=N_CLI)
    @given(argv=st.lists(st.one_of(st.sampled_from(CLI_WORDS), st.text(text_chars, max_size=8)),
                         max_size=6),
           sample=st.one_of(st.none(), st.text(text_chars, max_size=12),
                            st.sampled_from(["0.5", "golden=0.2,x=1", "=", "1.5", "nan"])))
    def probe(argv: list[str], sample: str | None) -> None:
        try:
            build_parser().parse_known_args(argv)
            outcome = "parsed"
        except SystemExit as exc:
            assert exc.code in (0, 2), exc.code
            outcome = f"exit {exc.code}"
        try:
            parse_sample(sample)
        except ValueError:
            outcome += ", bad --sample refused"
        promotion_usage_error(promote=True, baseline=sample, promote_alias="champion", limit=None)
        record("CLI arguments and --sample specs", outcome)

    import contextlib
    import io

    with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
        probe()
