"""The dashboard's memory, its first page load, and how fast a retained state's change reaches open pages.

`python bench/dashboard.py [--quick]` starts a dev broker (mosquitto with the project's dev
config and catalog, on a free port), publishes the retained states the pages show (the
universe's securities and quotes from `tests/market.py`, trading's halt flag, each as its
owner), starts the real `mosquitto_sub` (subscribed from the start, printing every message
with its arrival time, `-F "%U %p"`) and headless Chromium through Playwright (Debian's
/usr/bin/chromium). Then, in rounds alternating two variants of the dashboard:

- as shipped: `python -m edge.run dashboard` (broker user `dashboard`, a free DASHBOARD_PORT,
  a password), whose pages look for changes on the board every `layout.REFRESH_S` = 0.1 s;
- fast timer: the same process with `layout.REFRESH_S` set to 0.01 before it starts (in its
  own process only, see `FAST`): how much of the latency is that polling, and what it costs.

Each round starts the variant's process and measures:

1. its VmRSS at rest: online, idle for `--idle-wait` seconds, no browser connected;
2. the first page load: a new browser context with the login cookie and an empty cache,
   navigation to `/` until the page is drawn (the header's mode badge shown, `load` fired);
   then the same again in that context (assets cached);
3. its VmRSS with `--tabs` logged-in tabs open (Overview, Portfolio, Universe, System,
   Controls), after `--settle` seconds, and its CPU over those seconds (the pages' timers);
4. update latency: the halt flag flips `--changes` times (published retained as `trading`,
   its owner, with a reason naming the change; a random pause of 0.3-0.7 s between changes
   so that each lands anywhere in the pages' polling cycle). In every tab a MutationObserver
   notes when the halted banner (drawn on every page by `layout.frame`) appears, changes or
   goes, on the page's clock (performance.timeOrigin + performance.now()), converted to this
   process's `time.time()` with the offset measured by round trips to the page (the one with
   the shortest round trip, before and after the changes; its error is at most half that
   round trip, printed). mosquitto_sub's `%U` is the same clock as `time.time()`. Per change:
   publish -> the page's DOM (each tab), publish -> mosquitto_sub, and the page after
   mosquitto_sub (the dashboard's own part, from the broker's delivery on);
5. its VmRSS after the tabs closed and NiceGUI let their clients go.

Figures: RSS medians over a variant's rounds, latency percentiles pooled over its rounds and
tabs. The last line printed is one JSON object with the figures. Every process, the broker and
the browser are stopped on exit, Ctrl-C, SIGTERM or an exception (a SIGKILL of the benchmark
too: see bench/rpc.py's watchdog).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/dashboard.py` puts bench/, not the checkout, on the path
    sys.path.insert(0, str(REPO))

from bench.rpc import (  # noqa: E402
    WATCHDOG,
    Child,
    Children,
    _die_with_parent,
    _prctl,
    child_env,
    cpu_s,
    pct,
    rss_mb,
    run_cleanly,
)
from edge import BrokerSettings, Client  # noqa: E402
from edge.broker import DevBroker, free_port  # noqa: E402
from edge.message import Incoming  # noqa: E402
from schemas import catalog as t  # noqa: E402
from schemas.common import utcnow  # noqa: E402
from schemas.runtime import NodeStatus  # noqa: E402
from schemas.trading import Halted  # noqa: E402
from tests.market import publish_market  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
MOSQUITTO_SUB = "/usr/bin/mosquitto_sub"
PASSWORD = "bench-password"
TAB_PATHS = ("/", "/portfolio", "/universe", "/system", "/controls")
SHIPPED_REFRESH_S = 0.1  # dashboard/layout.py's REFRESH_S, as the run checks
FAST_REFRESH_S = 0.01
# The fast variant: the same node, its pages' polling timer set before anything starts.
FAST = (
    "import sys; import dashboard.layout as layout; layout.REFRESH_S = float(sys.argv[1]); "
    "from edge.run import main; main(['dashboard'])"
)
TARGET_RSS_MB = 120.0
TARGET_AFTER_DELIVERY_P95_MS = 300.0

# Every change of the halted banner in this page: [its text, or "" when gone; the page's clock in ms],
# and the arrival of every `update` message of NiceGUI's socket (the one before a change caused it).
OBSERVE = """() => {
  window.benchSeen = [];
  let last = null;
  const look = () => {
    const el = document.querySelector('#halted-banner');
    const state = el ? el.textContent : '';
    if (state !== last) {
      last = state;
      window.benchSeen.push([state, performance.timeOrigin + performance.now()]);
    }
  };
  window.benchUpdates = [];  // when each of NiceGUI's `update` messages arrived
  window.socket.on('update', () => window.benchUpdates.push(performance.timeOrigin + performance.now()));
  new MutationObserver(look).observe(document.body, {subtree: true, childList: true, characterData: true});
  look();
}"""
PAGE_CLOCK = "() => performance.timeOrigin + performance.now()"
HEAVY = ("numpy", "pandas", "scipy.stats", "scipy.optimize", "empyrical", "plotly", "matplotlib")
IMPORT_PROBE = f"""
import importlib, json, sys
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
steps = [["python", rss()]]
for name in sys.argv[1:]:
    importlib.import_module(name)
    steps.append([name, rss()])
