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

import math
from collections.abc import Mapping
from dataclasses import dataclass


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
            beam_width=_count(env, "COORDINATOR_BEAM_WIDTH", "5000", most=1_000_000),
            max_actions=_count(env, "COORDINATOR_MAX_ACTIONS", "5", most=10),
            batch_size=_count(env, "COORDINATOR_BATCH_SIZE", "20000", most=100_000),
            batch_timeout_s=_seconds(env, "COORDINATOR_BATCH_TIMEOUT_S", "5"),
            cycle_timeout_s=_seconds(env, "COORDINATOR_CYCLE_TIMEOUT_S", "120"),
        )


def _count(env: Mapping[str, str], name: str, default: str, most: int) -> int:
    text = env.get(name, default)
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= most:
        raise ValueError(f"{name}={text!r}: a whole number from 1 to {most:,}, such as {default}")
    return value


def _seconds(env: Mapping[str, str], name: str, default: str) -> float:
    text = env.get(name, default)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{name}={text!r}: seconds, above 0, such as {default}")
    return value
