"""Judges are checked before they are trusted: calibration on items with known verdicts.

Every judge scorer (:class:`JudgeScorer`) is first run on a calibration set — our own
``judge_calibration.jsonl`` by default (package data in ``aliasgate/data/``): questions with a
correct and a deliberately wrong response (``"Hamlet was written by Charles Dickens."``),
relevant and off-topic answers, neutral and biased or toxic ones, each with its KNOWN verdict. :func:`calibrate` thresholds the judge's
scores (``verdict_threshold``) and compares them with the known verdicts:

* ``agreement`` = items whose thresholded score matches the known verdict / items used
  (an unmeasured item does not agree);
* ``degenerate`` when the judge echoed a template placeholder, gave the same score to every
  known-good and known-bad item (``constant_scores``), scored known-bad items at least as high as
  known-good ones on average, or failed on more than ``max_unmeasured_rate`` of the items;
* ``trusted`` iff not degenerate and ``agreement >= agreement_floor``.

An untrusted judge scores nothing: every case becomes unmeasured with the reason
(``judge not trustworthy: agreement 0.45 < 0.80 on 24 calibration items (...)``), so a gate rule
on its metric has no measured values and fails closed. Calibration runs once per (judge
config, metric) per process; :func:`judge_params` gives the ``judge.*`` params of every judge
used so far (settings, prompt hashes, ``judge.<metric>.agreement``, ``.trusted``...), and
:meth:`JudgeScorer.describe` those of one scorer — what the runner puts in
``SuiteResult.scorer_info`` and :mod:`aliasgate.registry.tracking` logs as the suite's params.

Calibration file rows: ``{"id", "kind", "question", "response", "reference", "context",
"verdict": "pass"|"fail", "note"}``; ``kind`` is ``correctness``, ``relevance``, ``bias`` or
``toxicity``. A metric uses the kinds it declares (:attr:`JudgeScorer.calibration_kinds`).
"""

from __future__ import annotations

import abc
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from aliasgate.datasets.base import Case, DatasetError
from aliasgate.scorers.base import Score
from aliasgate.scorers.judge_config import (
    JudgeConfig,
    JudgeError,
    coerce_config,
    sha256_file,
    sha256_text,
)

#: Fewest calibration items (with both verdicts present) a judge must be checked on.
MIN_CALIBRATION_ITEMS = 4
#: Longest error message kept in a score.
_MAX_ERROR = 400

CalibrationKind = Literal["correctness", "relevance", "bias", "toxicity"]


class CalibrationItem(BaseModel):
    """One row of a calibration set.

    Attributes:
        id: Unique within the file.
        kind: What the known verdict is about.
        question: The user input.
        response: The answer being judged.
        reference: The correct answer (correctness items).
        context: A passage that supports the reference (used by faithfulness).
        verdict: ``pass`` (a good judge scores it at or above the threshold) or ``fail``.
        note: Why the verdict is what it is.
    """

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    kind: CalibrationKind
    question: str = Field(min_length=1)
    response: str = Field(min_length=1)
    reference: str | None = None
    context: str | None = None
    verdict: Literal["pass", "fail"]
    note: str | None = None

    def case(self) -> Case:
        """The item as a :class:`Case` (its output is :attr:`response`)."""
        meta: dict[str, Any] = {"calibration": True}
        if self.context:
            meta["contexts"] = [self.context]
        return Case(id=self.id, input=self.question,
                    expected=(self.reference,) if self.reference else (), meta=meta,
                    source=f"calibration:{self.id}")


