"""The coordinator's settings, read once from its environment when it starts (a cycle
request may ask for another beam width, depth or batch size).

| variable                      | default | meaning                                          |
| ----------------------------- | ------- | ------------------------------------------------ |
| `COORDINATOR_BEAM_WIDTH`      | `5000`  | sequences kept from one round for the next       |
| `COORDINATOR_MAX_ACTIONS`     | `5`     | rounds: the longest sequence                     |
| `COORDINATOR_BATCH_SIZE`      | `20000` | sequences grown per batch, about                 |
| `COORDINATOR_BATCH_TIMEOUT_S` | `5`     | a batch without a result after this is re-sent   |
| `COORDINATOR_CYCLE_TIMEOUT_S` | `120`   | the whole cycle gives up after this              |

Base currency and FX as the other nodes (`nodes/money/fx.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nodes.environment import real, whole


@dataclass(frozen=True)
class Settings:
    beam_width: int = 5000
    max_actions: int = 5
    batch_size: int = 20_000
    batch_timeout_s: float = 5.0
    cycle_timeout_s: float = 120.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        # the bounds a cycle request has (`schemas.planning.CycleRequest`)
        return cls(
            beam_width=whole(env, "COORDINATOR_BEAM_WIDTH", 5000, least=1, most=1_000_000),
            max_actions=whole(env, "COORDINATOR_MAX_ACTIONS", 5, least=1, most=10),
            batch_size=whole(env, "COORDINATOR_BATCH_SIZE", 20000, least=1, most=100_000),
            batch_timeout_s=real(env, "COORDINATOR_BATCH_TIMEOUT_S", 5.0, above=0),
            cycle_timeout_s=real(env, "COORDINATOR_CYCLE_TIMEOUT_S", 120.0, above=0),
        )
