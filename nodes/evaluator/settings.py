"""The evaluator's settings, read once from its environment when it starts.

| variable                   | default | meaning                                                  |
| -------------------------- | ------- | -------------------------------------------------------- |
| `EVALUATOR_PROCESSES`      | `1`     | processes (the `multiprocess` package) for a large batch |
| `EVALUATOR_PARALLEL_MIN`   | `20000` | a batch at least this large is split over them           |
| `EVALUATOR_PROBLEM_WAIT_S` | `10`    | how long a batch waits for its cycle's problem           |
| `EVALUATOR_IDLE_EXIT_S`    | `60`    | seconds the child process that scores waits for a batch  |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nodes.environment import real, whole


@dataclass(frozen=True)
class Settings:
    processes: int = 1
    parallel_min: int = 20_000
    problem_wait_s: float = 10.0
    idle_exit_s: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        return cls(
            processes=whole(env, "EVALUATOR_PROCESSES", 1, least=1),
            parallel_min=whole(env, "EVALUATOR_PARALLEL_MIN", 20000, least=0),
            problem_wait_s=real(env, "EVALUATOR_PROBLEM_WAIT_S", 10.0, least=0),
            idle_exit_s=real(env, "EVALUATOR_IDLE_EXIT_S", 60.0, least=0),
        )
