"""No look-ahead: the replay's decisions up to a day cannot depend on any price after it.

The same replay runs twice through the real nodes (a real broker, every node a process):
once on the bundled prices, once on a copy in which every daily return after the cut-off
day is shuffled (each symbol's own returns, in another order; prices before the cut-off
untouched). Every step up to the cut-off must be identical (scores, targets, trades,
holdings, cash), and a later step must differ, or the shuffle proved nothing."""

from __future__ import annotations

import itertools
import random
from dataclasses import asdict
from datetime import date
from decimal import Decimal

import pytest

from nodes.universe import bundle
from replay import calendar, driver

pytestmark = pytest.mark.timeout(600)

FIRST, LAST = date(2011, 1, 1), date(2011, 7, 1)


def shuffled_after(cut: date, path, seed: int = 7) -> None:
    """The bundled prices with each symbol's daily returns after `cut` in a random order."""
    symbols, rows = bundle.read()
    rows = list(rows)
    rng = random.Random(seed)
    for k in range(len(symbols)):
        later = [i for i, (d, closes) in enumerate(rows) if d > cut and closes[k] is not None]
        if not later or later[0] == 0 or rows[later[0] - 1][1][k] is None:
            continue
        start = rows[later[0] - 1][1][k]
        prices = [start] + [rows[i][1][k] for i in later]
        ratios = [b / a for a, b in itertools.pairwise(prices)]
        rng.shuffle(ratios)
        value = start
        for i, ratio in zip(later, ratios, strict=True):
            value = (value * ratio).quantize(Decimal("0.000001"))
            rows[i][1][k] = value
    bundle.write(symbols, rows, path)


def test_decisions_before_a_day_do_not_see_the_prices_after_it(tmp_path):
    days = calendar.trading_days()
    steps = calendar.steps(FIRST, LAST, days)
    cut = steps[2]  # the third step's own close is known; everything after it is shuffled
    file = tmp_path / "shuffled.csv.gz"
    shuffled_after(cut, file)
    end = calendar.last_day(days, LAST)

    def run(extra: dict[str, str]):
        return driver.replay(steps, end, {**driver.ENV, **extra}, lambda step: None).steps

    real, shuffled = run({}), run({"UNIVERSE_BUNDLE": str(file)})
    before = [i for i, s in enumerate(real) if s.day <= cut]
    assert len(before) == 3
    for i in before:
        a, b = asdict(real[i]), asdict(shuffled[i])
        a.pop("seconds"), b.pop("seconds"), a.pop("timings"), b.pop("timings")
        assert a == b, f"step {real[i].day} differs although no price before it changed"
    assert any(real[i].trades for i in before), "no decision before the cut-off: nothing was compared"
    after = [i for i, s in enumerate(real) if s.day > cut]
    assert any((real[i].targets, real[i].scores) != (shuffled[i].targets, shuffled[i].scores) for i in after), (
        "the shuffled returns changed nothing after the cut-off: the test could not have failed"
    )
