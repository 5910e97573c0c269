"""Messages of the optimization node: target weights and how they were made."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import Field, model_validator

from .common import Message, Money, Symbol, UtcDateTime

ReturnsModel = Literal["mean", "ema", "capm"]
MeanVarianceMethod = Literal["max_sharpe", "min_volatility", "equal_weight"]
HrpMethod = Literal["hrp", "equal_weight"]


class Optimize(Message):
    """Compute target weights now (also after every price change). Empty fields take the
    node's configuration."""

    symbols: list[Symbol] = Field(default_factory=list, max_length=1000, description="default: every active one")
    returns_model: ReturnsModel | None = None
    blend: Money | None = Field(default=None, description="share of mean-variance in the blend, 0..1 (rest: HRP)")

    @model_validator(mode="after")
    def _blend(self) -> Optimize:
        if self.blend is not None and not 0 <= self.blend <= 1:
            raise ValueError("blend must be between 0 and 1")
        return self


class Target(Message):
    symbol: Symbol
    weight: Money = Field(description="share of the portfolio, 0..1; the weights add up to exactly 1")
    mean_variance: Money
    hrp: Money


class Excluded(Message):
    symbol: Symbol
    reason: str


class Targets(Message):
    """Retained on `state/optimization/targets`. `fallbacks` says every time a method
    could not be used and what was used instead: never silent."""

    targets: list[Target]
    mean_variance_method: MeanVarianceMethod
    hrp_method: HrpMethod
    fallbacks: list[str]
    blend: Money
    returns_model: ReturnsModel
    risk_free_rate: Money
    max_weight: Money
    expected_return: Money = Field(description="annual, of the blended weights, from the optimisation inputs")
    volatility: Money = Field(description="annual")
    sharpe: Money
    inputs_from: date | None
    inputs_to: date | None = Field(description="the last day of prices the targets are based on")
    observations: int
    excluded: list[Excluded]
    computed_at: UtcDateTime


class Inputs(Message):
    """Retained on `state/optimization/inputs`: the expected returns and covariance the
    targets came from, for the planner's evaluators (annual; covariance as float64,
    little-endian, row-major, base64)."""

    symbols: list[Symbol]
    mu: list[float]
    cov_b64: str
    inputs_to: date | None
    computed_at: UtcDateTime
