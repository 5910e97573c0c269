"""The scoring model against the libraries it uses, and the scoring node on a real broker."""

from __future__ import annotations

import math

import empyrical as ep
import numpy as np
import pandas as pd
import pytest

from nodes.scoring import model
from nodes.scoring.node import node as scoring
from nodes.scoring.settings import Settings
from nodes.universe import bundle
from nodes.universe.node import node as universe
from schemas import catalog as t
from schemas.scoring import Rescore, Scores


@pytest.fixture(scope="module")
def prices() -> tuple[pd.DataFrame, pd.Series]:
    df = bundle.frame()
    return df.drop(columns=["SPY.US"]), df["SPY.US"]


def test_statistics_equal_direct_library_calls(prices):
    closes, spy = prices
    window = closes[["AAPL.US", "XOM.US", "WMT.US"]].iloc[-(model.HORIZON_DAYS + 1) :]
    returns = window.pct_change().iloc[1:]
    bench = spy.pct_change().reindex(returns.index)
    stats = model.statistics(returns, spy.pct_change())
    for symbol in returns.columns:
        r = returns[symbol]
        expected = {
            "cagr": ep.annual_return(r),
            "volatility": ep.annual_volatility(r),
            "sharpe": ep.sharpe_ratio(r),
            "sortino": ep.sortino_ratio(r),
            "max_drawdown": ep.max_drawdown(r),
            "calmar": ep.calmar_ratio(r),
            "alpha": ep.alpha(r, bench),
            "beta": ep.beta(r, bench),
        }
        for name, value in expected.items():
            assert stats.loc[symbol, name] == pytest.approx(float(value), rel=1e-9), (symbol, name)


def test_indicators_on_a_hand_checked_window():
    close = pd.Series(np.arange(300, dtype=float) + 100.0)  # rises by exactly 1 a day
    ind = model.indicators(close)
    # an SMA-seeded EMA of a straight line lags it by (length - 1) / 2
    assert ind["ema50"] == pytest.approx(399 - 24.5)
    assert ind["ema200"] == pytest.approx(399 - 99.5)
    assert ind["rsi14"] == pytest.approx(100.0)  # no down day at all
    last20 = np.arange(380, 400, dtype=float) + 100 - 100
    mid, sd = last20.mean(), last20.std(ddof=0)
    assert ind["bb_pctb"] == pytest.approx((399 - (mid - 2 * sd)) / (4 * sd), rel=1e-9)
    flat = model.indicators(pd.Series([50.0] * 300) + np.tile([0.0, 0.5], 150))
    assert 40 < flat["rsi14"] < 60


def test_a_rising_security_scores_above_a_falling_one(prices):
    days = pd.bdate_range("2015-01-01", periods=1500)
    rng = np.random.default_rng(7)
    noise = rng.normal(0, 0.004, len(days))
    up = pd.Series(100 * np.exp(np.cumsum(0.0006 + np.abs(noise))), index=days)
    down = pd.Series(100 * np.exp(np.cumsum(-0.0006 - np.abs(noise))), index=days)
    bench = pd.Series(100 * np.exp(np.cumsum(0.0003 + noise)), index=days)
    res = {r.symbol: r for r in model.score_universe(pd.DataFrame({"UP.US": up, "DOWN.US": down}), bench)}
    assert res["UP.US"].score > res["DOWN.US"].score
    assert 0 <= res["DOWN.US"].score <= 100 and 0 <= res["UP.US"].score <= 100


def test_too_little_history_is_said_not_invented(prices):
    closes, spy = prices
    young = closes[["AAPL.US"]].copy()
    young.iloc[: len(young) - 100] = math.nan  # listed 100 days ago
    (r,) = model.score_universe(young, spy)
    assert r.status == "insufficient_history" and r.score is None and r.days == 100


