"""SQLite as every node uses it: one file per store, WAL (readers never wait for the
writer, and the execution board's processes can share a file), autocommit unless a
`transaction()` is open, and a busy timeout instead of an immediate "database is locked"."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal


def connect(
    path: Path | str,
    *,
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
    foreign_keys: bool = False,
    schema: str = "",
    timeout: float = 30.0,
) -> sqlite3.Connection:
    """`synchronous=FULL` for what must survive a power cut (orders, fills, replies sent);
    `NORMAL` (still safe against a crash of the process) for what can be fetched again."""
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=timeout)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(f"PRAGMA synchronous={synchronous}")
    if foreign_keys:
        db.execute("PRAGMA foreign_keys=ON")
    if schema:
        db.executescript(schema)
    return db


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction (`BEGIN IMMEDIATE`: the write lock at once, so two processes
    never deadlock upgrading a read); rolled back on any exception, cancellation included."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
