"""Kind ``golden_qa``: short factual questions with accepted reference answers.

Row: ``{"id": "geo-001", "question": "...", "answers": ["Paris"], "topic": "geography"}`` plus
optional ``cluster`` or ``template_id`` (dependent cases) and ``notes``. In CSV, ``answers`` is
one cell ``a|b|c``.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator

from aliasgate.datasets.base import Case
from aliasgate.datasets.loader import NonEmptyStr, RowModel

__all__ = ["ANSWER_SEPARATOR", "GoldenQARow"]

ANSWER_SEPARATOR = "|"
"""Separates accepted answers when ``answers`` is given as one string (CSV cells)."""


class GoldenQARow(RowModel):
    """One golden question.

    Attributes:
        id: Unique, stable id (``<topic-prefix>-NNN``).
        question: The text put to the candidate.
        answers: Accepted answers (at least one); a ``|``-separated string is split.
        topic: Slice label for per-topic metrics.
        cluster: Optional id of a group of dependent questions.
        template_id: Optional alias of ``cluster`` for template-generated questions.
        notes: Optional free text (provenance, caveats); kept in ``Case.meta``.
    """

    id: NonEmptyStr
    question: NonEmptyStr
    answers: Annotated[list[NonEmptyStr], Field(min_length=1)]
    topic: NonEmptyStr
    cluster: NonEmptyStr | None = None
    template_id: NonEmptyStr | None = None
    notes: str | None = None

    @field_validator("answers", mode="before")
    @classmethod
    def _split_answers(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(ANSWER_SEPARATOR)]
        return value

    @model_validator(mode="after")
    def _one_cluster(self) -> GoldenQARow:
        if self.cluster and self.template_id and self.cluster != self.template_id:
            raise ValueError(
                f"cluster {self.cluster!r} and template_id {self.template_id!r} disagree; give one"
            )
        return self

    def to_case(self, source: str) -> Case:
        """Map onto a :class:`Case`: question→input, answers→expected, topic→group,
        cluster/template_id→cluster, other fields (``notes``) → meta.

        Args:
            source: ``path:line`` of the row.
        """
        meta = {"notes": self.notes} if self.notes is not None else {}
        return Case(
            id=self.id,
            input=self.question,
            expected=tuple(self.answers),
            group=self.topic,
            cluster=self.cluster or self.template_id,
            meta=meta,
            source=source,
        )
