"""Tests of aliasgate.datasets: readers, golden_qa schema, loader errors, digest, shipped dataset."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest

from aliasgate.datasets import KINDS, Case, DatasetError, load_dataset
from aliasgate.datasets.formats import read_csv, read_jsonl, read_parquet
from aliasgate.datasets.golden_qa import GoldenQARow
from aliasgate.datasets.loader import MAX_REPORTED_ERRORS, dataset_digest

GOLDEN = Path(__file__).resolve().parents[1] / "datasets" / "golden_qa.jsonl"

ROWS = [
    {
        "id": "q1",
        "question": "What is the capital of France?",
        "answers": ["Paris"],
        "topic": "geo",
    },
    {
        "id": "q2",
        "question": "Name two primes, e.g. 2, 3?",
        "answers": ["2", "two"],
        "topic": "math",
        "notes": "has a comma",
    },
    {
        "id": "q3",
        "question": "Café — naïve?",
        "answers": ["oui", "yes"],
        "topic": "lang",
        "cluster": "c1",
    },
]


def write_jsonl(path: Path, rows: list[dict] | list[str]) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict], columns: list[str] | None = None) -> Path:
    columns = columns or ["id", "question", "answers", "topic", "cluster", "notes"]
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(columns)
        for r in rows:
            cells = []
            for c in columns:
                v = r.get(c, "")
                cells.append("|".join(v) if isinstance(v, list) else v)
            w.writerow(cells)
    return path


def error_of(path: Path, **kwargs) -> str:
    with pytest.raises(DatasetError) as info:
        load_dataset(path, **kwargs)
    return str(info.value)


# --- JSONL reader and row errors -------------------------------------------------------------


def test_jsonl_loads_cases_in_order_with_sources(tmp_path):
    p = write_jsonl(tmp_path / "qa.jsonl", [json.dumps(ROWS[0]), "", "   ", json.dumps(ROWS[1])])
    ds = load_dataset(p)
    assert [c.id for c in ds.cases] == ["q1", "q2"]
    assert [c.source for c in ds.cases] == [f"{p}:1", f"{p}:4"]
    assert ds.name == "qa" and ds.kind == "golden_qa" and ds.path == str(p)
    assert len(ds) == 2
    assert ds.digest.startswith("sha256:") and len(ds.digest) == len("sha256:") + 64


def test_name_overrides_stem(tmp_path):
    p = write_jsonl(tmp_path / "qa.jsonl", ROWS[:1])
    assert load_dataset(p, name="smoke").name == "smoke"


def test_malformed_json_line_names_file_and_line(tmp_path):
    p = write_jsonl(tmp_path / "bad.jsonl", [json.dumps(ROWS[0]), '{"id": "q2", "question": '])
    msg = error_of(p)
    assert msg.startswith(f"{p}:2: invalid JSON:")


@pytest.mark.parametrize(
    "line, reason",
    [
        ("[1, 2]", "expected an object, got array"),
        ('"just a string"', "expected an object, got string"),
        ('{"id": "a", "id": "b"}', "duplicate key 'id'"),
        ('{"id": NaN}', "NaN"),
    ],
)
def test_json_line_that_is_not_a_proper_object(tmp_path, line, reason):
    p = write_jsonl(tmp_path / "bad.jsonl", [line])
    with pytest.raises(DatasetError, match=r"bad\.jsonl:1: invalid JSON: ") as info:
        list(read_jsonl(p))
    assert reason in str(info.value)


def test_invalid_utf8_names_the_line(tmp_path):
    p = tmp_path / "latin1.jsonl"
    p.write_bytes(json.dumps(ROWS[0]).encode() + b'\n{"id": "caf\xe9"}\n')
    with pytest.raises(DatasetError, match=r"latin1\.jsonl:2: invalid JSON: not UTF-8"):
        list(read_jsonl(p))


@pytest.mark.parametrize(
    "change, field, fragment",
    [
        ({"answers": None}, "answers", "required field is missing"),
        ({"question": None}, "question", "required field is missing"),
        ({"answers": []}, "answers", "at least 1 item"),
        ({"answers": ["Paris", "  "]}, "answers", "item 2"),
        ({"question": "   "}, "question", "at least 1 character"),
        ({"topic": 7}, "topic", "valid string"),
        ({"answers": [1]}, "answers", "valid string"),
        ({"anwsers": ["x"]}, "anwsers", "unknown field"),
    ],
)
def test_bad_row_names_file_line_and_field(tmp_path, change, field, fragment):
    bad = {**ROWS[0], "id": "bad"}
    for key, value in change.items():
        if value is None:
            bad.pop(key)
        else:
            bad[key] = value
    p = write_jsonl(tmp_path / "qa.jsonl", [ROWS[1], bad])
    msg = error_of(p)
    line = next(ln for ln in msg.splitlines() if f"field '{field}'" in ln)
    assert line.startswith(f"{p}:2: field '{field}': ")
    assert fragment in line
    assert "pydantic" not in msg and "errors.pydantic.dev" not in msg


def test_all_bad_rows_are_reported_and_good_rows_are_not(tmp_path):
    rows = [
        ROWS[0],
        {"id": "b1", "question": "Q?", "answers": [], "topic": "t"},
        ROWS[1],
        {"id": "b2", "question": "", "answers": ["x"], "topic": "t"},
        {"id": "b3", "question": "Q?", "answers": ["x"], "topic": "t", "extra": 1},
    ]
    msg = error_of(write_jsonl(tmp_path / "qa.jsonl", rows))
    lines = msg.splitlines()
    assert [ln.split(": ")[0].rsplit(":", 1)[1] for ln in lines] == ["2", "4", "5"]
    assert "field 'answers'" in lines[0]
    assert "field 'question'" in lines[1]
    assert "field 'extra'" in lines[2]


def test_one_row_with_several_problems_lists_each(tmp_path):
    p = write_jsonl(tmp_path / "qa.jsonl", [{"id": "", "answers": "", "topic": 3}])
    msg = error_of(p)
    for field in ("id", "question", "answers", "topic"):
        assert f"{p}:1: field '{field}'" in msg


def test_row_errors_before_unreadable_line_are_kept(tmp_path):
    p = write_jsonl(tmp_path / "qa.jsonl", [{"id": "x", "topic": "t"}, "{oops"])
    lines = error_of(p).splitlines()
    assert lines[0].startswith(f"{p}:1: field ")
    assert lines[-1].startswith(f"{p}:2: invalid JSON")


def test_many_errors_are_capped_with_a_count(tmp_path):
    n = MAX_REPORTED_ERRORS + 7
    rows = [{"id": f"r{i}", "question": "Q?", "answers": [], "topic": "t"} for i in range(n)]
    lines = error_of(write_jsonl(tmp_path / "qa.jsonl", rows)).splitlines()
    assert len(lines) == MAX_REPORTED_ERRORS + 1
    assert lines[-1] == "... and 7 more"
    assert lines[0].startswith(f"{tmp_path / 'qa.jsonl'}:1: field 'answers'")


def test_duplicate_ids_name_both_lines(tmp_path):
    dup = {**ROWS[1], "id": "q1"}
    p = write_jsonl(tmp_path / "qa.jsonl", [ROWS[0], ROWS[2], dup])
    msg = error_of(p)
    assert msg == f"{p}:3: duplicate id 'q1' (first at {p}:1)"


@pytest.mark.parametrize("content", ["", "\n\n   \n"])
def test_empty_dataset_is_an_error(tmp_path, content):
    p = tmp_path / "empty.jsonl"
    p.write_text(content, encoding="utf-8")
    assert "empty" in error_of(p)


def test_unknown_extension_missing_file_and_unknown_kind(tmp_path):
    txt = tmp_path / "qa.txt"
    txt.write_text(json.dumps(ROWS[0]), encoding="utf-8")
    msg = error_of(txt)
    assert msg.startswith(f"{txt}: unknown dataset format '.txt'") and ".jsonl" in msg
    assert error_of(tmp_path / "nope.jsonl") == f"{tmp_path / 'nope.jsonl'}: no such file"
    with pytest.raises(DatasetError, match="no such file"):
        list(read_csv(tmp_path / "nope.csv"))
    good = write_jsonl(tmp_path / "qa.jsonl", ROWS)
    assert "unknown dataset kind 'nope'" in error_of(good, kind="nope")


def test_bom_is_tolerated(tmp_path):
    j = tmp_path / "bom.jsonl"
    j.write_bytes(b"\xef\xbb\xbf" + json.dumps(ROWS[0]).encode() + b"\n")
    c = write_csv(tmp_path / "bom.csv", ROWS[:1])
    c.write_bytes(b"\xef\xbb\xbf" + c.read_bytes())
    assert load_dataset(j).digest == load_dataset(c).digest
    assert [r for _, r in read_csv(c)][0]["id"] == "q1"


# --- golden_qa schema -----------------------------------------------------------------------


def test_to_case_mapping():
    row = GoldenQARow.model_validate(
        {
            "id": "a",
            "question": " Q? ",
            "answers": "x | y",
            "topic": "t",
            "template_id": "tpl",
            "notes": "n",
        }
    )
    case = row.to_case("f.jsonl:3")
    assert case == Case(
        id="a",
        input="Q?",
        expected=("x", "y"),
        group="t",
        cluster="tpl",
        meta={"notes": "n"},
        source="f.jsonl:3",
    )
    plain = GoldenQARow.model_validate({"id": "b", "question": "Q", "answers": ["z"], "topic": "t"})
    assert plain.to_case("s").cluster is None and plain.to_case("s").meta == {}


def test_conflicting_cluster_and_template_id_is_an_error(tmp_path):
    row = {**ROWS[0], "cluster": "c1", "template_id": "c2"}
    msg = error_of(write_jsonl(tmp_path / "qa.jsonl", [row]))
    assert msg.startswith(f"{tmp_path / 'qa.jsonl'}:1: ") and "disagree" in msg


def test_golden_qa_is_registered():
    assert KINDS.get("golden_qa") is GoldenQARow


# --- CSV ------------------------------------------------------------------------------------


def test_csv_splits_answers_and_keeps_quoted_commas(tmp_path):
    p = tmp_path / "qa.csv"
    p.write_text(
        "id,question,answers,topic\n"
        'q1,"Name a prime, any prime?",2|3| 5 ,math\n'
        'q2,"Say ""hi""",hi,lang\n',
        encoding="utf-8",
    )
    ds = load_dataset(p)
    assert ds.cases[0].input == "Name a prime, any prime?"
    assert ds.cases[0].expected == ("2", "3", "5")
    assert ds.cases[1].input == 'Say "hi"'
    assert [c.source for c in ds.cases] == [f"{p}:2", f"{p}:3"]


