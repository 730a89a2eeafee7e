"""A batch journal on a disk that fills up: sqlite connections whose writes start failing.

>>> full_disk(monkeypatch, lambda sql, parameters: "created" in parameters)
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import pytest

#: (SQL, parameters) -> whether the disk is full from this write on.
FullAt = Callable[[str, Any], bool]


class FullDisk:
    """A connection on a disk that fills up at the first write ``full_at`` picks: that write
    and every later one fail as SQLite fails on a full disk; reads go on."""

    def __init__(self, db: sqlite3.Connection, full_at: FullAt) -> None:
        self._db = db
        self._full_at = full_at
        self.full = False

    def execute(self, sql: str, parameters: Any = ()) -> sqlite3.Cursor:
        writes = sql.lstrip().upper().startswith(("UPDATE", "INSERT", "BEGIN", "COMMIT"))
        if writes and (self.full or self._full_at(sql, parameters)):
            self.full = True
            raise sqlite3.OperationalError("database or disk is full")
        return self._db.execute(sql, parameters)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def full_disk(monkeypatch: pytest.MonkeyPatch, full_at: FullAt) -> None:
    """Every sqlite connection opened from now on (until ``monkeypatch`` undoes it) is a
    :class:`FullDisk`."""
    connect = sqlite3.connect

    def on_a_full_disk(*args: Any, **kwargs: Any) -> FullDisk:
        return FullDisk(connect(*args, **kwargs), full_at)

    monkeypatch.setattr(sqlite3, "connect", on_a_full_disk)


def no_room_for_a_journal(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """sqlite connections whose database cannot grow past one page: SQLite itself fails the
    journal's first tables with SQLITE_FULL, as on a disk with no room. Returns the undo."""
    connect = sqlite3.connect

    def full(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        db: sqlite3.Connection = connect(*args, **kwargs)
        db.execute("PRAGMA max_page_count = 1")
        return db

    monkeypatch.setattr(sqlite3, "connect", full)
    return lambda: monkeypatch.setattr(sqlite3, "connect", connect)
