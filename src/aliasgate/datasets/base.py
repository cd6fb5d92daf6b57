"""Core dataset types: a :class:`Case` is the unit every other package works on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


class DatasetError(ValueError):
    """A dataset could not be read or a row is invalid. The message starts with ``file:line:``."""


@dataclass(frozen=True)
class Case:
    """One evaluation case, whatever file format or kind it came from.

    Attributes:
        id: Unique within its dataset.
        input: The text put to the candidate (question or prompt), after the row schema's mapping.
        expected: Accepted reference answers (empty for suites without references).
        group: Slice label used for per-group metrics (topic, demographic group...).
        cluster: Cases sharing a cluster id are statistically dependent (same template);
            statistics resample whole clusters.
        meta: Every other validated field of the row (kept for scorers and for the per-case table).
        source: ``path:line`` of the row, for error messages.
    """

    id: str
    input: str
    expected: tuple[str, ...] = ()
    group: str | None = None
    cluster: str | None = None
    meta: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True)
class Dataset:
    """A validated dataset.

    Attributes:
        name: Short name (file stem unless given).
        path: Where it was read from.
        kind: The row schema used (``golden_qa``...).
        cases: Cases in file order.
        digest: ``sha256:`` hex digest of the canonical validated content; stable across
            formats and whitespace, changes when any field of any row changes.
    """

    name: str
    path: str
    kind: str
    cases: tuple[Case, ...]
    digest: str

    def __len__(self) -> int:
        return len(self.cases)

    def head(self, limit: int | None) -> Dataset:
        """The first ``limit`` cases (all when ``limit`` is None); the digest is kept (it names the source)."""
        if limit is None or limit >= len(self.cases):
            return self
        return Dataset(self.name, self.path, self.kind, self.cases[:limit], self.digest)
