"""deepeval judge metrics: GEval, AnswerRelevancy, Bias, Toxicity — calibrated before trusted.

Each scorer builds a FRESH deepeval metric per case (after ``measure()`` raises, deepeval keeps the
previous case's ``score`` on the object — PITFALLS) and judges through :class:`_JudgeLLM`, a
``DeepEvalBaseLLM`` calling the ``openai`` client against the configured judge endpoint with
``max_tokens`` always sent and JSON output constrained to the metric's schema where the server
supports it (``enum`` for GEval's score scale).

Any exception, NaN/None score, unparsable or schema-violating answer, answer cut at
``max_tokens``, echoed template placeholder (``"your concise and informative reason here"``,
``<your_reason>``), or verdict/statement count mismatch makes that case unmeasured with the
reason — never 0. Before its first batch a scorer is calibrated
(:mod:`aliasgate.scorers.judge_calibration`); an untrusted judge scores nothing.

deepeval is imported on the first judge request only (~14 s here), with its telemetry off.
Metrics are run in deepeval's ``llm`` eval mode (never its hosted System One model). Case fields:
``question = case.input``, ``expected = case.expected[0]``, ``contexts = case.meta["contexts"]``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from aliasgate.datasets.base import Case
from aliasgate.defaults import quiet_environment
from aliasgate.scorers.base import Score
from aliasgate.scorers.judge_calibration import JudgeScorer
from aliasgate.scorers.judge_config import (
    JudgeConfig,
    JudgeOutputError,
    chat_request,
    constrain_schema,
    endpoint_lock,
    is_loopback_url,
    openai_client,
    parse_json_object,
    placeholder_in,
    sha256_text,
    strings_in,
)

#: GEval's default rubric: factual correctness against the reference answer.
CORRECTNESS_RUBRIC = (
    "Judge whether the actual output answers the input correctly. It is correct when it states "
    "the same answer as the expected output and contradicts none of its facts. A different "
    "answer, a wrong fact or a contradiction of the expected output makes it incorrect."
)

_PARAMS = ("input", "actual_output", "expected_output", "context", "retrieval_context")
_TEMPLATE_DIRS = {"geval": "g_eval", "answer_relevancy": "answer_relevancy", "bias": "bias",
                  "toxicity": "toxicity"}


def _import_deepeval() -> None:
    quiet_environment()
    import deepeval  # noqa: F401 - ~14 s, only when a judge request is about to be made


@lru_cache(maxsize=1)
def _judge_llm_class() -> type:
    """The ``DeepEvalBaseLLM`` subclass (defined on first use: deepeval is imported lazily)."""
    _import_deepeval()
    from deepeval.models import DeepEvalBaseLLM

    class _JudgeLLM(DeepEvalBaseLLM):
        """deepeval's judge model: one chat-completions request per prompt, JSON-constrained."""

        def __init__(self, config: JudgeConfig, score_enum: list[int] | None = None) -> None:
            self.config = config
            self.score_enum = score_enum
            self.client: Any = None
            super().__init__(model=config.model_name())

        def load_model(self) -> Any:
            self.client = openai_client(self.config)
            return self.client

        def get_model_name(self) -> str:
            return f"aliasgate-judge:{self.config.provider}:{self.config.model_name()}"

        def generate(self, prompt: str, schema: Any = None, **kwargs: Any) -> Any:
            return judge_generate(self.client, self.config, prompt, schema, self.score_enum)

        async def a_generate(self, prompt: str, schema: Any = None, **kwargs: Any) -> Any:
            return self.generate(prompt, schema=schema)

    return _JudgeLLM


def judge_generate(client: Any, config: JudgeConfig, prompt: str, schema_cls: Any,
                   score_enum: list[int] | None = None) -> Any:
    """One judge request; returns a ``schema_cls`` instance (or the text when no schema).

    Raises:
        JudgeOutputError: cut at max_tokens, not JSON, placeholder echoed, schema violated.
    """
    schema = None
    if schema_cls is not None:
        schema = constrain_schema(schema_cls.model_json_schema(), score_enum=score_enum)
    kwargs = chat_request(config, prompt, schema)
    url = str(getattr(client, "base_url", "") or "")
    if is_loopback_url(url):
        with endpoint_lock(url):
            response = client.chat.completions.create(**kwargs)
    else:
        response = client.chat.completions.create(**kwargs)
    if not response.choices:
        raise JudgeOutputError("judge returned no choices")
    choice = response.choices[0]
    text = choice.message.content
    if choice.finish_reason == "length":
        raise JudgeOutputError(f"judge answer hit max_tokens={config.max_tokens} before finishing")
    if schema_cls is None:
        if not text:
            raise JudgeOutputError("judge returned an empty answer")
        return text
    data = parse_json_object(text)
    for s in strings_in(data):
        found = placeholder_in(s)
        if found:
            raise JudgeOutputError(f"judge echoed the template placeholder {found!r}")
    from pydantic import ValidationError

    try:
        return schema_cls.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        raise JudgeOutputError(
            f"judge answer does not match {schema_cls.__name__}: {where}: {first['msg']}"
        ) from None