print(json.dumps([steps, [m for m in {HEAVY!r} if m in sys.modules]]))
"""


# -- figures ------------------------------------------------------------------------------------
@dataclasses.dataclass
class Change:
    n: int
    halted: bool
    reason: str
    published: float  # time.time() just before the publish
    sub: float | None = None  # mosquitto_sub's arrival (%U)
    pages: list[float | None] = dataclasses.field(default_factory=list)  # each tab's DOM change, time.time() clock
    messages: list[float | None] = dataclasses.field(default_factory=list)  # the update message that made it

    def seen_by(self, state: str) -> bool:
        return (self.reason in state) if self.halted else state == ""


@dataclasses.dataclass
class Round:
    variant: str
    rss_rest: float
    rss_tabs: float
    rss_after: float
    cpu_tabs_percent: float  # of one core, the tabs open and idle
    load_cold_s: float
    load_warm_s: float
    clock_error_ms: float  # half the shortest round trip to the pages
    changes: list[Change]


@dataclasses.dataclass
class Variant:
    label: str
    refresh_s: float
    rounds: list[Round] = dataclasses.field(default_factory=list)

    def median(self, attr: str) -> float:
        return statistics.median(getattr(r, attr) for r in self.rounds)

    def changes(self) -> list[Change]:
        return [c for r in self.rounds for c in r.changes]

    def update_ms(self) -> list[float]:
        """publish -> DOM, every tab of every change."""
        return [(p - c.published) * 1000 for c in self.changes() for p in c.pages if p is not None]

    def after_delivery_ms(self) -> list[float]:
        """mosquitto_sub's arrival -> DOM: the dashboard's own part."""
        return [(p - c.sub) * 1000 for c in self.changes() if c.sub is not None for p in c.pages if p is not None]

    def to_message_ms(self) -> list[float]:
        """mosquitto_sub's arrival -> the page's update message: the node, the timer, the socket."""
        return [(m - c.sub) * 1000 for c in self.changes() if c.sub is not None for m in c.messages if m is not None]

    def render_ms(self) -> list[float]:
        """The update message -> the DOM changed: the browser's part."""
        return [(p - m) * 1000 for c in self.changes() for m, p in zip(c.messages, c.pages, strict=True) if m and p]

    def all_tabs_ms(self) -> list[float]:
        """publish -> the last tab showing it."""
        return [
            (max(p for p in c.pages if p is not None) - c.published) * 1000
            for c in self.changes()
            if c.pages and all(p is not None for p in c.pages)
        ]

    def missed(self) -> int:
        return sum(p is None for c in self.changes() for p in c.pages)


def sub_ms(changes: list[Change]) -> list[float]:
    return [(c.sub - c.published) * 1000 for c in changes if c.sub is not None]


