"""The Overview and Portfolio pages in real headless Chromium against the whole system (every
node a real process, paper mode, bundled data): a fresh paper account gets its first
deposit at start, a planning cycle buys, and the pages show the value, the returns, the
plan, every position and the weights, live and at once for a page opened late."""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import pytest
import pytest_asyncio

from dashboard import figures as f
from edge import Client, RemoteError
from schemas import catalog as t
from schemas.planning import CycleRequest, Plan
from schemas.portfolio import Deposit, Summary, SyncPortfolio
from schemas.topics import Topic
from tests.browser import chromium, logged_in, shot, system  # noqa: F401  # fixtures

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]


async def retained(
    running: Any, entry: Topic, until: Callable[[Any], bool] = lambda _: True, timeout: float = 120
) -> Any:
    """The first message on `entry`'s retained topic (the kept one or a later one) that `until` accepts."""
    got: asyncio.Queue[Any] = asyncio.Queue()
    async with Client(running.settings("operator"), name=f"test-{entry.path.rsplit('/', 1)[-1]}") as c:
        await c.subscribe(c.topics.of(entry), lambda msg: got.put_nowait(entry.model.model_validate_json(msg.payload)))
        deadline = time.monotonic() + timeout
        while True:
            model = await asyncio.wait_for(got.get(), max(0.1, deadline - time.monotonic()))
            if until(model):
                return model


async def chart_description(page: Any, ident: str) -> str:
    """ECharts' accessible description of a chart (its `aria-label`: the series and their data)."""
    locator = page.locator(f"#{ident}")
    await locator.wait_for()
    for _ in range(100):
        label = await locator.get_attribute("aria-label")
        if label:
            return str(label)
        await asyncio.sleep(0.1)
    raise AssertionError(f"#{ident} has no chart")


async def shows(page: Any, selector: str, text: str, timeout: float = 15) -> None:
    """Wait until `selector`'s text contains `text` (a live page updates without a reload)."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        seen = await page.locator(selector).first.inner_text()
        if text in seen:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{selector} shows {seen!r}, not {text!r}")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bought(system: Any) -> tuple[Plan, Summary]:  # noqa: F811
    """A planning cycle's plan, done, and the summary with what it bought."""
    await retained(system, t.OPTIMIZATION_TARGETS)
    await retained(system, t.PORTFOLIO_SUMMARY)
    async with Client(system.settings("operator"), name="test-cycle") as c:
        for _ in range(30):  # the coordinator may hear of them a moment after us
            try:
                await c.call(t.COORDINATOR_CYCLE, CycleRequest(), timeout=180)
                break
            except RemoteError as exc:
                assert "not arrived" in str(exc), exc
                await asyncio.sleep(1)
    plan = await retained(system, t.LATEST_PLAN, lambda p: p.status in ("done", "partly_done", "failed"), 120)
    assert plan.status == "done", plan
    summary = await retained(system, t.PORTFOLIO_SUMMARY, lambda s: len(s.positions) > 0, 60)
    return plan, summary


async def test_the_overview_shows_the_value_the_returns_the_plot_and_the_plan(system, chromium, bought):  # noqa: F811
    plan, _ = bought
    page = await logged_in(chromium, system, "/")
    summary = await retained(system, t.PORTFOLIO_SUMMARY)
    await shows(page, "#total-value", f.money(summary.total_base, summary.base))
    assert summary.total_base > 0 and "," in f.money(summary.total_base, summary.base)
    returns = page.locator("#returns")
    for period in ("1 month", "3 months", "1 year", "All time"):
        await returns.locator(f"tr:has-text('{period}')").wait_for()
    await shows(page, "#plan-status", "done")
    await page.locator("#plan-steps").wait_for()
    assert await page.locator("#plan-steps tbody tr").count() == len(plan.steps)
    await page.locator("#schedule >> text=planning cycle").wait_for()
    chart = await chart_description(page, "value-chart")
    assert "Portfolio value" in chart and "Deposited" in chart and "SPY.US" in chart, chart
    await shows(page, "#money-moved", f.money(summary.deposits_base, summary.base))
    body = await page.locator("body").inner_text()
    assert "Decimal(" not in body and "None" not in body
    await page.close()