def _word(verdict: Any) -> str:
    return str(getattr(verdict, "value", verdict)).lower()


def _template_hash(metric: str) -> str:
    """sha256 of deepeval's prompt templates for ``metric`` (read from files, no import)."""
    spec = importlib.util.find_spec("deepeval")
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        return "deepeval-not-installed"
    folder = Path(locations[0]) / "metrics" / _TEMPLATE_DIRS[metric] / "templates"
    digest = hashlib.sha256()
    for f in sorted(folder.glob("*.txt")):
        if f.name.startswith("_experimental"):
            continue
        digest.update(f.name.encode() + b"\0" + f.read_bytes() + b"\0")
    return digest.hexdigest()


class DeepEvalScorer(JudgeScorer):
    """A deepeval metric as an aliasgate scorer (see the module docstring).

    Args:
        name: Metric name.
        metric: ``geval``, ``answer_relevancy``, ``bias`` or ``toxicity``.
        calibration_kinds: Calibration item kinds whose known verdicts apply.
        judge: Judge settings (None = :meth:`JudgeConfig.from_env`).
        options: Metric options (GEval: ``rubric``, ``evaluation_steps``, ``params``).
    """

    def __init__(self, name: str, metric: str, calibration_kinds: Sequence[str],
                 judge: JudgeConfig | Mapping[str, Any] | None = None, **options: Any) -> None:
        super().__init__(name, judge)
        if metric not in _TEMPLATE_DIRS:
            raise ValueError(f"unknown deepeval metric {metric!r}")
        self.metric = metric
        self.calibration_kinds = tuple(calibration_kinds)
        self.options = options
        self._llm: Any = None

    def setup(self) -> None:
        self._llm = _judge_llm_class()(self.judge, list(range(0, 11)) if self.metric == "geval" else None)

    def _build(self) -> Any:
        from deepeval.metrics import AnswerRelevancyMetric, BiasMetric, GEval, ToxicityMetric
        from deepeval.test_case import SingleTurnParams

        common = {"model": self._llm, "async_mode": False, "verbose_mode": False}
        if self.metric == "geval":
            params = [SingleTurnParams(p) for p in self.options["params"]]
            return GEval(name=self.name, evaluation_params=params,
                         evaluation_steps=list(self.options["evaluation_steps"]), **common)
        cls: dict[str, Callable[..., Any]] = {"answer_relevancy": AnswerRelevancyMetric,
                                              "bias": BiasMetric, "toxicity": ToxicityMetric}
        with warnings.catch_warnings():  # deepeval 4's one-off notice about Bias/Toxicity direction
            warnings.simplefilter("ignore", DeprecationWarning)
            return cls[self.metric](eval_mode="llm", include_reason=False, **common)

    def _test_case(self, output: str, case: Case) -> Any:
        from deepeval.test_case import LLMTestCase

        contexts = case.meta.get("contexts") if case.meta else None
        if isinstance(contexts, str):
            contexts = [contexts]
        return LLMTestCase(input=case.input, actual_output=output,
                           expected_output=case.expected[0] if case.expected else None,
                           retrieval_context=list(contexts) if contexts else None)

    def measure(self, output: str, case: Case) -> Score:
        if self.metric == "geval" and "expected_output" in self.options["params"] and not case.expected:
            return Score.unmeasured("no reference answer (GEval rubric uses expected_output)")
        metric = self._build()  # fresh per case: a failed measure() keeps the previous score
        metric.measure(self._test_case(output, case), _show_indicator=False)
        reason = getattr(metric, "reason", None)
        found = placeholder_in(reason)
        if found:
            raise JudgeOutputError(f"judge echoed the template placeholder {found!r} as its reason")
        detail: dict[str, Any] = {}
        if reason:
            detail["reason"] = reason
        if self.metric == "answer_relevancy":
            self._check_counts(metric.statements, metric.verdicts, "statements", output)
            detail["irrelevant"] = [v.reason for v in metric.verdicts if _word(v.verdict) == "no"]
        elif self.metric in ("bias", "toxicity"):
            self._check_counts(metric.opinions, metric.verdicts, "opinions", None)
            detail["flagged"] = [v.reason for v in metric.verdicts if _word(v.verdict) == "yes"]
        return Score(value=metric.score, detail=detail)

    @staticmethod
    def _check_counts(items: list[Any], verdicts: list[Any], what: str, output: str | None) -> None:
        if output is not None and output.strip() and not items:
            raise JudgeOutputError(f"judge extracted no {what} from a non-empty output")
        if len(verdicts) != len(items):
            raise JudgeOutputError(f"judge gave {len(verdicts)} verdicts for {len(items)} {what}")

    def prompt_hashes(self) -> dict[str, str]:
        out = {"deepeval_templates": _template_hash(self.metric)}
        if self.metric == "geval":
            out["rubric"] = sha256_text(self.options["rubric"])
            out["evaluation_steps"] = sha256_text(json.dumps(list(self.options["evaluation_steps"])))
            out["params"] = sha256_text(",".join(self.options["params"]))
        return out


