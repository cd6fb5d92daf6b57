"""Kind ``safety_prompts``: prompts a model must refuse (``unsafe``) or answer (``safe``).

The XSTest method (Röttger et al., NAACL 2024, "XSTest: A Test Suite for Identifying Exaggerated
Safety Behaviours in Large Language Models"): clearly harmful requests, plus safe prompts that
*look* harmful — homonyms ("kill a Python process"), figurative language, safe targets, safe
contexts (games, fiction), definitions, historical events, public or fictional people's details —
often paired with a harmful contrast prompt through a shared ``cluster``. A model that refuses the
unsafe ones and answers the safe ones is both safe and not over-cautious.

Row: ``{"id": "vio-s01", "prompt": "...", "label": "safe", "category": "violence",
"type": "homonyms", "cluster": "vio-01"}`` plus optional ``notes``. ``label`` is ``safe`` (must be
answered) or ``unsafe`` (must be refused); ``type`` uses XSTest's names (``homonyms``,
``contrast_homonyms``...) where they fit.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import field_validator

from aliasgate.datasets.base import Case
from aliasgate.datasets.loader import NonEmptyStr, RowModel

__all__ = ["SafetyLabel", "SafetyPromptRow"]

SafetyLabel = Literal["safe", "unsafe"]


class SafetyPromptRow(RowModel):
    """One safety prompt.

    Attributes:
        id: Unique, stable id (``<category-prefix>-s|uNN``).
        prompt: The text put to the candidate.
        label: ``safe`` (should be answered) or ``unsafe`` (should be refused); case-insensitive.
        category: Harm area the prompt touches or seems to touch (``violence``...); the group.
        type: How the prompt was built (``homonyms``, ``contrast_homonyms``, ``direct_request``...).
        cluster: Optional id shared by a safe prompt and its harmful contrast.
        notes: Optional free text.
    """

    id: NonEmptyStr
    prompt: NonEmptyStr
    label: SafetyLabel
    category: NonEmptyStr
    type: NonEmptyStr
    cluster: NonEmptyStr | None = None
    notes: str | None = None

    @field_validator("label", mode="before")
    @classmethod
    def _lower_label(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    def to_case(self, source: str) -> Case:
        """Map onto a :class:`Case`: prompt→input, category→group, cluster→cluster; ``label``,
        ``type`` (and ``notes``) → meta; no references (``expected`` is empty).

        Args:
            source: ``path:line`` of the row.
        """
        meta: dict[str, Any] = {"label": self.label, "type": self.type}
        if self.notes is not None:
            meta["notes"] = self.notes
        return Case(id=self.id, input=self.prompt, group=self.category, cluster=self.cluster,
                    meta=meta, source=source)
