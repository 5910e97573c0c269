"""Fixtures: a real Mosquitto per test with the project's own dev configuration,
test nodes run in-process or as real processes, and a probe client.

Never a mock broker: `broker` starts `mosquitto` from `mosquitto/dev.conf` with users
and an ACL generated from the project's catalog plus the test nodes' topics.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from edge import Client, Node
from edge.broker import DevBroker
from edge.message import Incoming
from edge.settings import REPO_ROOT, BrokerSettings
from schemas.catalog import CATALOG
from schemas.runtime import NodeStatus
from tests.nodes.catalog import TEST_CATALOG

FULL_CATALOG = CATALOG.merged(TEST_CATALOG)

settings.register_profile(
    "default",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.register_profile(
    "soak",
    max_examples=2000,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[DevBroker]:
    b = DevBroker(tmp_path / "run", catalog=FULL_CATALOG).start()
    try:
        yield b
    finally:
        b.stop()


class Collector:
    """Messages that arrived on a subscription, awaitable one by one."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[Incoming] = asyncio.Queue()
        self.seen: list[Incoming] = []

    def __call__(self, msg: Incoming) -> None:
        self.seen.append(msg)
        self.queue.put_nowait(msg)

    async def next(self, timeout: float = 5.0) -> Incoming:
        return await asyncio.wait_for(self.queue.get(), timeout)

    async def until(self, pred: Callable[[Incoming], bool], timeout: float = 5.0) -> Incoming:
        deadline = time.monotonic() + timeout
        while True:
            msg = await self.next(max(0.01, deadline - time.monotonic()))
            if pred(msg):
                return msg

    async def quiet(self, seconds: float) -> list[Incoming]:
        """Whatever arrives within `seconds` (used to show that nothing does)."""
        got: list[Incoming] = []
        with contextlib.suppress(TimeoutError):
            while True:
                got.append(await self.next(seconds))
        return got


class Probe:
    """A client as the `probe` user (or another), with helpers to collect messages."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.topics = client.topics

    async def collect(self, topic_filter: str, qos: int = 1) -> Collector:
        c = Collector()
        await self.client.subscribe(topic_filter, c, qos=qos)
        return c


@pytest.fixture
async def connect(broker: DevBroker) -> AsyncIterator[Callable[..., Any]]:
    """`await connect("operator")` -> a connected Client (closed at teardown)."""
    clients: list[Client] = []

    async def make(user: str = "probe", **kw: Any) -> Client:
        c = Client(kw.pop("settings", None) or broker.settings(user), name=kw.pop("name", user), **kw)
        await c.connect()
        clients.append(c)
        return c

    yield make
    for c in clients:
        await c.close()


@pytest.fixture
async def probe(connect: Callable[..., Any]) -> Probe:
    return Probe(await connect("probe"))


@pytest.fixture
def run_node(broker: DevBroker, tmp_path: Path) -> Callable[..., contextlib.AbstractAsyncContextManager[Node]]:
    """`async with run_node(node) as n:` runs a Node in this process until the block ends."""

    @contextlib.asynccontextmanager
    async def run(
        node: Node,
        *,
        user: str | None = None,
        instance: int | None = None,
        settings: BrokerSettings | None = None,
        state_dir: Path | None = None,
    ) -> AsyncIterator[Node]:
        stop, online = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(
            node.run(
                settings or broker.settings(user or node.name),
                instance=instance,
                state_dir=state_dir or tmp_path / "state",
                stop=stop,
                ready=online,
            )
        )
        ready = asyncio.create_task(online.wait())
        done, _ = await asyncio.wait({task, ready}, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # raises the node's start-up error
        assert ready in done, f"{node.name} did not come online"
        try:
            yield node
        finally:
            stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), 15)
            except TimeoutError:
                for t in asyncio.all_tasks():
                    t.print_stack()
                raise

    return run


class Spawned:
    def __init__(self, proc: subprocess.Popen[bytes], ident: str, log: Path) -> None:
        self.proc, self.ident, self.log = proc, ident, log

    @property
    def pid(self) -> int:
        return self.proc.pid

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def terminate(self, timeout: float = 15) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@pytest.fixture
def spawn(broker: DevBroker, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """`await spawn("tests.nodes.counter:node", "counter")` starts a node as a real process
    (as the launcher does) and waits for its birth with this pid."""
    procs: list[Spawned] = []

    async def start(
        spec: str,
        user: str,
        *,
        instance: int | None = None,
        state_dir: Path | None = None,
        extra_env: dict[str, str] | None = None,
        wait: bool = True,
    ) -> Spawned:
        ident = user if instance is None else f"{user}_{instance}"
        env = {
            **os.environ,
            **broker.settings(user).to_env(),
            "EDGE_STATE_DIR": str(state_dir or tmp_path / "state"),
            "PYTHONPATH": str(REPO_ROOT),
            "EDGE_LOG": "INFO",
            **(extra_env or {}),
        }
        if instance is not None:
            env["EDGE_INSTANCE"] = str(instance)
        log = tmp_path / f"{ident}-{len(procs)}.log"
        with open(log, "wb") as f:
            proc = subprocess.Popen(
                [sys.executable, "-m", "edge.run", spec], env=env, stdout=f, stderr=subprocess.STDOUT, cwd=REPO_ROOT
            )
        s = Spawned(proc, ident, log)
        procs.append(s)
        if wait:
            await wait_online(broker, ident, proc.pid, s)
        return s

    yield start
    for s in procs:
        if s.proc.poll() is None:
            s.proc.kill()
            s.proc.wait(10)


async def wait_online(
    broker: DevBroker, ident: str, pid: int, spawned: Spawned | None = None, timeout: float = 20.0
) -> NodeStatus:
    async with Client(broker.settings("operator"), name="waiter") as c:
        got = Collector()
        await c.subscribe(c.topics.status(ident), got)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = await got.next(min(1.0, deadline - time.monotonic()))
            except TimeoutError:
                if spawned is not None and spawned.proc.poll() is not None:
                    raise AssertionError(f"{ident} exited: {spawned.output()}") from None
                continue
            status = NodeStatus.model_validate_json(msg.payload)
            if status.state == "online" and status.pid == pid:
                return status
    raise AssertionError(f"{ident} (pid {pid}) did not come online: {spawned.output() if spawned else ''}")


@pytest.fixture
async def market(connect: Callable[..., Any]) -> Client:
    """The universe's retained securities and quotes (`tests/market.py`), as the universe
    node publishes them, for the execution board's nodes."""
    from tests.market import publish_market

    universe = await connect("universe")
    await publish_market(universe)
    return universe
