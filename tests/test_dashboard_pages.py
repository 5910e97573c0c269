"""The Universe, Plans and Orders pages in real headless Chromium against the whole system
(every node a real process, paper mode, bundled prices): the universe table with every
bundled security and its score, adding and deactivating a security from the page (read
back from the universe node's retained state), the latest plan in words after a planning
cycle with its cycle's notes, and the plan's orders with every step. Screenshots:
`.run/screenshots/universe.png`, `plans.png`, `orders.png`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import pytest_asyncio

from dashboard import words as w
from edge import Client
from nodes.universe.bundle import DATA_DIR
from schemas import catalog as t
from schemas.common import utcnow
from schemas.planning import CycleRequest, CycleResult, Cycles, ListPlans, Plan, Schedule
from schemas.topics import Topic
from schemas.trading import Attention, ListOrders
from schemas.universe import Universe
from tests.browser import chromium, logged_in, shot, system  # noqa: F401  # fixtures

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]

BUNDLED = [s["symbol"] for s in json.loads((DATA_DIR / "securities.json").read_text())]


async def opened(chromium: Any, system: Any, path: str) -> Any:  # noqa: F811
    """A logged-in tab on `path`, once its socket is up (a click before that is lost)."""
    page = await logged_in(chromium, system, path)
    await page.wait_for_function("window.did_handshake === true", timeout=30000)
    return page


async def picture(page: Any, name: str) -> None:
    """A screenshot of the whole page from its top (the header is fixed: scrolled, it would
    cover the middle)."""
    await page.evaluate("window.scrollTo(0, 0)")
    await asyncio.sleep(0.5)
    await shot(page, name)


def row_of(table: Any, symbol: str) -> Any:
    """The universe table's row of `symbol` (T.US, not WMT.US)."""
    return table.locator(f"tbody tr:has(td:text-is('{symbol}'))")


async def retained(system, entry: Topic, until: Callable[[Any], bool] = lambda m: True, timeout: float = 60) -> Any:  # noqa: F811
    """The retained state of `entry` once `until` says so (read as the operator)."""
    arrived: asyncio.Queue[bytes] = asyncio.Queue()
    async with Client(system.settings("operator"), name=f"test-pages-{time.monotonic_ns()}") as c:
        await c.subscribe(c.topics.of(entry), lambda m: arrived.put_nowait(m.payload))
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"{entry.path} never came as expected"
            model = entry.model.model_validate_json(await asyncio.wait_for(arrived.get(), left))
            if until(model):
                return model


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def planned(system) -> tuple[CycleResult, Plan]:  # noqa: F811
    """A planning cycle run as the operator once the scheduler's first one (a minute after
    the start) went well, so that no other cycle runs meanwhile; and the latest plan, once
    its orders are final (the scheduler's cycle may have made it)."""

    def first_cycle_done(schedule: Schedule) -> bool:
        return any(j.name == "planning_cycle" and j.last_status == "ok" for j in schedule.jobs)

    await retained(system, t.SCHEDULE, first_cycle_done, timeout=180)
    async with Client(system.settings("operator"), name="test-pages-cycle") as c:
        result = await c.call(t.COORDINATOR_CYCLE, CycleRequest(), timeout=120)
    plan = await retained(system, t.LATEST_PLAN, lambda p: p.status in ("done", "partly_done", "failed"))
    assert plan.status == "done" and plan.steps
    return result, plan


async def test_the_universe_table_has_every_bundled_security_with_its_score(system, chromium):  # noqa: F811
    page = await opened(chromium, system, "/universe")
    table = page.locator("#universe")
    for symbol in BUNDLED:
        await row_of(table, symbol).wait_for(timeout=60000)
    aapl = row_of(table, "AAPL.US")
    await aapl.locator("text=/^\\d+\\.\\d$/").first.wait_for(timeout=60000)  # its score, once scored
    assert "Apple Inc." in await aapl.inner_text() and "USD " in await aapl.inner_text()
    await page.locator("#security-detail >> text=AAPL.US").wait_for()  # the first row's card, with its chart
    await page.locator("#price-chart canvas").first.wait_for(timeout=15000)
    await row_of(table, "MA.US").click()  # another security's closes
    await page.locator("#security-detail >> text=Mastercard Inc.").wait_for(timeout=15000)
    await page.locator("#security-detail >> text=/Daily close, .* USD/").wait_for(timeout=15000)
    await row_of(table, "AAPL.US").click()
    await page.locator("#security-detail >> text=Apple Inc.").wait_for(timeout=15000)
    await picture(page, "universe")
    await page.close()


