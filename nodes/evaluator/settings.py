"""The evaluator's settings, read once from its environment when it starts.

| variable                   | default | meaning                                                  |
| -------------------------- | ------- | -------------------------------------------------------- |
| `EVALUATOR_PROCESSES`      | `1`     | processes (the `multiprocess` package) for a large batch |
| `EVALUATOR_PARALLEL_MIN`   | `20000` | a batch at least this large is split over them           |
| `EVALUATOR_PROBLEM_WAIT_S` | `10`    | how long a batch waits for its cycle's problem           |
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Settings:
    processes: int = 1
    parallel_min: int = 20_000
    problem_wait_s: float = 10.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            processes=_int(env, "EVALUATOR_PROCESSES", "1", least=1),
            parallel_min=_int(env, "EVALUATOR_PARALLEL_MIN", "20000", least=0),
            problem_wait_s=_seconds(env, "EVALUATOR_PROBLEM_WAIT_S", "10"),
        )


def _int(env: Mapping[str, str], name: str, default: str, least: int) -> int:
    text = env.get(name, default)
    try:
        value = int(text)
    except ValueError:
        value = least - 1
    if value < least:
        raise ValueError(f"{name}={text!r}: a whole number of at least {least}, such as {default}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: str) -> float:
    text = env.get(name, default)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name}={text!r}: seconds, 0 or more, such as {default}")
    return value
