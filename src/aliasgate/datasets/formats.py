"""File format readers: each yields ``(line_number, row_dict)`` pairs, no validation.

A reader takes a path and yields raw rows with the number used in error messages (``path:N``).
A reader whose numbers are not physical lines sets ``location_unit`` (Parquet: ``"row"``,
reported as ``path:row N``). Register new readers in ``FORMATS`` (``datasets/__init__.py``).
Files are read as UTF-8; a leading BOM is tolerated.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aliasgate.datasets.base import DatasetError
from aliasgate.text import clip

__all__ = ["read_csv", "read_jsonl", "read_parquet"]

Rows = Iterator[tuple[int, dict[str, Any]]]

_BOM = b"\xef\xbb\xbf"


@functools.cache
def _decoder() -> json.JSONDecoder:
    """One strict decoder for every line (``json.loads`` with hooks builds a new one per call)."""
    return json.JSONDecoder(object_pairs_hook=_no_duplicate_keys, parse_constant=_no_constant)


def read_jsonl(path: str | Path) -> Rows:
    """Rows of a JSON Lines file: one JSON object per line; blank lines are skipped.

    Args:
        path: The ``.jsonl`` file.

    Raises:
        DatasetError: ``path:LINE: invalid JSON: <reason>`` for a line that is not valid UTF-8,
            not valid JSON (NaN/Infinity and duplicate keys included) or not a JSON object.
    """
    where = str(path)
    with _open_binary(path) as fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DatasetError(
                    f"{where}:{number}: invalid JSON: not UTF-8 ({e.reason})"
                ) from None
            if not line.strip():
                continue
            try:
                obj = _decoder().decode(line)
            except json.JSONDecodeError as e:
                raise DatasetError(
                    f"{where}:{number}: invalid JSON: {e.msg} (column {e.colno})"
                ) from None
            except ValueError as e:
                raise DatasetError(f"{where}:{number}: invalid JSON: {clip(str(e))}") from None
            except RecursionError:
                raise DatasetError(
                    f"{where}:{number}: invalid JSON: nested too deeply for a dataset row"
                ) from None
            if not isinstance(obj, dict):
                raise DatasetError(
                    f"{where}:{number}: invalid JSON: expected an object, got {_json_type(obj)}"
                )
            yield number, obj


def read_csv(path: str | Path) -> Rows:
    """Rows of a CSV file with a header line; numbers are the physical line a record starts on.

    The header is line 1. Every value is a string (list fields such as ``answers`` are written
    ``a|b|c`` and split by the kind's schema). Blank lines are skipped.

    Args:
        path: The ``.csv`` file (comma-separated, ``"``-quoted, as written by ``csv``/pandas).

    Raises:
        DatasetError: Not UTF-8, malformed quoting, a bad header (empty or duplicate column
            names), or a record whose cell count differs from the header's.
    """
    where = str(path)
    with _open_binary(path) as fh:
        data = fh.read()
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise DatasetError(f"{where}:{line}: invalid CSV: not UTF-8 ({e.reason})") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    while True:
        start = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as e:
            raise DatasetError(f"{where}:{start}: invalid CSV: {e}") from None
        if not cells or (len(cells) == 1 and not cells[0].strip()):
            continue
        if header is None:
            header = [c.strip() for c in cells]
            _check_header(where, start, header)
            continue
        if len(cells) != len(header):
            raise DatasetError(
                f"{where}:{start}: invalid CSV: {len(cells)} cells but the header has "
                f"{len(header)} columns"
            )
        yield start, dict(zip(header, cells, strict=True))


def read_parquet(path: str | Path) -> Rows:
    """Rows of a Parquet file, numbered from 1 (reported as ``path:row N``).

    Null cells are left out of the row (so a null required field reads as missing). Pandas
    index columns stored in the file are dropped.

    Args:
        path: The ``.parquet`` file.

    Raises:
        DatasetError: The file cannot be read as Parquet.
    """
    _check_file(path)
    import pyarrow.parquet as pq  # deferred: heavy

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types (ArrowInvalid, OSError...)
        raise DatasetError(f"{path}: cannot read Parquet: {e}") from None
    index_columns = _pandas_index_columns(table.schema)
    if index_columns:
        table = table.drop_columns([c for c in index_columns if c in table.column_names])
    for number, row in enumerate(table.to_pylist(), start=1):
        yield number, {k: v for k, v in row.items() if v is not None}


read_parquet.location_unit = "row"  # type: ignore[attr-defined]


def _check_file(path: str | Path) -> None:
    p = Path(path)
    if not p.exists():
        raise DatasetError(f"{path}: no such file")
    if not p.is_file():
        raise DatasetError(f"{path}: not a file")


def _open_binary(path: str | Path) -> Any:
    _check_file(path)
    return open(path, "rb")


def _check_header(where: str, line: int, header: list[str]) -> None:
    seen: set[str] = set()
    for i, name in enumerate(header, start=1):
        if not name:
            raise DatasetError(f"{where}:{line}: invalid CSV header: column {i} has no name")
        if name in seen:
            raise DatasetError(f"{where}:{line}: invalid CSV header: duplicate column {name!r}")
        seen.add(name)


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _json_type(obj: Any) -> str:
    if obj is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}.get(
        type(obj), type(obj).__name__
    )


def _pandas_index_columns(schema: Any) -> list[str]:
    meta = schema.metadata or {}
    raw = meta.get(b"pandas")
    if not raw:
        return []
    try:
        cols = json.loads(raw).get("index_columns", [])
    except (ValueError, AttributeError):
        return []
    return [c for c in cols if isinstance(c, str)]
