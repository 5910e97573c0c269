"""The optimization node: PyPortfolioOpt on the bundled real prices, every fallback
reported, targets retained; and on a real broker with the real universe node."""

from __future__ import annotations

import subprocess
import sys
from datetime import date
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from pypfopt import EfficientFrontier, HRPOpt, expected_returns, objective_functions, risk_models

from edge import RemoteError
from edge.settings import REPO_ROOT
from nodes.optimization import model
from nodes.optimization.node import node as optimization
from nodes.optimization.settings import Settings
from nodes.universe import bundle
from nodes.universe.node import node as universe
from schemas import catalog as t
from schemas.optimization import Optimize, Targets


@pytest.fixture(scope="module")
def prices() -> pd.DataFrame:
    return bundle.frame()


@pytest.fixture(scope="module")
def result(prices) -> model.Result:
    return model.optimize(prices)


def test_weights_add_up_to_exactly_one_within_the_bounds(result):
    assert sum(result.weights.values()) == Decimal(1)
    assert all(Decimal(0) <= w <= Decimal("0.2") for w in result.weights.values())
    assert result.mean_variance_method == "max_sharpe" and result.hrp_method == "hrp" and result.fallbacks == []
    assert result.inputs_to == pd.Timestamp("2024-11-29") and result.observations == 756


def test_the_parts_are_pypfopts_own_answers(prices, result):
    s = model.Settings()  # the defaults, which the `result` fixture used
    kept, _ = model.select(prices, s)
    mu = expected_returns.mean_historical_return(kept)
    cov = risk_models.CovarianceShrinkage(kept).ledoit_wolf()
    ef = EfficientFrontier(mu, cov, weight_bounds=(0, 0.2))
    ef.add_objective(objective_functions.L2_reg, gamma=s.gamma)
    with pytest.warns(UserWarning, match="max_sharpe transforms"):  # pypfopt's own caveat on objectives
        ef.max_sharpe(risk_free_rate=s.risk_free_rate)
    direct = ef.clean_weights()
    assert all(abs(result.mean_variance[s] - direct[s]) < 1e-4 for s in direct)
    hrp = HRPOpt(returns=kept.pct_change().dropna()).optimize()
    assert all(abs(result.hrp[s] - hrp[s]) < 1e-9 for s in hrp)
    blended = model.cap({k: s.blend * direct[k] + (1 - s.blend) * hrp[k] for k in direct}, 0.2)
    assert all(abs(float(result.weights[k]) - blended[k]) < 1e-4 for k in direct)


def test_no_return_above_the_risk_free_rate_falls_back_to_minimum_volatility(prices):
    r = model.optimize(prices, model.Settings(risk_free_rate=5.0))
    assert r.mean_variance_method == "min_volatility"
    assert "beats the risk-free rate" in r.fallbacks[0]


def test_too_few_securities_for_the_max_weight_is_reported(prices):
    r = model.optimize(prices[["AAPL.US", "MA.US", "XOM.US"]])
    assert r.max_weight == pytest.approx(1 / 3, abs=1e-6) and "max weight raised" in r.fallbacks[0]
    assert sum(r.weights.values()) == 1


def test_short_histories_are_excluded_with_the_reason(prices):
    young = prices.copy()
    young.loc[: young.index[-100], "MA.US"] = np.nan  # listed 99 trading days ago
    r = model.optimize(young)
    assert "MA.US" not in r.weights and "99 closes" in r.excluded["MA.US"]
    with pytest.raises(ValueError, match=r"no security has enough history"):
        model.optimize(young[["MA.US"]])


def test_ema_returns_change_the_answer(prices, result):
    ema = model.optimize(prices, model.Settings(returns_model="ema"))
    assert ema.weights != result.weights and sum(ema.weights.values()) == 1


def test_the_cap_redistributes_in_proportion():
    assert model.cap({"a": 0.5, "b": 0.3, "c": 0.2}, 0.45) == pytest.approx({"a": 0.45, "b": 0.33, "c": 0.22})
    capped = model.cap({"a": 0.6, "b": 0.3, "c": 0.1}, 0.4)  # b overflows in turn
    assert capped == pytest.approx({"a": 0.4, "b": 0.4, "c": 0.2})
    assert sum(capped.values()) == pytest.approx(1) and max(capped.values()) <= 0.4 + 1e-9


