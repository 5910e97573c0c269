"""The Controls page and what every page does system-wide, in real headless Chromium against
the whole system (every node a real process, paper mode, bundled data): a halt from the page
reaches the retained flag (read back with the real `mosquitto_sub`) and every page's banner;
a cycle started from the page shows its progress, then its plan; a tab opened afterwards
shows it all at once; after a broker restart the page follows by itself. The texts the page
shows are pure functions, tested first without a browser."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from dashboard.layout import PAGES
from dashboard.pages import controls
from edge import Client, RemoteError
from schemas import catalog as t
from schemas.planning import CycleProgress, CycleResult
from schemas.portfolio import Deposit, Summary
from schemas.topics import Topics
from schemas.trading import Halt, Halted, Resume
from tests.browser import System, chromium, logged_in, shot, system  # noqa: F401  # fixtures

browser = pytest.mark.asyncio(loop_scope="module")
pytestmark = [pytest.mark.timeout(300)]
MOSQUITTO_SUB = "/usr/bin/mosquitto_sub"


# -- the texts (no browser) ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "amount"),
    [("1500", "1500"), (" 1,500.50 ", "1500.50"), ("0.01", "0.01"), ("1 000", "1000"), ("12_000.5", "12000.5")],
)
def test_an_amount_as_typed(typed: str, amount: str) -> None:
    assert controls.parse_amount(typed) == Decimal(amount)
    assert controls.amount_problem(typed) is None


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("", "enter an amount"),
        ("0", "above zero"),
        ("-5", "digits"),
        ("1,5", "dot for decimals"),
        ("1.234", "2 decimals"),
        ("1e3", "digits"),
        ("NaN", "digits"),
        ("12.", "digits"),
    ],
)
def test_an_amount_that_is_refused_says_why(typed: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        controls.parse_amount(typed)
    assert problem in (controls.amount_problem(typed) or "")


def test_deposits_only_into_the_paper_account() -> None:
    assert controls.deposit_refusal("paper") is None
    assert controls.deposit_refusal("research") is None
    assert "bank transfer" in (controls.deposit_refusal("live") or "")
    assert "waiting" in (controls.deposit_refusal(None) or "")


def test_texts_format_money_and_counts() -> None:
    assert controls.money(Decimal("1234567.5"), "EUR") == "EUR 1,234,567.50"
    assert controls.quantity(Decimal("10.000")) == "10"
    assert controls.quantity(Decimal("1500")) == "1,500"
    now = datetime(2025, 3, 4, 5, 6, tzinfo=UTC)
    progress = CycleProgress(
        cycle_id="c-1", round=2, done=3, total=12, evaluated=4567, best_score=0.12345, best_sequence=[1], at=now
    )
    assert controls.progress_text(progress) == (
        "c-1: round 2, 3 of 12 batches done, 4,567 sequences evaluated, best score 0.1235"
    )
    assert controls.plural(1, "batch", "batches") == "1 batch"
    assert controls.plural(1200, "sequence") == "1,200 sequences"
    nothing = CycleResult(cycle_id="c-1", plan=None, evaluation=None, candidates=0, notes=["no cash"])
    assert controls.cycle_text(nothing) == "c-1: no plan (no cash)"
    halted = Halted(halted=True, reason="fire drill", at=now, mode="paper")
    assert controls.halted_text(halted) == "trading halted at 2025-03-04 05:06 UTC: fire drill"
    assert controls.sentence(controls.halted_text(halted)).startswith("Trading halted at 2025-03-04 05:06 UTC")


def test_a_deposit_offers_the_base_currency_first() -> None:
    summary = Summary.model_validate(
        {
            "base": "EUR",
            "mode": "paper",
            "broker": "paper",
            "positions": [],
            "cash": [
                {"currency": "USD", "amount": "1500.5", "amount_base": "1380"},
                {"currency": "EUR", "amount": "0", "amount_base": "0"},
            ],
            "positions_base": "0",
            "cash_base": "1380",
            "total_base": "1380",
            "fx": {"USD": "0.92", "GBP": "1.17"},
            "fx_source": "test",
            "deposits_base": "0",
            "dividends_base": "0",
            "at": "2025-03-04T05:06:00Z",
        }
    )
    assert controls.deposit_currencies(summary) == ["EUR", "GBP", "USD"]
    assert controls.cash_text(summary) == "USD 1,500.50"


# -- in the browser, against the whole system ------------------------------------------------------
def mosquitto_sub_halted(whole: System) -> dict[str, Any]:
    """The retained halt flag as the real `mosquitto_sub` reads it."""
    s = whole.settings("operator")
    topic = Topics(s.root).of(t.TRADING_HALTED)
    out = subprocess.run(
        [
            MOSQUITTO_SUB,
            "-h",
            s.host,
            "-p",
            str(s.port),
            "-u",
            s.user,
            "-P",
            s.password,
            "-t",
            topic,
            "-C",
            "1",
            "-W",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    flag: dict[str, Any] = json.loads(out.stdout)
    return flag


async def until_halted_is(whole: System, halted: bool, timeout: float = 15) -> dict[str, Any]:
    """The retained flag once it says `halted` (the page's call has returned, so it is published)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        flag = await asyncio.to_thread(mosquitto_sub_halted, whole)
        if flag["halted"] is halted or asyncio.get_running_loop().time() > deadline:
            return flag
        await asyncio.sleep(0.2)


async def banner_everywhere(page: Any, whole: System, shown: bool) -> None:
    for path, _name, _icon in PAGES:
        await page.goto(f"{whole.url}{path}")
        await page.locator("#mode").wait_for(timeout=15000)  # the header is drawn
        banner = page.locator("#halted-banner")
        if shown:
            await banner.wait_for(timeout=10000)
        else:
            await banner.wait_for(state="detached", timeout=10000)


@browser
async def test_halt_and_resume_from_the_page_reach_the_flag_and_every_banner(system, chromium):  # noqa: F811
    page = await logged_in(chromium, system, "/controls")
    await page.locator("#trading-state >> text=running").wait_for(timeout=15000)
    await page.click("#halt-button")
    await page.fill("#halt-reason", "browser test: fire drill")
    await page.click("#halt-confirm")
    await page.locator("#trading-state >> text=fire drill").wait_for(timeout=15000)
    flag = await until_halted_is(system, True)
    assert flag["halted"] is True and flag["reason"] == "browser test: fire drill", flag
    await page.locator("#log >> text=halt").wait_for(timeout=5000)
    await banner_everywhere(page, system, shown=True)

    await page.goto(f"{system.url}/controls")
    await page.click("#resume-button")
    await page.click("#resume-confirm")
    await page.locator("#trading-state >> text=running").wait_for(timeout=15000)
    flag = await until_halted_is(system, False)
    assert flag["halted"] is False, flag
    await banner_everywhere(page, system, shown=False)
    await page.close()


@browser
async def test_a_halt_needs_its_confirmation(system, chromium):  # noqa: F811
    page = await logged_in(chromium, system, "/controls")
    await page.locator("#trading-state >> text=running").wait_for(timeout=15000)
    await page.click("#halt-button")
    await page.fill("#halt-reason", "not meant")
    await page.keyboard.press("Escape")  # the dialog closed without confirming
    await page.locator("#halt-confirm").wait_for(state="hidden", timeout=5000)
    await asyncio.sleep(1)
    assert (await asyncio.to_thread(mosquitto_sub_halted, system))["halted"] is False
    await page.close()


# Every text #cycle-progress-text had, recorded in the page as it changes (it is redrawn,
# so the observer watches the whole body).
RECORD_PROGRESS = """() => {
  window.progressSeen = [];
  const look = () => {
    const el = document.querySelector('#cycle-progress-text');
    const text = el ? el.textContent : null;
    const planned = !!document.querySelector('#cycle-plan, #cycle-no-plan');
    const last = window.progressSeen[window.progressSeen.length - 1];
    if (text && (!last || last.text !== text)) window.progressSeen.push({text, planned});
  };
  new MutationObserver(look).observe(document.body, {subtree: true, childList: true, characterData: true});
  look();
}"""


@browser
async def test_a_cycle_from_the_page_shows_its_progress_then_its_plan(system, chromium):  # noqa: F811
    # fresh cash to deploy: a plan even if the scheduler's first cycle (a minute after the start) came first
    async with Client(system.settings("operator"), name="test-cash") as c:
        await c.call(t.PORTFOLIO_DEPOSIT, Deposit(amount=Decimal(20000), currency="EUR", note="test"), timeout=15)
    page = await logged_in(chromium, system, "/controls")
    await page.locator("#cycle-button").wait_for(timeout=15000)
    await page.evaluate(RECORD_PROGRESS)
    await page.click("#cycle-button")
    await page.locator("#cycle-result >> text=running").wait_for(timeout=10000)
    await page.locator("#cycle-plan, #cycle-no-plan").first.wait_for(timeout=240000)
    caption = await page.locator("#cycle-result .text-caption").first.inner_text()
    cycle_id = caption.split()[0]
    assert cycle_id.startswith("cycle-"), caption
    seen = await page.evaluate("window.progressSeen")
    ours = [s for s in seen if s["text"].startswith(f"{cycle_id}:")]
    assert ours and " batch" in ours[0]["text"], seen
    assert any(not s["planned"] for s in ours), f"no progress shown before the outcome: {seen}"
    assert await page.locator("#cycle-plan").count() == 1, await page.locator("#cycle-result").inner_text()
    plan_line = await page.locator("#cycle-plan").inner_text()
    assert "order" in plan_line
    await page.locator("#cycle-result >> text=open in Plans").wait_for()
    await page.locator("#log >> text=cycle").wait_for(timeout=5000)
    await page.locator(".q-notification").first.wait_for(state="detached", timeout=15000)
    await shot(page, "controls")
    await page.close()

    # a tab opened afterwards has it all at once: the outcome, the progress, the log
    fresh = await logged_in(chromium, system, "/controls")
    await fresh.locator("#cycle-plan").wait_for(timeout=5000)
    assert await fresh.locator("#cycle-plan").inner_text() == plan_line
    assert (await fresh.locator("#cycle-progress-text").inner_text()).startswith("cycle-")
    await fresh.locator("#log >> text=cycle").wait_for(timeout=5000)
    await fresh.locator("#trading-state >> text=running").wait_for(timeout=5000)
    await fresh.goto(f"{system.url}/")
    await fresh.locator("#mode >> text=paper").wait_for(timeout=5000)
    await fresh.close()


@browser
async def test_a_deposit_is_validated_then_credited(system, chromium):  # noqa: F811
    page = await logged_in(chromium, system, "/controls")
    await page.locator("#deposit-button").wait_for(timeout=15000)
    await page.fill("#deposit-amount", "12,5")
    await page.click("#deposit-button")
    await page.locator("text=use a dot for decimals").first.wait_for(timeout=5000)
    assert await page.locator("#log >> text=deposit").count() == 0  # nothing was sent
    await page.fill("#deposit-amount", "1,234.56")
    await page.click("#deposit-button")
    await page.locator("#log >> text=/deposited [A-Z]{3} 1,234.56/").wait_for(timeout=15000)
    assert await page.input_value("#deposit-amount") == ""
    await page.close()


@browser
async def test_a_price_sync_from_the_page_reports_what_it_did(system, chromium):  # noqa: F811
    page = await logged_in(chromium, system, "/controls")
    await page.click("#sync-button")
    await page.locator("#sync-progress-text >> text=synced").wait_for(timeout=120000)
    text = await page.locator("#sync-progress-text").inner_text()
    assert "securities synced" in text and "changed" in text, text
    await page.locator("#log >> text=sync").wait_for(timeout=5000)
    await page.close()


@browser
async def test_after_a_broker_restart_the_page_follows_by_itself(system, chromium):  # noqa: F811
    page = await logged_in(chromium, system, "/controls")
    await page.locator("#trading-state >> text=running").wait_for(timeout=15000)
    broker = system.launcher.broker
    port = broker.port
    await asyncio.to_thread(broker.restart)
    assert broker.port == port
    async with Client(system.settings("operator"), name="test-restart") as c:
        # the trading node reconnects on its own schedule: ask until it answers
        deadline = asyncio.get_running_loop().time() + 60
        while True:
            try:
                await c.call(t.TRADING_HALT, Halt(reason="after the broker restart"), timeout=3)
                break
            except (TimeoutError, RemoteError):
                assert asyncio.get_running_loop().time() < deadline, "trading never answered after the restart"
        await page.locator("#halted-banner >> text=after the broker restart").wait_for(timeout=30000)
        await page.locator("#trading-state >> text=after the broker restart").wait_for(timeout=5000)
        await c.call(t.TRADING_RESUME, Resume(reason="test done"), timeout=10)
    await page.locator("#halted-banner").wait_for(state="detached", timeout=15000)
    await page.locator("#trading-state >> text=running").wait_for(timeout=5000)
    await page.close()
