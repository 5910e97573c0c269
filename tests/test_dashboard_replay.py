"""The Replay page in real headless Chromium: the dashboard alone as a real process on its own
Mosquitto (the page needs no other node), pointed at a replay folder that `replay.report.write`
filled from a small hand-made ledger; its figures as report.json has them, both plots loaded,
the plots refused without a login, and what it says when there is no replay."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from dashboard.formats import money, percent
from edge import inventory
from edge.launcher import Launcher
from replay import report
from replay.ledger import Ledger
from tests.browser import System, chromium, free_port, logged_in, online, shot  # noqa: F401  # fixtures
from tests.test_replay_report import PNG, ledger, random_walks, step, trade

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(120)]

NEWEST, OLDER = "2014-11_2015-03", "2005-01_2014-12"
PASSWORD = "test-password"


def monthly_aaa(prices: pd.DataFrame) -> Ledger:
    """A system that deposits 1000 USD every 21 trading days and buys whole AAA shares with
    its cash at the close, 1 USD a trade."""
    shares, cash, steps = 0, 0.0, []
    for on in prices.index[::21]:
        price = float(prices.at[on, "AAA.US"])
        bought = int((cash + 999) // price)
        shares, cash = shares + bought, cash + 1000 - bought * price - 1
        fill = trade("AAA.US", "buy", bought, price, fee=1)
        steps.append(step(on, 1000, {"AAA.US": shares}, cash, [fill], targets={"AAA.US": 0.5, "BBB.US": 0.5}))
    return ledger(steps, prices.index[-1], fee_fixed="1")


@pytest.fixture(scope="module")
def replays(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two replay folders: one written by the report (its window spans 2015, so it has all three
    windows), and a copy of it that is a day older."""
    root = tmp_path_factory.mktemp("replays")
    prices = random_walks(90, ["AAA.US", "BBB.US", "SPY.US"], 3, start="2014-11-03")
    report.write(monthly_aaa(prices), prices, root / NEWEST, months_per_s=1.0)
    shutil.copytree(root / NEWEST, root / OLDER)
    day_ago = time.time() - 86400
    os.utime(root / OLDER / "report.json", (day_ago, day_ago))
    return root


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory, replays: Path) -> Iterator[System]:
    """Only the dashboard node and its broker, with `DASHBOARD_REPLAY_DIR` set to `replays`."""
    port = free_port()
    launcher = Launcher(
        [p for p in inventory.placements() if p.node == "dashboard"],
        run_dir=tmp_path_factory.mktemp("dashboard") / "run",
        env={"DASHBOARD_PORT": str(port), "DASHBOARD_PASSWORD": PASSWORD, "DASHBOARD_REPLAY_DIR": str(replays)},
    )
    try:
        launcher.start_broker()
        launcher.start_nodes()
        assert launcher.broker is not None
        asyncio.run(online(launcher.broker.settings("operator"), {"dashboard"}, timeout=60))
        yield System(launcher, f"http://127.0.0.1:{port}", PASSWORD)
    finally:
        launcher.stop()


async def cell(page: Any, window: str, figure: str, column: int) -> str:
    """The text of a window's table at a figure's row; column 1 is System, 4 SPY."""
    row = page.locator(f"#figures-{window} tbody tr", has=page.locator(f"td:text-is('{figure}')"))
    return str(await row.locator("td").nth(column).inner_text()).strip()


async def test_the_replays_newest_first_with_each_windows_figures_and_both_plots(dashboard, chromium, replays):  # noqa: F811
    page = await logged_in(chromium, dashboard, "/replay")
    assert await page.locator("#replays a").all_inner_texts() == [NEWEST, OLDER]
    doc = json.loads((replays / NEWEST / "report.json").read_text())
    assert set(doc) == {"whole", "out_of_sample", "in_sample"}
    for window, figures in doc.items():
        assert await cell(page, window, "XIRR", 1) == percent(figures["xirr"])
        assert await cell(page, window, "Max drawdown", 4) == percent(figures["spy_max_drawdown"])
        assert await cell(page, window, "Turnover/yr", 2) == percent(figures["targets_only_turnover"])
        assert await cell(page, window, "Final value", 3) == money(figures["equal_weight_final_value"], "USD")
        assert await cell(page, window, "Fees", 1) == money(figures["fees"], "USD")
        assert await cell(page, window, "Trades", 1) == f"{figures['trades']:,}"
        assert await cell(page, window, "Exchanges", 4) == f"{figures['spy_exchanges']:,}"
        assert await cell(page, window, "Exchange cost", 1) == money(figures["exchange_cost"], "USD")
    whole = doc["whole"]
    assert f"{whole['start']} .. {whole['end']}" in await page.locator("#replay-window").inner_text()
    assert await page.locator("#replay-command").inner_text() == "edge replay --from 2014-11 --to 2015-03 --out " + str(
        replays / NEWEST
    )
    for plot in ("equity", "drawdowns"):
        await page.wait_for_function(f"() => document.querySelector('#{plot}').naturalWidth > 0", timeout=10000)
    src = await page.locator("#equity").get_attribute("src")
    got = await page.request.get(f"{dashboard.url}{src}")
    assert got.status == 200 and got.headers["content-type"] == "image/png"
    assert await got.body() == (replays / NEWEST / "equity.png").read_bytes() and (await got.body()).startswith(PNG)
    path = await shot(page, "replay")
    assert path.stat().st_size > 0
    await page.click(f"#replays a:text-is('{OLDER}')")
    await page.wait_for_url(f"{dashboard.url}/replay?run={OLDER}")
    await page.locator("#replay-window", has_text=OLDER).wait_for(timeout=10000)
    await page.close()


async def test_a_plot_needs_the_login_and_nothing_but_the_plots_and_report_leave_the_folder(dashboard, chromium):  # noqa: F811
    anonymous = await chromium.new_context()
    refused = await anonymous.request.get(f"{dashboard.url}/replay/{NEWEST}/equity.png", max_redirects=0)
    assert refused.status in (302, 303, 307) and refused.headers["location"].startswith("/login")
    await anonymous.close()
    page = await logged_in(chromium, dashboard, "/replay")
    for path in (f"{NEWEST}/ledger.json", f"{NEWEST}/missing.png", "..%2F..%2Fetc/equity.png"):
        assert (await page.request.get(f"{dashboard.url}/replay/{path}")).status == 404, path
    assert (await page.request.get(f"{dashboard.url}/replay/{NEWEST}/report.txt")).status == 200
    await page.close()


async def test_without_a_replay_the_page_says_how_to_make_one(dashboard, chromium, replays):  # noqa: F811
    aside = replays.with_name(f"{replays.name}-aside")
    replays.rename(aside)
    try:
        page = await logged_in(chromium, dashboard, "/replay")  # no folder at all
        assert "make replay" in await page.locator("#no-replay").inner_text()
        replays.mkdir()  # a folder with only a replay still running (no report yet)
        (replays / "2024-01_2024-11").mkdir()
        await page.reload()
        empty = await page.locator("#no-replay").inner_text()
        assert "No replay yet" in empty and "make replay" in empty
        assert await page.locator("#replays").count() == 0
        await page.close()
    finally:
        shutil.rmtree(replays, ignore_errors=True)
        aside.rename(replays)
