"""The scoring node's configuration, read once from its environment.

| variable            | default  | meaning                              |
| ------------------- | -------- | ------------------------------------ |
| `SCORING_BENCHMARK` | `SPY.US` | the benchmark for alpha and beta     |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from schemas.common import SYMBOL_RE


@dataclass(frozen=True)
class Settings:
    benchmark: str = "SPY.US"

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        benchmark = env.get("SCORING_BENCHMARK", "SPY.US")
        if not SYMBOL_RE.fullmatch(benchmark):
            raise ValueError(f"SCORING_BENCHMARK={benchmark!r} is not a symbol such as SPY.US")
        return cls(benchmark)
