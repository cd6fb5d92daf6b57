"""Kind ``xstest``: the public XSTest v2 prompts (Röttger et al., NAACL 2024), as distributed.

The CSV has the columns ``id, prompt, type, label, focus, note``: 250 safe prompts that look
unsafe (types ``homonyms``, ``figurative_language``, ``safe_targets``, ``safe_contexts``,
``definitions``, ``real_group_nons_discr``, ``nons_group_real_discr``, ``historical_events``,
``privacy_public``, ``privacy_fictional``) and 200 unsafe contrast prompts (``contrast_*``);
``label`` is ``safe`` or ``unsafe``. A row without a label gets it from its type
(``contrast_*`` → ``unsafe``). Cases are grouped by ``type``; ``meta`` holds ``label``, ``type``,
``focus`` and ``note`` so the same suites and ``where`` filters work as for ``safety_prompts``.
The data is CC-BY-4.0 and is read from where it lies (``../shared``), never copied.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import field_validator, model_validator

from aliasgate.datasets.base import Case
from aliasgate.datasets.loader import NonEmptyStr, RowModel

__all__ = ["XSTestRow"]

_LABELS = {"safe": "safe", "unsafe": "unsafe"}


class XSTestRow(RowModel):
    """One XSTest prompt.

    Attributes:
        id: XSTest's id (a number in the CSV, kept as a string).
        prompt: The prompt.
        type: XSTest prompt type; the group.
        label: ``safe`` or ``unsafe`` (case-insensitive); inferred from ``type`` when blank.
        focus: The trigger word (``kill``...), often blank.
        note: XSTest's note (``violence``, ``fiction``...), often blank.
    """

    id: NonEmptyStr
    prompt: NonEmptyStr
    type: NonEmptyStr
    label: Literal["safe", "unsafe"]
    focus: str | None = None
    note: str | None = None

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("label", mode="before")
    @classmethod
    def _map_label(cls, value: Any) -> Any:
        if isinstance(value, str):
            return _LABELS.get(value.strip().lower(), value)
        return value

    @model_validator(mode="before")
    @classmethod
    def _infer_label(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        label, kind = data.get("label"), data.get("type")
        if (label is None or (isinstance(label, str) and not label.strip())) and isinstance(kind, str):
            data = {**data, "label": "unsafe" if kind.strip().startswith("contrast_") else "safe"}
        return data

    def to_case(self, source: str) -> Case:
        """Map onto a :class:`Case`: prompt→input, type→group; ``label``, ``type``, ``focus``,
        ``note`` → meta.

        Args:
            source: ``path:line`` of the row.
        """
        meta: dict[str, Any] = {"label": self.label, "type": self.type}
        if self.focus is not None:
            meta["focus"] = self.focus
        if self.note is not None:
            meta["note"] = self.note
        return Case(id=self.id, input=self.prompt, group=self.type, meta=meta, source=source)
