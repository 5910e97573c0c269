"""Deduplication of idempotent commands by message id, in a small SQLite file.

QoS 1 means at-least-once: a redelivery after a crash or a caller's retry is normal.
For a command marked idempotent, the reply of the first run is kept under its
message id, and a second delivery gets that same reply without running the handler.
"""

from __future__ import annotations

import time
from pathlib import Path

from .sqlite import connect

KEEP_S = 14 * 24 * 3600


class DedupeStore:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        self._db = connect(self.path, synchronous="FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS handled ("
            " topic TEXT NOT NULL, msg_id TEXT NOT NULL, reply BLOB NOT NULL,"
            " at REAL NOT NULL, PRIMARY KEY (topic, msg_id))"
        )
        self._db.execute("DELETE FROM handled WHERE at < ?", (time.time() - KEEP_S,))

    def get(self, topic: str, msg_id: str) -> bytes | None:
        row = self._db.execute("SELECT reply FROM handled WHERE topic=? AND msg_id=?",
                               (topic, msg_id)).fetchone()
        return None if row is None else bytes(row[0])

    def put(self, topic: str, msg_id: str, reply: bytes) -> None:
        self._db.execute("INSERT OR REPLACE INTO handled (topic, msg_id, reply, at) VALUES (?,?,?,?)",
                         (topic, msg_id, reply, time.time()))

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM handled").fetchone()[0])

    def close(self) -> None:
        self._db.close()
