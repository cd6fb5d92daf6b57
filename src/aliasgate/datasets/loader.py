"""Read a dataset file, validate every row against its kind's schema, build :class:`Dataset`.

Pipeline: the file extension picks a reader in ``FORMATS`` (each yields ``(line_number, dict)``
rows); ``kind`` picks a row schema in ``KINDS``; every row is validated, all errors are
collected and raised together as one :class:`DatasetError` whose lines read
``path:LINE: field 'answers': <message>``.

Adding a kind (safety prompts, bias templates...) is one file plus one line in ``KINDS``
(``aliasgate/datasets/__init__.py``). A kind is a pydantic v2 model, normally a subclass of
:class:`RowModel`, with:

- one field per column; unknown columns are rejected (``extra="forbid"``) so a typo never
  passes silently; strings are stripped; an empty optional string counts as absent;
- ``to_case(self, source: str) -> Case``: map the validated row onto the generic
  :class:`Case` (``source`` is ``path:line``); every field not mapped onto a ``Case``
  attribute goes to ``Case.meta`` so nothing is lost; ``Case.id`` must be unique in a dataset;
- optionally ``to_cases(self, source: str) -> Sequence[Case]`` instead, for a row that expands
  into several cases (a template filled with each of its slot values, see
  ``bias_counterfactual.py``); the loader then uses it, and checks every case id as above.

Remember CSV cells are strings: a list field should accept a ``|``-separated string (see
``golden_qa.py``), numbers rely on pydantic's lax coercion. The digest covers
``model_dump(mode="json")`` of every validated row, so it is the same for the same content in
any format, with any key order or whitespace.

Example::

    class SafetyPromptRow(RowModel):
        id: NonEmptyStr
        prompt: NonEmptyStr
        category: NonEmptyStr

        def to_case(self, source: str) -> Case:
            return Case(id=self.id, input=self.prompt, group=self.category, source=source)
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, Protocol, runtime_checkable

from pydantic import (
    BaseModel,
    ConfigDict,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from aliasgate.datasets.base import Case, Dataset, DatasetError
from aliasgate.text import clip

__all__ = [
    "MAX_REPORTED_ERRORS",
    "NonEmptyStr",
    "RowModel",
    "RowSchema",
    "dataset_digest",
    "load_dataset",
]

MAX_REPORTED_ERRORS = 20
"""At most this many error lines are listed; the rest are summarised as ``... and N more``."""

NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
"""A string that is not empty after stripping surrounding whitespace."""


@runtime_checkable
class RowSchema(Protocol):
    """What the loader needs from a kind: pydantic validation and dumping, plus ``to_case``."""

    @classmethod
    def model_validate(cls, obj: Any) -> Any: ...

    def model_dump(self, *, mode: str = ...) -> dict[str, Any]: ...

    def to_case(self, source: str) -> Case: ...


class RowModel(BaseModel):
    """Base class for dataset kinds: strict about unknown fields, stripped strings, frozen rows.

    An empty (or whitespace-only) string given for an *optional* field is treated as absent,
    so a blank CSV cell and a missing JSON key validate (and digest) the same way.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _blank_optional_is_absent(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        for value in data.values():  # the common case, fast: no blank string at all
            if type(value) is str and not value.strip():
                break
        else:
            return data
        optional = cls._optional_fields()
        return {key: value for key, value in data.items()
                if not (key in optional and isinstance(value, str) and not value.strip())}

    @classmethod
    def _optional_fields(cls) -> frozenset[str]:
        """Names of the fields that may be absent (computed once per kind)."""
        cached = cls.__dict__.get("_aliasgate_optional")
        if cached is None:
            cached = frozenset(k for k, f in cls.model_fields.items() if not f.is_required())
            type.__setattr__(cls, "_aliasgate_optional", cached)
        return cached

    def to_case(self, source: str) -> Case:  # pragma: no cover - every kind overrides it
        """Map this row onto a :class:`Case`.

        Args:
            source: ``path:line`` of the row, stored in ``Case.source``.
        """
        raise NotImplementedError(f"{type(self).__name__} must define to_case(source)")


def dataset_digest(rows: Iterable[BaseModel | Mapping[str, Any]]) -> str:
    """``"sha256:<hex>"`` of the canonical JSON of validated rows.

    Canonical JSON: sorted keys, ``(",", ":")`` separators, non-ASCII kept and encoded as UTF-8,
    NaN/Infinity refused.

    Args:
        rows: Validated rows (pydantic models, dumped with ``mode="json"``) or plain mappings,
            in dataset order.
    """
    items = list(rows)
    kinds = {type(row) for row in items}
    if len(kinds) == 1 and issubclass(next(iter(kinds)), BaseModel):
        # one kind: dumped in one call of pydantic's serializer, identical to per-row model_dump
        payload = _list_adapter(next(iter(kinds))).dump_python(items, mode="json")
    else:
        payload = [row.model_dump(mode="json") if isinstance(row, BaseModel) else dict(row)
                   for row in items]
    text = json.dumps(
        payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.lru_cache(maxsize=64)
def _list_adapter(model: type) -> TypeAdapter[Any]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def load_dataset(path: str | Path, kind: str = "golden_qa", name: str | None = None) -> Dataset:
    """Read and validate a dataset file.

    Args:
        path: A ``.jsonl``, ``.csv`` or ``.parquet`` file (any extension registered in ``FORMATS``).
        kind: Row schema registered in ``KINDS`` (``golden_qa``...).
        name: Dataset name; the file stem when None.

    Returns:
        A :class:`Dataset` with cases in file order and a content digest.

    Raises:
        DatasetError: Missing file, unknown format or kind, unreadable file, empty dataset, or
            invalid rows (every problem listed, one ``path:LINE: ...`` per line).
    """
    from aliasgate.datasets import KINDS

    where = str(path)
    p = Path(path)
    source_rows = read_rows(path)
    try:
        schema = KINDS.get(kind)
    except KeyError as e:
        raise DatasetError(f"{where}: {e.args[0]}") from None
    # looked up on the class once: on a pydantic instance a missing attribute is a slow path
    expand = getattr(schema, "to_cases", None)  # a template row -> several cases
    validate = schema.model_validate

    rows: list[Any] = []
    cases: list[Case] = []
    errors: list[str] = []
    first_seen: dict[str, str] = {}
    try:
        for source, raw in source_rows:
            try:
                row = validate(raw)
            except RecursionError:
                errors.append(f"{source}: the row nests too deeply")
                continue
            except ValidationError as e:
                errors.extend(f"{source}: {msg}" for msg in _describe(e, schema))
                continue
            row_cases = list(expand(row, source)) if callable(expand) else [row.to_case(source)]
            fresh = []
            for case in row_cases:
                cid, problem = normalize_id(case.id)
                if problem:
                    errors.append(f"{source}: field 'id': {problem}")
                    continue
                if cid != case.id:
                    case = dataclasses.replace(case, id=cid)
                if case.id in first_seen:
                    errors.append(
                        f"{source}: duplicate id {case.id!r} (first at {first_seen[case.id]})"
                    )
                    continue
                first_seen[case.id] = source
                fresh.append(case)
            if len(fresh) != len(row_cases):
                continue
            rows.append(row)
            cases.extend(fresh)
    except DatasetError as e:  # the file cannot be read further: report it with earlier errors
        if not errors:
            raise
        fatal: str | None = str(e)
    else:
        fatal = None

    if errors:
        raise_errors(errors, fatal)
    if not cases:
        raise DatasetError(f"{where}: dataset is empty (no rows)")
    return Dataset(
        name=name or p.stem,
        path=where,
        kind=kind,
        cases=tuple(cases),
        digest=dataset_digest(rows),
    )


def read_rows(path: str | Path, what: str = "dataset") -> Iterator[tuple[str, dict[str, Any]]]:
    """Check that ``path`` is a file in a registered format, then iterate its rows.

    The checks run now (not at the first ``next``); reading errors surface while iterating.

    Args:
        path: A ``.jsonl``, ``.csv`` or ``.parquet`` file (any extension registered in ``FORMATS``).
        what: What the file is, for messages (``dataset``, ``predictions``).

    Returns:
        An iterator of ``(source, row)``: ``source`` is ``path:LINE`` (``path:row N`` for formats
        without lines), ``row`` the raw mapping.

    Raises:
        DatasetError: Missing file or unknown format.
    """
    from aliasgate.datasets import FORMATS

    where = str(path)
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"{where}: no such file" if not p.exists() else f"{where}: not a file")
    suffix = p.suffix.lower()
    if suffix not in FORMATS:
        known = ", ".join(FORMATS.names())
        raise DatasetError(
            f"{where}: unknown {what} format {suffix or '(none)'!r} (known: {known})"
        )
    reader = FORMATS.get(suffix)
    unit = getattr(reader, "location_unit", None)

    def rows() -> Iterator[tuple[str, dict[str, Any]]]:
        for number, raw in reader(p):
            yield (f"{where}:{unit} {number}" if unit else f"{where}:{number}"), raw

    return rows()


def raise_errors(errors: list[str], fatal: str | None = None) -> None:
    """Raise one :class:`DatasetError` listing ``errors`` (at most ``MAX_REPORTED_ERRORS``).

    Args:
        errors: ``path:LINE: ...`` messages, in file order.
        fatal: Why reading stopped early, if it did (listed last).
    """
    shown = [clip(e) for e in errors[:MAX_REPORTED_ERRORS]]
    if len(errors) > MAX_REPORTED_ERRORS:
        shown.append(f"... and {len(errors) - MAX_REPORTED_ERRORS} more")
    if fatal:
        shown.append(clip(fatal))
    raise DatasetError("\n".join(shown))


def normalize_id(case_id: str) -> tuple[str, str | None]:
    """A case id in Unicode NFC (``é`` and ``e`` + U+0301 are one id), or why it is refused.

    Control, format (zero-width, bidi) and unassigned characters are refused: two ids that look
    the same must be the same id.
    """
    cid = unicodedata.normalize("NFC", case_id)
    for ch in cid:
        if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            return cid, (f"id {clip(repr(cid))} contains the control or invisible character "
                         f"U+{ord(ch):04X}")
    return cid, None


def _describe(error: ValidationError, schema: Any) -> list[str]:
    """Readable one-line messages (``field 'x': ...``) for a pydantic validation error."""
    out = []
    for item in error.errors(include_url=False):
        loc = tuple(item.get("loc", ()))
        field = str(loc[0]) if loc else ""
        inner = "".join(
            f"item {part + 1}: " if isinstance(part, int) else f"key {part!r}: " for part in loc[1:]
        )
        kind = item.get("type", "")
        if kind == "extra_forbidden":
            allowed = ", ".join(getattr(schema, "model_fields", {}))
            msg = f"unknown field (allowed: {allowed})"
        elif kind == "missing":
            msg = "required field is missing"
        elif kind == "value_error" and "error" in item.get("ctx", {}):
            msg = str(item["ctx"]["error"])
        else:
            msg = item.get("msg", "invalid")
            if field and "input" in item:
                msg += f" (got {_short(item['input'])})"
        out.append(f"field {field!r}: {inner}{msg}" if field else msg)
    return out


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
