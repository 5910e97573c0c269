"""`edge up`: start a board's broker and nodes as child processes, and supervise them.

A node that exits unexpectedly is restarted with a growing delay (1 s, 2 s, ... 30 s);
SIGINT or SIGTERM stops every node with SIGTERM (each publishes `offline`), waits for
them, then stops the broker: nothing is left behind.

The broker's port and its users' passwords are kept in `.run/credentials.json` (mode 0600)
and used again by the next `edge up` of the same checkout (the port if it is free), so a
shell's `eval "$(edge env)"` and a dashboard's session outlive a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from schemas.catalog import CATALOG
from schemas.topics import Catalog

from . import inventory
from .acl import users
from .broker import BrokerError, DevBroker, port_is_free
from .settings import BROKER_FILE, REPO_ROOT, RUN_DIR, BrokerSettings, LocalBroker

if TYPE_CHECKING:
    from .message import Incoming

log = logging.getLogger("edge.launcher")

# A stopping node lets the handler in hand finish (runtime.DRAIN_S, 10 s), says offline (up to 3 s)
# and closes its lifespan: killed only after that (systemd's TimeoutStopSec on a board is 20 s).
STOP_TIMEOUT_S = 18.0
ONLINE_TIMEOUT_S = 60.0  # how long `edge up` waits for every node's birth before it says which are late
KEPT_FILE = "credentials.json"  # the broker's port and passwords, kept across restarts


def die_with_parent() -> None:
    """In a child before exec: SIGTERM when the launcher dies, even by SIGKILL (Linux), so
    a killed `edge up` leaves no node behind (each still says offline on SIGTERM)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    """One process of the board: one node, or a group of them (`edge_process_groups`)."""

    placements: list[inventory.Placement]
    specs: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = 0.0

    @property
    def name(self) -> str:
        return self.placements[0].process

    @property
    def idents(self) -> list[str]:
        return [p.ident for p in self.placements]

    def start(self) -> None:
        logf = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge.run", *self.specs],
            env=self.env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=logf,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )
        logf.close()
        self.started_at = time.monotonic()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