def test_csv_line_numbers_are_where_records_start(tmp_path):
    p = tmp_path / "qa.csv"
    p.write_text(
        'id,question,answers,topic\n\nq1,"line one\nline two\nline three",a,t\nq2,Q?,,t\n',
        encoding="utf-8",
    )
    assert [n for n, _ in read_csv(p)] == [3, 6]
    msg = error_of(p)
    assert msg.startswith(f"{p}:6: field 'answers': ")


def test_csv_blank_optional_cell_equals_missing_key(tmp_path):
    c = write_csv(tmp_path / "qa.csv", [ROWS[0]])  # cluster and notes cells are empty
    j = write_jsonl(tmp_path / "qa.jsonl", [ROWS[0]])
    assert load_dataset(c).cases[0].meta == {}
    assert load_dataset(c).digest == load_dataset(j).digest


def test_csv_cell_count_and_header_problems(tmp_path):
    short = tmp_path / "short.csv"
    short.write_text("id,question,answers,topic\nq1,Q?,a\n", encoding="utf-8")
    assert error_of(short).startswith(f"{short}:2: invalid CSV: 3 cells")
    dup = tmp_path / "dup.csv"
    dup.write_text("id,question,answers,id\nq1,Q?,a,t\n", encoding="utf-8")
    assert error_of(dup).startswith(f"{dup}:1: invalid CSV header: duplicate column 'id'")