async def test_adding_and_deactivating_a_security_from_the_page_reaches_the_universe(system, chromium):  # noqa: F811
    page = await opened(chromium, system, "/universe")
    await row_of(page.locator("#universe"), "AAPL.US").wait_for(timeout=60000)
    # a symbol the universe has already: the node's refusal is shown
    await page.click("#add-security")
    await page.fill("#add-symbol", "AAPL.US")
    await page.fill("#add-name", "Apple again")
    await page.click("#add-review")
    await page.click("#confirm-add")
    await page.locator("#universe-answer >> text=/Refused: AAPL.US is in the universe already/").wait_for()
    # a new one, after its confirmation
    await page.click("#add-security")
    await page.fill("#add-symbol", "nvda.us")  # upper-cased by the form
    await page.fill("#add-name", "NVIDIA Corp.")
    await page.fill("#add-exchange", "NASDAQ")
    await page.click("#add-review")
    await page.locator("text=Add NVDA.US (NVIDIA Corp., USD, NASDAQ) to the universe?").wait_for()
    await page.click("#confirm-add")
    await page.locator("#universe-answer >> text=Added NVDA.US (NVIDIA Corp.)").wait_for()
    added = await retained(system, t.UNIVERSE_SECURITIES, lambda u: any(s.symbol == "NVDA.US" for s in u.securities))
    nvda = next(s for s in added.securities if s.symbol == "NVDA.US")
    assert (nvda.name, nvda.currency, nvda.exchange, nvda.active) == ("NVIDIA Corp.", "USD", "NASDAQ", True)
    row = row_of(page.locator("#universe"), "NVDA.US")
    await row.wait_for()
    # deactivated from its card, after a confirmation; cancelling changes nothing
    await row.click()
    await page.locator("#security-detail >> text=NVIDIA Corp.").wait_for()
    await page.click("#deactivate")
    await page.click("#confirm-no")
    await page.click("#deactivate")
    await page.locator("text=Deactivate NVDA.US (NVIDIA Corp.)?").wait_for()
    await page.click("#confirm-deactivate")
    await page.locator("#universe-answer >> text=Deactivated NVDA.US").wait_for()

    def inactive(u: Universe) -> bool:
        return any(s.symbol == "NVDA.US" and not s.active for s in u.securities)

    await retained(system, t.UNIVERSE_SECURITIES, inactive)
    await row.locator("[aria-label=no]").wait_for()  # its active badge
    await page.locator("#activate").wait_for()  # its card offers to activate it again
    await page.close()


async def test_the_plans_page_shows_the_latest_plan_in_words_and_the_cycles_notes(system, chromium, planned):  # noqa: F811
    result, plan = planned
    page = await opened(chromium, system, "/plans")
    await page.locator(f"#plan-id >> text={plan.plan_id}").wait_for(timeout=15000)
    await page.locator("#plan-status >> text=done").wait_for()
    steps = page.locator("#plan-steps")
    for s in plan.steps:  # each action in words, with its reason and its order's state
        row = steps.locator(f"tr:has-text('{w.action_headline(s.action)}')")
        await row.wait_for()
        text = await row.inner_text()
        assert "points" in text and f"filled {w.quantity(s.action.quantity)} of" in text, text
    changes = await page.locator("#plan-changes").inner_text()
    assert "Expected return, a year" in changes and "Fees" in changes and f"{plan.evaluation.base} " in changes
    await page.locator("#plan-weights").wait_for()
    await page.locator("#plan-baseline >> text=Doing nothing scores").wait_for()
    if plan.evaluation.alternatives:
        alternatives = await page.locator("#plan-alternatives").inner_text()
        assert f"against {plan.evaluation.score:.4f} for the plan" in alternatives
    assert await page.locator("#approve").count() == 0  # paper: approved automatically, no buttons
    await page.locator("#approval >> text=/Paper mode: plans are approved automatically/").wait_for()
    # the cycle run above, with its notes (whether or not it made the plan shown)
    cycles = await retained(
        system, t.COORDINATOR_CYCLES, lambda c: any(o.cycle_id == result.cycle_id for o in c.cycles)
    )
    assert isinstance(cycles, Cycles)
    cycle = page.locator(f"#cycle-{result.cycle_id}")
    await cycle.wait_for(timeout=15000)
    await cycle.click()
    for note in result.notes:
        await cycle.locator(f"text={note}").first.wait_for()
    await page.locator(f"#plan-history >> text={plan.plan_id}").wait_for(timeout=15000)
    # a plan of the history, shown above when clicked: the one with the most actions (the
    # scheduler's first, often), for the screenshot
    async with Client(system.settings("operator"), name="test-pages-plans") as c:
        plans = (await c.call(t.PLANNING_PLANS, ListPlans(), timeout=10)).plans
    largest = max(plans, key=lambda p: len(p.steps))
    await page.locator(f"#plan-history td:text-is('{largest.plan_id}')").click()
    await page.locator(f"#plan-id >> text={largest.plan_id}").wait_for()
    await page.locator(f"#plan-steps >> text={w.action_headline(largest.steps[-1].action)}").wait_for()
    if largest.evaluation.alternatives:
        await page.locator("#plan-alternatives").wait_for()
    await picture(page, "plans")
    await page.close()