def geval(
    rubric: str = CORRECTNESS_RUBRIC,
    name: str = "geval",
    evaluation_steps: Sequence[str] | None = None,
    params: Sequence[str] = ("input", "actual_output", "expected_output"),
    calibration_kinds: Sequence[str] = ("correctness",),
    judge: JudgeConfig | Mapping[str, Any] | None = None,
) -> DeepEvalScorer:
    """Scorer running deepeval's GEval with ``rubric``: the judge scores 0–10, reported as 0–1.

    The rubric is GEval's single evaluation step unless ``evaluation_steps`` are given, so GEval's
    step-generation call is skipped: one judge request per case, and the prompt is fixed (its
    sha256 is logged). The score is constrained to the integers 0..10.

    Args:
        rubric: What a good output is (default: factual correctness against the reference).
        name: Metric name.
        evaluation_steps: Explicit GEval steps (default: ``[rubric]``).
        params: Test-case fields shown to the judge (``input``, ``actual_output``,
            ``expected_output``, ``context``, ``retrieval_context``).
        calibration_kinds: Calibration items whose known verdicts fit this rubric (a rubric
            without matching calibration items is never trusted).
        judge: Judge settings (None = ``JudgeConfig.from_env()``: the local model by default).

    Returns:
        A scorer named ``name`` whose values are in [0, 1].
    """
    bad = [p for p in params if p not in _PARAMS]
    if bad or not params:
        raise ValueError(f"unknown GEval params {bad} (known: {', '.join(_PARAMS)})")
    steps = list(evaluation_steps) if evaluation_steps else [rubric]
    return DeepEvalScorer(name, "geval", calibration_kinds, judge,
                          rubric=rubric, evaluation_steps=steps, params=tuple(params))


def answer_relevancy(judge: JudgeConfig | Mapping[str, Any] | None = None) -> DeepEvalScorer:
    """Scorer running deepeval's AnswerRelevancyMetric: share of the output's statements the judge
    finds relevant to the input (``yes`` or ``borderline``).

    Args:
        judge: Judge settings (None = ``JudgeConfig.from_env()``).

    Returns:
        A scorer named ``answer_relevancy``, values in [0, 1], calibrated on relevance items.
    """
    return DeepEvalScorer("answer_relevancy", "answer_relevancy", ("relevance",), judge)


def deepeval_bias(judge: JudgeConfig | Mapping[str, Any] | None = None) -> DeepEvalScorer:
    """Scorer running deepeval's BiasMetric: 1 = no biased opinion found (deepeval 4 direction).

    Args:
        judge: Judge settings (None = ``JudgeConfig.from_env()``).

    Returns:
        A scorer named ``deepeval_bias``, values in [0, 1], calibrated on bias items.
    """
    return DeepEvalScorer("deepeval_bias", "bias", ("bias",), judge)


def deepeval_toxicity(judge: JudgeConfig | Mapping[str, Any] | None = None) -> DeepEvalScorer:
    """Scorer running deepeval's ToxicityMetric: 1 = no toxic opinion found (deepeval 4 direction).

    Args:
        judge: Judge settings (None = ``JudgeConfig.from_env()``).

    Returns:
        A scorer named ``deepeval_toxicity``, values in [0, 1], calibrated on toxicity items.
    """
    return DeepEvalScorer("deepeval_toxicity", "toxicity", ("toxicity",), judge)


__all__ = ["CORRECTNESS_RUBRIC", "DeepEvalScorer", "answer_relevancy", "deepeval_bias",
           "deepeval_toxicity", "geval", "judge_generate"]
