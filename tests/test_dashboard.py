"""The dashboard in real headless Chromium against the whole system (every node a real
process, paper mode, bundled data): the login, the System page and its error feed."""

from __future__ import annotations

import asyncio
import signal

import pytest

from edge import Client
from tests.browser import chromium, logged_in, shot, system  # noqa: F401  # fixtures

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(300)]


async def test_no_page_without_a_login(system, chromium):  # noqa: F811
    page = await chromium.new_page()
    await page.goto(f"{system.url}/orders")
    assert "/login" in page.url  # sent to the login page, and back after it
    await page.fill("input[type=password]", "wrong")
    await page.press("input[type=password]", "Enter")
    await page.wait_for_selector("text=Wrong password")
    assert "/login" in page.url
    await page.fill("input[type=password]", system.password)
    await page.press("input[type=password]", "Enter")
    await page.wait_for_url(f"{system.url}/orders")
    await page.close()


async def test_the_system_page_shows_every_node_and_a_killed_one_goes_offline(system, chromium):  # noqa: F811
    page = await logged_in(chromium, system, "/system")
    table = page.locator("#nodes")
    for ident in (i for c in system.launcher.children for i in c.idents):
        await table.locator(f"tr:has-text('{ident}') >> text=online").wait_for(timeout=15000)
    await shot(page, "system")
    victim = system.child("generator")
    victim.proc.send_signal(signal.SIGKILL)
    await table.locator("tr:has-text('generator') >> text=offline").wait_for(timeout=30000)
    victim.start()  # back for the other tests
    await table.locator("tr:has-text('generator') >> text=online").wait_for(timeout=30000)
    await page.close()


async def test_a_rejected_message_shows_in_the_error_feed(system, chromium):  # noqa: F811
    page = await logged_in(chromium, system, "/system")
    async with Client(system.settings("operator"), name="test-bad") as c:
        await c.publish(c.topics.command("trading", "orders"), b'{"limit": "lots"}', qos=1)
    await page.locator("#errors >> text=trading").first.wait_for(timeout=15000)
    await page.close()
    await asyncio.sleep(0)
