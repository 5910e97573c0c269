"""Deduplication of idempotent commands by message id, in a small SQLite file.

QoS 1 means at-least-once: a redelivery after a crash or a caller's retry is normal.
For a command marked idempotent, the reply of the first run is kept under its message
id with a digest of the request, and a second delivery of the same request gets that
reply without running the handler again. The same message id with another request
(a deposit of 250 retried as 999) is a caller's mistake, refused rather than answered
with the first reply.
"""

from __future__ import annotations

import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

KEEP_S = 14 * 24 * 3600


@dataclass(frozen=True)
class Handled:
    reply: bytes
    digest: str | None  # None for a row written before digests were kept

    def same_request(self, digest: str) -> bool:
        return self.digest is None or self.digest == digest


class DedupeStore:
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        # autocommit, WAL, and FULL sync: a reply recorded must survive a power cut
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS handled ("
            " topic TEXT NOT NULL, msg_id TEXT NOT NULL, reply BLOB NOT NULL,"
            " at REAL NOT NULL, digest TEXT, PRIMARY KEY (topic, msg_id))"
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(handled)")}
        if "digest" not in columns:  # a store from before digests
            self._db.execute("ALTER TABLE handled ADD COLUMN digest TEXT")
        self.expire()

    def expire(self, now: float | None = None) -> int:
        """Forget replies older than `KEEP_S`; returns how many."""
        cur = self._db.execute("DELETE FROM handled WHERE at < ?", ((now or time.time()) - KEEP_S,))
        return cur.rowcount

    def get(self, topic: str, msg_id: str) -> Handled | None:
        row = self._db.execute(
            "SELECT reply, digest FROM handled WHERE topic=? AND msg_id=?", (topic, msg_id)
        ).fetchone()
        return None if row is None else Handled(bytes(row[0]), row[1])

    def put(self, topic: str, msg_id: str, reply: bytes, request_digest: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO handled (topic, msg_id, reply, at, digest) VALUES (?,?,?,?,?)",
            (topic, msg_id, reply, time.time(), request_digest),
        )

    def count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM handled").fetchone()[0])

    def close(self) -> None:
        self._db.close()
