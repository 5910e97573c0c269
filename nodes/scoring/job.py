"""The scoring node's run in its child process (`nodes/child.py`): the closes in, the
scores out as messages, so that pandas, pandas-ta and empyrical load only there."""

from __future__ import annotations

from datetime import date

from nodes import history
from schemas.scoring import SecurityScore

from . import model


def score(
    closes: history.Closes, symbols: list[str], benchmark: str, weights: dict[str, float] | None = None
) -> tuple[list[SecurityScore], date | None]:
    """Every symbol's score against the benchmark's closes (the composite's `weights`, or
    the defaults), and the last day of the closes."""
    frame = history.frame(closes)
    results = model.score_universe(frame[symbols], frame[benchmark], weights or model.WEIGHTS)
    scores = [
        SecurityScore(symbol=r.symbol, status=r.status, score=r.score, parts=r.parts, stats=r.stats, days=r.days)
        for r in results
    ]
    return scores, frame.index.max().date() if len(frame.index) else None