def test_csv_unknown_column_is_rejected(tmp_path):
    p = write_csv(tmp_path / "qa.csv", ROWS[:1], ["id", "question", "answers", "topic", "topik"])
    assert error_of(p) == (
        f"{p}:2: field 'topik': unknown field (allowed: id, question, answers, topic, cluster, "
        "template_id, notes)"
    )


# --- Parquet --------------------------------------------------------------------------------


def test_parquet_round_trip(tmp_path):
    pd = pytest.importorskip("pandas")
    p = tmp_path / "qa.parquet"
    pd.DataFrame(ROWS).to_parquet(p, index=False)
    ds = load_dataset(p)
    assert [c.id for c in ds.cases] == ["q1", "q2", "q3"]
    assert ds.cases[1].expected == ("2", "two")
    assert ds.cases[1].meta == {"notes": "has a comma"}
    assert ds.cases[2].cluster == "c1" and ds.cases[0].cluster is None
    assert ds.cases[2].source == f"{p}:row 3"


def test_parquet_errors_name_the_row_and_index_is_ignored(tmp_path):
    pd = pytest.importorskip("pandas")
    p = tmp_path / "bad.parquet"
    rows = [ROWS[0], {**ROWS[1], "answers": []}]
    pd.DataFrame(rows, index=[10, 20]).to_parquet(p)  # non-trivial index stored as a column
    msg = error_of(p)
    assert msg.startswith(f"{p}:row 2: field 'answers': ")
    assert "__index_level_0__" not in msg


