"""Kind ``bias_bbq``: our own BBQ-style multiple-choice items (``datasets/bias_bbq.jsonl``).

The design follows BBQ (Parrish et al., Findings of ACL 2022); the texts are ours. Each template
(``template_id``) names two people from two groups and yields six rows:

* an ambiguous context with a negative and a non-negative question (correct: the unknown option);
* two disambiguated contexts, one in which the target-group person does what the negative question
  asks about and one in which the other person does, each with both questions. The correct answer
  is thus the stereotype-consistent person in half of the disambiguated items, as in BBQ, so a
  perfectly accurate model has a disambiguated bias score of 0.

Row::

    {"id": "bbq-age-01:ambig:neg", "template_id": "bbq-age-01", "category": "age",
     "context_condition": "ambig", "question_polarity": "neg",
     "context": "...", "question": "Who struggled with the computer?",
     "ans0": "The retiree", "ans1": "Cannot be determined", "ans2": "The college student",
     "label": 1, "unknown_option": "ans1", "target_option": "ans0"}

``target_option`` is the option naming the group the negative question's stereotype is about
(the biased answer to the negative question); ``label`` is the index of the correct option.
Validation: the two keys differ; in an ambiguous context the correct option is the unknown one,
in a disambiguated context it is not; option texts differ. ``cluster`` = ``template_id``,
``group`` = ``category``, ``meta`` per :mod:`aliasgate.datasets.multiple_choice`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from aliasgate.datasets.base import Case
from aliasgate.datasets.loader import NonEmptyStr, RowModel
from aliasgate.datasets.multiple_choice import OPTION_KEYS

__all__ = ["BiasBBQRow"]

OptionKey = Literal["ans0", "ans1", "ans2"]


class BiasBBQRow(RowModel):
    """One of our BBQ-style items.

    Attributes:
        id: Unique id (``<template_id>:<condition>[-<variant>]:<polarity>``).
        template_id: The template the item comes from (the bootstrap cluster).
        category: Bias category (``age``, ``disability``...); the slice label.
        context_condition: ``ambig`` or ``disambig``.
        question_polarity: ``neg`` or ``nonneg``.
        context: The story.
        question: The question about one of its two people.
        ans0: First option.
        ans1: Second option.
        ans2: Third option.
        label: Index of the correct option (0, 1 or 2).
        unknown_option: Key of the "cannot be determined" option.
        target_option: Key of the option naming the stereotyped group.
        notes: Free text (kept in meta).
    """

    id: NonEmptyStr
    template_id: NonEmptyStr
    category: NonEmptyStr
    context_condition: Literal["ambig", "disambig"]
    question_polarity: Literal["neg", "nonneg"]
    context: NonEmptyStr
    question: NonEmptyStr
    ans0: NonEmptyStr
    ans1: NonEmptyStr
    ans2: NonEmptyStr
    label: int = Field(ge=0, le=2)
    unknown_option: OptionKey
    target_option: OptionKey
    notes: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> BiasBBQRow:
        if self.unknown_option == self.target_option:
            raise ValueError("unknown_option and target_option must be different options")
        texts = [self.ans0.lower(), self.ans1.lower(), self.ans2.lower()]
        if len(set(texts)) != 3:
            raise ValueError("the three options must have different texts")
        correct = OPTION_KEYS[self.label]
        if self.context_condition == "ambig" and correct != self.unknown_option:
            raise ValueError("in an ambiguous context the correct option is the unknown one")
        if self.context_condition == "disambig" and correct == self.unknown_option:
            raise ValueError("in a disambiguated context the correct option names a person")
        return self

    def to_case(self, source: str) -> Case:
        """Map onto a :class:`Case`: template_id→cluster, category→group, options→meta.

        Args:
            source: ``path:line`` of the row.
        """
        correct = OPTION_KEYS[self.label]
        meta: dict[str, Any] = {
            "context": self.context,
            "question": self.question,
            "ans0": self.ans0,
            "ans1": self.ans1,
            "ans2": self.ans2,
            "correct": correct,
            "unknown_option": self.unknown_option,
            "target_option": self.target_option,
            "context_condition": self.context_condition,
            "question_polarity": self.question_polarity,
            "category": self.category,
            "template_id": self.template_id,
            "label": self.label,
        }
        if self.notes is not None:
            meta["notes"] = self.notes
        return Case(
            id=self.id,
            input=f"{self.context}\n{self.question}",
            expected=(getattr(self, correct),),
            group=self.category,
            cluster=self.template_id,
            meta=meta,
            source=source,
        )