def load_calibration_set(path: str | Path) -> list[CalibrationItem]:
    """Read and validate a calibration set (JSONL).

    Args:
        path: The file.

    Raises:
        DatasetError: ``file:line: ...`` for an unreadable or invalid row, or a duplicate id.
    """
    from aliasgate.datasets.formats import read_jsonl

    items: list[CalibrationItem] = []
    seen: dict[str, int] = {}
    if not Path(path).is_file():
        raise DatasetError(f"{path}: calibration set not found")
    for line, row in read_jsonl(path):
        try:
            item = CalibrationItem.model_validate(row)
        except ValidationError as exc:
            first = exc.errors()[0]
            loc = ".".join(str(p) for p in first["loc"]) or "row"
            raise DatasetError(f"{path}:{line}: field {loc!r}: {first['msg']}") from None
        if item.id in seen:
            raise DatasetError(f"{path}:{line}: duplicate id {item.id!r} (first on line {seen[item.id]})")
        seen[item.id] = line
        items.append(item)
    return items


def select_items(items: Sequence[CalibrationItem], kinds: Sequence[str],
                 limit: int | None) -> list[CalibrationItem]:
    """The items of ``kinds``; with ``limit``, the first ``limit`` of them alternating known-good
    and known-bad (so a small limit still has both)."""
    pool = [i for i in items if i.kind in kinds]
    if limit is None or limit >= len(pool):
        return pool
    good = [i for i in pool if i.verdict == "pass"]
    bad = [i for i in pool if i.verdict == "fail"]
    out: list[CalibrationItem] = []
    while len(out) < limit and (good or bad):
        for side in (good, bad):
            if side and len(out) < limit:
                out.append(side.pop(0))
    return out


@dataclass(frozen=True)
class ItemResult:
    """The judge on one calibration item.

    Attributes:
        id: The item's id.
        known: Its known verdict (``pass``/``fail``).
        value: The judge's score (None: unmeasured).
        error: Why it is unmeasured.
        threshold: Scores at or above it are a ``pass`` verdict.
    """

    id: str
    known: str
    value: float | None
    error: str | None
    threshold: float = 0.5

    @property
    def verdict(self) -> str | None:
        if self.value is None:
            return None
        return "pass" if self.value >= self.threshold else "fail"

    @property
    def agrees(self) -> bool:
        return self.verdict == self.known


@dataclass(frozen=True)
class Calibration:
    """How far a judge metric can be trusted.

    Attributes:
        metric: The scorer's name.
        agreement: Share of the ``n`` items whose thresholded score matched the known verdict.
        n: Calibration items used.
        n_unmeasured: Items the judge failed on (error, unparsable output, NaN).
        degenerate: Placeholder echoed, constant scores, no separation or too many failures.
        reasons: Why it is not trusted (empty when trusted).
        constant_scores: Every measured item got the same score.
        trusted: Not degenerate and agreement at or above the floor.
        floor: The agreement floor applied.
        separation: Mean score of known-good minus known-bad items (None if either is missing).
        placeholder_echoes: Items where the judge echoed a template placeholder or example.
        items: Per-item results.
    """

    metric: str
    agreement: float
    n: int
    n_unmeasured: int
    degenerate: bool
    reasons: tuple[str, ...]
    constant_scores: bool
    trusted: bool
    floor: float
    separation: float | None = None
    placeholder_echoes: int = 0
    items: tuple[ItemResult, ...] = field(default=(), repr=False)

    @property
    def message(self) -> str:
        """One sentence for unmeasured scores and reports."""
        if self.trusted:
            return (f"judge trusted: agreement {self.agreement:.2f} >= {self.floor:.2f} on "
                    f"{self.n} calibration item{'' if self.n == 1 else 's'}")
        why = "; ".join(self.reasons)
        items = f"{self.n} calibration item{'' if self.n == 1 else 's'}"
        if self.agreement < self.floor:
            return (f"judge not trustworthy: agreement {self.agreement:.2f} < {self.floor:.2f} "
                    f"on {items} ({why})")
        return f"judge not trustworthy: agreement {self.agreement:.2f} on {items} but {why}"

    def params(self) -> dict[str, Any]:
        """``judge.<metric>.*`` values to log."""
        p = f"judge.{self.metric}."
        out: dict[str, Any] = {
            p + "agreement": round(self.agreement, 6), p + "n": self.n,
            p + "n_unmeasured": self.n_unmeasured, p + "degenerate": self.degenerate,
            p + "constant_scores": self.constant_scores, p + "trusted": self.trusted,
            p + "placeholder_echoes": self.placeholder_echoes,
        }
        if self.separation is not None:
            out[p + "separation"] = round(self.separation, 6)
        if self.reasons:
            out[p + "reasons"] = "; ".join(self.reasons)
        return out


