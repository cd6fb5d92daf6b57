"""aliasgate: evaluate LLM candidates with pytest, log to MLflow, gate registry aliases.

Importing this package is cheap: nothing heavy (mlflow, llama_cpp, scipy) is imported until
it is used. ``aliasgate.Suite`` is the one object users touch in ``evals/``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Suite", "__version__"]

if TYPE_CHECKING:  # pragma: no cover
    from aliasgate.run.suite import Suite


def __getattr__(name: str) -> Any:
    if name == "Suite":
        from aliasgate.run.suite import Suite

        return Suite
    raise AttributeError(f"module 'aliasgate' has no attribute {name!r}")
