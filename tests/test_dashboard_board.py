"""The dashboard's board: what it keeps of the nodes' heartbeats."""

from __future__ import annotations

from dashboard.board import Board
from schemas.runtime import Heartbeat


def test_the_board_counts_messages_per_second_within_an_incarnation(monkeypatch):
    clock = iter([100.0, 102.0, 103.0])
    monkeypatch.setattr("dashboard.board.time.monotonic", lambda: next(clock))
    board = Board()

    def beat(incarnation: int, msgs_in: int, msgs_out: int) -> Heartbeat:
        return Heartbeat.model_validate(
            {
                "node": "trading",
                "incarnation": incarnation,
                "at": "2026-11-26T12:00:00Z",
                "uptime_s": 1,
                "rss_mb": 40,
                "cpu_percent": 1,
                "msgs_in": msgs_in,
                "msgs_out": msgs_out,
                "errors": 0,
                "handled": 0,
            }
        )

    board.heartbeat(beat(1, 10, 4))
    assert board.rate("trading") is None  # one beat: no rate yet
    board.heartbeat(beat(1, 30, 8))
    assert board.rate("trading") == (10.0, 2.0)  # 20 in, 4 out over 2 s
    board.heartbeat(beat(2, 1, 1))  # restarted: its counters start again, the old rate stays
    assert board.rate("trading") == (10.0, 2.0)
