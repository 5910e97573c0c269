"""Months of uptime in minutes: `make longrun` (`python bench/longrun.py [--quick] [--messages N]`).

One run starts a dev broker (`edge.broker.DevBroker`: mosquitto with `mosquitto/dev.conf`,
persistence on, users and ACL from the catalog plus the test nodes' topics) and three node
processes, `python -m edge.run` as the launcher runs them, with `EDGE_HEARTBEAT_S=0.005`
(a heartbeat every 5 ms, so that a node's packet ids go round quickly):

- `counter` (`tests.nodes.counter:node`): a total in SQLite, the idempotent `counter/add`,
  the non-idempotent `counter/add_again`, `counter/get`, and `counter/price`, which answers
  the probe's retained `PRICE` as the node mirrors it (`node.keep`);
- `echo_1` and `echo_2` (`tests.nodes.echo:node`): the shared-subscription pool of `JOBS`.

This process is the driver, one `edge.Client` as the `probe` user. Until the nodes' heartbeat
counters (`msgs_in` + `msgs_out` of every incarnation) plus its own reach `--messages`, it sends:

- adds (`counter/add`, each with a msg-id of its own; a call not answered in time, a reply
  lost in a restart, is sent again with the same msg-id until answered; one add in ten is
  sent a second time after its answer, which must be the first reply again, from the
  dedupe store); now and then `counter/add_again` (never while a restart could run it twice);
- jobs to the echo pool (a job not done in time is dispatched again, as a coordinator does);
- quotes (events the counter handles) and retained `PRICE` updates;
- `counter/price` reads, each answered with a `PRICE` no older than the latest acknowledged
  before the call (these replies also make the counter's own packet ids go round);
- QoS 0 messages on its own `node/probe/tick` (at least 3 x 65,535 over a full run, so that its
  packet ids wrap), and every 0.2 s a QoS 1 publish that the ACL refuses
  (`state/counter/total` is the counter's): each must raise `PublishRefused`.

Along the way every node is stopped with SIGTERM and killed with `kill -9` several times and
started again (within the first 28 % of the run: the last incarnations live long enough for
their packet ids to wrap, and the run goes on until they have),
and the broker is restarted (stop, start, persistence on). The counter and the broker are
stopped 5 to 30 ms into a burst of 12 adds, so that the stop lands inside a handler; with
`--drain` the counter is stopped only once the adds in flight are answered, and no
`counter/price` call is sent from its stop to its mirror check (the two runtime bugs below
are then out of reach: `tests/test_longrun.py` runs that way).

Checks (a failed check is printed and the exit status is 1):

1. no command lost or run twice: the counter's ledger (read from its SQLite file once it is
   stopped) holds exactly one row per msg-id sent, and `counter/get` answers the sum of the
   adds and their number;
2. every mirror refilled: right after each start of the counter, before `PRICE` is published
   again, `counter/price` answers the latest `PRICE` (and after each broker restart too);
3. every refused publish detected, after the driver's packet ids wrapped;
4. bookkeeping flat: the runtime's table sizes in the heartbeats (and the driver's own) after
   warm-up: the maximum over the last third of the run is at most the maximum over the first
   third plus a small slack;
5. RSS flat: each incarnation's RSS (from its heartbeats) grows by less than 5 MB from its
   first sample after warm-up to its last.

Two runtime bugs it found (November 2026), both fixed since and covered by
tests/test_longevity.py: a stop between an idempotent handler's commit and its dedupe record
ran that command again on redelivery ("run twice", about one per aimed stop; a stop now lets
the handler in hand finish, and the counter keys its effect by msg-id against kill -9); a
restarted node handled the commands queued in its session before the retained state it mirrors
arrived (`counter/price` answered "no price yet"; mirrors now go first).

The last line printed is one JSON object with the figures. Every process and the broker are
stopped on exit, Ctrl-C, SIGTERM or an exception (a watchdog does it if this one is killed).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import dataclasses
import datetime as dt
import json
import logging
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python bench/longrun.py` puts bench/, not the checkout, on the path
    sys.path.insert(0, str(REPO))

from edge import CallTimeout, Client, PublishRefused, RemoteError  # noqa: E402
from edge.broker import DevBroker  # noqa: E402
from edge.message import Incoming  # noqa: E402
from schemas.catalog import CATALOG  # noqa: E402
from schemas.runtime import NodeStatus  # noqa: E402
from schemas.topics import Command  # noqa: E402
from tests.nodes.catalog import (  # noqa: E402
    COUNTER_ADD,
    COUNTER_ADD_ANY,
    COUNTER_GET,
    COUNTER_PRICE,
    COUNTER_TOTAL,
    JOB_DONE,
    JOBS,
    PRICE,
    QUOTES,
    TEST_CATALOG,
    Add,
    Job,
    Quote,
    Sleep,
    Total,
)

FULL_CATALOG = CATALOG.merged(TEST_CATALOG)
WRAP = 65_535  # paho's packet ids: 1 .. 65,535, shared by every publish and subscribe
HEARTBEAT_S = "0.005"
RSS_LIMIT_MB = 5.0
BOOK_KEYS = ("waiters", "unwritten_qos0", "calls", "subscriptions", "in_flight", "slot_waiters", "tasks")
TICK_BURST = 200  # QoS 0 ticks handed to paho between two yields to the loop
ANSWER_WITHIN_S = 180.0  # a call or a job not answered within this, retries included, fails the run


class Failed(Exception):
    """A check that cannot go on (the others are collected in `Run.failures`)."""


# -- the plan -------------------------------------------------------------------------------------
@dataclasses.dataclass
class Plan:
    messages: int
    wraps: int  # the driver's packet ids go round at least this often (QoS 0 ticks)
    node_wraps: int  # and so do those of every node's last incarnation (the run goes on until they have)
    restarts: int  # per node and per kind (SIGTERM, kill -9)
    broker_restarts: int
    adds: int
    quotes: int
    prices: int
    reads: int  # counter/price calls checked against the PRICE updates (and the counter's packet ids wrap)
    warmup_s: float
    callers: int = 2
    readers: int = 2
    jobs_window: int = 8
    call_timeout_s: float = 3.0
    job_timeout_s: float = 2.0
    refused_every_s: float = 0.2
    aim: bool = True  # stop the counter while a burst of adds is being handled (--drain: never)
    burst: int = 12

    @property
    def ticks(self) -> int:
        return self.wraps * WRAP + WRAP // 20 if self.wraps else 0

    @property
    def other(self) -> int:
        """The messages other than the driver's ticks that the run waits for."""
        return max(self.messages - self.ticks, self.messages // 2)

    def events(self) -> list[tuple[float, str, str]]:
        """(progress, kind, node) of every restart: node restarts spread over the first 28 %
        of the run (the last incarnations then live long enough for their packet ids to
        wrap), broker restarts over the whole run."""
        node_events = []
        for _ in range(self.restarts):
            node_events += [
                ("sigterm", "counter"),
                ("kill9", "echo_1"),
                ("sigterm", "echo_2"),
                ("kill9", "counter"),
                ("sigterm", "echo_1"),
                ("kill9", "echo_2"),
            ]
        out = [(0.03 + 0.25 * i / len(node_events), kind, node) for i, (kind, node) in enumerate(node_events)]
        out += [((i + 1) / (self.broker_restarts + 1) * 0.9, "broker", "") for i in range(self.broker_restarts)]
        return sorted(out)


def make_plan(args: argparse.Namespace) -> Plan:
    n = args.messages or (100_000 if args.quick else 1_000_000)
    big = n >= 500_000
    return Plan(
        messages=n,
        wraps=args.wraps if args.wraps is not None else (3 if big else 1),
        node_wraps=args.node_wraps if args.node_wraps is not None else (1 if big else 0),
        restarts=args.restarts or (3 if big else 2 if n >= 100_000 else 1),
        broker_restarts=args.broker_restarts or (3 if big else 2),
        adds=max(100, n // 200),
        quotes=max(100, n // 1_000),
        reads=max(100, n // 10),
        prices=max(20, n // 5_000),
        warmup_s=args.warmup if args.warmup is not None else (5.0 if big else 2.0),
        aim=not args.drain,
    )


# -- child processes ------------------------------------------------------------------------------
try:
    _prctl: Any = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: nothing to load after fork
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if _prctl is not None:
        _prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


# Started with PR_SET_PDEATHSIG: SIGTERMed if this process dies without cleaning up (SIGKILL),
# it stops the broker (its pid, which changes with every restart, is read from a file) and
# removes the folders. On a normal exit it is SIGKILLed without acting.
WATCHDOG = """
import os, shutil, signal, sys, time
def stop(*_):
    try:
        pids = [int(p) for p in open(sys.argv[1]).read().split()]
    except (OSError, ValueError):
        pids = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except OSError:
            pass
    time.sleep(2)
    for folder in sys.argv[2:]:
        shutil.rmtree(folder, ignore_errors=True)
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    time.sleep(3600)
"""


@dataclasses.dataclass
class NodeProc:
    ident: str
    spec: str
    user: str
    instance: int | None
    proc: subprocess.Popen[bytes] | None = None
    incarnation: int = 0
    sigterms: int = 0
    kills: int = 0
    exit_codes: list[int] = dataclasses.field(default_factory=list)


# -- what the heartbeats tell -----------------------------------------------------------------------
@dataclasses.dataclass
class Bucket:
    """The heartbeats of one incarnation within one 100 ms: maxima, and the last RSS."""

    t: float  # arrival of its first heartbeat, seconds since the load started
    uptime: float
    rss: float
    rss_max: float
    books: list[int]


@dataclasses.dataclass
class Life:
    """One incarnation of one node, as its heartbeats describe it."""

    ident: str
    incarnation: int
    ended: str = "running"
    uptime: float = -1.0
    msgs_in: int = 0
    msgs_out: int = 0
    beats: int = 0
    buckets: list[Bucket] = dataclasses.field(default_factory=list)

    @property
    def msgs(self) -> int:
        return self.msgs_in + self.msgs_out


def add_sample(buckets: list[Bucket], t: float, uptime: float, rss: float, books: dict[str, int]) -> None:
    values = [int(books.get(k, 0)) for k in BOOK_KEYS]
    if buckets and int(buckets[-1].t * 10) == int(t * 10):
        b = buckets[-1]
        b.uptime, b.rss, b.rss_max = uptime, rss, max(b.rss_max, rss)
        b.books = [max(x, y) for x, y in zip(b.books, values, strict=True)]
    else:
        buckets.append(Bucket(t, uptime, rss, rss, values))


# -- the run --------------------------------------------------------------------------------------
class Run:
    def __init__(self, plan: Plan, tmp: Path) -> None:
        self.plan = plan
        self.tmp = tmp
        self.state_dir = tmp / "state"
        self.broker: DevBroker | None = None
        self.watchdog: subprocess.Popen[bytes] | None = None
        self.client: Client | None = None
        self.nodes = {
            "counter": NodeProc("counter", "tests.nodes.counter:node", "counter", None),
            "echo_1": NodeProc("echo_1", "tests.nodes.echo:node", "echo", 1),
            "echo_2": NodeProc("echo_2", "tests.nodes.echo:node", "echo", 2),
        }
        self.failures: list[str] = []
        self.t_start = time.monotonic()
        self.t_load = 0.0
        self.t_load_end = 0.0
        self.stopping = asyncio.Event()
        self.price_lock = asyncio.Lock()
        self.broker_down = False
        self.broker_epoch = 0
        self.broker_restarts = 0
        self.windows: list[tuple[float, float, str]] = []  # restarts: began, all back (load-relative s), what
        # heartbeats and statuses
        self.lives: dict[tuple[str, int], Life] = {}
        self.driver_buckets: list[Bucket] = []
        self.statuses: dict[str, NodeStatus] = {}
        # commands
        self.adds: dict[str, Decimal] = {}  # msg-id -> amount, every add (and add_again) sent
        self.adds_answered = 0
        self.n_adds = 0
        self.adds_open = 0
        # msg-id: (sent, done, what) of each try, for the report of a command run twice
        self.history: dict[str, list[tuple[float, float, str]]] = collections.defaultdict(list)
        self.hold = False  # --drain: no new add while the counter is being stopped
        self.reads_hold = False  # --drain: no counter/price call from the counter's stop to its mirror check
        self.reads_open = 0
        self.refused_reads: list[tuple[float, float, str]] = []  # (sent, answered, reason)
        self.bursts: list[asyncio.Task[None]] = []  # adds sent just before a restart of the counter
        self.again = 0
        self.dedupe_retries = 0
        self.call_timeouts = 0
        self.remote_errors: collections.Counter[str] = collections.Counter()
        self.mirror_refills = 0
        self.mirror_after_broker = 0
        self.latest_price: Quote | None = None
        self.prices = 0
        self.quotes = 0
        self.reads = 0
        self.stale_reads = 0
        self.calls = 0
        # jobs
        self.pending_jobs: dict[str, asyncio.Future[str]] = {}
        self.jobs_sent = 0
        self.jobs_done = 0
        self.jobs_resent = 0
        self.jobs_dup_done = 0
        self.done_by: collections.Counter[str] = collections.Counter()
        # packet ids and refused publishes
        self.ticks = 0
        self.refused_attempted = 0
        self.refused_detected = 0
        self.refused_interrupted = 0
        self.refused_by_wrap: collections.Counter[int] = collections.Counter()

    # -- figures ------------------------------------------------------------------------------
    def now(self) -> float:
        return time.monotonic() - self.t_load if self.t_load else 0.0

    def messages(self) -> int:
        own = self.client.msgs_in + self.client.msgs_out if self.client else 0
        return own + sum(life.msgs for life in self.lives.values())

    def progress(self) -> float:
        """Of the messages other than the ticks, the share sent (the schedule's clock)."""
        return (self.messages() - self.ticks) / self.plan.other

    def fail(self, message: str) -> None:
        print(f"FAILED: {message}", flush=True)
        self.failures.append(message)

    def say(self, message: str) -> None:
        print(f"[{time.monotonic() - self.t_start:7.1f}s {self.messages():>9,} msgs] {message}", flush=True)

    # -- set-up and tear-down -----------------------------------------------------------------------
    def _write_pids(self) -> None:
        pids = [str(self.broker.proc.pid)] if self.broker and self.broker.proc else []
        (self.tmp / "broker.pid").write_text("\n".join(pids))

    def start_broker(self) -> None:
        self.broker = DevBroker(self.tmp / "run", catalog=FULL_CATALOG).start()
        self._write_pids()
        folders = [str(self.tmp)]
        if self.broker.data_dir is not None and self.tmp not in self.broker.data_dir.parents:
            folders.append(str(self.broker.data_dir))  # as root: under /tmp/edge-mosquitto-*
        self.watchdog = subprocess.Popen(
            [sys.executable, "-c", WATCHDOG, str(self.tmp / "broker.pid"), *folders],
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_die_with_parent if _prctl is not None else None,
        )

    def close(self) -> None:
        for node in self.nodes.values():
            if node.proc is not None and node.proc.poll() is None:
                node.proc.kill()
                node.proc.wait()
        if self.watchdog is not None:
            self.watchdog.kill()
            self.watchdog.wait()
        if self.broker is not None:
            data_dir = self.broker.data_dir
            self.broker.stop()
            outside = data_dir is not None and self.tmp not in data_dir.parents
            if outside and data_dir.name.startswith("edge-mosquitto-"):
                shutil.rmtree(data_dir, ignore_errors=True)

    def spawn(self, node: NodeProc) -> subprocess.Popen[bytes]:
        assert self.broker is not None
        env = {
            **os.environ,
            **self.broker.settings(node.user).to_env(),
            "EDGE_STATE_DIR": str(self.state_dir),
            "PYTHONPATH": str(REPO),
            "EDGE_LOG": "INFO",
            "EDGE_HEARTBEAT_S": HEARTBEAT_S,
            "PYTHONUNBUFFERED": "1",
        }
        if node.instance is not None:
            env["EDGE_INSTANCE"] = str(node.instance)
        with open(self.tmp / f"{node.ident}.log", "ab") as log:
            node.proc = subprocess.Popen(
                [sys.executable, "-m", "edge.run", node.spec],
                env=env,
                cwd=REPO,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent if _prctl is not None else None,
            )
        return node.proc

    def log_tail(self, ident: str, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join((self.tmp / f"{ident}.log").read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def wait_online(self, node: NodeProc, timeout: float = 60.0) -> None:
        assert node.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            status = self.statuses.get(node.ident)
            if status is not None and status.state == "online" and status.pid == node.proc.pid:
                node.incarnation = status.incarnation
                return
            if node.proc.poll() is not None:
                raise Failed(f"{node.ident} exited ({node.proc.returncode}):\n{self.log_tail(node.ident)}")
            if time.monotonic() > deadline:
                raise Failed(f"{node.ident} (pid {node.proc.pid}) not online within {timeout}s")
            await asyncio.sleep(0.02)

    # -- subscriptions ------------------------------------------------------------------------------
    def on_status(self, msg: Incoming) -> None:
        with contextlib.suppress(ValueError):
            status = NodeStatus.model_validate_json(msg.payload)
            self.statuses[status.node] = status

    def on_heartbeat(self, msg: Incoming) -> None:
        try:
            beat = json.loads(msg.payload)
            key = (beat["node"], int(beat["incarnation"]))
        except (ValueError, KeyError, TypeError):
            return
        life = self.lives.get(key)
        if life is None:
            life = self.lives[key] = Life(*key)
        uptime = float(beat["uptime_s"])
        if uptime <= life.uptime:
            return  # an old one (retained, or overtaken)
        life.uptime = uptime
        life.msgs_in, life.msgs_out = int(beat["msgs_in"]), int(beat["msgs_out"])
        life.beats += 1
        add_sample(life.buckets, self.now(), uptime, float(beat["rss_mb"]), beat.get("bookkeeping") or {})

    def on_done(self, msg: Incoming) -> None:
        try:
            done = json.loads(msg.payload)
            job, worker = done["job"], done["worker"]
        except (ValueError, KeyError, TypeError):
            return
        self.done_by[worker] += 1
        fut = self.pending_jobs.get(job)
        if fut is not None and not fut.done():
            fut.set_result(worker)
        else:
            self.jobs_dup_done += 1  # a job dispatched again whose first copy was done after all

    # -- calls ----------------------------------------------------------------------------------------
    async def call(self, entry: Command, request: Any, msg_id: str, *, retry_remote: bool = True) -> Any:
        """Until answered: a call not answered in time is sent again with the same msg-id."""
        assert self.client is not None
        deadline = time.monotonic() + ANSWER_WITHIN_S
        history = self.history[msg_id]  # what each try got, for the report of a command run twice
        while True:
            self.calls += 1
            t = self.now()
            try:
                reply = await self.client.call(entry, request, msg_id=msg_id, timeout=self.plan.call_timeout_s)
                history.append((t, self.now(), f"{t:.2f}s answered after {self.now() - t:.2f}s: {reply}"))
                return reply
            except CallTimeout:
                history.append((t, self.now(), f"{t:.2f}s no answer within {self.plan.call_timeout_s:.0f}s"))
                self.call_timeouts += 1
            except RemoteError as exc:
                history.append((t, self.now(), f"{t:.2f}s error reply {exc.reply.kind}: {exc.reply.error}"))
                self.remote_errors[f"{entry.path} {exc.reply.kind}: {exc.reply.error}"[:160]] += 1
                if not retry_remote:
                    raise
                await asyncio.sleep(0.1)
            if time.monotonic() > deadline:
                raise Failed(f"{entry.path} msg-id {msg_id}: no answer within {ANSWER_WITHIN_S:.0f}s")

    async def check_mirror(self, when: str) -> bool:
        """`counter/price` must answer the latest PRICE (the caller holds the price lock)."""
        self.calls += 1
        try:
            got = await self.call(COUNTER_PRICE, Sleep(seconds=0), f"price-{self.calls}", retry_remote=False)
        except RemoteError as exc:
            self.fail(f"mirror empty {when}: counter/price answered {exc.reply.kind}: {exc.reply.error}")
            return False
        if got != self.latest_price:
            self.fail(f"mirror stale {when}: counter/price answered {got}, the latest PRICE is {self.latest_price}")
            return False
        return True

    async def publish_price(self) -> None:
        assert self.client is not None
        n = self.prices + 1
        quote = Quote(symbol="AAPL.US", price=Decimal(100) + Decimal(n) / 100)
        deadline = time.monotonic() + ANSWER_WITHIN_S
        while True:
            try:
                await self.client.emit(PRICE, quote)
                break
            except CallTimeout:
                if time.monotonic() > deadline:
                    raise Failed("PRICE not acknowledged") from None
        self.latest_price, self.prices = quote, n

    async def add_again(self, count: int) -> None:
        """Non-idempotent adds, each answered before anything restarts (then a `get`, whose
        reply comes after the adds' acknowledgements reached the broker): a restart cannot
        run them twice, so the ledger must hold each once."""
        assert self.client is not None
        for _ in range(count):
            self.again += 1
            mid = f"again-{self.again:05d}"
            amount = Decimal("0.50")
            self.adds[mid] = amount
            try:
                await self.client.call(COUNTER_ADD_ANY, Add(amount=amount, note=mid), msg_id=mid, timeout=15)
            except (CallTimeout, RemoteError) as exc:
                self.fail(f"counter/add_again {mid} not answered (the ledger will say whether it ran): {exc}")
        await self.call(COUNTER_GET, Sleep(seconds=0), f"get-{self.again}")

    # -- load -------------------------------------------------------------------------------------
    async def paced(self, ready: Callable[[], bool]) -> bool:
        """Wait until `ready()`; False once the run is stopping."""
        while not ready():
            if self.stopping.is_set():
                return False
            await asyncio.sleep(0.02)
        return not self.stopping.is_set()

    async def caller(self) -> None:
        while await self.paced(lambda: not self.hold and self.n_adds < self.plan.adds * self.progress() + 1):
            await self.add_one()

    async def add_one(self) -> None:
        """One add, answered (retried with its msg-id as long as it takes); one in ten is then
        sent again, as a caller that missed the reply would, and must get the first reply."""
        i = self.n_adds
        self.n_adds += 1
        mid = f"add-{i:07d}"
        amount = Decimal(i % 89 + 1) + Decimal(i % 100) / 100
        self.adds[mid] = amount
        request = Add(amount=amount, note=mid)
        self.adds_open += 1
        try:
            first = await self.call(COUNTER_ADD, request, mid)
        finally:
            self.adds_open -= 1
        self.adds_answered += 1
        if i % 10 == 3:
            again = await self.call(COUNTER_ADD, request, mid)
            self.dedupe_retries += 1
            if again != first:
                self.fail(f"dedupe: {mid} sent again was answered {again}, the first time {first}")

    async def jobber(self) -> None:
        assert self.client is not None
        loop = asyncio.get_running_loop()
        while await self.paced(lambda: not self.broker_down):
            self.jobs_sent += 1
            job = f"job-{self.jobs_sent}"
            fut: asyncio.Future[str] = loop.create_future()
            self.pending_jobs[job] = fut
            deadline = time.monotonic() + ANSWER_WITHIN_S
            first = True
            while not fut.done():
                if not first:
                    self.jobs_resent += 1
                first = False
                with contextlib.suppress(CallTimeout):
                    await self.client.emit(JOBS, Job(job=job))
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.plan.job_timeout_s):
                        await asyncio.shield(fut)
                if time.monotonic() > deadline:
                    raise Failed(f"{job} not done within {ANSWER_WITHIN_S:.0f}s ({self.jobs_resent} resent in all)")
            del self.pending_jobs[job]
            self.jobs_done += 1

    async def quoter(self) -> None:
        assert self.client is not None
        while await self.paced(lambda: self.quotes < self.plan.quotes * self.progress() + 1):
            with contextlib.suppress(CallTimeout):
                await self.client.emit(QUOTES, Quote(symbol="MSFT.US", price=Decimal(400) + self.quotes % 100))
                self.quotes += 1

    async def reader(self) -> None:
        """`counter/price` under load: never older than the PRICE acknowledged before the call
        (the broker queued that update to the counter before the call), never newer than the
        one being published."""
        while await self.paced(lambda: not self.reads_hold and self.reads < self.plan.reads * self.progress() + 1):
            self.reads += 1
            low, sent = self.prices, self.now()
            self.reads_open += 1
            try:
                got = await self.call(COUNTER_PRICE, Sleep(seconds=0), f"read-{self.reads}", retry_remote=False)
            except RemoteError as exc:
                self.refused_reads.append((sent, self.now(), f"{exc.reply.kind}: {exc.reply.error}"))
                continue
            finally:
                self.reads_open -= 1
            n = int((got.price - 100) * 100)
            if not low <= n <= self.prices + 1:
                self.stale_reads += 1
                if self.stale_reads <= 5:
                    self.fail(f"counter/price answered update {n}, the latest acknowledged before the call was {low}")

    async def pricer(self) -> None:
        while await self.paced(lambda: self.prices < self.plan.prices * self.progress() + 1):
            async with self.price_lock:
                await self.publish_price()

    async def ticker(self) -> None:
        """QoS 0 ticks (the packet ids wrap) and, every 0.2 s, a publish the ACL refuses."""
        client = self.client
        assert client is not None and self.broker is not None
        topic = f"{client.topics.root}/node/probe/tick"
        refused_topic = client.topics.of(COUNTER_TOTAL)
        last_refused = 0.0
        while not (self.stopping.is_set() and self.ticks >= self.plan.ticks):
            if self.broker_down or not client.is_connected():
                await asyncio.sleep(0.02)
                continue
            due = min(TICK_BURST, int(self.plan.ticks * min(1.0, max(0.0, self.progress()))) - self.ticks)
            if self.stopping.is_set():
                due = min(TICK_BURST, self.plan.ticks - self.ticks)
            if client.bookkeeping()["unwritten_qos0"] >= TICK_BURST:
                due = 0  # paho has not written the last burst yet: its table stays under 2 bursts
            for _ in range(max(0, due)):
                client.send_nowait(topic, b"1", qos=0)
            self.ticks += max(0, due)
            if time.monotonic() - last_refused >= self.plan.refused_every_s:
                last_refused = time.monotonic()
                await self.refused_once(refused_topic)
            await asyncio.sleep(0 if due > 0 else 0.01)
        await self.refused_once(refused_topic)

    async def refused_once(self, topic: str) -> None:
        assert self.client is not None
        wraps, epoch = self.client.msgs_out // WRAP, self.broker_epoch
        self.refused_attempted += 1
        try:
            await self.client.publish(topic, b"{}", qos=1, timeout=5)
        except PublishRefused:
            self.refused_detected += 1
            self.refused_by_wrap[wraps] += 1
            return
        except CallTimeout:
            if epoch != self.broker_epoch or self.broker_down:
                self.refused_interrupted += 1  # the broker went down meanwhile
                return
            self.fail(
                f"a refused publish (attempt {self.refused_attempted}, after {wraps} wraps) "
                "was neither acknowledged nor refused within 5 s"
            )
            return
        self.fail(
            f"a refused publish (attempt {self.refused_attempted}, after {wraps} wraps of the "
            "driver's packet ids) was reported as accepted"
        )

    async def sample_driver(self) -> None:
        assert self.client is not None
        while not self.stopping.is_set():
            add_sample(self.driver_buckets, self.now(), self.now(), 0.0, self.client.bookkeeping())
            await asyncio.sleep(0.02)

    # -- restarts ------------------------------------------------------------------------------------
    def current_life(self, node: NodeProc) -> Life:
        return self.lives.get((node.ident, node.incarnation)) or Life(node.ident, node.incarnation)

    def end_life(self, node: NodeProc, how: str) -> None:
        life = self.lives.get((node.ident, node.incarnation))
        if life is not None:
            life.ended = how

    async def stop_node(self, node: NodeProc, how: str) -> None:
        proc = node.proc
        assert proc is not None
        if how == "kill9":
            proc.kill()
            await asyncio.to_thread(proc.wait)
            node.kills += 1
        else:
            proc.send_signal(signal.SIGTERM)
            try:
                rc = await asyncio.to_thread(proc.wait, 20)
            except subprocess.TimeoutExpired:
                self.fail(f"{node.ident} (incarnation {node.incarnation}) did not stop within 20 s of SIGTERM")
                proc.kill()
                rc = await asyncio.to_thread(proc.wait)
            node.exit_codes.append(rc)
            if rc != 0:
                self.fail(
                    f"{node.ident} (incarnation {node.incarnation}) exited {rc} after SIGTERM:\n"
                    f"{self.log_tail(node.ident)}"
                )
            node.sigterms += 1
        self.end_life(node, how)

    async def restart_node(self, ident: str, how: str) -> None:
        node = self.nodes[ident]
        t0 = time.monotonic()
        async with self.price_lock if ident == "counter" else contextlib.nullcontext():
            down = self.now()
            if ident == "counter" and self.plan.aim:
                # a burst of adds, and the stop lands at a random point of its handling: inside
                # a handler (between its commit and its dedupe record, say) more often than not
                self.bursts += [asyncio.create_task(self.add_one(), name="burst") for _ in range(self.plan.burst)]
                await asyncio.sleep(random.uniform(0.005, 0.03))
            elif ident == "counter":  # --drain: the adds in flight are answered (and acknowledged) first
                self.hold = self.reads_hold = True
                while self.reads_open:
                    await asyncio.sleep(0.005)
                while self.adds_open:
                    await asyncio.sleep(0.005)
                await self.call(COUNTER_GET, Sleep(seconds=0), f"drain-{len(self.windows)}")
            await self.stop_node(node, how)
            self.hold = False  # adds sent now wait in the broker, in the counter's session
            self.spawn(node)
            await self.wait_online(node)
            checked = ""
            # nothing published since: the mirror comes from the retained PRICE
            if ident == "counter" and await self.check_mirror(
                f"after {how} of the counter (incarnation {node.incarnation})"
            ):
                self.mirror_refills += 1
                checked = ", mirror refilled"
            self.reads_hold = False
            self.windows.append((down, self.now(), f"{how} of {ident} incarnation {node.incarnation - 1}"))
        self.say(f"{ident}: {how}, back as incarnation {node.incarnation} in {time.monotonic() - t0:.1f} s{checked}")

    async def restart_broker(self) -> None:
        assert self.broker is not None and self.client is not None
        t0 = time.monotonic()
        async with self.price_lock:
            down = self.now()
            if self.plan.aim:  # as for the counter: stop the broker in the middle of a burst of adds
                self.bursts += [asyncio.create_task(self.add_one(), name="burst") for _ in range(self.plan.burst)]
                await asyncio.sleep(random.uniform(0.005, 0.03))
            self.broker_down, self.broker_epoch = True, self.broker_epoch + 1
            wall = dt.datetime.now(dt.UTC)
            await asyncio.to_thread(self.broker.restart)
            self._write_pids()
            await self.client.wait_connected(60)
            deadline = time.monotonic() + 60
            while not all(
                (s := self.statuses.get(i)) is not None and s.state == "online" and s.at > wall for i in self.nodes
            ):
                if time.monotonic() > deadline:
                    raise Failed(f"nodes not back 60 s after the broker restart: {self.statuses}")
                await asyncio.sleep(0.02)
            self.broker_down = False
            self.windows.append((down, self.now(), f"broker restart {self.broker_restarts + 1}"))
            self.broker_restarts += 1
            ok = await self.check_mirror(f"after broker restart {self.broker_restarts}")
            self.mirror_after_broker += ok
        self.say(
            f"broker: restarted, every node back in {time.monotonic() - t0:.1f} s" + (", mirror kept" if ok else "")
        )

    # -- the whole run -------------------------------------------------------------------------------
    async def run(self) -> None:
        plan = self.plan
        self.start_broker()
        assert self.broker is not None
        self.client = client = Client(self.broker.settings("probe"), name="probe")
        await client.connect()
        await client.subscribe(client.topics.node_filter("status"), self.on_status, qos=1)
        await client.subscribe(client.topics.node_filter("heartbeat"), self.on_heartbeat, qos=0, retained=False)
        await client.subscribe(client.topics.of(JOB_DONE), self.on_done, qos=1, retained=False)
        for node in self.nodes.values():
            self.spawn(node)
        for node in self.nodes.values():
            await self.wait_online(node)
        async with self.price_lock:
            await self.publish_price()
            await self.check_mirror("at the first start")
        self.say(
            f"broker on port {self.broker.port}, nodes online: "
            + ", ".join(f"{n.ident} (pid {n.proc.pid if n.proc else '?'})" for n in self.nodes.values())
        )
        self.t_load = time.monotonic()
        load = [
            asyncio.create_task(c, name=name)
            for name, c in (
                *((f"caller{k}", self.caller()) for k in range(plan.callers)),
                *((f"jobber{k}", self.jobber()) for k in range(plan.jobs_window)),
                ("quoter", self.quoter()),
                *((f"reader{k}", self.reader()) for k in range(plan.readers)),
                ("pricer", self.pricer()),
                ("ticker", self.ticker()),
                ("sampler", self.sample_driver()),
            )
        ]
        try:
            for progress, kind, ident in plan.events():
                await self.until_progress(progress, load)
                await self.add_again(2)
                if kind == "broker":
                    await self.restart_broker()
                else:
                    await self.restart_node(ident, kind)
            await self.until_progress(1.0, load)
            # and until the last incarnation of every node has wrapped its packet ids (and
            # served a while since): the heartbeats show whether its tables stay flat after it
            while self.ticks < plan.ticks or any(
                self.current_life(n).msgs_out < plan.node_wraps * WRAP + (5_000 if plan.node_wraps else 0)
                for n in self.nodes.values()
            ):
                await self.until_progress(1.0, load)
                await asyncio.sleep(0.05)
            await self.add_again(2)
        except BaseException:
            for task in load + self.bursts:
                task.cancel()
            await asyncio.gather(*load, *self.bursts, return_exceptions=True)
            raise
        self.stopping.set()
        load += self.bursts
        results = await asyncio.gather(*load, return_exceptions=True)
        for task, result in zip(load, results, strict=True):
            if isinstance(result, BaseException):
                raise Failed(f"{task.get_name()} failed: {result!r}") from result
        self.t_load_end = time.monotonic()
        final = await self.call(COUNTER_GET, Sleep(seconds=0), "get-final")
        await asyncio.sleep(0.2)
        for node in self.nodes.values():
            await self.stop_node(node, "end")
            node.sigterms -= 1  # the final stop is not one of the restarts
        await asyncio.sleep(0.2)
        await client.close()
        self.final_total: Total = final

    async def until_progress(self, target: float, load: list[asyncio.Task[None]]) -> None:
        while self.progress() < target:
            for task in load:
                if task.done() and task.exception() is not None:
                    raise Failed(f"{task.get_name()} failed: {task.exception()!r}")
            await asyncio.sleep(0.05)

    # -- checks and report ------------------------------------------------------------------------
    def ledger(self) -> dict[str, list[Decimal]]:
        db = sqlite3.connect(self.state_dir / "counter.ledger.sqlite")
        try:
            rows = db.execute("SELECT amount, note FROM entries").fetchall()
        finally:
            db.close()
        out: dict[str, list[Decimal]] = collections.defaultdict(list)
        for amount, note in rows:
            out[note].append(Decimal(amount))
        return out

    def check_commands(self) -> dict[str, Any]:
        rows = self.ledger()
        lost = sorted(m for m in self.adds if not rows.get(m))
        twice = sorted(m for m in self.adds if len(rows.get(m, ())) > 1)
        wrong = sorted(m for m in self.adds if rows.get(m) and rows[m][0] != self.adds[m])
        unknown = sorted(set(rows) - set(self.adds))
        expected_total = sum(self.adds.values(), Decimal(0))
        final = self.final_total
        if lost:
            self.fail(f"{len(lost)} commands lost (sent, answered, not in the ledger): {lost[:10]}")
        if twice:
            self.fail(f"{len(twice)} commands run twice: " + ", ".join(f"{m} x{len(rows[m])}" for m in twice[:10]))
            for m in twice:
                tries = self.history.get(m, [])
                sent = tries[0][0] if tries else 0.0
                answered = max((done for _, done, _ in tries), default=self.now())
                at = [what for down, back, what in self.windows if down <= answered and back >= sent]
                print(
                    f"    {m} x{len(rows[m])}: in flight during "
                    + (" and ".join(at) if at else "no restart")
                    + "; its tries:"
                )
                for _, _, line in tries:
                    print(f"      {line}")
        if wrong or unknown:
            self.fail(f"ledger rows that match no command sent: {wrong[:5]} {unknown[:5]}")
        if final.total != expected_total or final.applied != len(self.adds):
            self.fail(
                f"counter/get answered total {final.total}, applied {final.applied}; the adds sent sum "
                f"to {expected_total} over {len(self.adds)} distinct msg-ids"
            )
        return {
            "lost": len(lost),
            "duplicates": sum(len(rows[m]) - 1 for m in twice),
            "ledger_rows": sum(len(v) for v in rows.values()),
            "expected_total": expected_total,
        }

    def check_refused(self) -> int:
        wraps = self.client.msgs_out // WRAP if self.client else 0
        if wraps < self.plan.wraps:
            self.fail(f"the driver's packet ids wrapped {wraps} times, fewer than {self.plan.wraps}")
        if self.refused_detected + self.refused_interrupted != self.refused_attempted:
            self.fail(f"refused publishes: {self.refused_detected} detected of {self.refused_attempted}")
        after = sum(n for w, n in self.refused_by_wrap.items() if w >= self.plan.wraps)
        if self.plan.wraps and after == 0:
            self.fail(f"no refused publish was tried after {self.plan.wraps} wraps")
        return wraps

    def check_reads(self) -> None:
        """A `counter/price` refused ("no price yet") is a mirror empty while the counter served."""
        if not self.refused_reads:
            return
        by: collections.Counter[str] = collections.Counter()
        for sent, answered, _ in self.refused_reads:
            at = [w for down, back, w in self.windows if "of counter" in w and down <= answered and sent <= back]
            by[at[0] if at else "no counter restart"] += 1
        self.fail(
            f"{len(self.refused_reads)} counter/price calls answered '{self.refused_reads[0][2]}', in flight "
            "during: " + ", ".join(f"{w} (x{n})" for w, n in by.items()) + ". A restarted counter handled "
            "commands queued in its session (sent while it was down, or unacknowledged at its stop) before "
            "the retained PRICE it mirrors arrived"
        )

    def in_restart(self, t: float) -> bool:
        """Within a restart (or the second after it): tables fill while a peer is away."""
        return any(down - 0.2 <= t <= back + 1.0 for down, back, _ in self.windows)

    def check_books(self, name: str, buckets: list[Bucket], bounds: dict[str, int] | None = None) -> dict[str, Any]:
        """After warm-up, outside restarts: max of the last third <= max of the first third
        + slack, per table; or within `bounds`, what the load itself can fill (the driver's
        burst of QoS 0 ticks, its in-flight window), which no leak stays under for long."""
        warm = [b for b in buckets if b.t >= self.plan.warmup_s and not self.in_restart(b.t)]
        if len(warm) < 6:
            return {}
        t0, t1 = warm[0].t, warm[-1].t
        first = [b for b in warm if b.t <= t0 + (t1 - t0) / 3]
        last = [b for b in warm if b.t >= t1 - (t1 - t0) / 3]
        out: dict[str, Any] = {}
        for i, key in enumerate(BOOK_KEYS):
            a, z = max(b.books[i] for b in first), max(b.books[i] for b in last)
            slack = max(2, a // 4)
            out[key] = (a, z, max(b.books[i] for b in warm))
            if z > a + slack and z > (bounds or {}).get(key, -1):
                self.fail(
                    f"bookkeeping of {name} grows: {key} at most {a} in the first third after warm-up, "
                    f"{z} in the last third (slack {slack})"
                )
        return out

    def check_rss(self) -> list[dict[str, Any]]:
        rows = []
        for life in sorted(self.lives.values(), key=lambda x: (x.ident, x.incarnation)):
            warm = [b for b in life.buckets if b.uptime >= self.plan.warmup_s and b.t >= self.plan.warmup_s]
            row: dict[str, Any] = {
                "node": life.ident,
                "incarnation": life.incarnation,
                "ended": life.ended,
                "life_s": life.uptime,
                "beats": life.beats,
                "msgs_out": life.msgs_out,
            }
            if len(warm) >= 2 and warm[-1].uptime - warm[0].uptime >= 1.0:
                growth = warm[-1].rss - warm[0].rss
                middle = warm[0].uptime + (warm[-1].uptime - warm[0].uptime) / 2
                half = next(b for b in warm if b.uptime >= middle)
                row.update(
                    first=warm[0].rss,
                    last=warm[-1].rss,
                    max=max(b.rss_max for b in warm),
                    growth=growth,
                    second_half=warm[-1].rss - half.rss,
                    judged_s=warm[-1].uptime - warm[0].uptime,
                )
                if growth >= RSS_LIMIT_MB:
                    self.fail(
                        f"RSS of {life.ident} incarnation {life.incarnation} grew {growth:.1f} MB after "
                        f"warm-up ({warm[0].rss:.1f} -> {warm[-1].rss:.1f} MB over "
                        f"{row['judged_s']:.0f} s)"
                    )
            rows.append(row)
        return rows

    def report(self) -> dict[str, Any]:
        duration = time.monotonic() - self.t_start
        load_s = (self.t_load_end or time.monotonic()) - self.t_load
        messages = self.messages()
        commands = self.check_commands()
        wraps = self.check_refused()
        rss = self.check_rss()
        books = {
            ident: self.check_books(
                ident, [b for life in self.lives.values() if life.ident == ident for b in life.buckets]
            )
            for ident in self.nodes
        }
        limit = self.client.inflight_limit if self.client else 20
        books["driver"] = self.check_books(
            "the driver",
            self.driver_buckets,
            {
                "unwritten_qos0": 2 * TICK_BURST,
                "in_flight": limit,
                "waiters": limit + 1,
                "calls": self.plan.callers + self.plan.readers + self.plan.burst + 1,
            },
        )
        counter_restarts = self.nodes["counter"].sigterms + self.nodes["counter"].kills
        if self.mirror_refills != counter_restarts:
            self.fail(f"mirror refilled after {self.mirror_refills} of {counter_restarts} counter restarts")
        if len(self.done_by) < 2:
            self.fail(f"jobs were done by {dict(self.done_by)} only: the pool did not share them")
        self.check_reads()
        node_wraps = sum(life.msgs_out // WRAP for life in self.lives.values())
        judged = [r for r in rss if "growth" in r]
        growth_max = max((r["growth"] for r in judged), default=0.0)

        print()
        print(
            f"longrun: {messages:,} messages in {load_s:.0f} s of load ({messages / load_s:,.0f}/s); "
            f"whole run {duration:.0f} s"
        )
        table = [
            ("messages (nodes' heartbeat counters + driver)", f"{messages:,} ({messages / load_s:,.0f}/s)"),
            (
                "node restarts: SIGTERM / kill -9",
                f"{sum(n.sigterms for n in self.nodes.values())} / "
                f"{sum(n.kills for n in self.nodes.values())} ("
                + ", ".join(f"{n.ident} {n.sigterms}+{n.kills}" for n in self.nodes.values())
                + ")",
            ),
            ("broker restarts (persistence on)", f"{self.broker_restarts}"),
            (
                "refused publishes detected / attempted",
                f"{self.refused_detected} / {self.refused_attempted}"
                + (f" ({self.refused_interrupted} cut by a broker restart)" if self.refused_interrupted else "")
                + "; by driver wraps "
                + ", ".join(f"{w}: {n}" for w, n in sorted(self.refused_by_wrap.items())),
            ),
            (
                "packet id wraps: driver / node incarnations",
                f"{wraps} / {node_wraps} ({self.ticks:,} QoS 0 ticks from the driver)",
            ),
            (
                "commands: adds / add_again / applied",
                f"{self.n_adds:,} / {self.again} / "
                f"{self.final_total.applied:,} (ledger rows {commands['ledger_rows']:,})",
            ),
            ("commands: lost / run twice", f"{commands['lost']} / {commands['duplicates']}"),
            ("commands: resent after a timeout / dedupe retries", f"{self.call_timeouts} / {self.dedupe_retries}"),
            ("counter total: answered / expected", f"{self.final_total.total} / {commands['expected_total']}"),
            (
                "jobs done / resent / done twice",
                f"{self.jobs_done:,} / {self.jobs_resent} / {self.jobs_dup_done} ("
                + ", ".join(f"{w} {n:,}" for w, n in sorted(self.done_by.items()))
                + ")",
            ),
            ("quotes / PRICE updates", f"{self.quotes:,} / {self.prices}"),
            ("counter/price reads under load (stale)", f"{self.reads:,} ({self.stale_reads})"),
            (
                "mirror refills checked: counter restarts / broker restarts",
                f"{self.mirror_refills} / {self.mirror_after_broker}",
            ),
        ]
        if self.remote_errors:
            table.append(("error replies", "; ".join(f"{k} x{n}" for k, n in self.remote_errors.items())))
        width = max(len(k) for k, _ in table)
        for k, v in table:
            print(f"  {k:<{width}}  {v}")
        print()
        print("  RSS per incarnation (MB, after warm-up: first / last / max, growth; limit < 5 MB):")
        print("    node     #inc ended     life   published (packet id wraps)")
        for r in rss:
            head = (
                f"    {r['node']:<8} #{r['incarnation']:<3} {r['ended']:<7} {r['life_s']:6.1f} s "
                f"{r['msgs_out']:>7,} out ({r['msgs_out'] // WRAP} wraps)"
            )
            if "growth" in r:
                print(
                    f"{head}  {r['first']:6.1f} / {r['last']:6.1f} / {r['max']:6.1f}  {r['growth']:+5.2f}"
                    f"  ({r['second_half']:+5.2f} in the second half)"
                )
            else:
                print(f"{head}  (too short to judge)")
        print()
        print("  bookkeeping maxima after warm-up (first third / last third / overall):")
        for ident, per in books.items():
            if per:
                print(f"    {ident:<8} " + "  ".join(f"{k} {a}/{z}/{m}" for k, (a, z, m) in per.items()))
        print()
        if self.failures:
            print(f"{len(self.failures)} check(s) FAILED:")
            for f in self.failures:
                print(f"  - {f.splitlines()[0]}")
        else:
            print(
                "every check passed: no command lost or run twice, every mirror refilled, every refused "
                "publish detected, bookkeeping and RSS flat"
            )
        return {
            "ok": not self.failures,
            "messages": messages,
            "messages_per_s": round(messages / load_s),
            "duration_s": round(duration, 1),
            "load_s": round(load_s, 1),
            "node_restarts": sum(n.sigterms + n.kills for n in self.nodes.values()),
            "sigterm": sum(n.sigterms for n in self.nodes.values()),
            "kill9": sum(n.kills for n in self.nodes.values()),
            "broker_restarts": self.broker_restarts,
            "refused_detected": self.refused_detected,
            "refused_attempted": self.refused_attempted,
            "commands": len(self.adds),
            "adds": self.n_adds,
            "add_again": self.again,
            "applied": self.final_total.applied,
            "lost": commands["lost"],
            "duplicates": commands["duplicates"],
            "dedupe_retries": self.dedupe_retries,
            "resent_after_timeout": self.call_timeouts,
            "jobs": self.jobs_done,
            "reads": self.reads,
            "stale_reads": self.stale_reads,
            "jobs_resent": self.jobs_resent,
            "mirror_refills": self.mirror_refills,
            "mirror_after_broker": self.mirror_after_broker,
            "rss_growth_mb_max": round(growth_max, 2),
            "incarnations": len(self.lives),
            "packet_id_wraps": wraps + node_wraps,
            "driver_wraps": wraps,
            "node_last_wraps": {n.ident: self.current_life(n).msgs_out // WRAP for n in self.nodes.values()},
            "qos0_ticks": self.ticks,
            "bookkeeping_max": {k: max((per[k][2] for per in books.values() if per), default=0) for k in BOOK_KEYS},
            "failures": len(self.failures),
        }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, help="messages to run through (default 1,000,000; quick 100,000)")
    p.add_argument("--quick", action="store_true", help="a short run: 100,000 messages")
    p.add_argument("--wraps", type=int, help="wraps of the driver's packet ids (default 3; 1 below 500,000 messages)")
    p.add_argument(
        "--node-wraps",
        type=int,
        help="wraps of each node's last incarnation's packet ids that the run waits for (default 1; 0 below 500,000)",
    )
    p.add_argument("--restarts", type=int, help="SIGTERMs and kill -9s per node (default 3, 2, 1 by size)")
    p.add_argument("--broker-restarts", type=int, help="broker restarts (default 3; 2 below 500,000 messages)")
    p.add_argument("--warmup", type=float, help="seconds of each incarnation not judged (default 5; 2 small)")
    p.add_argument(
        "--drain",
        action="store_true",
        help="let the counter answer the adds in flight before it is stopped (default: stop it "
        "in the middle of a burst of adds)",
    )
    p.add_argument("--keep", action="store_true", help="keep the temporary folder (node logs) for inspection")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("paho").setLevel(logging.CRITICAL)
    logging.getLogger("edge").setLevel(logging.CRITICAL)  # disconnects during broker restarts are expected

    def terminate(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, terminate)
    tmp = Path(tempfile.mkdtemp(prefix="edge-longrun-"))
    tmp.chmod(0o755)  # as root, mosquitto drops to its own user and must reach its folder
    print(
        f"longrun: {plan.messages:,} messages, {plan.restarts} SIGTERM + {plan.restarts} kill -9 per node, "
        f"{plan.broker_restarts} broker restarts, {plan.wraps} wraps of the driver's packet ids, "
        f"heartbeats every {float(HEARTBEAT_S) * 1000:.0f} ms",
        flush=True,
    )
    run = Run(plan, tmp)
    figures: dict[str, Any] | None = None
    try:
        asyncio.run(run.run())
        figures = run.report()
    except Failed as exc:
        run.fail(str(exc))
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the clean-up short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            run.close()
        finally:
            if args.keep or figures is None or not figures["ok"]:
                print(f"logs kept in {tmp}", file=sys.stderr)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if figures is None:
        print(
            json.dumps(
                {
                    "ok": False,
                    "failures": len(run.failures),
                    "messages": run.messages() if run.client else 0,
                    "error": run.failures[-1] if run.failures else "interrupted",
                }
            )
        )
        return 1
    print(json.dumps(figures))
    return 0 if figures["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
