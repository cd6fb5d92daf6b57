"""Core dataset types: a :class:`Case` is the unit every other package works on."""

from __future__ import annotations

import hashlib
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

    def sample(self, fraction: float | None, seed: int = 0) -> Dataset:
        """A deterministic random sample: the cases whose cluster (or id) hashes below ``fraction``.

        Whole clusters are kept or left out together (their cases are dependent: the intervals
        resample them as units), and membership depends only on ``(seed, cluster or id)``: the
        same cases on every machine, for every candidate (so comparisons stay paired), and in
        every suite that shares the dataset (so they share the response cache). Unlike
        :meth:`head`, every part of the file is represented. The digest is kept.

        Args:
            fraction: Expected share of clusters kept, in (0, 1]; None or 1 keeps everything.
            seed: Another seed draws another sample.

        Raises:
            ValueError: ``fraction`` outside (0, 1].
        """
        if fraction is None or fraction == 1:
            return self
        if not 0 < fraction <= 1:
            raise ValueError(f"sample fraction must be in (0, 1], got {fraction}")
        kept = tuple(c for c in self.cases if sample_point(c.cluster or c.id, seed) < fraction)
        return Dataset(self.name, self.path, self.kind, kept, self.digest)


def sample_point(unit: str, seed: int = 0) -> float:
    """A uniform number in [0, 1) fixed by ``(seed, unit)``: the sampling draw of one cluster."""
    digest = hashlib.sha256(f"{seed}\x00{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
