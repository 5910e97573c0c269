"""The scoring node's configuration, read once from its environment, and the history a
score looks at (here, not in `model.py`, so that the node reads it without pandas).

| variable              | default  | meaning                                                        |
| --------------------- | -------- | -------------------------------------------------------------- |
| `SCORING_BENCHMARK`   | `SPY.US` | the benchmark for alpha and beta                               |
| `SCORING_IDLE_EXIT_S` | `60`     | seconds the child process that scores waits for the next run   |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nodes.environment import real
from schemas.common import SYMBOL_RE

HORIZON_DAYS = 1260  # 5 years of trading days
HISTORY_DAYS = HORIZON_DAYS + 1  # the closes a score looks at (the node asks the universe for no more)


@dataclass(frozen=True)
class Settings:
    benchmark: str = "SPY.US"
    idle_exit_s: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        benchmark = env.get("SCORING_BENCHMARK", "SPY.US")
        if not SYMBOL_RE.fullmatch(benchmark):
            raise ValueError(f"SCORING_BENCHMARK={benchmark!r} is not a symbol such as SPY.US")
        return cls(benchmark, real(env, "SCORING_IDLE_EXIT_S", 60.0, least=0.0))
