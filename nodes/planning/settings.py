"""The planning node's settings, read once from its environment when it starts.

| variable                | default                           | meaning                                 |
| ----------------------- | --------------------------------- | --------------------------------------- |
| `PLANNING_AUTO_APPROVE` | `1`, or `0` when `EDGE_MODE=live` | `1`: approve every plan as it comes     |
| `EDGE_MODE`             | `paper`                           | `research`, `paper` or `live`           |

Live mode approves by hand unless told otherwise: a plan there sends real orders.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

MODES = ("research", "paper", "live")


@dataclass(frozen=True)
class Settings:
    auto_approve: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        mode = env.get("EDGE_MODE", "paper")
        if mode not in MODES:
            raise ValueError(f"EDGE_MODE={mode!r}: use research, paper or live")
        auto = env.get("PLANNING_AUTO_APPROVE", "0" if mode == "live" else "1")
        if auto not in ("0", "1"):
            raise ValueError(f"PLANNING_AUTO_APPROVE={auto!r}: 1 (approve every plan) or 0 (by hand)")
        return cls(auto_approve=auto == "1")
