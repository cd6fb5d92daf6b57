"""Kind ``bbq``: the public BBQ JSONL files (Parrish et al., Findings of ACL 2022), unchanged.

One row a line, as published (``data/<Category>.jsonl``): ``example_id``, ``question_index``,
``question_polarity`` (neg/nonneg), ``context_condition`` (ambig/disambig), ``category``,
``answer_info`` (``{"ans0": [name, group label], ...}``, the unknown option labelled
``"unknown"``), ``additional_metadata`` (``stereotyped_groups``, ``subcategory``, ``version``,
``source``), ``context``, ``question``, ``ans0``..``ans2`` and ``label`` (index of the correct
option).

Mapping onto a :class:`Case`:

* ``id`` = ``<category>:<example_id>`` (unique across BBQ's files);
* ``input`` = context and question on two lines; ``expected`` = the correct option's text;
* ``group`` = ``category``; ``cluster`` = ``<category>:<question_index>``: BBQ's template (every
  example generated from one template is resampled together);
* ``meta`` follows :mod:`aliasgate.datasets.multiple_choice`, plus every other field.

The stereotyped target option follows BBQ's own analysis: the non-unknown option whose group
label or name in ``answer_info`` equals (case-insensitively) one of ``stereotyped_groups``
(Nationality matches on the name, ``["British", "Europe"]`` vs ``["British"]``; the other five
categories shipped in ``../shared`` match on the label). When no single option matches,
``target_option`` is ``None`` and the case is left out of the bias score (never guessed).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aliasgate.datasets.base import Case
from aliasgate.datasets.loader import NonEmptyStr, RowModel
from aliasgate.datasets.multiple_choice import OPTION_KEYS

__all__ = ["BBQMetadata", "BBQRow", "stereotyped_target"]


class BBQMetadata(BaseModel):
    """``additional_metadata`` of a BBQ row; unknown keys are kept (they are BBQ's, not typos).

    Attributes:
        stereotyped_groups: Groups the negative question's stereotype is about.
        subcategory: BBQ's subcategory (``"None"`` when none).
        version: Template version.
        source: Where the stereotype is documented.
    """

    model_config = ConfigDict(extra="allow", frozen=True, str_strip_whitespace=True)

    stereotyped_groups: list[NonEmptyStr] = Field(min_length=1)
    subcategory: str | None = None
    version: str | None = None
    source: str | None = None


class BBQRow(RowModel):
    """One BBQ example, as published."""

    example_id: int = Field(ge=0)
    question_index: NonEmptyStr
    question_polarity: Literal["neg", "nonneg"]
    context_condition: Literal["ambig", "disambig"]
    category: NonEmptyStr
    answer_info: dict[Literal["ans0", "ans1", "ans2"], list[str]]
    additional_metadata: BBQMetadata
    context: NonEmptyStr
    question: NonEmptyStr
    ans0: NonEmptyStr
    ans1: NonEmptyStr
    ans2: NonEmptyStr
    label: int = Field(ge=0, le=2)

    @field_validator("question_index", mode="before")
    @classmethod
    def _index_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("answer_info")
    @classmethod
    def _answer_info(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        missing = [k for k in OPTION_KEYS if k not in value]
        if missing:
            raise ValueError(f"answer_info lacks {', '.join(missing)}")
        for key, info in value.items():
            if len(info) != 2:
                raise ValueError(f"answer_info[{key!r}] must be [name, group label], got {info!r}")
        unknown = [k for k in OPTION_KEYS if value[k][1] == "unknown"]
        if len(unknown) != 1:
            raise ValueError(f"answer_info must label exactly one option 'unknown', got {unknown}")
        return value

    @property
    def unknown_option(self) -> str:
        """Key of the unknown option."""
        return next(k for k in OPTION_KEYS if self.answer_info[k][1] == "unknown")

    def to_case(self, source: str) -> Case:
        """Map onto a :class:`Case` (see the module docstring).

        Args:
            source: ``path:line`` of the row.
        """
        correct = OPTION_KEYS[self.label]
        target = stereotyped_target(self.answer_info, self.additional_metadata.stereotyped_groups)
        meta: dict[str, Any] = {
            "context": self.context,
            "question": self.question,
            "ans0": self.ans0,
            "ans1": self.ans1,
            "ans2": self.ans2,
            "correct": correct,
            "unknown_option": self.unknown_option,
            "target_option": target,
            "context_condition": self.context_condition,
            "question_polarity": self.question_polarity,
            "category": self.category,
            "example_id": self.example_id,
            "question_index": self.question_index,
            "label": self.label,
            "answer_info": {k: list(v) for k, v in self.answer_info.items()},
            "additional_metadata": self.additional_metadata.model_dump(mode="json"),
        }
        return Case(
            id=f"{self.category}:{self.example_id}",
            input=f"{self.context}\n{self.question}",
            expected=(getattr(self, correct),),
            group=self.category,
            cluster=f"{self.category}:{self.question_index}",
            meta=meta,
            source=source,
        )


def stereotyped_target(answer_info: dict[str, list[str]], stereotyped_groups: list[str]) -> str | None:
    """The option key naming the stereotyped group, or None unless exactly one option matches.

    Args:
        answer_info: BBQ's ``{"ans0": [name, group label], ...}``.
        stereotyped_groups: BBQ's ``additional_metadata.stereotyped_groups``.
    """
    groups = {g.strip().lower() for g in stereotyped_groups}
    hits = [
        key for key in OPTION_KEYS
        if answer_info[key][1] != "unknown"
        and ({answer_info[key][0].strip().lower(), answer_info[key][1].strip().lower()} & groups)
    ]
    return hits[0] if len(hits) == 1 else None
