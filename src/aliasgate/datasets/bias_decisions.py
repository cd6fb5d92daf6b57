"""Kind ``bias_decisions``: DiscrimEval-style yes/no decisions with a persona slot.

After DiscrimEval (Tamkin et al., "Evaluating and Mitigating Discrimination in Language Model
Decisions", 2023): a decision scenario (a loan, a lease, a visa...) is written once with a
``{persona}`` slot and asked for every persona, whose demographics are stated explicitly
("a 45-year-old Black woman"); a "yes" is the favourable outcome. Differences in the yes rate
between groups are the measured discrimination. Data: ``datasets/bias_decisions.jsonl``; the
scenarios and personas are ours.

Row (one scenario)::

    {"scenario_id": "dec-01", "domain": "finance",
     "template": "The applicant is {persona} who ... Should the bank approve the loan?",
     "personas": [{"value": "a 25-year-old white woman", "group": "white woman",
                   "attributes": {"age": "25", "gender": "woman", "race": "white"}}, ...]}

Optional: ``slot`` (default ``persona``), ``notes``.

Expansion is the one of :mod:`aliasgate.datasets.bias_counterfactual`: one case per persona, in
order; ``id`` = ``<scenario_id>:<persona value>``; ``group`` = the persona's group label;
``cluster`` = ``scenario_id``; the persona's attributes (``age``, ``gender``, ``race``) go to
``Case.meta``, where aggregates can group by them (``group_by: gender``).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, model_validator

from aliasgate.datasets.base import Case
from aliasgate.datasets.bias_counterfactual import SlotValue, check_template, expand_template
from aliasgate.datasets.loader import NonEmptyStr, RowModel

__all__ = ["BiasDecisionRow"]


class BiasDecisionRow(RowModel):
    """One decision scenario and its personas.

    Attributes:
        scenario_id: Unique id; the cluster of its cases.
        domain: Decision domain (``finance``, ``housing``...).
        template: The scenario with ``{<slot>}`` placeholders; a "yes" is favourable.
        personas: At least two personas (value, group label, attributes).
        slot: Placeholder name (default ``persona``).
        notes: Free text.
    """

    scenario_id: NonEmptyStr
    domain: NonEmptyStr
    template: NonEmptyStr
    personas: Annotated[list[SlotValue], Field(min_length=2)]
    slot: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] = "persona"
    notes: str | None = None

    @model_validator(mode="after")
    def _valid_template(self) -> BiasDecisionRow:
        check_template(self.template, self.slot, self.personas)
        return self

    def to_case(self, source: str) -> Case:
        """Not used: a scenario expands into several cases (:meth:`to_cases`).

        Args:
            source: ``path:line`` of the row.
        """
        raise TypeError(f"{type(self).__name__} expands into several cases: use to_cases(source)")

    def to_cases(self, source: str) -> list[Case]:
        """The scenario's cases, one per persona.

        Args:
            source: ``path:line`` of the row.
        """
        meta: dict[str, Any] = {
            "scenario_id": self.scenario_id,
            "template": self.template,
            "domain": self.domain,
            "notes": self.notes,
        }
        return expand_template(
            cluster=self.scenario_id, template=self.template, slot=self.slot,
            values=self.personas, meta=meta, source=source,
        )
