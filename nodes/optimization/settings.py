"""The optimization node's configuration, read once from its environment (the method that
uses it is in `model.py`; a request may override `returns_model` and `blend`).

| variable            | default | meaning                                              |
| ------------------- | ------- | ---------------------------------------------------- |
| `OPT_RETURNS`       | `mean`  | expected returns: `mean` historical, `ema` or `capm`  |
| `OPT_COV`           | `ledoit_wolf` | covariance: Ledoit-Wolf, or `constant_correlation`, `exp` |
| `OPT_BLEND`         | `0.75`  | share of mean-variance in the targets (rest: HRP)     |
| `OPT_MAX_WEIGHT`    | `0.20`  | most of the portfolio one security may be            |
| `OPT_GAMMA`         | `1`     | L2 regularisation of mean-variance (higher: more even) |
| `OPT_RISK_FREE`     | `0.02`  | annual risk-free rate for the Sharpe ratio           |
| `OPT_LOOKBACK_DAYS` | `756`   | trading days of history used (3 years)               |
| `OPT_MIN_DAYS`      | `252`   | fewer closes than this in the window: excluded       |
| `OPT_IDLE_EXIT_S`   | `60`    | seconds the child process that optimises waits for the next run |
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nodes.environment import real, whole

COVARIANCES = ("ledoit_wolf", "constant_correlation", "exp")


@dataclass(frozen=True)
class Settings:
    returns_model: str = "mean"
    covariance: str = "ledoit_wolf"
    blend: float = 0.75
    max_weight: float = 0.20
    gamma: float = 1.0
    risk_free_rate: float = 0.02
    lookback: int = 756
    min_days: int = 252
    ema_span: int = 500
    cov_span: int = 180
    idle_exit_s: float = 60.0

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        s = cls(
            returns_model=env.get("OPT_RETURNS", "mean"),
            covariance=env.get("OPT_COV", "ledoit_wolf"),
            blend=real(env, "OPT_BLEND", 0.75),
            max_weight=real(env, "OPT_MAX_WEIGHT", 0.20),
            gamma=real(env, "OPT_GAMMA", 1.0),
            risk_free_rate=real(env, "OPT_RISK_FREE", 0.02),
            lookback=whole(env, "OPT_LOOKBACK_DAYS", 756),
            min_days=whole(env, "OPT_MIN_DAYS", 252),
            idle_exit_s=real(env, "OPT_IDLE_EXIT_S", 60.0, least=0.0),
        )
        if s.returns_model not in ("mean", "ema", "capm"):
            raise ValueError(f"OPT_RETURNS={s.returns_model!r}: use mean, ema or capm")
        if s.covariance not in COVARIANCES:
            raise ValueError(f"OPT_COV={s.covariance!r}: use {', '.join(COVARIANCES)}")
        if not 0 <= s.blend <= 1:
            raise ValueError(f"OPT_BLEND={s.blend}: must be in [0, 1]")
        if not 0 < s.max_weight <= 1:
            raise ValueError(f"OPT_MAX_WEIGHT={s.max_weight}: must be in (0, 1]")
        if s.gamma < 0:
            raise ValueError(f"OPT_GAMMA={s.gamma}: must not be negative")
        if s.min_days < 2:
            raise ValueError(f"OPT_MIN_DAYS={s.min_days}: must be at least 2")
        if s.lookback < s.min_days:
            raise ValueError(f"OPT_LOOKBACK_DAYS={s.lookback}: must be at least OPT_MIN_DAYS ({s.min_days})")
        return s