def _untrusted(metric: str, floor: float, reason: str, n: int = 0) -> Calibration:
    return Calibration(metric=metric, agreement=0.0, n=n, n_unmeasured=n, degenerate=True,
                       reasons=(reason,), constant_scores=False, trusted=False, floor=floor)


def summarize(metric: str, results: Sequence[ItemResult], config: JudgeConfig,
              stopped: str | None = None) -> Calibration:
    """The :class:`Calibration` of per-item results (the rules are in the module docstring).

    Args:
        metric: The scorer's name.
        results: The judge on each calibration item used.
        config: Floor, threshold and unmeasured bound.
        stopped: Why calibration stopped before the last item (early stop), if it did.
    """
    floor = config.agreement_floor
    n = len(results)
    measured = [r for r in results if r.value is not None]
    n_unmeasured = n - len(measured)
    agreement = sum(r.agrees for r in results) / n if n else 0.0
    reasons: list[str] = []
    echoes = sum(1 for r in results if r.error and ("placeholder" in r.error or "echoed" in r.error))
    if echoes:
        reasons.append(f"placeholder or example echoed on {echoes} items")
    good = [r.value for r in measured if r.known == "pass"]
    bad = [r.value for r in measured if r.known == "fail"]
    values = {round(float(v), 9) for v in good + bad if v is not None}
    constant = len(measured) >= 2 and len(values) <= 1
    if constant:
        reasons.append(f"constant score {next(iter(values)):g} on known-good and known-bad items")
    separation = None
    if good and bad:
        separation = sum(good) / len(good) - sum(bad) / len(bad)  # type: ignore[arg-type]
        if separation <= 0 and not constant:
            reasons.append(f"known-bad items scored at least as high as known-good ones "
                           f"(separation {separation:+.2f})")
    elif measured:
        reasons.append("no measured known-good or no measured known-bad item")
    rate = n_unmeasured / n if n else 1.0
    if rate > config.max_unmeasured_rate:
        first = next((r.error for r in results if r.error), "")
        reasons.append(f"{n_unmeasured}/{n} items unmeasured (> {config.max_unmeasured_rate:.0%}; "
                       f"first: {first[:160]})")
    degenerate = bool(reasons)
    if agreement < floor and not reasons:
        reasons.append(f"{sum(r.agrees for r in results)}/{n} verdicts match")
    if stopped:
        reasons.append(stopped)
    trusted = not degenerate and agreement >= floor
    return Calibration(metric=metric, agreement=agreement, n=n, n_unmeasured=n_unmeasured,
                       degenerate=degenerate, reasons=tuple(reasons), constant_scores=constant,
                       trusted=trusted, floor=floor, separation=separation,
                       placeholder_echoes=echoes, items=tuple(results))


_CALIBRATIONS: dict[tuple[str, str], Calibration] = {}
_DESCRIPTIONS: dict[tuple[str, str], dict[str, Any]] = {}
_LOCK = threading.Lock()
_KEY_LOCKS: dict[tuple[str, str], threading.Lock] = {}