def spread(samples: list[float]) -> str:
    if not samples:
        return f"{'-':>7} {'-':>7} {'-':>7} {'-':>7}"
    return f"{min(samples):7.1f} {pct(samples, 0.5):7.1f} {pct(samples, 0.95):7.1f} {max(samples):7.1f}"


# -- the run ------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="a short run: 1 round per variant, 10 changes each")
    p.add_argument("--rounds", type=int, help="rounds per variant, alternating (default 2, quick 1)")
    p.add_argument("--changes", type=int, help="halt flag changes per round (default 15, quick 10)")
    p.add_argument("--tabs", type=int, default=5, help="logged-in tabs open during the changes (default 5)")
    p.add_argument("--idle-wait", type=float, help="seconds after online before the rest RSS (default 5, quick 3)")
    p.add_argument(
        "--settle", type=float, help="seconds with the tabs open before their RSS and CPU (default 5, quick 3)"
    )
    p.add_argument("--seed", type=int, default=1, help="of the random pauses between changes")
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (logs) for inspection")
    a = p.parse_args(argv)
    a.rounds = a.rounds or (1 if a.quick else 2)
    a.changes = a.changes or (10 if a.quick else 15)
    a.idle_wait = a.idle_wait if a.idle_wait is not None else (3.0 if a.quick else 5.0)
    a.settle = a.settle if a.settle is not None else (3.0 if a.quick else 5.0)
    return a


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        self.args = args
        self.tmp = tmp
        self.broker: DevBroker | None = None
        self.children = Children(tmp)
        self.loop = asyncio.new_event_loop()
        self.clients: list[Client] = []
        self.watchdog: subprocess.Popen[bytes] | None = None
        self.statuses: dict[str, NodeStatus] = {}
        self.playwright: Any = None
        self.browser: Any = None
        self.rng = random.Random(args.seed)
        self.seq = 0
        self.state_dir = tmp / "state"
        self.imports: list[tuple[str, float]] = []
        self.load_before = 0.0
        self.task: asyncio.Task[dict[str, Any]] | None = None

    # lifecycle
    def close(self) -> None:
        if self.task is not None and not self.task.done():  # interrupted: end it before the browser goes
            self.task.cancel()
            with contextlib.suppress(BaseException):
                self.loop.run_until_complete(self.task)
        if self.browser is not None:
            with contextlib.suppress(BaseException):
                self.loop.run_until_complete(asyncio.wait_for(self.browser.close(), 10))
        if self.playwright is not None:
            with contextlib.suppress(BaseException):
                self.loop.run_until_complete(asyncio.wait_for(self.playwright.stop(), 10))
        for client in self.clients:
            with contextlib.suppress(BaseException):
                self.loop.run_until_complete(asyncio.wait_for(client.close(), 5))
        self.children.stop()
        if self.watchdog is not None:  # not needed any more: stopped without letting it act
            self.watchdog.kill()
            self.watchdog.wait()
        if self.broker is not None:
            data_dir = self.broker.data_dir
            self.broker.stop()
            # as root the broker's files may live in /tmp/edge-mosquitto-*, outside our folder
            outside = data_dir is not None and self.tmp not in data_dir.parents
            if outside and data_dir is not None and data_dir.name.startswith("edge-mosquitto-"):
                shutil.rmtree(data_dir, ignore_errors=True)
        with contextlib.suppress(BaseException):
            self.loop.close()

    async def start(self) -> None:
        self.broker = DevBroker(self.tmp / "run").start()
        assert self.broker.proc is not None
        self.watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, str(self.broker.proc.pid), str(self.tmp)],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if _prctl is not None else None,
        )
        b = self.broker
        self.trading = await self.connect("trading", "bench-trading")  # the halt flag's owner
        await publish_market(await self.connect("universe", "bench-universe"))
        await self.publish_halt(False, "bench start")
        watcher = await self.connect("operator", "bench-watcher")
        await watcher.subscribe(watcher.topics.node_filter("status"), self._on_status)
        s = b.settings("operator")
        line_buffered = ["stdbuf", "-oL"] if shutil.which("stdbuf") else []  # its lines as they come
        login = ["-h", s.host, "-p", str(s.port), "-u", "operator", "-P", b.passwords["operator"], "-V", "mqttv5"]
        topic = ["--nodelay", "-q", "1", "-t", b.topics.of(t.TRADING_HALTED), "-F", "%U %p"]
        self.sub = self.children.start(
            "mosquitto_sub", [*line_buffered, MOSQUITTO_SUB, *login, *topic], child_env(s, self.state_dir)
        )
        from playwright.async_api import async_playwright

        self.playwright = await async_playwright().start()
        self.browser = await self.playwright.chromium.launch(executable_path=CHROMIUM, headless=True)

    async def connect(self, user: str, name: str) -> Client:
        assert self.broker is not None
        client = Client(self.broker.settings(user), name=name)
        self.clients.append(client)
        await client.connect()
        return client

    def _on_status(self, msg: Incoming) -> None:
        with contextlib.suppress(ValueError):
            status = NodeStatus.model_validate_json(msg.payload)
            self.statuses[status.node] = status

    async def publish_halt(self, halted: bool, reason: str) -> float:
        flag = Halted(halted=halted, reason=reason, at=utcnow(), mode="paper")
        published = time.time()
        await self.trading.emit(t.TRADING_HALTED, flag)
        return published

    async def wait_for(self, what: str, done: Any, timeout: float, child: Child | None = None) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            self.children.check()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: not within {timeout:.0f} s\n{child.tail() if child else ''}")
            await asyncio.sleep(0.02)

    # the dashboard
    async def start_dashboard(self, variant: Variant) -> tuple[Child, str]:
        assert self.broker is not None
        port = free_port()
        env = child_env(
            self.broker.settings("dashboard"),
            self.state_dir,
            DASHBOARD_PORT=str(port),
            DASHBOARD_PASSWORD=PASSWORD,
            NICEGUI_STORAGE_PATH=str(self.tmp / "nicegui"),
        )
        if variant.refresh_s == SHIPPED_REFRESH_S:
            argv = [sys.executable, "-m", "edge.run", "dashboard"]
        else:
            argv = [sys.executable, "-c", FAST, str(variant.refresh_s)]
        self.statuses.pop("dashboard", None)
        child = self.children.start(f"dashboard-{len(variant.rounds)}-{variant.refresh_s:g}", argv, env)

        def online() -> bool:
            s = self.statuses.get("dashboard")
            return s is not None and s.state == "online" and s.pid == child.proc.pid

        await self.wait_for("the dashboard online", online, 60, child)
        url = f"http://127.0.0.1:{port}"
        await self.wait_for("the dashboard's web server", lambda: _listening(port), 30, child)
        return child, url

    async def stop_dashboard(self, child: Child) -> None:
        child.proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(child.proc.wait, 20)
        except subprocess.TimeoutExpired:
            child.proc.kill()
            await asyncio.to_thread(child.proc.wait)
        self.children.items.remove(child)

    # the browser
    async def login(self, url: str) -> Any:
        context = await self.browser.new_context(viewport={"width": 1400, "height": 900})
        page = await context.new_page()
        await page.goto(f"{url}/login")
        await page.fill("input[type=password]", PASSWORD)
        await page.press("input[type=password]", "Enter")
        await page.wait_for_url(f"{url}/")
        await page.close()
        return context

    async def page_load(self, url: str, cookies: Any) -> tuple[float, float]:
        """Cold (an empty cache, the login cookie) and warm navigation to `/`, until drawn."""
        context = await self.browser.new_context(viewport={"width": 1400, "height": 900}, storage_state=cookies)
        try:
            page = await context.new_page()
            times = []
            for _ in range(2):
                t0 = time.perf_counter()
                await page.goto(f"{url}/", wait_until="load")
                await page.locator("#mode").wait_for(timeout=30000)
                times.append(time.perf_counter() - t0)
                if "/login" in page.url:
                    raise RuntimeError("the page load was sent to the login page")
            return times[0], times[1]
        finally:
            await context.close()

    async def open_tabs(self, context: Any, url: str) -> list[Any]:
        tabs = []
        for i in range(self.args.tabs):
            page = await context.new_page()
            await page.goto(f"{url}{TAB_PATHS[i % len(TAB_PATHS)]}")
            await page.locator("#mode").wait_for(timeout=30000)
            tabs.append(page)
        return tabs

    @staticmethod
    async def clock_offset(page: Any, tries: int = 7) -> tuple[float, float]:
        """The page's clock minus ours, in seconds, and its error (half the best round trip)."""
        best: tuple[float, float] | None = None
        for _ in range(tries):
            t0 = time.time()
            theirs = await page.evaluate(PAGE_CLOCK) / 1000
            t1 = time.time()
            if best is None or t1 - t0 < best[1]:
                best = (theirs - (t0 + t1) / 2, t1 - t0)
        assert best is not None
        return best[0], best[1] / 2

    # a round
    async def one_round(self, variant: Variant) -> Round:
        a = self.args
        dash, url = await self.start_dashboard(variant)
        pid = dash.proc.pid
        await asyncio.sleep(a.idle_wait)
        rss_rest = rss_mb(pid)
        context = await self.login(url)
        cookies = await context.storage_state()
        load_cold, load_warm = await self.page_load(url, cookies)
        tabs = await self.open_tabs(context, url)
        await asyncio.sleep(1)  # the tabs' first requests over
        cpu0, w0 = cpu_s(pid), time.monotonic()
        await asyncio.sleep(a.settle)
        cpu_tabs = (cpu_s(pid) - cpu0) / (time.monotonic() - w0) * 100
        rss_tabs = rss_mb(pid)
        for tab in tabs:
            await tab.evaluate(OBSERVE)
        before = [await self.clock_offset(tab) for tab in tabs]

        changes = []
        for i in range(a.changes):
            self.seq += 1
            halted = i % 2 == 0
            reason = f"bench change {self.seq}"
            change = Change(self.seq, halted, reason, await self.publish_halt(halted, reason))
            changes.append(change)
            await asyncio.sleep(self.rng.uniform(0.3, 0.7))
            await self.until_every_tab_shows(tabs, change)

        after = [await self.clock_offset(tab) for tab in tabs]
        for tab, (b_off, _), (a_off, _) in zip(tabs, before, after, strict=True):
            offset = (b_off + a_off) / 2
            seen = await tab.evaluate("window.benchSeen")
            updates = await tab.evaluate("window.benchUpdates")
            match(changes, [(state, ms / 1000 - offset) for state, ms in seen], [ms / 1000 - offset for ms in updates])
        clock_error = max(e for _, e in before + after) * 1000
        await context.close()
        await asyncio.sleep(5)  # NiceGUI forgets a closed tab's client after its reconnect timeout (3 s)
        rss_after = rss_mb(pid)
        await self.stop_dashboard(dash)
        return Round(variant.label, rss_rest, rss_tabs, rss_after, cpu_tabs, load_cold, load_warm, clock_error, changes)

    async def until_every_tab_shows(self, tabs: list[Any], change: Change, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        for tab in tabs:
            while True:
                state = await tab.evaluate("window.benchSeen[window.benchSeen.length - 1][0]")
                if change.seen_by(state):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"change {change.n} ({change.reason}) not shown within {timeout} s: {state!r}")
                await asyncio.sleep(0.05)

    def read_sub(self, changes: list[Change]) -> None:
        """mosquitto_sub's arrival time of every change, from its output (`%U %p` lines)."""
        by_reason = {c.reason: c for c in changes}
        for line in self.sub.log.read_text(errors="replace").splitlines():
            stamp, _, payload = line.partition(" ")
            with contextlib.suppress(ValueError, KeyError, TypeError):
                change = by_reason.get(json.loads(payload)["reason"])
                if change is not None and change.sub is None:
                    change.sub = float(stamp)

    def import_costs(self) -> list[tuple[str, float]]:
        """VmRSS of a fresh Python after each import in turn: the runtime, NiceGUI, the app,
        then the large libraries the pages pull in (those found), then every page."""
        env = child_env(self.broker.settings("dashboard") if self.broker else BrokerSettings(), self.state_dir)
        env["NICEGUI_STORAGE_PATH"] = str(self.tmp / "nicegui")

        def probe(names: list[str]) -> Any:
            out = subprocess.run(
                [sys.executable, "-c", IMPORT_PROBE, *names], env=env, cwd=REPO, capture_output=True, text=True
            )
            if out.returncode != 0:
                raise RuntimeError(f"import probe failed:\n{out.stderr[-2000:]}")
            return json.loads(out.stdout.strip().splitlines()[-1])

        _, found = probe(["dashboard.pages"])
        steps, _ = probe(["edge", "schemas.catalog", "nicegui", "dashboard.app", *found, "dashboard.pages"])
        return [(name, mb) for name, mb in steps]

    async def main(self) -> dict[str, Any]:
        import dashboard.layout

        if dashboard.layout.REFRESH_S != SHIPPED_REFRESH_S:
            raise RuntimeError(f"layout.REFRESH_S is {dashboard.layout.REFRESH_S}: update SHIPPED_REFRESH_S")
        self.load_before = os.getloadavg()[0]
        await self.start()
        self.imports = await asyncio.to_thread(self.import_costs)
        shipped = Variant(f"REFRESH_S={SHIPPED_REFRESH_S:g} (shipped)", SHIPPED_REFRESH_S)
        fast = Variant(f"REFRESH_S={FAST_REFRESH_S:g}", FAST_REFRESH_S)
        print(
            f"{'round':>5}  {'variant':<26} {'RSS rest':>8} {'5 tabs':>7} {'CPU %':>6} {'load s':>6}  "
            f"{'publish->DOM p50/p95 ms':>23}  {'after sub p95':>13}",
            flush=True,
        )
        for i in range(self.args.rounds):
            for variant in (shipped, fast) if i % 2 == 0 else (fast, shipped):
                r = await self.one_round(variant)
                variant.rounds.append(r)
                self.read_sub(r.changes)
                one = Variant(variant.label, variant.refresh_s, [r])
                up, after = one.update_ms(), one.after_delivery_ms()
                print(
                    f"{i + 1:>5}  {variant.label:<26} {r.rss_rest:8.1f} {r.rss_tabs:7.1f} {r.cpu_tabs_percent:6.1f} "
                    f"{r.load_cold_s:6.2f}  {pct(up, 0.5):11.1f}/{pct(up, 0.95):<11.1f}  "
                    f"{pct(after, 0.95) if after else float('nan'):13.1f}",
                    flush=True,
                )
        return self.report(shipped, fast)

    def run(self) -> dict[str, Any]:
        self.task = self.loop.create_task(self.main())
        return self.loop.run_until_complete(self.task)

    def report(self, shipped: Variant, fast: Variant) -> dict[str, Any]:
        a = self.args
        every = shipped.changes() + fast.changes()
        sub = sub_ms(every)
        up, after, all_tabs = shipped.update_ms(), shipped.after_delivery_ms(), shipped.all_tabs_ms()
        f_up, f_after = fast.update_ms(), fast.after_delivery_ms()
        clock_error = max(r.clock_error_ms for r in shipped.rounds + fast.rounds)
        print()
        print(
            f"mosquitto on 127.0.0.1:{self.broker.port if self.broker else '?'}; the dashboard a real process; "
            f"headless Chromium ({CHROMIUM}); {a.rounds} round(s) per variant, alternating; "
            f"load average {self.load_before:.1f} before, {os.getloadavg()[0]:.1f} after ({os.cpu_count()} CPUs)"
        )
        print(
            f"{len(shipped.changes())} + {len(fast.changes())} halt flag changes, each seen in {a.tabs} tabs "
            f"({', '.join(TAB_PATHS[: a.tabs])}); page clocks to ours within {clock_error:.2f} ms"
        )
        print()
        print(f"{'':<36} {'samples':>7} {'min':>7} {'p50':>7} {'p95':>7} {'max':>7}  (ms)")
        rows = (
            ("mosquitto_sub: publish -> arrival", sub),
            (f"{shipped.label}: publish -> DOM", up),
            ("  after mosquitto_sub's arrival", after),
            ("    of which to the update message", shipped.to_message_ms()),
            ("    of which message -> DOM", shipped.render_ms()),
            ("  publish -> the last of the tabs", all_tabs),
            (f"{fast.label}: publish -> DOM", f_up),
            ("  after mosquitto_sub's arrival", f_after),
            ("    of which to the update message", fast.to_message_ms()),
            ("    of which message -> DOM", fast.render_ms()),
        )
        for label, samples in rows:
            print(f"{label:<36} {len(samples):>7} {spread(samples)}")
        print(
            "  (to the update message: the node's handler, the page's timer, the redraw, NiceGUI's socket; "
            "message -> DOM: the browser)"
        )
        early = sum(x < 0 for x in after + f_after)
        if early:
            print(
                f"  ({early} after-arrival figures below 0: mosquitto_sub, a process too, printed a change after "
                f"a page had drawn it; its slowest publish -> arrival was {max(sub):.1f} ms)"
            )
        missed = shipped.missed() + fast.missed()
        if missed:
            print(f"  ({missed} tab-changes not matched in the pages' records)")
        print()
        print(
            f"{'':<26} {'RSS rest':>8} {'5 tabs':>7} {'after':>7} {'CPU % tabs idle':>15} {'load cold':>9} {'warm':>6}"
        )
        for v in (shipped, fast):
            print(
                f"{v.label:<26} {v.median('rss_rest'):8.1f} {v.median('rss_tabs'):7.1f} {v.median('rss_after'):7.1f} "
                f"{v.median('cpu_tabs_percent'):15.1f} {v.median('load_cold_s'):9.2f} {v.median('load_warm_s'):6.2f}"
            )
        print("  (MB VmRSS of the dashboard process, medians of the rounds; CPU of one core; page loads in s)")
        print()
        ratio = pct(up, 0.5) / pct(sub, 0.5)
        timer_p50 = pct(shipped.to_message_ms(), 0.5) - pct(fast.to_message_ms(), 0.5)
        timer_p95 = pct(shipped.to_message_ms(), 0.95) - pct(fast.to_message_ms(), 0.95)
        rss_rest, rss_tabs = shipped.median("rss_rest"), shipped.median("rss_tabs")
        ok = {
            "rss": max(rss_rest, rss_tabs) < TARGET_RSS_MB,
            "update_p95": pct(after, 0.95) < TARGET_AFTER_DELIVERY_P95_MS,
        }
        mark = {True: "ok", False: "MISSED"}
        print(
            f"dashboard RSS at rest / 5 tabs {rss_rest:6.1f} / {rss_tabs:.1f} MB  "
            f"target < {TARGET_RSS_MB:.0f} MB  {mark[ok['rss']]}"
        )
        print(
            f"update p95 after delivery      {pct(after, 0.95):6.1f} ms        target < "
            f"{TARGET_AFTER_DELIVERY_P95_MS:.0f} ms  {mark[ok['update_p95']]}"
        )
        print(f"update p50 / mosquitto_sub p50 {ratio:6.0f}x  ({pct(up, 0.5):.1f} / {pct(sub, 0.5):.2f} ms)")
        print(
            f"the polling timer's share      p50 {timer_p50:.1f} ms, p95 {timer_p95:.1f} ms of the "
            f"{pct(after, 0.5):.1f} / {pct(after, 0.95):.1f} ms after delivery (to the update message, shipped "
            f"minus {fast.label}; a {SHIPPED_REFRESH_S * 1000:.0f} ms timer waits "
            f"{SHIPPED_REFRESH_S * 500:.0f} ms on average, at most {SHIPPED_REFRESH_S * 1000:.0f})"
        )
        print(
            f"CPU with the tabs idle         {shipped.median('cpu_tabs_percent'):.1f}% of a core, "
            f"{fast.median('cpu_tabs_percent'):.1f}% with {fast.label}"
        )
        print()
        print("where the dashboard's RSS comes from (a fresh Python importing each in turn, VmRSS after it):")
        previous = 0.0
        for name, mb in self.imports:
            print(f"  {name:<22} {mb:7.1f} MB  (+{mb - previous:.1f})")
            previous = mb
        r1 = lambda x: round(x, 1)  # noqa: E731
        return {
            "dashboard_rss_mb": r1(rss_rest),
            "dashboard_rss_5_tabs_mb": r1(rss_tabs),
            "dashboard_rss_after_tabs_mb": r1(shipped.median("rss_after")),
            "update_p50_ms": r1(pct(up, 0.5)),
            "update_p95_ms": r1(pct(up, 0.95)),
            "update_min_ms": r1(min(up)),
            "update_max_ms": r1(max(up)),
            "update_after_delivery_p50_ms": r1(pct(after, 0.5)),
            "update_after_delivery_p95_ms": r1(pct(after, 0.95)),
            "update_all_tabs_p95_ms": r1(pct(all_tabs, 0.95)),
            "update_to_message_p50_ms": r1(pct(shipped.to_message_ms(), 0.5)),
            "update_render_p50_ms": r1(pct(shipped.render_ms(), 0.5)),
            "update_vs_sub_ratio": r1(ratio),
            "sub_p50_ms": round(pct(sub, 0.5), 2),
            "sub_p95_ms": round(pct(sub, 0.95), 2),
            "page_load_s": round(shipped.median("load_cold_s"), 3),
            "page_load_warm_s": round(shipped.median("load_warm_s"), 3),
            "cpu_percent_tabs_idle": r1(shipped.median("cpu_tabs_percent")),
            "fast_timer_s": FAST_REFRESH_S,
            "fast_update_p50_ms": r1(pct(f_up, 0.5)),
            "fast_update_p95_ms": r1(pct(f_up, 0.95)),
            "fast_update_after_delivery_p95_ms": r1(pct(f_after, 0.95)),
            "fast_cpu_percent_tabs_idle": r1(fast.median("cpu_tabs_percent")),
            "fast_rss_5_tabs_mb": r1(fast.median("rss_tabs")),
            "fast_update_to_message_p50_ms": r1(pct(fast.to_message_ms(), 0.5)),
            "import_rss_mb": {name: r1(mb) for name, mb in self.imports},
            "timer_share_p50_ms": r1(timer_p50),
            "timer_share_p95_ms": r1(timer_p95),
            "clock_error_ms": round(clock_error, 2),
            "load_average": [round(self.load_before, 2), round(os.getloadavg()[0], 2)],
            "changes": len(shipped.changes()),
            "tabs": a.tabs,
            "missed": missed,
            "rounds": a.rounds,
            "quick": a.quick,
            "targets_met": ok,
        }


def match(changes: list[Change], seen: list[tuple[str, float]], updates: list[float]) -> None:
    """Give each change this tab's first record after the previous change's that shows it, and
    the last update message that arrived before that record (the one that drew it)."""
    i = 0
    for change in changes:
        while i < len(seen) and not change.seen_by(seen[i][0]):
            i += 1
        dom = seen[i][1] if i < len(seen) else None
        change.pages.append(dom)
        before = [u for u in updates if dom is not None and change.published <= u <= dom]
        change.messages.append(max(before) if before else None)


def _listening(port: int) -> bool:
    import socket

    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
        return True
    return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_cleanly(args, lambda tmp: Bench(args, tmp), "edge-bench-dashboard-")


if __name__ == "__main__":
    sys.exit(main())
