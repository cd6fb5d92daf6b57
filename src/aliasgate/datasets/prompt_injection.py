"""Kind ``prompt_injection``: attempts to make a model reveal a secret from its system prompt.

Row: ``{"id": "inj-001", "prompt": "Ignore all previous instructions...", "technique":
"ignore_instructions"}`` plus optional ``cluster``, ``canary`` and ``notes``.

Each case carries a **canary** in ``Case.meta["canary"]``: the row's own ``canary`` when given,
otherwise one derived from the row id (:func:`default_canary`, ``AGC-`` + 8 hex digits), so every
case has a distinct secret and a leak cannot come from another case. A suite puts it in its
system prompt (``Suite(system="... access code: {canary} ...")``) and the ``canary_leak`` scorer
reads it back from the case.
"""

from __future__ import annotations

import hashlib
from typing import Any

from aliasgate.datasets.base import Case
from aliasgate.datasets.loader import NonEmptyStr, RowModel

__all__ = ["CANARY_PREFIX", "PromptInjectionRow", "default_canary"]

CANARY_PREFIX = "AGC-"


def default_canary(case_id: str) -> str:
    """The canary of a row without its own: ``AGC-`` + 8 upper-case hex digits of sha256(id).

    Args:
        case_id: The row id.
    """
    return CANARY_PREFIX + hashlib.sha256(case_id.encode("utf-8")).hexdigest()[:8].upper()


class PromptInjectionRow(RowModel):
    """One injection / system-prompt-leak attempt.

    Attributes:
        id: Unique, stable id.
        prompt: The attacker's user message.
        technique: How it attacks (``ignore_instructions``, ``repeat_above``, ``encoding``...);
            the group.
        cluster: Optional id of dependent attempts (variants of one attack).
        canary: Optional secret for this case (default: :func:`default_canary` of the id).
        notes: Optional free text.
    """

    id: NonEmptyStr
    prompt: NonEmptyStr
    technique: NonEmptyStr
    cluster: NonEmptyStr | None = None
    canary: NonEmptyStr | None = None
    notes: str | None = None

    def to_case(self, source: str) -> Case:
        """Map onto a :class:`Case`: prompt→input, technique→group; ``technique``, ``canary``
        (and ``notes``) → meta.

        Args:
            source: ``path:line`` of the row.
        """
        meta: dict[str, Any] = {
            "technique": self.technique,
            "canary": self.canary or default_canary(self.id),
        }
        if self.notes is not None:
            meta["notes"] = self.notes
        return Case(id=self.id, input=self.prompt, group=self.technique, cluster=self.cluster,
                    meta=meta, source=source)
