"""One small registry type for model kinds, loop programs, targets and runtimes.

Names are normalized (lower case, ``_`` and spaces become ``-``), aliases resolve to the
canonical name, duplicates are an error at import time, and a failed lookup lists the known
names so the user can fix the typo.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, TypeVar

from edgekit.errors import BadInputError

T = TypeVar("T")


def normalize(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(" ", "-")


class Registry(Generic[T]):
    """A named mapping with aliases and helpful lookup errors."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._items: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def add(self, name: str, item: T, aliases: tuple[str, ...] = ()) -> T:
        key = normalize(name)
        for k in (key, *map(normalize, aliases)):
            if k in self._items or k in self._aliases:
                raise ValueError(f"duplicate {self.what} name {k!r}")
        self._items[key] = item
        for alias in aliases:
            self._aliases[normalize(alias)] = key
        return item

    def canonical(self, name: str) -> str:
        key = normalize(name)
        key = self._aliases.get(key, key)
        if key not in self._items:
            known = ", ".join(self.names())
            raise BadInputError(f"unknown {self.what} {name!r}; known: {known}")
        return key

    def get(self, name: str) -> T:
        return self._items[self.canonical(name)]

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = normalize(name)
        return key in self._items or key in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def items(self) -> list[tuple[str, T]]:
        return list(self._items.items())