def test_parquet_null_required_cell_reads_as_missing(tmp_path):
    pd = pytest.importorskip("pandas")
    p = tmp_path / "nulls.parquet"
    pd.DataFrame([ROWS[0], {**ROWS[2], "question": None}]).to_parquet(p, index=False)
    assert error_of(p) == f"{p}:row 2: field 'question': required field is missing"


def test_corrupt_parquet_is_a_dataset_error(tmp_path):
    p = tmp_path / "junk.parquet"
    p.write_bytes(b"not parquet at all")
    with pytest.raises(DatasetError, match=r"junk\.parquet: cannot read Parquet"):
        list(read_parquet(p))


# --- digest ---------------------------------------------------------------------------------


def test_same_rows_same_digest_in_jsonl_csv_parquet(tmp_path):
    pd = pytest.importorskip("pandas")
    j = load_dataset(write_jsonl(tmp_path / "qa.jsonl", ROWS))
    c = load_dataset(write_csv(tmp_path / "qa.csv", ROWS))
    pq_path = tmp_path / "qa.parquet"
    pd.DataFrame(ROWS).to_parquet(pq_path, index=False)
    q = load_dataset(pq_path)
    frame = pd.DataFrame([{**r, "answers": "|".join(r["answers"])} for r in ROWS])
    frame.to_csv(tmp_path / "pandas.csv", index=False)
    pc = load_dataset(tmp_path / "pandas.csv")
    assert j.digest == c.digest == q.digest == pc.digest
    assert j.cases == tuple(
        Case(**{**vars(x), "source": y.source}) for x, y in zip(c.cases, j.cases, strict=True)
    )


def test_key_order_and_whitespace_do_not_change_digest(tmp_path):
    a = write_jsonl(tmp_path / "a.jsonl", ROWS)
    reordered = [
        "  " + json.dumps(dict(reversed(list(r.items()))), indent=None, separators=(" , ", " :  "))
        for r in ROWS
    ]
    b = write_jsonl(tmp_path / "b.jsonl", ["", *reordered, ""])
    assert load_dataset(a).digest == load_dataset(b).digest


@pytest.mark.parametrize(
    "field, value",
    [
        ("answers", ["Paris", "paris"]),
        ("answers", ["Pariss"]),
        ("question", "What is the capital of France ?"),
        ("topic", "geography"),
        ("id", "q9"),
        ("notes", "x"),
        ("cluster", "c9"),
    ],
)
def test_any_field_change_changes_digest(tmp_path, field, value):
    base = load_dataset(write_jsonl(tmp_path / "a.jsonl", ROWS)).digest
    changed = [{**ROWS[0], field: value}, *ROWS[1:]]
    assert load_dataset(write_jsonl(tmp_path / "b.jsonl", changed)).digest != base