def calibrate(scorer: JudgeScorer) -> Calibration:
    """Run ``scorer``'s judge on the calibration items of its kinds (once per process per judge
    config and metric) and say whether it can be trusted. Never raises: a judge that cannot be
    reached or configured is untrusted with the error as its reason.

    Args:
        scorer: The judge scorer.
    """
    config = scorer.judge
    try:
        key = (config.key(), scorer.calibration_key())
    except Exception as exc:  # noqa: BLE001 - e.g. calibration file unreadable
        return _untrusted(scorer.name, config.agreement_floor, f"calibration unavailable: {_err(exc)}")
    with _LOCK:
        done = _CALIBRATIONS.get(key)
        if done is not None:
            return done
        key_lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with key_lock:
        with _LOCK:
            done = _CALIBRATIONS.get(key)
        if done is not None:
            return done
        result = _run_calibration(scorer)
        with _LOCK:
            _CALIBRATIONS[key] = result
            _DESCRIPTIONS[key] = {**scorer.describe_static(), **result.params()}
        return result


def _run_calibration(scorer: JudgeScorer) -> Calibration:
    config = scorer.judge
    floor = config.agreement_floor
    try:
        items = select_items(load_calibration_set(config.calibration_path()),
                             scorer.calibration_kinds, config.calibration_limit)
    except (DatasetError, OSError) as exc:
        return _untrusted(scorer.name, floor, f"calibration set unusable: {exc}")
    kinds = "/".join(scorer.calibration_kinds)
    if len(items) < MIN_CALIBRATION_ITEMS or len({i.verdict for i in items}) < 2:
        return _untrusted(scorer.name, floor,
                          f"calibration set has {len(items)} {kinds} items; at least "
                          f"{MIN_CALIBRATION_ITEMS} with both known verdicts are needed", len(items))
    try:
        scorer.prepare()
    except Exception as exc:  # noqa: BLE001 - the judge is unavailable: untrusted, with the reason
        return _untrusted(scorer.name, floor, f"judge unavailable: {_err(exc)}", len(items))
    results: list[ItemResult] = []
    for item in items:
        score = scorer.safe_measure(item.response, item.case())
        results.append(ItemResult(item.id, item.verdict, score.value, score.error,
                                  threshold=config.verdict_threshold))
        reachable = (sum(r.agrees for r in results) + len(items) - len(results)) / len(items)
        if config.calibration_early_stop and reachable < floor and len(results) < len(items):
            return summarize(scorer.name, results, config,
                             stopped=f"stopped after {len(results)} of {len(items)} items: "
                                     f"agreement can reach at most {reachable:.2f}")
    return summarize(scorer.name, results, config)


def clear_calibrations() -> None:
    """Forget every calibration of this process (tests; a changed judge)."""
    with _LOCK:
        _CALIBRATIONS.clear()
        _DESCRIPTIONS.clear()


def judge_params() -> dict[str, Any]:
    """``judge.*`` params of every judge metric calibrated in this process, to log with the run."""
    with _LOCK:
        out: dict[str, Any] = {}
        for d in _DESCRIPTIONS.values():
            out.update(d)
        return out


