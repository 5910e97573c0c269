"""The whole system for the dashboard's tests: every node of the single-board inventory as
a real process (paper mode, bundled data) on its own Mosquitto, the dashboard among them,
and Debian's Chromium driven by Playwright, logged in.

`system` is shared by a test module (starting twelve processes takes seconds); tests that
kill a node or change the halt flag put things back. Screenshots go to `SHOTS`
(`.run/screenshots/`, kept as test artifacts; the README shows some)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from edge import Client, inventory
from edge.launcher import Launcher
from edge.settings import REPO_ROOT, BrokerSettings
from schemas.runtime import NodeStatus

CHROMIUM = "/usr/bin/chromium"
SHOTS = REPO_ROOT / ".run" / "screenshots"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class System:
    launcher: Launcher
    url: str
    password: str

    def settings(self, user: str = "operator") -> BrokerSettings:
        assert self.launcher.broker is not None
        return self.launcher.broker.settings(user)

    def child(self, ident: str) -> Any:
        return next(c for c in self.launcher.children if ident in c.idents)


async def online(settings: BrokerSettings, idents: set[str], timeout: float = 90) -> dict[str, NodeStatus]:
    """Wait until every node in `idents` has announced itself online."""
    seen: dict[str, NodeStatus] = {}
    async with Client(settings, name="test-online") as c:
        arrived = asyncio.Event()

        def on_status(msg: Any) -> None:
            s = NodeStatus.model_validate_json(msg.payload)
            seen[s.node] = s
            arrived.set()

        await c.subscribe(c.topics.node_filter("status"), on_status)
        deadline = time.monotonic() + timeout
        while not all(seen.get(i) is not None and seen[i].state == "online" for i in idents):
            left = deadline - time.monotonic()
            assert left > 0, f"not online: {sorted(i for i in idents if i not in seen or seen[i].state != 'online')}"
            arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), left)
    return seen


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    run_dir = tmp_path_factory.mktemp("system") / "run"
    port = free_port()
    # the scheduler's first cycle exchanges and invests the first 10,000 EUR: both count in the
    # day's turnover (20,000 by default), and a test's own cycle later that day needs room to plan
    env = {"DASHBOARD_PORT": str(port), "DASHBOARD_PASSWORD": "test-password", "TRADING_MAX_DAILY_TURNOVER": "1000000"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    launcher = Launcher(inventory.placements(), run_dir=run_dir)
    try:
        launcher.start_broker()
        skipped = launcher.start_nodes()
        assert skipped == [], f"placed but not built: {skipped}"
        idents = {i for c in launcher.children for i in c.idents}
        assert launcher.broker is not None
        asyncio.run(online(launcher.broker.settings("operator"), idents))
        yield System(launcher, f"http://127.0.0.1:{port}", "test-password")
    finally:
        launcher.stop()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def chromium() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        await browser.close()


async def logged_in(browser: Any, system: System, path: str = "/") -> Any:
    """A new browser tab, logged in, on `path`."""
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    await page.goto(f"{system.url}{path}")
    await page.fill("input[type=password]", system.password)
    await page.press("input[type=password]", "Enter")
    await page.wait_for_url(f"{system.url}{path}")
    return page


async def shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


def secrets_file(system: System) -> dict[str, str]:
    return json.loads((system.launcher.run_dir / "state" / "dashboard.secret").read_text())