def test_row_order_changes_digest(tmp_path):
    a = load_dataset(write_jsonl(tmp_path / "a.jsonl", ROWS)).digest
    b = load_dataset(write_jsonl(tmp_path / "b.jsonl", ROWS[::-1])).digest
    assert a != b


def test_dataset_digest_helper_matches_loader_and_accepts_mappings(tmp_path):
    ds = load_dataset(write_jsonl(tmp_path / "a.jsonl", ROWS))
    models = [GoldenQARow.model_validate(r) for r in ROWS]
    assert dataset_digest(models) == ds.digest
    assert dataset_digest([m.model_dump(mode="json") for m in models]) == ds.digest
    assert dataset_digest(models[:2]) != ds.digest


# --- the shipped golden dataset -------------------------------------------------------------


def test_shipped_golden_dataset():
    ds = load_dataset(GOLDEN)
    assert len(ds) >= 150
    ids = [c.id for c in ds.cases]
    assert len(set(ids)) == len(ids)
    topics = Counter(c.group for c in ds.cases)
    assert sum(1 for n in topics.values() if n >= 15) >= 6
    for case in ds.cases:
        prefix, _, number = case.id.partition("-")
        assert prefix and len(number) == 3 and number.isdigit(), case.id
        assert all(1 <= len(a.split()) <= 4 for a in case.expected), case
        assert len(set(case.expected)) == len(case.expected), case
        assert all("|" not in a for a in case.expected), case  # survives a CSV export
    questions = [c.input for c in ds.cases]
    assert len(set(questions)) == len(questions)


def test_shipped_golden_dataset_ids_have_one_prefix_per_topic():
    ds = load_dataset(GOLDEN)
    prefixes: dict[str, set[str]] = {}
    for case in ds.cases:
        prefixes.setdefault(case.group, set()).add(case.id.split("-")[0])
    assert all(len(p) == 1 for p in prefixes.values()), prefixes


def _clustered(n: int, per_cluster: int = 3):
    from aliasgate.datasets.base import Dataset

    cases = tuple(Case(id=f"c{i}", input=f"q{i}", cluster=f"k{i // per_cluster}") for i in range(n))
    return Dataset("d", "d.jsonl", "golden_qa", cases, "sha256:x")


def test_sample_keeps_whole_clusters_deterministically_in_file_order():
    ds = _clustered(600)
    half = ds.sample(0.5)
    again = ds.sample(0.5)
    assert [c.id for c in half.cases] == [c.id for c in again.cases]
    kept = {c.cluster for c in half.cases}
    # a cluster is in or out as a whole
    assert all(c.cluster not in kept for c in ds.cases if c not in half.cases)
    order = [c.id for c in ds.cases]
    assert [c.id for c in half.cases] == [i for i in order if i in {c.id for c in half.cases}]
    assert 70 <= len(kept) <= 130  # 200 clusters, share 0.5
    assert half.digest == ds.digest
    # nested: a smaller share keeps a subset (the same draw per cluster)
    assert {c.id for c in ds.sample(0.2).cases} <= {c.id for c in half.cases}
    assert ds.sample(0.5, seed=1).cases != half.cases
    assert ds.sample(None) is ds and ds.sample(1.0) is ds


@pytest.mark.parametrize("share", [0, -0.1, 1.5, float("nan")])
def test_sample_rejects_shares_outside_the_unit_interval(share):
    with pytest.raises(ValueError, match="sample fraction"):
        _clustered(10).sample(share)


def test_sample_uses_the_case_id_without_a_cluster():
    from aliasgate.datasets.base import Dataset

    cases = tuple(Case(id=f"c{i}", input="q") for i in range(400))
    kept = Dataset("d", "d.jsonl", "golden_qa", cases, "sha256:x").sample(0.25).cases
    assert 60 <= len(kept) <= 140
