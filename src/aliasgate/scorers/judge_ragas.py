"""ragas judge metrics: Faithfulness and AnswerCorrectness — calibrated before trusted.

The judge is ragas' LangChain LLM wrapper over a ``ChatOpenAI`` (``AzureChatOpenAI`` for Azure)
pointed at the judge endpoint, with ``max_tokens`` in ``extra_body`` (LangChain sends
``max_completion_tokens``, which llama_cpp.server ignores — PITFALLS). Each request carries the
prompt's own JSON schema as ``response_format`` (constrained where the server supports it; a 0/1
``verdict`` becomes an ``enum``). ragas' "fix the output format" retry prompt is never sent: an
answer that does not parse is a judge failure, recorded as such.

Any exception, NaN (ragas' answer to "no statements"), answer cut at ``max_tokens``, answer that
copies the prompt's worked example instead of judging the input, or empty statement list for a
non-empty text makes that case unmeasured with the reason — never 0. AnswerCorrectness uses
factuality only (similarity weight 0) unless local ``embeddings`` are passed: ragas would
otherwise default to OpenAI embeddings (PITFALLS).

ragas is imported on the first judge request only (~20 s here), with its telemetry off. Case
fields: ``question = case.input``, ``expected = case.expected[0]``,
``contexts = case.meta["contexts"]``.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from aliasgate.datasets.base import Case
from aliasgate.defaults import quiet_environment
from aliasgate.scorers.base import Score
from aliasgate.scorers.judge_calibration import JudgeScorer
from aliasgate.scorers.judge_config import (
    JudgeConfig,
    JudgeOutputError,
    constrain_schema,
    endpoint_lock,
    extra_body,
    is_loopback_url,
    langchain_chat,
    placeholder_in,
    response_format_for,
    sha256_text,
    strings_in,
)

_SCHEMA_MARKER = "as specified in JSON Schema:\n"
_EXAMPLES_MARKER = "--------EXAMPLES-----------"
_INPUT_MARKER = "Now perform the same with the following input"
_FIX_MARKER = "The output string did not satisfy the constraints given in the prompt"
#: Shortest copied string that counts as echoing the prompt's example.
_MIN_ECHO = 12


def _import_ragas() -> None:
    quiet_environment()
    import ragas  # noqa: F401 - ~20 s, only when a judge request is about to be made


def schema_in_prompt(text: str) -> dict[str, Any] | None:
    """The JSON schema a ragas ``PydanticPrompt`` embeds in its text (None if absent)."""
    at = text.find(_SCHEMA_MARKER)
    if at == -1:
        return None
    try:
        schema, _ = json.JSONDecoder().raw_decode(text, at + len(_SCHEMA_MARKER))
    except json.JSONDecodeError:
        return None
    return schema if isinstance(schema, dict) else None


def echoed_example(prompt: str, answer: str) -> str | None:
    """A string of ``answer`` copied from the prompt's worked examples but absent from its input."""
    start, end = prompt.find(_EXAMPLES_MARKER), prompt.find(_INPUT_MARKER)
    if start == -1 or end == -1:
        return None
    examples, given = prompt[start:end], prompt[end:]
    try:
        data = json.loads(answer[answer.find("{") : answer.rfind("}") + 1])
    except (json.JSONDecodeError, ValueError):
        return None
    for s in strings_in(data):
        s = s.strip()
        if len(s) >= _MIN_ECHO and s in examples and s not in given:
            return s
    return None