async def test_a_cycle_that_makes_no_plan_is_listed_with_why(system, chromium, planned):  # noqa: F811
    """Right after a plan is filled, a second cycle finds little or nothing worth doing: its
    outcome, planned or not, is listed with its notes; one without a plan says why."""
    async with Client(system.settings("operator"), name="test-pages-again") as c:
        again = await c.call(t.COORDINATOR_CYCLE, CycleRequest(max_actions=1), timeout=120)
    page = await opened(chromium, system, "/plans")
    cycle = page.locator(f"#cycle-{again.cycle_id}")
    await cycle.wait_for(timeout=15000)
    headline = await cycle.inner_text()
    assert ("No plan: " in headline) if again.plan is None else (f"Plan {again.plan.plan_id} proposed" in headline)
    await cycle.click()
    await cycle.locator(f"text={again.notes[-1]}").first.wait_for()
    await page.close()


async def test_the_orders_page_lists_the_plans_orders_with_every_step(system, chromium, planned):  # noqa: F811
    _, plan = planned
    page = await opened(chromium, system, "/orders")
    table = page.locator("#orders")
    await page.locator("#attention-none").wait_for(timeout=15000)
    async with Client(system.settings("operator"), name="test-pages-orders") as c:
        outbox = await c.call(t.TRADING_ORDERS, ListOrders(plan_id=plan.plan_id), timeout=10)
    assert {o.client_order_id for o in outbox.orders} == {s.client_order_id for s in plan.steps}
    for o in outbox.orders:
        row = table.locator(f"tr:has-text('{o.client_order_id}')")
        await row.wait_for(timeout=15000)
        text = await row.inner_text()
        assert w.order_headline(o) in text and "filled" in text
        for s in o.steps:  # every step: when, what, who
            assert f"{s.at:%H:%M:%S}" in text and w.step_words(s) in text, (w.step_words(s), text)
    await picture(page, "orders")
    # a state none of them is in: none shown; then the search narrows the list to one order
    await page.click("#status-filter")
    await page.locator(".q-menu >> text=denied").click()
    await page.locator("#order-count >> text=/^0 of \\d+ orders$/").wait_for()
    await page.locator("#orders >> text=No order (in the states chosen)").wait_for()
    await page.locator(".q-menu >> text=denied").click()  # chosen again: all shown again
    await page.keyboard.press("Escape")
    await page.locator("#order-count >> text=/^\\d+ orders$/").wait_for()
    first = outbox.orders[0].client_order_id
    await page.fill("#order-search", first)
    await table.locator("tbody tr").first.wait_for()
    assert await table.locator("tbody tr").count() == 1
    await page.close()


async def test_an_order_needing_attention_is_on_top_with_its_choices_explained(system, chromium, planned):  # noqa: F811
    """The trading node's attention list as it publishes it, with a filled order on it: the
    page offers resend and abandon, explains each, and shows trading's refusal (only an
    unknown order is settled). The real list is put back after."""
    _, plan = planned
    async with Client(system.settings("operator"), name="test-pages-get") as c:
        filled = (await c.call(t.TRADING_ORDERS, ListOrders(plan_id=plan.plan_id), timeout=10)).orders[0]
    async with Client(system.settings("trading"), name="trading-test-attention") as trading:
        flagged = filled.model_copy(update={"note": "sent without a definite answer; the broker does not list it"})
        await trading.emit(
            t.TRADING_ATTENTION, Attention(orders=[flagged], blocked_symbols=[filled.symbol], at=utcnow())
        )
        try:
            page = await opened(chromium, system, "/orders")
            card = page.locator(f"#attention-{filled.ref}")
            await card.locator(f"text={w.order_headline(filled)}").wait_for(timeout=15000)
            await page.locator(f"#attention >> text=/New orders for {filled.symbol} wait/").wait_for()
            await card.locator("#abandon").click()
            await page.locator("text=nothing is sent, the order is kept as abandoned").wait_for()
            await page.fill("#settle-reason", "checked the account")
            await page.click("#confirm-abandon")
            await page.locator(f"text=/Refused: order {filled.client_order_id} is filled/").wait_for(timeout=30000)
            await card.locator("#resend").click()
            await page.locator("text=Send it again, under a new broker id").wait_for()
            await page.locator("button:has-text('Cancel')").last.click()
            await page.close()
        finally:
            await trading.emit(t.TRADING_ATTENTION, Attention(at=utcnow()))
