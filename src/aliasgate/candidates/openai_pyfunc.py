"""MLflow models-from-code file for a hosted chat model. Logged by path, not imported.

``aliasgate.registry.models.register_openai_candidate`` logs *this file* as the model with the
resolved :class:`~aliasgate.candidates.openai_.OpenAIConfig` as ``model_config``: provider,
endpoint or base URL, model/deployment, API version, system prompt, generation params and the
NAME of the environment variable holding the key. The key itself is never logged: it is read
from that variable when the model is loaded (:meth:`AliasgateOpenAIModel.load_context`), so
the loading machine must have it set.

``aliasgate.candidates.mlflow_pyfunc`` unwraps a loaded model of this kind to its inner
:class:`~aliasgate.candidates.openai_.OpenAICandidate`: ``models:/NAME@ALIAS`` then calls the
hosted model directly, concurrently, with the same fingerprint (and cache entries) as the
equivalent ``openai:``/``azure:``/``openai-compatible:`` URI.

``predict`` accepts a list of user prompts (strings), a list of ``{"messages": [...]}`` dicts, or a
pandas DataFrame with a ``prompt`` or ``messages`` column, and returns one string per row.
"""

from __future__ import annotations

from typing import Any

from aliasgate.candidates.messages import pyfunc_rows
from aliasgate.defaults import quiet_environment

quiet_environment()

import mlflow  # noqa: E402 - telemetry must be off before the import
from mlflow.pyfunc import PythonModel  # noqa: E402

#: Marks the model class for ``aliasgate.candidates.mlflow_pyfunc`` (MLflow executes this file
#: under a fresh module name, so class identity cannot be used to recognise it).
ALIASGATE_MODEL_KIND = "aliasgate.openai"


class AliasgateOpenAIModel(PythonModel):
    """A hosted chat model (OpenAI, Azure OpenAI, OpenAI-compatible) as an MLflow pyfunc model."""

    aliasgate_kind = ALIASGATE_MODEL_KIND
    _skip_type_hint_validation = True  # takes lists *or* DataFrames (see pyfunc_model.py)

    def __init__(self) -> None:
        # Cheap on purpose, and no key needed: MLflow runs this file once at log time too.
        self.candidate: Any = None

    def load_context(self, context: Any) -> None:
        """Build the OpenAICandidate from ``context.model_config`` (reads the key from the env)."""
        from aliasgate.candidates.openai_ import OpenAICandidate

        self.candidate = OpenAICandidate.from_model_config(dict(context.model_config or {}))

    def predict(self, context: Any, model_input, params: dict[str, Any] | None = None) -> list[str]:
        """One completion text per input row.

        Args:
            context: The MLflow context (unused).
            model_input: Prompt strings, ``{"messages": [...]}`` dicts, or a DataFrame with a
                ``prompt`` or ``messages`` column.
            params: Generation-parameter overrides (``max_tokens``...).
        """
        if self.candidate is None:
            raise RuntimeError("AliasgateOpenAIModel.predict called before load_context")
        gen_params = self.candidate.params.merged(params)
        return [self.candidate.generate(rows, gen_params).text for rows in pyfunc_rows(model_input)]


mlflow.models.set_model(AliasgateOpenAIModel())