@lru_cache(maxsize=1)
def _wrapper_class() -> type:
    """ragas' LangChain wrapper, constraining each request to its prompt's schema (defined on
    first use: ragas is imported lazily)."""
    _import_ragas()
    from langchain_core.outputs import LLMResult
    from ragas.llms.base import LangchainLLMWrapper
    from ragas.run_config import RunConfig

    class _ConstrainedLangchainLLM(LangchainLLMWrapper):
        def __init__(self, config: JudgeConfig) -> None:
            self.config = config
            run_config = RunConfig(timeout=int(max(1, config.timeout_s)), max_retries=1,
                                   max_wait=1, seed=config.seed)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                super().__init__(langchain_chat(config), run_config=run_config,
                                 bypass_temperature=True, bypass_n=True)

        def _request_kwargs(self, text: str) -> dict[str, Any]:
            if _FIX_MARKER in text:
                m = re.search(r'"output_string":\s*"((?:[^"\\]|\\.){0,200})', text)
                raise JudgeOutputError(
                    "judge answer did not parse as the prompt's JSON schema"
                    + (f": {m.group(1)!r}" if m else "")
                )
            schema = schema_in_prompt(text)
            constrained = constrain_schema(schema, verdict_enum=[0, 1]) if schema else None
            body = extra_body(self.config, response_format_for(self.config, constrained))
            return {"extra_body": body} if body else {}

        def _check(self, text: str, result: LLMResult) -> LLMResult:
            for gens in result.generations:
                for g in gens:
                    found = placeholder_in(g.text) or (
                        f"example {echo!r}" if (echo := echoed_example(text, g.text)) else None)
                    if found:
                        raise JudgeOutputError(f"judge echoed the prompt's {found} instead of judging")
            return result

        def generate_text(self, prompt: Any, n: int = 1, temperature: float | None = None,
                          stop: list[str] | None = None, callbacks: Any = None) -> LLMResult:
            text = prompt.to_string()
            result = self.langchain_llm.generate_prompt(
                prompts=[prompt] * n, stop=stop, callbacks=callbacks, **self._request_kwargs(text))
            result.generations = [[g[0] for g in result.generations]]
            return self._check(text, result)

        async def agenerate_text(self, prompt: Any, n: int = 1, temperature: float | None = None,
                                 stop: list[str] | None = None, callbacks: Any = None) -> LLMResult:
            text = prompt.to_string()
            result = await self.langchain_llm.agenerate_prompt(
                prompts=[prompt] * n, stop=stop, callbacks=callbacks, **self._request_kwargs(text))
            result.generations = [[g[0] for g in result.generations]]
            return self._check(text, result)

    return _ConstrainedLangchainLLM


@lru_cache(maxsize=1)
def _statements_prompt_class() -> type:
    """ragas' statement-extraction prompt, failing on an empty list for a non-empty text
    (AnswerCorrectness would otherwise score two empty lists as 1.0)."""
    _import_ragas()
    from ragas.metrics._faithfulness import StatementGeneratorPrompt

    class _NonEmptyStatementGeneratorPrompt(StatementGeneratorPrompt):
        def process_output(self, output: Any, input: Any) -> Any:  # noqa: A002 - ragas' name
            if not output.statements and str(input.answer).strip():
                raise JudgeOutputError("judge extracted no statements from a non-empty text")
            return output

    return _NonEmptyStatementGeneratorPrompt


