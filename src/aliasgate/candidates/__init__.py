"""Candidate adapters, chosen by URI scheme. Add one: a module with ``load(uri, **options)`` and one line in ``SCHEMES``.

URIs:
    ``models:/NAME@ALIAS``, ``models:/NAME/VERSION``, ``runs:/RUN_ID/PATH`` — an MLflow pyfunc model.
    ``local:smollm2`` — the embedded SmolLM2-135M-Instruct, in-process via llama.cpp.
    ``callable:package.module:function`` — a Python function ``f(messages, params) -> str``.
    ``openai:MODEL``, ``azure:DEPLOYMENT``, ``openai-compatible:MODEL@BASE_URL`` — hosted chat
    models through the ``openai`` client (see :mod:`aliasgate.candidates.openai_`).
"""

from __future__ import annotations

from typing import Any

from aliasgate._registry import Registry
from aliasgate.candidates.base import (
    Candidate,
    CandidateError,
    Generation,
    GenerationParams,
    Message,
)

SCHEMES = Registry(
    "candidate scheme",
    {
        "models": "aliasgate.candidates.mlflow_pyfunc:load",
        "runs": "aliasgate.candidates.mlflow_pyfunc:load",
        "local": "aliasgate.candidates.local:load",
        "callable": "aliasgate.candidates.callable_:load",
        "openai": "aliasgate.candidates.openai_:load",
        "azure": "aliasgate.candidates.openai_:load",
        "openai-compatible": "aliasgate.candidates.openai_:load",
    },
    entry_point_group="aliasgate.candidates",
)


def load_candidate(uri: str, **options: Any) -> Candidate:
    """Load the candidate named by ``uri`` (see module docstring for the schemes)."""
    scheme, sep, _ = uri.partition(":")
    if not sep or scheme not in SCHEMES:
        raise CandidateError(
            f"cannot load candidate {uri!r}: unknown scheme {scheme!r} "
            f"(known: {', '.join(SCHEMES.names())})"
        )
    return SCHEMES.get(scheme)(uri, **options)


__all__ = [
    "SCHEMES",
    "Candidate",
    "CandidateError",
    "Generation",
    "GenerationParams",
    "Message",
    "load_candidate",
]
