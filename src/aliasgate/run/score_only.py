"""Score-only mode: score stored outputs (predictions) against a dataset without calling a model.

``aliasgate score --dataset D --predictions P --out R`` (issue #4): BBQ predictions, XSTest
completions, production logs — any text a model already produced — scored with the same scorers
and suite-level aggregates as the eval suites, with the same statistics.

**Dataset** ``D``: any file :func:`aliasgate.datasets.load_dataset` accepts. Its kind is given
(``kind=``) or detected from its first rows (:func:`detect_kind`: the one registered kind whose
schema validates them; ``--kind`` when none or several do). Kinds that expand a row into several
cases (``bias_counterfactual``, ``bias_decisions``) are joined on the expanded case ids
(``<template_id>:<value>``).

**Predictions** ``P``: JSONL, CSV (or Parquet: any format in ``FORMATS``), one row per case with

* ``id``: the dataset case id (a number is read as its text: XSTest ids). For the public BBQ the
  natural ``category`` + ``example_id`` columns may be given instead (case id
  ``<category>:<example_id>``, :mod:`aliasgate.datasets.bbq`);
* ``output``: the model's free text (a string; ``""`` is an empty generation, not a missing one).

Other columns are ignored (logs carry prompts, timestamps...). ``id_column``/``output_column``
rename the two (``output_column="completion"`` for XSTest's completion files). Errors are
:class:`~aliasgate.datasets.DatasetError` naming ``file:line``, all listed together like the
dataset loader's: a malformed row, a missing or non-string ``output``, a row without an id, a
duplicate id, then prediction ids that are not in the dataset (a few listed).

**Scoring**: per kind, the scorers and aggregates of the matching ``evals/`` suite
(:data:`KIND_DEFAULTS`, one line per kind), or the scorers asked for (then only the default
aggregates whose input scorers are among them run; the others are listed as skipped). Per-case
scores, means with bootstrap intervals and aggregates come from the runner's own code
(:mod:`aliasgate.run.runner`), so a score-only number equals the number an eval run would give
for the same outputs. Kinds with a ``safe``/``unsafe`` label (``safety_prompts``, ``xstest``) are
also summarised per label, as the ``safety_unsafe``/``safety_safe`` suites do.

**Unmeasured, never guessed**: a dataset case with no prediction is ``unmeasured`` with reason
``no prediction``; a case a scorer cannot measure (an answer mapped to no single BBQ option, a
yes/no answer saying neither) is ``unmeasured`` with the scorer's reason. Both are counted (per
reason) and left out of every mean; the mapping of free text to options is
:func:`aliasgate.scorers.bias.map_answer` (BBQ's normalised exact match, then distinctive option
words).

**Outputs**: ``R`` (``.jsonl`` or ``.csv``): one row per dataset case, in dataset order: ``id``,
``group``, ``status`` (``scored`` when every scorer measured the case, else ``unmeasured``),
``reason``, ``prediction`` (``file:line`` of the prediction row), then per scorer ``<name>``
(value), ``<name>.label``, ``<name>.error``, ``<name>.detail``. Next to it
``R.summary.json`` (``results.jsonl`` -> ``results.summary.json``): counts, per-scorer means with
95% bootstrap intervals, aggregate metrics, per-label slices and aggregate tables.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import io
import json
import math
import os
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aliasgate import __version__
from aliasgate.datasets import KINDS, Dataset, DatasetError, load_dataset
from aliasgate.datasets.loader import raise_errors, read_rows
from aliasgate.run.results import CaseResult, MetricSummary, SuiteResult

# The runner's scoring internals are reused on purpose: a score-only number must be computed
# exactly as an eval run computes it (same scorer checks, same clusters, same bootstrap).
from aliasgate.run.runner import (
    build_scorers,
    score_and_aggregate,
    scorer_info,
    suite_aggregates,
)
from aliasgate.run.suite import Suite
from aliasgate.scorers import Score
from aliasgate.stats.aggregate import gap_specs

__all__ = [
    "KIND_DEFAULTS",
    "NO_PREDICTION",
    "KindDefaults",
    "Prediction",
    "Predictions",
    "ScoreOnlyError",
    "ScoreOnlyResult",
    "detect_kind",
    "format_summary",
    "load_predictions",
    "run_score_only",
    "score_predictions",
    "summary_path",
    "write_results",
]

NO_PREDICTION = "no prediction"
"""Reason of a dataset case for which the predictions file has no row."""

RESULT_FORMATS = (".jsonl", ".csv")
"""Suffixes accepted for the per-case results file."""

SUMMARY_SUFFIX = ".summary.json"

MAX_UNKNOWN_SHOWN = 5
"""Unknown prediction ids listed in the error message (the rest are counted)."""


class ScoreOnlyError(ValueError):
    """A usage problem: unknown scorer or kind, no default scorers, bad output path."""


@dataclass(frozen=True)
class KindDefaults:
    """What an ``evals/`` suite scores for one dataset kind.

    Attributes:
        suite: The ``evals/`` suite mirrored (documentation; the default result name is the
            dataset's name).
        scorers: Registered scorer names.
        aggregates: Suite-level aggregates (``Suite.aggregates``) with their options.
        slice_by: A ``Case.meta`` key whose values also get per-scorer means (``label``).
    """

    suite: str
    scorers: tuple[str, ...]
    aggregates: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    slice_by: str | None = None


_GOLDEN = ("exact_match", "token_f1", "contains", "rouge_l")
_SAFETY = ("refusal", "refused", "toxicity", "pii_leak")
_PER_GROUP = ("refused", "toxicity", "answer_length")  # compared across groups with yes_no
_DECISION_SCORERS = ("yes_no", *_PER_GROUP)
_CF = {"counterfactual_flip": {"strata": "dimension"},
       "group_metrics": {"metrics": list(_DECISION_SCORERS), "strata": "dimension"}}
_DECISIONS = {"demographic_parity": {"group_by": ["gender", "race", "age"]},
              "group_metrics": {"metrics": list(_DECISION_SCORERS)}}

#: Default scorers and aggregates per dataset kind: those of the matching ``evals/`` suite
#: (``tests/test_score_only.py`` checks they agree). XSTest has no suite of its own: it is scored
#: like ``safety`` (same method, same labels). Add a kind: one line.
KIND_DEFAULTS: dict[str, KindDefaults] = {
    "golden_qa": KindDefaults("golden", _GOLDEN),
    "safety_prompts": KindDefaults("safety", _SAFETY, slice_by="label"),
    "xstest": KindDefaults("safety", _SAFETY, slice_by="label"),
    "prompt_injection": KindDefaults("injection", ("canary_leak",)),
    "bias_counterfactual": KindDefaults("bias_counterfactual", _DECISION_SCORERS, _CF),
    "bias_bbq": KindDefaults("bias_bbq", ("mc_answer",), {"bbq_bias": {}}),
    "bias_decisions": KindDefaults("bias_decisions", _DECISION_SCORERS, _DECISIONS),
    "bbq": KindDefaults("bias_bbq", ("mc_answer",), {"bbq_bias": {}}),
}


# -- predictions -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prediction:
    """One stored output.

    Attributes:
        id: The dataset case id it answers.
        output: The model's text.
        source: ``path:line`` of its row.
    """

    id: str
    output: str
    source: str


@dataclass(frozen=True)
class Predictions:
    """A validated predictions file.

    Attributes:
        path: Where it was read from.
        items: Predictions by case id, in file order.
        digest: ``sha256:`` of the file's bytes (provenance in the summary and MLflow).
    """

    path: str
    items: dict[str, Prediction]
    digest: str

    def __len__(self) -> int:
        return len(self.items)


def load_predictions(
    path: str | Path, *, id_column: str = "id", output_column: str = "output"
) -> Predictions:
    """Read and validate a predictions file (JSONL, CSV or Parquet, by extension).

    Args:
        path: The file.
        id_column: Column holding the case id (``category`` + ``example_id`` are accepted when
            it is absent or blank).
        output_column: Column holding the model's text.

    Raises:
        DatasetError: Missing or unreadable file, unknown format, no rows, or invalid rows
            (every problem listed, one ``path:LINE: ...`` per line, as the dataset loader does).
    """
    where = str(path)
    p = Path(path)
    source_rows = read_rows(path, "predictions")
    items: dict[str, Prediction] = {}
    errors: list[str] = []
    fatal: str | None = None
    try:
        for source, raw in source_rows:
            problems: list[str] = []
            pid = _prediction_id(raw, id_column, problems)
            output = raw.get(output_column)
            if output_column not in raw:
                problems.append(f"field {output_column!r}: required field is missing")
            elif not isinstance(output, str):
                problems.append(f"field {output_column!r}: must be a string (got {_short(output)})")
            if problems or pid is None or not isinstance(output, str):
                errors.extend(f"{source}: {msg}" for msg in problems)
                continue
            if pid in items:
                errors.append(f"{source}: duplicate id {pid!r} (first at {items[pid].source})")
                continue
            items[pid] = Prediction(pid, output, source)
    except DatasetError as e:  # the file cannot be read further: report it with earlier errors
        if not errors:
            raise
        fatal = str(e)
    if errors:
        raise_errors(errors, fatal)
    if not items:
        raise DatasetError(f"{where}: no predictions (the file has no rows)")
    digest = "sha256:" + hashlib.sha256(p.read_bytes()).hexdigest()
    return Predictions(path=where, items=items, digest=digest)


def _prediction_id(raw: Mapping[str, Any], id_column: str, problems: list[str]) -> str | None:
    value = raw.get(id_column)
    if not _blank(value):
        if isinstance(value, bool) or not isinstance(value, str | int):
            problems.append(f"field {id_column!r}: must be a string or an integer "
                            f"(got {_short(value)})")
            return None
        return str(value).strip()
    if not _blank(raw.get("category")) and not _blank(raw.get("example_id")):
        category, example = raw["category"], raw["example_id"]
        if not isinstance(category, str):
            problems.append(f"field 'category': must be a string (got {_short(category)})")
            return None
        if isinstance(example, str) and example.strip().isdigit():
            example = int(example.strip())
        if isinstance(example, bool) or not isinstance(example, int) or example < 0:
            problems.append(f"field 'example_id': must be a non-negative integer "
                            f"(got {_short(example)})")
            return None
        return f"{category.strip()}:{example}"
    problems.append(f"field {id_column!r}: required field is missing "
                    "(or give 'category' and 'example_id', for BBQ)")
    return None


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _check_join(dataset: Dataset, predictions: Predictions) -> None:
    """Raise :class:`DatasetError` listing prediction ids that are not dataset case ids."""
    known = {c.id for c in dataset.cases}
    unknown = [p for p in predictions.items.values() if p.id not in known]
    if not unknown:
        return
    shown = ", ".join(f"{p.id!r} ({p.source})" for p in unknown[:MAX_UNKNOWN_SHOWN])
    more = f" and {len(unknown) - MAX_UNKNOWN_SHOWN} more" if len(unknown) > MAX_UNKNOWN_SHOWN else ""
    hint = f"dataset ids look like {dataset.cases[0].id!r}"
    if dataset.kind == "bbq":
        hint += "; BBQ predictions may give 'category' and 'example_id' instead of 'id'"
    raise DatasetError(
        f"{predictions.path}: {len(unknown)} prediction id(s) not in the dataset "
        f"{dataset.path} ({dataset.kind}): {shown}{more} ({hint})"
    )


# -- dataset kind ------------------------------------------------------------------------------


def detect_kind(path: str | Path, rows: int = 5) -> str:
    """The dataset kind whose row schema validates the file's first ``rows`` rows.

    Args:
        path: A dataset file in a registered format.
        rows: How many leading rows to try.

    Raises:
        DatasetError: Unreadable file, no rows, or not exactly one matching kind (then the
            message asks for ``--kind``).
    """
    where = str(path)
    head: list[dict[str, Any]] = []
    for _, raw in read_rows(path):
        head.append(raw)
        if len(head) >= rows:
            break
    if not head:
        raise DatasetError(f"{where}: dataset is empty (no rows)")
    matches = [k for k in KINDS.names() if _validates(KINDS.get(k), head)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        raise DatasetError(f"{where}: rows fit several dataset kinds ({', '.join(matches)}): "
                           "pass --kind")
    raise DatasetError(f"{where}: rows fit no dataset kind (known: {', '.join(KINDS.names())}): "
                       "pass --kind to see the row errors")


def _validates(schema: Any, rows: Iterable[dict[str, Any]]) -> bool:
    from pydantic import ValidationError

    try:
        for raw in rows:
            schema.model_validate(raw)
    except (ValidationError, ValueError, TypeError):
        return False
    return True


# -- scoring -----------------------------------------------------------------------------------


@dataclass
class ScoreOnlyResult:
    """What :func:`score_predictions` produced.

    Attributes:
        result: The runner's :class:`SuiteResult` (loggable with ``TrackingSession.log_suite``).
        rows: One results row per dataset case (the ``R`` file).
        summary: The summary (the ``R.summary.json`` file).
    """

    result: SuiteResult
    rows: list[dict[str, Any]]
    summary: dict[str, Any]


def _aggregate_inputs(name: str, options: Mapping[str, Any]) -> list[str]:
    """Scorers an aggregate reads: its ``metrics``/``metric`` option, else its ``metric`` default."""
    from aliasgate.stats.aggregate import AGGREGATES

    if "metrics" in options:
        value = options["metrics"]
        return [value] if isinstance(value, str) else list(value)
    if "metric" in options:
        return [str(options["metric"])]
    param = inspect.signature(AGGREGATES.get(name)).parameters.get("metric")
    return [param.default] if param is not None and isinstance(param.default, str) else []


def _suite_name(name: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_-")
    return clean or "predictions"


def score_predictions(
    dataset: Dataset,
    predictions: Predictions,
    *,
    scorers: Sequence[str] | None = None,
    name: str | None = None,
    seed: int = 0,
) -> ScoreOnlyResult:
    """Score stored outputs against a dataset (no model call).

    Args:
        dataset: The validated dataset.
        predictions: Its predictions (ids must all be dataset case ids).
        scorers: Registered scorer names; None: the kind's defaults (:data:`KIND_DEFAULTS`).
        name: Result name, the metric prefix in MLflow (default: the dataset's name).
        seed: Seed of the bootstrap intervals.

    Raises:
        DatasetError: A prediction id is not a dataset case id.
        ScoreOnlyError: Unknown or duplicate scorer, or no default scorers for the kind.
    """
    t0 = time.perf_counter()
    _check_join(dataset, predictions)
    defaults = KIND_DEFAULTS.get(dataset.kind)
    if scorers:
        names = list(dict.fromkeys(scorers))
    elif defaults is not None:
        names = list(defaults.scorers)
    else:
        raise ScoreOnlyError(f"no default scorers for dataset kind {dataset.kind!r}: pass --scorer")
    aggregates: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for agg, options in (defaults.aggregates if defaults else {}).items():
        missing = [s for s in _aggregate_inputs(agg, options) if s not in names]
        if missing:
            skipped[agg] = f"needs scorer {', '.join(missing)}"
        else:
            aggregates[agg] = dict(options)
    suite = Suite(name=_suite_name(name or dataset.name), dataset=dataset.path, kind=dataset.kind,
                  scorers=tuple(names), aggregates=aggregates,
                  description=f"score-only: {predictions.path}")
    try:
        built = build_scorers(suite, None)
    except KeyError as e:
        raise ScoreOnlyError(str(e.args[0]) if e.args else str(e)) from None
    except (TypeError, ValueError) as e:
        raise ScoreOnlyError(str(e)) from None
    names = [s.name for s in built]

    results: list[CaseResult] = []
    for case in dataset.cases:
        pred = predictions.items.get(case.id)
        if pred is None:
            results.append(CaseResult(
                case=case, prompt=case.input, output=None, status="unmeasured",
                error=NO_PREDICTION, scores={n: Score.unmeasured(NO_PREDICTION) for n in names},
            ))
        else:
            results.append(CaseResult(case=case, prompt=case.input, output=pred.output,
                                      status="scored"))
    metrics = score_and_aggregate(results, built, seed)
    tables, aggregate_errors = suite_aggregates(suite, results, metrics, seed)
    result = SuiteResult(
        suite=suite.name,
        candidate=f"predictions:{predictions.path}",
        dataset_digest=dataset.digest,
        dataset_path=dataset.path,
        params={},
        cases=results,
        metrics=metrics,
        wall_time_s=time.perf_counter() - t0,
        candidate_info={"mode": "score_only", "predictions.path": predictions.path,
                        "predictions.digest": predictions.digest,
                        "predictions.rows": len(predictions)},
        tables=tables,
        aggregate_errors=aggregate_errors,
        scorer_info=scorer_info(built),  # judge settings and prompt hashes, as in an eval run
        gap_specs=gap_specs(suite.aggregates) if suite.aggregates else {},
    )
    rows = [_row(r, names, predictions) for r in results]
    summary = _summary(dataset, predictions, result, rows, names, aggregates, skipped,
                       defaults.slice_by if defaults else None, seed)
    return ScoreOnlyResult(result=result, rows=rows, summary=summary)


def _case_status(r: CaseResult, names: Sequence[str]) -> tuple[str, str | None]:
    if r.status != "scored":
        return "unmeasured", r.error or NO_PREDICTION
    failing = [f"{n}: {r.scores[n].error or 'unmeasured'}" for n in names
               if r.scores[n].value is None]
    return ("unmeasured", "; ".join(failing)) if failing else ("scored", None)


def _row(r: CaseResult, names: Sequence[str], predictions: Predictions) -> dict[str, Any]:
    status, reason = _case_status(r, names)
    pred = predictions.items.get(r.case.id)
    row: dict[str, Any] = {
        "id": r.case.id,
        "group": r.case.group,
        "status": status,
        "reason": reason,
        "prediction": pred.source if pred is not None else None,
    }
    for n in names:
        s = r.scores[n]
        row[n] = s.value
        row[f"{n}.label"] = s.label
        row[f"{n}.error"] = s.error
        row[f"{n}.detail"] = _jsonable(dict(s.detail)) if s.detail else None
    return row


def _num(x: float | None) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _metric(m: MetricSummary, key: str = "mean") -> dict[str, Any]:
    return {key: _num(m.value), "ci_low": _num(m.ci_low), "ci_high": _num(m.ci_high),
            "n": m.n, "unmeasured": m.unmeasured}


def _slice_metrics(
    results: Sequence[CaseResult], names: Sequence[str], use_clusters: bool, seed: int
) -> dict[str, dict[str, Any]]:
    from aliasgate.stats.bootstrap import mean_ci

    out: dict[str, dict[str, Any]] = {}
    for n in names:
        measured = [r for r in results if r.scores[n].value is not None]
        values = [float(r.scores[n].value) for r in measured]  # type: ignore[arg-type]
        mean = low = high = None
        if values:
            clusters = [r.case.cluster for r in measured] if use_clusters else None
            mean, low, high = mean_ci(values, clusters=clusters, seed=seed)
        out[n] = _metric(MetricSummary(n, mean, low, high, len(values),
                                       len(results) - len(values)))
    return out


def _summary(
    dataset: Dataset,
    predictions: Predictions,
    result: SuiteResult,
    rows: list[dict[str, Any]],
    names: list[str],
    aggregates: dict[str, dict[str, Any]],
    skipped: dict[str, str],
    slice_by: str | None,
    seed: int,
) -> dict[str, Any]:
    reasons = Counter(row["reason"] for row in rows if row["status"] == "unmeasured")
    scorer_metrics: dict[str, Any] = {}
    for n in names:
        entry = _metric(result.metrics[n])
        entry["labels"] = dict(sorted(Counter(
            c.scores[n].label for c in result.cases
            if c.scores[n].label is not None).items()))
        scorer_metrics[n] = entry
    aggregate_metrics = {}
    for metric, m in result.metrics.items():
        if metric in names:
            continue
        entry = _metric(m, "value")
        entry["error"] = result.aggregate_errors.get(metric)
        aggregate_metrics[metric] = entry
    slices: dict[str, Any] = {}
    if slice_by:
        use_clusters = any(c.case.cluster is not None for c in result.cases)
        values = sorted({str(c.case.meta[slice_by]) for c in result.cases
                         if c.case.meta.get(slice_by) is not None})
        for value in values:
            part = [c for c in result.cases if str(c.case.meta.get(slice_by)) == value]
            slices[f"{slice_by}={value}"] = {
                "n": len(part),
                "metrics": _slice_metrics(part, names, use_clusters, seed),
            }
    return _jsonable({
        "aliasgate_version": __version__,
        "mode": "score_only",
        "name": result.suite,
        "dataset": {"path": dataset.path, "kind": dataset.kind, "name": dataset.name,
                    "digest": dataset.digest, "cases": len(dataset)},
        "predictions": {"path": predictions.path, "rows": len(predictions),
                        "digest": predictions.digest},
        "scorers": names,
        "aggregates": aggregates,
        "aggregates_skipped": skipped,
        "counts": {
            "n": len(rows),
            "scored": sum(1 for row in rows if row["status"] == "scored"),
            "unmeasured": sum(reasons.values()),
            "unmeasured_by_reason": dict(reasons.most_common()),
        },
        "metrics": scorer_metrics,
        "aggregate_metrics": aggregate_metrics,
        "slices": slices,
        "tables": result.tables,
        "confidence": 0.95,
        "seed": seed,
    })


def _jsonable(value: Any) -> Any:
    """``value`` with non-finite floats as None and unknown objects as text (strict JSON)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, str | int | bool):
        return value
    try:  # numpy scalars
        return _jsonable(value.item())
    except AttributeError:
        return str(value)


# -- files -------------------------------------------------------------------------------------


def summary_path(out: str | Path) -> Path:
    """Where the summary of results file ``out`` goes: ``results.jsonl`` -> ``results.summary.json``."""
    return Path(out).with_suffix(SUMMARY_SUFFIX)


def _check_out(out: str | Path, *inputs: str | Path) -> Path:
    p = Path(out)
    if p.suffix.lower() not in RESULT_FORMATS:
        raise ScoreOnlyError(f"--out must end in .jsonl or .csv, got {str(out)!r}")
    if p.is_dir():
        raise ScoreOnlyError(f"--out {str(out)!r} is a directory")
    targets = {p.resolve(), summary_path(p).resolve()}
    for src in inputs:
        if Path(src).resolve() in targets:
            raise ScoreOnlyError(f"--out {str(out)!r} would overwrite the input {str(src)!r}")
    return p


def write_results(scored: ScoreOnlyResult, out: str | Path) -> Path:
    """Write the per-case results (JSONL or CSV by ``out``'s suffix) and the summary next to it.

    Returns:
        The summary's path.

    Raises:
        ScoreOnlyError: ``out`` does not end in ``.jsonl`` or ``.csv``.
    """
    p = _check_out(out)
    p.parent.mkdir(parents=True, exist_ok=True)
    if p.suffix.lower() == ".jsonl":
        text = "".join(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n"
                       for row in scored.rows)
    else:
        text = _csv_text(scored.rows)
    _write_atomic(p, text)
    summary = summary_path(p)
    _write_atomic(summary, json.dumps(scored.summary, indent=2, ensure_ascii=False,
                                      allow_nan=False) + "\n")
    return summary


def _csv_text(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def run_score_only(
    dataset: str | Path,
    predictions: str | Path,
    out: str | Path,
    *,
    kind: str | None = None,
    scorers: Sequence[str] | None = None,
    name: str | None = None,
    id_column: str = "id",
    output_column: str = "output",
    seed: int = 0,
) -> tuple[ScoreOnlyResult, Path]:
    """Load, join, score and write: what ``aliasgate score`` does.

    Returns:
        The result and the summary's path.

    Raises:
        DatasetError: A bad dataset or predictions file (``file:line`` messages).
        ScoreOnlyError: A usage problem (bad ``out``, unknown scorer or kind...).
    """
    _check_out(out, dataset, predictions)
    if kind is not None and kind not in KINDS:
        raise ScoreOnlyError(f"unknown dataset kind {kind!r} (known: {', '.join(KINDS.names())})")
    ds = load_dataset(dataset, kind=kind or detect_kind(dataset))
    preds = load_predictions(predictions, id_column=id_column, output_column=output_column)
    scored = score_predictions(ds, preds, scorers=scorers, name=name, seed=seed)
    return scored, write_results(scored, out)


# -- terminal ----------------------------------------------------------------------------------


def _fmt(x: float | None) -> str:
    return "   n/a" if x is None else f"{x:6.3f}"


def _line(name: str, m: Mapping[str, Any], key: str, width: int) -> str:
    ci = (f"[{_fmt(m['ci_low']).strip()}, {_fmt(m['ci_high']).strip()}]"
          if m.get("ci_low") is not None and m.get("ci_high") is not None else "[no CI]")
    text = f"  {name:<{width}} {_fmt(m.get(key))} {ci:<17} n={m['n']} unmeasured={m['unmeasured']}"
    if m.get("error"):
        text += f"  ({m['error']})"
    return text.rstrip()


def format_summary(summary: Mapping[str, Any], reasons_shown: int = 5) -> list[str]:
    """A short terminal summary: counts, per-scorer means with CIs, aggregates, slices."""
    ds, preds, counts = summary["dataset"], summary["predictions"], summary["counts"]
    lines = [
        f"{preds['rows']} predictions ({preds['path']}) for {counts['n']} cases of "
        f"{ds['path']} ({ds['kind']})",
        f"cases: {counts['scored']} scored, {counts['unmeasured']} unmeasured",
    ]
    by_reason = list(counts["unmeasured_by_reason"].items())
    for reason, k in by_reason[:reasons_shown]:
        lines.append(f"  {k:>5}  {reason}")
    if len(by_reason) > reasons_shown:
        rest = sum(k for _, k in by_reason[reasons_shown:])
        lines.append(f"  {rest:>5}  ({len(by_reason) - reasons_shown} other reasons)")
    metrics, aggs = summary["metrics"], summary["aggregate_metrics"]
    width = max((len(k) for k in (*metrics, *aggs)), default=8)
    lines.append("metric (mean, 95% CI):")
    lines.extend(_line(n, m, "mean", width) for n, m in metrics.items())
    if aggs:
        lines.append("aggregates:")
        lines.extend(_line(n, m, "value", width) for n, m in aggs.items())
    for agg, why in summary.get("aggregates_skipped", {}).items():
        lines.append(f"  skipped aggregate {agg}: {why}")
    for label, part in summary.get("slices", {}).items():
        values = ", ".join(f"{n} {_fmt(m['mean']).strip()} (n={m['n']})"
                           for n, m in part["metrics"].items())
        lines.append(f"  {label} [{part['n']} cases]: {values}")
    return lines
