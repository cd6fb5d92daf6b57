"""A tiny lazy registry: names map to ``"module:attribute"`` strings imported on first use.

Each extensible family (scorers, dataset formats and kinds, candidate schemes) keeps one of these,
so adding a member is one new file plus one registration line, and nothing heavy is imported
until a member is asked for. Third-party packages may add members through the entry-point
group given to the registry (``aliasgate.scorers``...).
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from importlib.metadata import entry_points
from typing import Any


class Registry:
    def __init__(self, family: str, members: dict[str, str], entry_point_group: str | None = None):
        self.family = family
        self._members = dict(members)
        self._group = entry_point_group
        self._plugins_loaded = False

    def register(self, name: str, target: str | Any) -> None:
        """Add a member: ``target`` is an object or a ``"module:attribute"`` string."""
        self._members[name] = target

    def names(self) -> list[str]:
        self._load_plugins()
        return sorted(self._members)

    def __contains__(self, name: str) -> bool:
        self._load_plugins()
        return name in self._members

    def get(self, name: str) -> Any:
        """The member called ``name`` (imported now). Unknown names raise ``KeyError`` listing the known ones."""
        self._load_plugins()
        try:
            target = self._members[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise KeyError(f"unknown {self.family} {name!r} (known: {known})") from None
        if isinstance(target, str):
            module_name, _, attr = target.partition(":")
            target = getattr(importlib.import_module(module_name), attr)
            self._members[name] = target
        return target

    def _load_plugins(self) -> None:
        if self._plugins_loaded or not self._group:
            return
        self._plugins_loaded = True
        eps: Iterable[Any] = entry_points(group=self._group)
        for ep in eps:
            self._members.setdefault(ep.name, ep.value)
