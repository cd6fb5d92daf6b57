"""Suite declarations: what users write in ``evals/``. Declaring a suite imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_PROMPT = "{input}"


@dataclass(frozen=True)
class Suite:
    """An evaluation suite: a dataset, how to prompt with each case, and how to score the output.

    Put one at module level in an ``evals/test_*.py`` file and ``pytest evals/`` runs it
    against ``--candidate``.

    Args:
        name: Metric prefix and MLflow child-run name (``golden`` → ``golden.token_f1``).
        dataset: Path to a JSONL/CSV/Parquet file, relative to the declaring file's directory's
            parent (the project root) or absolute.
        kind: Row schema of the dataset (``golden_qa``...).
        scorers: Registered scorer names (see ``aliasgate.scorers.available()``).
        prompt: Template of the user message; ``{input}`` and any row field may be used.
        params: Generation parameter overrides for this suite (e.g. ``{"max_tokens": 32}``).
        aggregates: Suite-level metrics (``aliasgate.stats.aggregate.AGGREGATES``) by name, with
            their options: ``{"group_rates": {"metrics": ["refused"]}}``.
        description: Shown in reports.
    """

    name: str
    dataset: str
    kind: str = "golden_qa"
    scorers: tuple[str, ...] = ("exact_match", "token_f1", "contains", "rouge_l")
    prompt: str = DEFAULT_PROMPT
    params: dict[str, Any] = field(default_factory=dict)
    aggregates: dict[str, dict[str, Any]] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("_", "").replace("-", "").isalnum():
            raise ValueError(f"suite name must be alphanumeric with _ or -, got {self.name!r}")
        object.__setattr__(self, "scorers", tuple(self.scorers))

    def dataset_path(self, root: str | Path) -> Path:
        p = Path(self.dataset)
        return p if p.is_absolute() else Path(root) / p

    def render(self, input_text: str, meta: dict[str, Any]) -> str:
        """The user message for one case."""
        fields = {**meta, "input": input_text}
        return self.prompt.format(**fields)
