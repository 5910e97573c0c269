"""`edge up`: start a board's broker and nodes as child processes, and supervise them.

A node that exits unexpectedly is restarted with a growing delay (1 s, 2 s, ... 30 s);
SIGINT or SIGTERM stops every node with SIGTERM (each publishes `offline`), waits for
them, then stops the broker: nothing is left behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from schemas.catalog import CATALOG
from schemas.topics import Catalog

from . import inventory
from .broker import DevBroker
from .settings import BROKER_FILE, REPO_ROOT, RUN_DIR, BrokerSettings, LocalBroker

log = logging.getLogger("edge.launcher")

STOP_TIMEOUT_S = 10.0


def die_with_parent() -> None:
    """In a child before exec: SIGTERM when the launcher dies, even by SIGKILL (Linux), so
    a killed `edge up` leaves no node behind (each still says offline on SIGTERM)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


@dataclass
class Child:
    placement: inventory.Placement
    spec: str
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    next_start: float = 0.0
    started_at: float = 0.0

    def start(self) -> None:
        logf = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "edge.run", self.spec],
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
        self.broker = DevBroker(self.run_dir, catalog=self.catalog, root=root).start()
        self.broker.write_discovery()
        self.passwords = self.broker.passwords
        return self.broker.settings()

    def node_settings(self, node: str) -> BrokerSettings:
        """The node's own broker user: the ACL lets each node publish only what it owns."""
        if self.broker is not None:
            return self.broker.settings(node)
        assert self.external is not None
        if node not in self.passwords:
            raise SystemExit(f"edge: no password for the broker user {node!r} (see --credentials)")
        return self.external.as_user(node, self.passwords[node])

    def start_nodes(self) -> list[str]:
        """Start every built node; returns the names of placed nodes not built yet."""
        skipped: list[str] = []
        logs = self.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        for p in self.placements:
            spec = p.module
            if spec is None and not inventory.is_built(p.node):
                skipped.append(p.ident)
                continue
            env = {
                **os.environ,
                **self.node_settings(p.node).to_env(),
                "EDGE_BOARD": p.board,
                "EDGE_STATE_DIR": str(self.run_dir / "state"),
                "EDGE_MODE": self.mode,
                "PYTHONUNBUFFERED": "1",
            }
            if p.instance is not None:
                env["EDGE_INSTANCE"] = str(p.instance)
            child = Child(p, spec or p.node, env, logs / f"{p.ident}.log")
            child.start()
            self.children.append(child)
        return skipped

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
                log.warning(
                    "%s exited (%s); restarting in %.0f s (log: %s)", child.placement.ident, code, delay, child.log_path
                )
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
                log.warning("%s did not stop in time; killing it", child.placement.ident)
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