def test_vectorised_scores_equal_the_per_security_loop(prices):
    closes, spy = prices
    fast = model.score_universe(closes, spy)
    slow = model.score_loop(closes, spy)
    assert [r.symbol for r in fast] == list(closes.columns)
    for a, b in zip(fast, slow, strict=True):
        assert a.status == b.status and a.days == b.days
        if a.score is not None:
            assert a.score == pytest.approx(b.score, abs=1e-6)
            assert a.parts == pytest.approx(b.parts, abs=1e-9)
    assert {r.status for r in fast} == {"ok"}
    every_part = dict.fromkeys(model.WEIGHTS, 1.0)  # the composite's range: 0 with every part 0, 100 with every part 1
    assert model.composite(every_part) == 100 and model.composite(dict.fromkeys(model.WEIGHTS, 0.0)) == 0


async def test_scores_follow_the_universe(run_node, probe, tmp_path):
    """The universe's first sync triggers scoring; rescore on command; bad input refused."""
    scores = await probe.collect(probe.topics.of(t.SCORES))
    async with run_node(universe, state_dir=tmp_path / "u"), run_node(scoring, state_dir=tmp_path / "s"):
        got = Scores.model_validate_json(
            (await scores.until(lambda m: len(Scores.model_validate_json(m.payload).scores) == 20, timeout=90)).payload
        )
        assert got.benchmark == "SPY.US" and str(got.as_of) == "2024-11-29"
        ok = [s for s in got.scores if s.status == "ok"]
        assert len(ok) == 20 and all(0 <= s.score <= 100 for s in ok)
        assert set(ok[0].parts) == set(model.WEIGHTS)
        one = await probe.client.call(t.SCORING_RESCORE, Rescore(symbols=["AAPL.US"]), timeout=60)
        assert [s.symbol for s in one.scores] == ["AAPL.US"]
        assert one.scores[0].score == pytest.approx(next(s.score for s in ok if s.symbol == "AAPL.US"))
        for payload, kind in (
            (b'{"symbols": ["NOPE.US"]}', "refused"),
            (b'{"symbols": ["aapl"]}', "invalid"),
            (b'{"symbols": "AAPL.US"}', "invalid"),
        ):
            reply = await probe.client.request(probe.topics.command("scoring", "rescore"), payload, timeout=30)
            assert reply.user["status"] == "error" and f'"kind":"{kind}"' in reply.payload.decode()


def test_settings_from_the_environment():
    assert Settings.from_env({}).benchmark == "SPY.US"
    assert Settings.from_env({"SCORING_BENCHMARK": "VT.US"}).benchmark == "VT.US"
    with pytest.raises(ValueError, match="SCORING_BENCHMARK"):
        Settings.from_env({"SCORING_BENCHMARK": "spy"})


def test_the_composite_s_weights_are_a_setting(prices):
    """`SCORING_WEIGHTS` changes some parts' weights (the replay tunes them with `--set`); the
    composite divides by their sum, so a score stays in [0, 100]; a typo stops the node at
    start."""
    assert Settings.from_env({}).weights == model.WEIGHTS
    only_trend = Settings.from_env({"SCORING_WEIGHTS": " , ".join(f"{k}=0" for k in model.WEIGHTS if k != "trend")})
    assert only_trend.weights == {**dict.fromkeys(model.WEIGHTS, 0.0), "trend": 0.2}
    closes, spy = prices
    (default,) = model.score_universe(closes[["AAPL.US"]], spy)
    (trend,) = model.score_universe(closes[["AAPL.US"]], spy, only_trend.weights)
    assert trend.parts == default.parts
    assert trend.score == pytest.approx(100 * default.parts["trend"], abs=1e-4)
    weighted = sum(model.WEIGHTS[k] * v for k, v in default.parts.items()) / sum(model.WEIGHTS.values())
    assert default.score == pytest.approx(100 * weighted, abs=1e-4)
    for bad in ("trend", "speed=1", "trend=-1", "trend=inf", "trend=x", ",".join(f"{k}=0" for k in model.WEIGHTS)):
        with pytest.raises(ValueError, match="SCORING_WEIGHTS"):
            Settings.from_env({"SCORING_WEIGHTS": bad})
