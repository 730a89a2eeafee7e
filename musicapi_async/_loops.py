"""State kept per event loop for one object, gone with either.

anyio's ``RunVar`` keeps a value per event loop, but each ``RunVar`` is itself a key of the
loop's table until the loop ends: one ``RunVar`` per client would keep every client's
connection pool alive for the life of a long-running loop (a web server making a client per
request). :class:`LoopLocal` is one ``RunVar`` per kind of value, holding a weak mapping
from the owner to its value, so an entry goes with its owner or with its loop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar, final
from weakref import WeakKeyDictionary

from anyio.lowlevel import RunVar

__all__ = ["LoopLocal"]

_K = TypeVar("_K")
_V = TypeVar("_V")


@final
class LoopLocal(Generic[_K, _V]):
    """A value per (owner, running event loop); the owner must be weak-referenceable."""

    __slots__ = ("_var",)

    def __init__(self, name: str) -> None:
        self._var: RunVar[WeakKeyDictionary[_K, _V]] = RunVar(name)

    def _values(self) -> WeakKeyDictionary[_K, _V]:
        values = self._var.get(None)
        if values is None:
            values = WeakKeyDictionary()
            self._var.set(values)
        return values

    def get(self, owner: _K) -> _V | None:
        """``owner``'s value in the running loop, None if it has none there."""
        return self._values().get(owner)

    def setdefault(self, owner: _K, make: Callable[[], _V]) -> _V:
        """``owner``'s value in the running loop, made by ``make()`` the first time."""
        values = self._values()
        value = values.get(owner)
        if value is None:
            value = values[owner] = make()
        return value

    def set(self, owner: _K, value: _V) -> None:
        self._values()[owner] = value

    def discard(self, owner: _K) -> None:
        self._values().pop(owner, None)
