"""Messages of the scoring node."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field

from .common import Message, Symbol, UtcDateTime


class SecurityScore(Message):
    """One security's composite score (0-100) with its parts (each 0-1) and the raw
    statistics they come from. `insufficient_history`: too few closes, no score."""

    symbol: Symbol
    status: Literal["ok", "insufficient_history"]
    score: float | None = Field(default=None, ge=0, le=100)
    parts: dict[str, float] = Field(default_factory=dict)
    stats: dict[str, float] = Field(default_factory=dict)
    days: int = Field(ge=0, description="closes available")


class Scores(Message):
    """Retained on `state/scoring/scores`."""

    scores: list[SecurityScore]
    as_of: date | None = Field(description="the last day of prices the scores look at")
    benchmark: Symbol
    computed_at: UtcDateTime


class Rescore(Message):
    """Score again now; all active securities when `symbols` is empty."""

    symbols: list[Symbol] = Field(default_factory=list, max_length=1000)