@dataclass
class Launcher:
    placements: list[inventory.Placement]
    run_dir: Path = RUN_DIR
    catalog: Catalog = CATALOG
    broker: DevBroker | None = None
    external: BrokerSettings | None = None
    passwords: dict[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)
    mode: str = "paper"
    env: dict[str, str] = field(default_factory=dict)  # every node's settings over this process's environment
    _stopping: bool = False

    def start_broker(self, root: str = "trader") -> BrokerSettings:
        if self.external is not None:
            return self.external
        running = LocalBroker.load(self.run_dir)
        if running is not None and running.orphaned:
            log.warning("stopping the broker (pid %d) that a killed `edge up` left behind", running.pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(running.pid, signal.SIGTERM)
            for _ in range(100):
                if LocalBroker.load(self.run_dir) is None:
                    break
                time.sleep(0.05)
            running = LocalBroker.load(self.run_dir)
        if running is not None:
            raise SystemExit(
                f"edge: a broker from this checkout is already running (pid {running.pid}, "
                f"port {running.port}): stop that `make up` first"
            )
        port, passwords = self._kept()
        try:
            self.broker = DevBroker(self.run_dir, catalog=self.catalog, root=root, port=port, passwords=passwords)
            self.broker.start()
        except BrokerError:
            if not port:
                raise
            log.warning("port %d was taken meanwhile; the broker takes another", port)
            self.broker = DevBroker(self.run_dir, catalog=self.catalog, root=root, passwords=passwords).start()
        self.broker.write_discovery()
        self._keep()
        self.passwords = self.broker.passwords
        return self.broker.settings()

    def _kept(self) -> tuple[int, dict[str, str]]:
        """The port (0 if taken or unknown) and the passwords of the last broker of this run folder,
        for the users the catalog still has."""
        try:
            doc = json.loads((self.run_dir / KEPT_FILE).read_text())
            port, passwords = int(doc.get("port", 0)), dict(doc.get("passwords", {}))
        except (OSError, ValueError, TypeError, AttributeError):
            return 0, {}
        wanted = set(users(self.catalog))
        kept = {u: str(p) for u, p in passwords.items() if u in wanted and p}
        if port and not port_is_free(port):
            log.info("port %d of the last run is taken; the broker takes another", port)
            port = 0
        return port, kept

    def _keep(self) -> None:
        assert self.broker is not None
        self.run_dir.mkdir(parents=True, exist_ok=True)
        path, tmp = self.run_dir / KEPT_FILE, self.run_dir / f"{KEPT_FILE}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"port": self.broker.port, "passwords": self.broker.passwords}, f, indent=2)
        os.replace(tmp, path)

    def node_settings(self, node: str) -> BrokerSettings:
        """The node's own broker user: the ACL lets each node publish only what it owns."""
        if self.broker is not None:
            return self.broker.settings(node)
        assert self.external is not None
        if node not in self.passwords:
            raise SystemExit(f"edge: no password for the broker user {node!r} (see --credentials)")
        return self.external.as_user(node, self.passwords[node])

    def start_nodes(self) -> list[str]:
        """Start every built node, one process per process group or node; returns the
        idents of placed nodes not built yet."""
        skipped: list[str] = []
        logs = self.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for name, group in inventory.processes(self.placements).items():
            built = [p for p in group if p.module is not None or inventory.is_built(p.node)]
            skipped += [p.ident for p in group if p not in built]
            if not built:
                continue
            env = {
                **os.environ,
                **self.env,
                "EDGE_BOARD": built[0].board,
                "EDGE_STATE_DIR": str(self.run_dir / "state"),
                "EDGE_MODE": self.mode,
                "PYTHONUNBUFFERED": "1",
            }
            if len(built) == 1:  # as the tests start one node: MQTT_USER, EDGE_INSTANCE
                p = built[0]
                env |= self.node_settings(p.node).to_env()
                if p.instance is not None:
                    env["EDGE_INSTANCE"] = str(p.instance)
                specs = [p.module or p.node]
            else:
                for p in built:
                    env |= self.node_settings(p.node).to_env(node=p.node)
                specs = [p.spec for p in built]
            child = Child(built, specs, env, logs / f"{name}.log")
            child.start()
            self.children.append(child)
        return skipped

    def wait_online(self, settings: BrokerSettings, timeout: float = ONLINE_TIMEOUT_S) -> list[str]:
        """Supervise the nodes until each one's birth (`online`, from its current process)
        arrived, or `timeout` passed; the idents not online yet, in placement order."""
        return asyncio.run(self._wait_online(settings, timeout))

    async def _wait_online(self, settings: BrokerSettings, timeout: float, poll_s: float = 0.2) -> list[str]:
        from schemas.runtime import NodeStatus
        from schemas.topics import Topics

        from .client import Client

        online: dict[str, int] = {}  # ident -> pid of its latest `online`

        def on_status(msg: Incoming) -> None:
            try:
                status = NodeStatus.model_validate_json(msg.payload)
            except ValueError:
                return
            if status.state == "online":
                online[status.node] = status.pid

        def missing() -> list[str]:
            return [
                ident for c in self.children for ident in c.idents if c.proc is None or online.get(ident) != c.proc.pid
            ]

        deadline = time.monotonic() + timeout
        async with Client(settings, name="edge-up") as client:
            await client.subscribe(Topics(settings.root).node_filter("status"), on_status)
            while (late := missing()) and time.monotonic() < deadline:
                self.supervise_once()
                await asyncio.sleep(poll_s)
        return late

    def supervise_once(self) -> None:
        now = time.monotonic()
        for child in self.children:
            if self._stopping or child.alive():
                continue
            if child.next_start == 0.0:
                code = child.proc.returncode if child.proc else None
                delay = min(30.0, 2.0 ** min(child.restarts, 5))
                if now - child.started_at > 60:
                    child.restarts, delay = 0, 1.0
                child.next_start = now + delay
                log.warning("%s exited (%s); restarting in %.0f s (log: %s)", child.name, code, delay, child.log_path)
            elif now >= child.next_start:
                child.restarts += 1
                child.next_start = 0.0
                child.start()

    def stop(self) -> None:
        self._stopping = True
        for child in self.children:
            if child.alive():
                assert child.proc is not None
                child.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for child in self.children:
            if child.proc is None:
                continue
            try:
                child.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in time; killing it", child.name)
                child.proc.kill()
                child.proc.wait()
        if self.broker is not None:
            self.broker.stop()
            (self.run_dir / BROKER_FILE).unlink(missing_ok=True)

    def run_forever(self, poll_s: float = 0.5) -> None:
        stop = False

        def on_signal(signum: int, frame: object) -> None:
            nonlocal stop
            stop = True

        old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not stop:
                self.supervise_once()
                if self.broker is not None and self.broker.proc is not None and self.broker.proc.poll() is not None:
                    log.error("the broker exited; restarting it on the same port")
                    self.broker.start()
                    self.broker.write_discovery()
                time.sleep(poll_s)
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)
            self.stop()