async def test_the_portfolio_lists_every_position_with_its_value_and_the_weights(system, chromium, bought):  # noqa: F811
    page = await logged_in(chromium, system, "/portfolio")
    summary = await retained(system, t.PORTFOLIO_SUMMARY)
    table = page.locator("#positions")
    await table.wait_for()
    for h in summary.positions:
        row = table.locator(f"tbody tr:has-text('{h.symbol}')")
        await row.wait_for()
        text = await row.inner_text()
        assert f.money(h.value_base, summary.base) in text, text
        assert f.quantity(h.quantity) in text, text
    assert await table.locator("tbody tr").count() == len(summary.positions)
    chart = await chart_description(page, "weight-chart")
    assert "Weight" in chart and "Target" in chart
    for c in summary.cash:  # EUR cash in a EUR base shows the same text twice (amount, and in the base)
        await page.locator(f"#cash >> text={f.money(c.amount_base, summary.base)}").first.wait_for()
    await shot(page, "portfolio")
    await page.close()


async def test_a_deposit_shows_on_an_open_overview_without_a_reload(system, chromium, bought):  # noqa: F811
    page = await logged_in(chromium, system, "/")
    before = await retained(system, t.PORTFOLIO_SUMMARY)
    await shows(page, "#total-value", f.money(before.total_base, before.base))
    async with Client(system.settings("operator"), name="test-deposit") as c:
        await c.call(t.PORTFOLIO_DEPOSIT, Deposit(amount=Decimal(1000), currency="USD"), timeout=30)
    after = await retained(system, t.PORTFOLIO_SUMMARY, lambda s: s.deposits_base > before.deposits_base)
    await shows(page, "#total-value", f.money(after.total_base, after.base))
    await shows(page, "#money-moved", f.money(after.deposits_base, after.base))
    await page.close()


def seed_history(running: Any, summary: Summary, days: int = 120) -> None:
    """Valuations of the `days` before today in the portfolio's store, as if the account had
    run that long (the store answers `portfolio/valuations` from its file): from the money
    deposited up, down and back to today's value. The deposits were all seen today: the
    Overview counts them on the first day."""
    start, end = float(summary.deposits_base), float(summary.total_base)
    knots = [(0.0, start), (0.45, start * 1.05), (0.75, start * 0.98), (0.9, start * 1.02), (1.0, end)]
    today = summary.at.date()
    rows = []
    for i in range(days, 0, -1):
        x = (days - i) / days
        value = float(np.interp(x, *zip(*knots, strict=True))) * (1 + 0.004 * math.sin(i * 1.7))
        day = today - timedelta(days=i)
        rows.append((day.isoformat(), f"{value:.2f}", f"{value * 0.5:.2f}", f"{value * 0.5:.2f}", day.isoformat()))
    db = sqlite3.connect(running.launcher.run_dir / "state" / "portfolio.sqlite", timeout=30)
    with db:
        db.executemany("INSERT OR IGNORE INTO valuations VALUES (?,?,?,?,?)", rows)
    db.close()


async def test_a_page_opened_late_shows_everything_at_once(system, chromium, bought):  # noqa: F811
    summary = await retained(system, t.PORTFOLIO_SUMMARY)
    seed_history(system, summary)
    async with Client(system.settings("operator"), name="test-sync") as c:  # a sync publishes the summary:
        summary = await c.call(t.PORTFOLIO_SYNC, SyncPortfolio(), timeout=10)  # the dashboard reads the history
    await asyncio.sleep(6)  # the figures computed in the background (a worker process), before any page is open
    page = await logged_in(chromium, system, "/")
    started = time.monotonic()
    await page.locator("#total-value").wait_for(timeout=3000)
    assert await page.locator("#total-value").inner_text() == f.money(summary.total_base, summary.base)
    await page.locator("#plan-status >> text=done").wait_for(timeout=3000)
    await page.locator("#schedule").wait_for(timeout=3000)
    await page.locator("#returns tr:has-text('3 months')").wait_for(timeout=3000)
    await shows(page, "#returns tr:has-text('3 months')", "%", timeout=5)  # the history fetched: a figure
    assert "%" in await page.locator("#returns tr:has-text('1 month') td").nth(2).inner_text()
    assert time.monotonic() - started < 6
    await page.locator("#day-change").wait_for(timeout=3000)
    chart = await chart_description(page, "value-chart")
    assert summary.at.date().isoformat() in chart or "Portfolio value" in chart
    await asyncio.sleep(0.5)  # the chart's first paint
    await shot(page, "overview")
    await page.close()
