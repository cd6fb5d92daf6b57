"""Progress reporting for suite runs: a callback called once per finished case.

:func:`~aliasgate.run.runner.run_suite` takes any :data:`ProgressCallback` as ``on_result``;
:func:`rich_progress` gives one that drives a rich progress bar, :class:`NullProgress` one that
does nothing. rich is imported only when a bar is asked for.

A callback may also have a ``set_total(n)`` method: ``run_suite`` calls it once, before any
case, with the number of cases it will evaluate — after the suite's ``where`` filter and
``limit`` — so a bar created from the dataset's size is corrected to what is actually run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from aliasgate.run.results import CaseResult

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console

ProgressCallback = Callable[[CaseResult], None]
"""Called once per case when its model call has finished (or was served from the cache, or
failed). Scores are not filled in yet at that point."""


class NullProgress:
    """A progress callback that does nothing; also a context manager yielding itself.

    Takes (and ignores) the same arguments as :func:`rich_progress`, so either can be chosen
    at run time: ``(rich_progress if tty else NullProgress)("golden", 100)``.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        pass

    def __call__(self, result: CaseResult) -> None:
        return None

    def set_total(self, total: int) -> None:
        return None

    def __enter__(self) -> NullProgress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        return None


@contextmanager
def rich_progress(
    description: str, total: int, *, console: Console | None = None
) -> Iterator[ProgressCallback]:
    """A rich progress bar for one suite run, as a context manager yielding the callback.

    The bar shows done/total, how many cases came from the cache, how many are unmeasured,
    elapsed time and ETA.

    Args:
        description: Label left of the bar (the suite name, usually).
        total: Number of cases expected.
        console: The rich console to draw on (default: rich's global console, stderr-aware).

    Yields:
        A :data:`ProgressCallback` advancing the bar by one per call (thread-safe), with a
        ``set_total(n)`` method that ``run_suite`` calls with the number of cases it evaluates
        (``total`` may be the dataset's size before a suite's ``where`` filter).
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("cached {task.fields[cached]}"),
        TextColumn("unmeasured {task.fields[unmeasured]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=console,
    )
    lock = threading.Lock()
    counts = {"cached": 0, "unmeasured": 0}

    with progress:
        task = progress.add_task(description, total=total, cached=0, unmeasured=0)

        def advance(result: CaseResult) -> None:
            with lock:
                if result.cached:
                    counts["cached"] += 1
                if result.status == "unmeasured":
                    counts["unmeasured"] += 1
                progress.update(task, advance=1, **counts)

        def set_total(n: int) -> None:
            with lock:
                progress.update(task, total=n)

        advance.set_total = set_total  # type: ignore[attr-defined]
        yield advance


__all__ = ["NullProgress", "ProgressCallback", "rich_progress"]