def _err(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return text if len(text) <= _MAX_ERROR else text[:_MAX_ERROR] + "..."


class JudgeScorer(abc.ABC):
    """Base of LLM-as-a-judge scorers: calibrated lazily before the first batch is scored.

    Subclasses set :attr:`name`, :attr:`calibration_kinds` and implement :meth:`measure` (one
    case, raising on any judge failure) and :meth:`prompt_hashes`.

    Args:
        name: Metric name.
        judge: Judge settings (None = :meth:`JudgeConfig.from_env`).
    """

    #: Calibration item kinds whose known verdicts apply to this metric.
    calibration_kinds: tuple[str, ...] = ("correctness",)

    def __init__(self, name: str, judge: JudgeConfig | Mapping[str, Any] | None = None) -> None:
        self.name = name
        self.judge = coerce_config(judge)
        self._prepared = False
        self._prepare_lock = threading.Lock()

    # -- to implement ----------------------------------------------------------------------
    @abc.abstractmethod
    def measure(self, output: str, case: Case) -> Score:
        """Ask the judge about one case; raise on any failure (it becomes unmeasured)."""

    @abc.abstractmethod
    def prompt_hashes(self) -> dict[str, str]:
        """sha256 of each prompt template / rubric the metric sends, by template name."""

    def setup(self) -> None:  # noqa: B027 - optional hook
        """Import the judge library and build clients (called once, before the first request)."""

    # -- scoring ---------------------------------------------------------------------------
    def prepare(self) -> None:
        with self._prepare_lock:
            if not self._prepared:
                self.setup()
                self._prepared = True

    def safe_measure(self, output: str, case: Case) -> Score:
        """:meth:`measure` with every failure (exception, NaN, None, out of [0, 1]) unmeasured."""
        if not isinstance(output, str):
            return Score.unmeasured(f"TypeError: output must be a string, got {type(output).__name__}")
        try:
            self.prepare()
            score = self.measure(output, case)
        except Exception as exc:  # noqa: BLE001 - recorded as unmeasured, never 0
            return Score.unmeasured(f"judge error: {_err(exc)}")
        value = score.value
        if value is None:
            return score if score.error else Score.unmeasured("judge returned no score")
        try:
            v = float(value)
        except (TypeError, ValueError):
            return Score.unmeasured(f"judge returned a non-numeric score {value!r}")
        if not math.isfinite(v) or not 0.0 <= v <= 1.0:
            return Score.unmeasured(f"judge returned an invalid score {value!r}")
        return Score(value=v, label=score.label, detail=dict(score.detail))

    def calibration(self) -> Calibration:
        """This metric's calibration (run now if not done yet in this process)."""
        return calibrate(self)

    def batch(self, outputs: Sequence[str], cases: Sequence[Case]) -> list[Score]:
        """Calibrate (once), then score each case — or, for an untrusted judge, none."""
        cal = calibrate(self)
        if not cal.trusted:
            return [Score.unmeasured(cal.message) for _ in outputs]
        scores = []
        for output, case in zip(outputs, cases, strict=True):
            s = self.safe_measure(output, case)
            if s.value is not None:
                s = Score(value=s.value, label=s.label,
                          detail={**s.detail, "judge_agreement": round(cal.agreement, 4)})
            scores.append(s)
        return scores

    def __call__(self, output: str, case: Case) -> Score:
        return self.batch([output], [case])[0]

    # -- identity --------------------------------------------------------------------------
    def calibration_key(self) -> str:
        """What makes two calibrations of the same judge config different."""
        path = self.judge.calibration_path()
        digest = sha256_file(path) if path.is_file() else "missing"
        hashes = ",".join(f"{k}={v}" for k, v in sorted(self.prompt_hashes().items()))
        return f"{self.name}|{'/'.join(self.calibration_kinds)}|{digest}|{hashes}"

    def describe_static(self) -> dict[str, Any]:
        """Judge settings and prompt hashes (``judge.*``; ``judge.<metric>.prompt.<name>`` per
        template and ``judge.<metric>.prompt_sha256`` over all of them)."""
        d = dict(self.judge.describe())
        hashes = self.prompt_hashes()
        d.update({f"judge.{self.name}.prompt.{k}": v for k, v in hashes.items()})
        combined = "\n".join(f"{k}={v}" for k, v in sorted(hashes.items()))
        d[f"judge.{self.name}.prompt_sha256"] = sha256_text(combined)
        d[f"judge.{self.name}.calibration_kinds"] = ",".join(self.calibration_kinds)
        return d

    def describe(self) -> dict[str, Any]:
        """:meth:`describe_static` plus the calibration result when it has run."""
        d = self.describe_static()
        try:
            key = (self.judge.key(), self.calibration_key())
        except Exception:  # noqa: BLE001
            return d
        with _LOCK:
            cal = _CALIBRATIONS.get(key)
        if cal is not None:
            d.update(cal.params())
        return d


__all__ = [
    "Calibration",
    "CalibrationItem",
    "JudgeError",
    "JudgeScorer",
    "calibrate",
    "clear_calibrations",
    "judge_params",
    "load_calibration_set",
    "select_items",
    "summarize",
]