class RagasScorer(JudgeScorer):
    """A ragas single-turn metric as an aliasgate scorer (see the module docstring).

    Args:
        name: Metric name.
        metric: ``faithfulness`` or ``answer_correctness``.
        judge: Judge settings (None = :meth:`JudgeConfig.from_env`).
        embeddings: ragas embeddings for AnswerCorrectness' similarity part (None: weight 0).
    """

    calibration_kinds = ("correctness",)

    def __init__(self, name: str, metric: str,
                 judge: JudgeConfig | Mapping[str, Any] | None = None,
                 embeddings: Any = None) -> None:
        super().__init__(name, judge)
        if metric not in ("faithfulness", "answer_correctness"):
            raise ValueError(f"unknown ragas metric {metric!r}")
        self.metric = metric
        self.embeddings = embeddings
        self._url: str | None = None
        self._hashes: dict[str, str] | None = None

    @property
    def weights(self) -> tuple[float, float]:
        return (0.75, 0.25) if self.embeddings is not None else (1.0, 0.0)

    def setup(self) -> None:
        self._url = self.judge.base_url_resolved()  # starts the local judge if needed
        _wrapper_class()(self.judge)  # fails here (judge unavailable) rather than per case

    def _build(self, llm: Any) -> Any:
        _import_ragas()
        with warnings.catch_warnings():  # ragas 0.4 deprecates these imports (not the metrics)
            warnings.simplefilter("ignore", DeprecationWarning)
            from ragas.metrics import AnswerCorrectness, Faithfulness

        if self.metric == "faithfulness":
            m = Faithfulness(llm=llm)
        else:
            m = AnswerCorrectness(llm=llm, weights=list(self.weights))
            if self.embeddings is not None:
                from ragas.metrics._answer_similarity import AnswerSimilarity

                m.embeddings = self.embeddings
                m.answer_similarity = AnswerSimilarity(embeddings=self.embeddings)
        m.statement_generator_prompt = _statements_prompt_class()()
        return m

    def measure(self, output: str, case: Case) -> Score:
        from ragas.dataset_schema import SingleTurnSample
        from ragas.exceptions import LLMDidNotFinishException

        fields: dict[str, Any] = {"user_input": case.input, "response": output}
        if self.metric == "faithfulness":
            contexts = case.meta.get("contexts") if case.meta else None
            if isinstance(contexts, str):
                contexts = [contexts]
            if not contexts:
                return Score.unmeasured("no contexts (case.meta['contexts']) for faithfulness")
            fields["retrieved_contexts"] = [str(c) for c in contexts]
        else:
            if not case.expected:
                return Score.unmeasured("no reference answer for answer_correctness")
            fields["reference"] = case.expected[0]
        # Fresh metric AND LLM client per case: ragas runs each score in a new event loop, and
        # an httpx AsyncClient reused across loops fails intermittently ("Connection error").
        metric = self._build(_wrapper_class()(self.judge))
        try:
            if is_loopback_url(self._url):
                with endpoint_lock(self._url):
                    value = metric.single_turn_score(SingleTurnSample(**fields))
            else:
                value = metric.single_turn_score(SingleTurnSample(**fields))
        except LLMDidNotFinishException:
            raise JudgeOutputError(
                f"judge answer hit max_tokens={self.judge.max_tokens} before finishing") from None
        if value is None or value != value:  # NaN: ragas' "no statements"/failed parse
            return Score.unmeasured("judge returned NaN (no statements or unparsable verdicts)")
        return Score(value=float(value))

    def prompt_hashes(self) -> dict[str, str]:
        if self._hashes is None:
            metric = self._build(None)
            hashes = {name: sha256_text(p.to_string(None)) for name, p in metric.get_prompts().items()}
            if self.metric == "answer_correctness":
                hashes["weights"] = sha256_text(json.dumps(list(self.weights)))
            self._hashes = hashes
        return dict(self._hashes)


def ragas_faithfulness(judge: JudgeConfig | Mapping[str, Any] | None = None) -> RagasScorer:
    """Scorer running ragas' Faithfulness: share of the output's statements the judge finds
    supported by the case's contexts (``case.meta["contexts"]``).

    Args:
        judge: Judge settings (None = ``JudgeConfig.from_env()``: the local model by default).

    Returns:
        A scorer named ``ragas_faithfulness``, values in [0, 1]; cases without contexts are
        unmeasured.
    """
    return RagasScorer("ragas_faithfulness", "faithfulness", judge)


def ragas_answer_correctness(
    judge: JudgeConfig | Mapping[str, Any] | None = None, embeddings: Any = None
) -> RagasScorer:
    """Scorer running ragas' AnswerCorrectness: F1 of the output's statements against the
    reference's, as classified by the judge (TP/FP/FN).

    Args:
        judge: Judge settings (None = ``JudgeConfig.from_env()``).
        embeddings: Local ragas embeddings; with them the score is 0.75 × factuality + 0.25 ×
            semantic similarity (ragas' default weights). Without them, factuality only: ragas
            never falls back to OpenAI embeddings here.

    Returns:
        A scorer named ``ragas_answer_correctness``, values in [0, 1]; cases without a reference
        are unmeasured.
    """
    return RagasScorer("ragas_answer_correctness", "answer_correctness", judge, embeddings)


__all__ = ["RagasScorer", "echoed_example", "ragas_answer_correctness", "ragas_faithfulness",
           "schema_in_prompt"]
