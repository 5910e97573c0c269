"""The scoring node's configuration, read once from its environment, and the history a
score looks at (here, not in `model.py`, so that the node reads it without pandas).

| variable              | default  | meaning                                                        |
| --------------------- | -------- | -------------------------------------------------------------- |
| `SCORING_BENCHMARK`   | `SPY.US` | the benchmark for alpha and beta                               |
| `SCORING_IDLE_EXIT_S` | `60`     | seconds the child process that scores waits for the next run   |
| `SCORING_WEIGHTS`     | `WEIGHTS` | `trend=0.3,rsi=0`: some of the composite's weights (`WEIGHTS` |
|                       |          | below); the rest keep theirs, and the composite divides by their sum |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nodes.environment import parts, real
from schemas.common import SYMBOL_RE

HORIZON_DAYS = 1260  # 5 years of trading days
HISTORY_DAYS = HORIZON_DAYS + 1  # the closes a score looks at (the node asks the universe for no more)
# Each part's weight in the composite (`model.py` says what each part is; the composite divides
# by their sum, 1.1). Bollinger's 0.2 was tuned on the replay of 2005-2014 (README, "Investing well").
WEIGHTS = {
    "cagr": 0.15,
    "sharpe": 0.15,
    "sortino": 0.10,
    "drawdown": 0.10,
    "calmar": 0.05,
    "alpha": 0.05,
    "trend": 0.20,
    "rsi": 0.10,
    "bollinger": 0.20,
}


@dataclass(frozen=True)
class Settings:
    benchmark: str = "SPY.US"
    idle_exit_s: float = 60.0
    weights: dict[str, float] = field(default_factory=lambda: dict(WEIGHTS))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        benchmark = env.get("SCORING_BENCHMARK", "SPY.US")
        if not SYMBOL_RE.fullmatch(benchmark):
            raise ValueError(f"SCORING_BENCHMARK={benchmark!r} is not a symbol such as SPY.US")
        weights = parts(env, "SCORING_WEIGHTS", WEIGHTS)
        if not sum(weights.values()) > 0:
            raise ValueError("SCORING_WEIGHTS: at least one weight must be above 0")
        return cls(benchmark, real(env, "SCORING_IDLE_EXIT_S", 60.0, least=0.0), weights)