async def test_targets_on_the_broker_after_the_universes_prices(run_node, probe):
    targets = await probe.collect(probe.topics.of(t.OPTIMIZATION_TARGETS))
    async with run_node(universe), run_node(optimization):
        first = Targets.model_validate_json((await targets.next(60)).payload)
        assert first.inputs_to == date(2024, 11, 29) and sum(x.weight for x in first.targets) == 1
        assert first.mean_variance_method == "max_sharpe" and first.hrp_method == "hrp"
        mv_only = await probe.client.call(t.OPTIMIZATION_OPTIMIZE, Optimize(blend=Decimal(1)), timeout=60)
        # the mean-variance weights as they are, but the largest, which takes what their rounding
        # (PyPortfolioOpt's clean_weights: 5 places, under 1e-4 cut) left from a sum of exactly 1
        top = max(mv_only.targets, key=lambda x: x.weight)
        residue = Decimal(1) - sum(x.mean_variance for x in mv_only.targets)
        assert all(abs(x.weight - x.mean_variance) < Decimal("0.00001") for x in mv_only.targets if x is not top)
        assert abs(top.weight - top.mean_variance - residue) < Decimal("0.00001")
        with pytest.raises(RemoteError, match=r"not in the universe: TSLA\.US"):
            await probe.client.call(t.OPTIMIZATION_OPTIMIZE, Optimize(symbols=["TSLA.US"]), timeout=60)
        reply = await probe.client.request(probe.topics.command("optimization", "optimize"), b'{"blend": "2"}')
        assert reply.user["status"] == "error" and b"blend must be between 0 and 1" in reply.payload
        reply = await probe.client.request(probe.topics.command("optimization", "optimize"), b'{"blend": 0.5}')
        assert reply.user["status"] == "error" and b"JSON float" in reply.payload


@pytest.mark.parametrize(
    ("covariance", "pypfopts"),
    [
        ("ledoit_wolf", lambda k: risk_models.CovarianceShrinkage(k).ledoit_wolf()),
        (
            "constant_correlation",
            lambda k: risk_models.CovarianceShrinkage(k).ledoit_wolf(shrinkage_target="constant_correlation"),
        ),
        ("exp", lambda k: risk_models.exp_cov(k, span=180)),
    ],
)
def test_each_covariance_is_pypfopts_own(prices, covariance, pypfopts):
    s = model.Settings(covariance=covariance)
    kept, _ = model.select(prices, s)
    got = model.optimize(prices, s).cov
    assert got is not None and abs(got - pypfopts(kept)).to_numpy().max() < 1e-12


@pytest.mark.parametrize("module", ["universe", "trading", "portfolio", "scoring"])
def test_only_the_optimization_node_imports_pypfopt(module):
    code = f"import sys, nodes.{module}.node; print('pypfopt' in sys.modules or 'cvxpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT, check=True)
    assert out.stdout.strip() == "False"


def test_settings_from_the_environment():
    assert Settings.from_env({}) == model.Settings()
    s = Settings.from_env({"OPT_RETURNS": "ema", "OPT_BLEND": "1", "OPT_LOOKBACK_DAYS": "504"})
    assert (s.returns_model, s.blend, s.lookback, s.min_days) == ("ema", 1.0, 504, 252)
    assert Settings.from_env({"OPT_COV": "exp"}).covariance == "exp"
    for name, bad in (
        ("OPT_RETURNS", "median"),
        ("OPT_COV", "sample"),
        ("OPT_BLEND", "1.5"),
        ("OPT_BLEND", "half"),
        ("OPT_MAX_WEIGHT", "0"),
        ("OPT_GAMMA", "nan"),
        ("OPT_RISK_FREE", "inf"),
        ("OPT_MIN_DAYS", "1"),
        ("OPT_LOOKBACK_DAYS", "100"),
        ("OPT_LOOKBACK_DAYS", "3y"),
    ):
        with pytest.raises(ValueError, match=name):
            Settings.from_env({name: bad})
