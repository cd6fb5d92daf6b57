"""Argument checks shared by the gate statistics (binary, power, compare, groups)."""

from __future__ import annotations

import math
import operator
from typing import Any


def as_count(value: Any, what: str) -> int:
    """``value`` as a non-negative ``int``; integral floats are accepted, anything else raises.

    Args:
        value: The count to check.
        what: Its name, for the error message.

    Raises:
        ValueError: if ``value`` is not a non-negative whole number.
    """
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a whole number, got {value!r}")
    try:
        count = operator.index(value)
    except TypeError:
        if isinstance(value, float) and value.is_integer():
            count = int(value)
        else:
            raise ValueError(f"{what} must be a whole number, got {value!r}") from None
    if count < 0:
        raise ValueError(f"{what} must be >= 0, got {count}")
    return count


def check_open_unit(value: Any, what: str, *, high: float = 1.0) -> float:
    """``value`` as a float strictly between 0 and ``high``.

    Args:
        value: The level (confidence, alpha, power...) to check.
        what: Its name, for the error message.
        high: Exclusive upper limit.

    Raises:
        ValueError: if ``value`` is not a finite number in ``(0, high)``.
    """
    try:
        level = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a number, got {value!r}") from None
    if not (math.isfinite(level) and 0.0 < level < high):
        raise ValueError(f"{what} must be strictly between 0 and {high:g}, got {value!r}")
    return level


def check_margin(margin: Any) -> float:
    """``margin`` as a finite float >= 0.

    Raises:
        ValueError: if ``margin`` is not a number, or negative, NaN or infinite.
    """
    try:
        value = float(margin)
    except (TypeError, ValueError):
        raise ValueError(f"margin must be a number, got {margin!r}") from None
    if not (math.isfinite(value) and value >= 0.0):
        raise ValueError(f"margin must be a finite number >= 0, got {margin!r}")
    return value


def check_resampling(n_resamples: Any, seed: Any) -> tuple[int, int]:
    """``(n_resamples, seed)`` checked: a positive whole number and an integer seed.

    Raises:
        ValueError: if ``n_resamples`` is not a positive whole number or ``seed`` not an integer
            (a seed is recorded with every decision, so a float or bool is refused).
    """
    import numpy as np

    resamples = as_count(n_resamples, "n_resamples")
    if resamples < 1:
        raise ValueError("n_resamples must be a positive integer")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an integer (it is recorded), got {seed!r}")
    return resamples, int(seed)


def as_values(values: Any, what: str) -> Any:
    """``values`` as a one-dimensional, non-empty, finite float numpy array.

    Args:
        values: Per-case measurements.
        what: Their name, for the error message.

    Raises:
        ValueError: if ``values`` is empty, not one-dimensional, not numeric, or holds
            NaN/None/inf (unmeasured cases must be dropped by the caller, never scored).
    """
    import numpy as np

    try:
        x = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} must be numbers: {exc}") from None
    if x.ndim != 1:
        raise ValueError(f"{what} must be one-dimensional, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{what}: need at least one value")
    bad = ~np.isfinite(x)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{what}: {int(bad.sum())} value(s) are NaN/None/inf (first at index {first}); "
            "drop unmeasured cases before computing statistics"
        )
    return x


def unit_codes(clusters: Any, n: int) -> tuple[Any, int]:
    """Integer unit index per case and the number of units; ``None`` labels are singletons.

    Without ``clusters`` every case is its own unit.

    Args:
        clusters: Cluster id per case, or None.
        n: Number of cases.

    Raises:
        ValueError: if ``clusters`` has another length than ``n``.
    """
    import numpy as np

    if clusters is None:
        return np.arange(n), n
    labels = list(clusters)
    if len(labels) != n:
        raise ValueError(f"clusters has {len(labels)} labels for {n} values")
    index: dict[Any, int] = {}
    codes = np.empty(n, dtype=np.intp)
    for i, label in enumerate(labels):
        key = object() if label is None else label  # None: a cluster of its own
        codes[i] = index.setdefault(key, len(index))
    return codes, len(index)


def json_safe(value: Any) -> Any:
    """``value`` with non-finite floats as ``None``, tuples as lists and numpy scalars as Python.

    Args:
        value: A structure of dicts, lists, tuples and scalars.
    """
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        value = value.item()  # numpy scalar
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
