"""The coordinator's settings, read once from its environment when it starts (a cycle
request may ask for another beam width, depth or batch size).

| variable                      | default | meaning                                          |
| ----------------------------- | ------- | ------------------------------------------------ |
| `COORDINATOR_BEAM_WIDTH`      | `5000`  | sequences kept from one round for the next       |
| `COORDINATOR_MAX_ACTIONS`     | `5`     | rounds: the longest sequence                     |
| `COORDINATOR_BATCH_SIZE`      | `20000` | sequences grown per batch, about                 |
| `COORDINATOR_BATCH_TIMEOUT_S` | `5`     | a batch without a result after this is re-sent   |
| `COORDINATOR_CYCLE_TIMEOUT_S` | `120`   | the whole cycle gives up after this              |
| `OBJECTIVE_WEIGHTS`           | the objective's | `risk=1,cost=10`: some of the evaluators' objective's weights |
|                               | defaults | (`nodes/evaluator/objective.py`); the rest keep theirs  |

Base currency and FX as the other nodes (`nodes/money/fx.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nodes.environment import parts, real, whole
from nodes.evaluator.weights import DEFAULT_WEIGHTS


@dataclass(frozen=True)
class Settings:
    beam_width: int = 5000
    max_actions: int = 5
    batch_size: int = 20_000
    batch_timeout_s: float = 5.0
    cycle_timeout_s: float = 120.0
    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        # the bounds a cycle request has (`schemas.planning.CycleRequest`)
        return cls(
            beam_width=whole(env, "COORDINATOR_BEAM_WIDTH", 5000, least=1, most=1_000_000),
            max_actions=whole(env, "COORDINATOR_MAX_ACTIONS", 5, least=1, most=10),
            batch_size=whole(env, "COORDINATOR_BATCH_SIZE", 20000, least=1, most=100_000),
            batch_timeout_s=real(env, "COORDINATOR_BATCH_TIMEOUT_S", 5.0, above=0),
            cycle_timeout_s=real(env, "COORDINATOR_CYCLE_TIMEOUT_S", 120.0, above=0),
            weights=parts(env, "OBJECTIVE_WEIGHTS", DEFAULT_WEIGHTS),
        )
